//! The mock Open-Meteo API, driven by a plain reqwest client over loopback HTTP.

use std::time::Duration;

use midstream_testkit::{MockWeather, WeatherMode, known_cities};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(10);

const CURRENT: &str = "temperature_2m,relative_humidity_2m,weather_code,wind_speed_10m";

async fn get(weather: &MockWeather, path_and_query: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path_and_query}", weather.base_url()))
        .await
        .expect("the mock answers")
}

async fn get_json(weather: &MockWeather, path_and_query: &str) -> (u16, Value) {
    let response = get(weather, path_and_query).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test]
async fn geocoding_finds_known_cities_in_open_meteo_shape() {
    let weather = MockWeather::start().await;
    let (status, body) = get_json(
        &weather,
        "/v1/search?name=San%20Francisco&count=1&language=en&format=json",
    )
    .await;
    assert_eq!(status, 200);
    let result = &body["results"][0];
    assert_eq!(result["name"], "San Francisco");
    assert_eq!(result["latitude"], 37.77493);
    assert_eq!(result["longitude"], -122.41942);
    assert_eq!(result["country"], "United States");
    assert_eq!(result["country_code"], "US");
    assert_eq!(result["timezone"], "America/Los_Angeles");
    assert!(body["generationtime_ms"].is_number());

    let (_, unknown) = get_json(&weather, "/v1/search?name=Atlantis&count=1").await;
    assert_eq!(
        unknown.get("results"),
        None,
        "no `results` for an unknown place"
    );
    let (_, too_short) = get_json(&weather, "/v1/search?name=P").await;
    assert_eq!(too_short.get("results"), None);
    let (status, _) = get_json(&weather, "/v1/search").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn every_known_city_has_a_deterministic_forecast() {
    let weather = MockWeather::start().await;
    for city in known_cities() {
        let query = format!(
            "/v1/forecast?latitude={}&longitude={}&current={CURRENT}&timezone=auto",
            city.latitude, city.longitude
        );
        let (status, body) = get_json(&weather, &query).await;
        assert_eq!(status, 200, "{}", city.name);
        assert_eq!(body["timezone"], city.timezone);
        assert_eq!(body["utc_offset_seconds"], city.utc_offset_seconds);
        assert_eq!(
            body["current_units"],
            json!({
                "time": "iso8601", "interval": "seconds", "temperature_2m": "°C",
                "relative_humidity_2m": "%", "weather_code": "wmo code", "wind_speed_10m": "km/h"
            })
        );
        let current = &body["current"];
        assert_eq!(current["time"], city.local_time);
        assert_eq!(current["interval"], 900);
        assert_eq!(current["temperature_2m"], city.current.temperature_2m);
        assert_eq!(
            current["relative_humidity_2m"],
            city.current.relative_humidity_2m
        );
        assert_eq!(current["weather_code"], city.current.weather_code);
        assert_eq!(current["wind_speed_10m"], city.current.wind_speed_10m);
        assert_eq!(
            get_json(&weather, &query).await.1,
            body,
            "same answer twice"
        );
    }
    assert_eq!(weather.forecast_calls(), 2 * known_cities().len());
}

#[tokio::test]
async fn forecasts_follow_the_query_like_open_meteo() {
    let weather = MockWeather::start().await;
    let (_, gmt) = get_json(
        &weather,
        "/v1/forecast?latitude=48.85&longitude=2.35&current=temperature_2m",
    )
    .await;
    assert_eq!(gmt["timezone"], "GMT");
    assert_eq!(gmt["current"]["time"], "2025-01-15T12:00");
    assert_eq!(
        gmt["current"]["temperature_2m"], 6.2,
        "rounded coordinates still match Paris"
    );
    assert_eq!(
        gmt["current"].get("weather_code"),
        None,
        "only what was asked"
    );

    let (_, no_current) = get_json(&weather, "/v1/forecast?latitude=1&longitude=2").await;
    assert_eq!(no_current.get("current"), None);
    assert_eq!(no_current["latitude"], 1.0);

    let (status, error) = get_json(&weather, "/v1/forecast?latitude=91&longitude=0").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], true);
    assert!(
        error["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("Latitude"))
    );
    let (status, _) = get_json(&weather, "/v1/forecast?longitude=0").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&weather, "/v1/forecast?latitude=0&longitude=0&current=nope").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn failures_and_garbage_are_served_on_demand_and_counted() {
    let weather = MockWeather::start().await;
    weather.set_mode(WeatherMode::Fail(503));
    let (status, body) = get_json(&weather, "/v1/search?name=Paris").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], true);

    weather.set_mode(WeatherMode::Garbage);
    let response = get(&weather, "/v1/forecast?latitude=1&longitude=2").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.expect("a body");
    assert!(serde_json::from_str::<Value>(&text).is_err());

    weather.set_mode(WeatherMode::Ok);
    let (status, _) = get_json(&weather, "/v1/search?name=Paris").await;
    assert_eq!(status, 200);
    assert_eq!(weather.geocoding_calls(), 2);
    assert_eq!(weather.forecast_calls(), 1);
    assert_eq!(weather.calls(), 3);
    assert_eq!(weather.dropped(), 0);
}

#[tokio::test]
async fn a_client_giving_up_on_a_slow_api_is_recorded_as_dropped() {
    let weather = MockWeather::start().await;
    weather.set_mode(WeatherMode::Slow(Duration::from_secs(3600)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .expect("a client");
    let result = client
        .get(format!("{}/v1/search?name=Tokyo", weather.base_url()))
        .send()
        .await;
    assert!(result.expect_err("the API is too slow").is_timeout());
    assert!(weather.wait_for_dropped(PATIENCE).await);
    assert_eq!(weather.dropped(), 1);
    assert_eq!(weather.geocoding_calls(), 1);
}

#[tokio::test]
async fn a_slow_api_still_answers_a_patient_client() {
    let weather = MockWeather::start().await;
    weather.set_mode(WeatherMode::Slow(Duration::from_millis(50)));
    let started = std::time::Instant::now();
    let (status, body) = get_json(&weather, "/v1/search?name=berlin").await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(status, 200);
    assert_eq!(body["results"][0]["name"], "Berlin");
    assert_eq!(weather.dropped(), 0);
}

#[tokio::test]
async fn requests_are_recorded_with_their_query() {
    let weather = MockWeather::start().await;
    get(
        &weather,
        "/v1/search?name=New+York&count=1&language=en&format=json",
    )
    .await;
    let requests = weather.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/search");
    assert_eq!(requests[0].query_param("name").as_deref(), Some("New York"));
    assert_eq!(requests[0].query_param("count").as_deref(), Some("1"));
}
