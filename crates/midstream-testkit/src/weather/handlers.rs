//! The mock weather API's routes, answering in Open-Meteo's shapes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Map, Value, json};

use super::cities::{CurrentWeather, ELSEWHERE, KnownCity, UTC_TIME, city_at, city_named};
use super::{WeatherMode, WeatherState};
use crate::recorded::RecordedRequest;

/// Reported as `generationtime_ms`: fixed so responses are deterministic.
const GENERATION_TIME_MS: f64 = 0.25;

/// Most geocoding results Open-Meteo returns for one search.
const MAX_SEARCH_RESULTS: usize = 100;

type Params = HashMap<String, String>;

pub(super) fn router(state: Arc<WeatherState>) -> Router {
    Router::new()
        .route("/v1/search", get(search))
        .route("/v1/forecast", get(forecast))
        .with_state(state)
}

async fn search(
    State(state): State<Arc<WeatherState>>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(&state, &state.geocoding_calls, uri, headers, || {
        geocode(&params)
    })
    .await
}

async fn forecast(
    State(state): State<Arc<WeatherState>>,
    uri: Uri,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    serve(&state, &state.forecast_calls, uri, headers, || {
        current_weather(&params)
    })
    .await
}

/// Counts and records the request, then answers it the way the current mode says; the
/// request counts as dropped if this future is dropped before it answers.
async fn serve(
    state: &WeatherState,
    calls: &AtomicUsize,
    uri: Uri,
    headers: HeaderMap,
    answer: impl FnOnce() -> Response,
) -> Response {
    calls.fetch_add(1, Ordering::Relaxed);
    state.requests.record(RecordedRequest {
        method: Method::GET,
        path: uri.path().to_owned(),
        uri,
        headers,
        body: Value::Null,
        raw_body: Bytes::new(),
    });
    let mut guard = state.dropped.guard(None);
    let response = match state.mode() {
        WeatherMode::Ok => answer(),
        WeatherMode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            answer()
        }
        WeatherMode::Fail(status) => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Mock failure requested by the test",
        ),
        WeatherMode::Garbage => (
            [(CONTENT_TYPE, "application/json")],
            "{\"latitude\": 48.84, \"current\": {\"temperature_2m\": ",
        )
            .into_response(),
    };
    guard.finish();
    response
}

/// Open-Meteo's error body.
fn error(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({"error": true, "reason": reason}))).into_response()
}

fn geocode(params: &Params) -> Response {
    let Some(name) = params.get("name") else {
        return error(StatusCode::BAD_REQUEST, "Parameter 'name' is required");
    };
    let count = match params.get("count").map(|count| count.parse::<usize>()) {
        None => 10,
        Some(Ok(count)) => count.clamp(1, MAX_SEARCH_RESULTS),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Parameter 'count' must be an integer",
            );
        }
    };
    // Open-Meteo answers a name shorter than 2 characters, or no match, without `results`.
    let matches: Vec<Value> = city_named(name)
        .filter(|_| name.trim().chars().count() >= 2)
        .into_iter()
        .take(count)
        .map(geocoding_result)
        .collect();
    let mut body = json!({"generationtime_ms": GENERATION_TIME_MS});
    if !matches.is_empty() {
        body["results"] = Value::Array(matches);
    }
    Json(body).into_response()
}

fn geocoding_result(city: &KnownCity) -> Value {
    json!({
        "id": city.id,
        "name": city.name,
        "latitude": city.latitude,
        "longitude": city.longitude,
        "elevation": city.elevation,
        "feature_code": city.feature_code,
        "country_code": city.country_code,
        "timezone": city.timezone,
        "population": city.population,
        "country": city.country,
        "admin1": city.admin1
    })
}

/// A variable `current=` may ask for: name, unit, and how to read it.
type CurrentVariable = (&'static str, &'static str, fn(&CurrentWeather) -> Value);

const CURRENT_VARIABLES: [CurrentVariable; 4] = [
    ("temperature_2m", "°C", |weather| {
        json!(weather.temperature_2m)
    }),
    ("relative_humidity_2m", "%", |weather| {
        json!(weather.relative_humidity_2m)
    }),
    ("weather_code", "wmo code", |weather| {
        json!(weather.weather_code)
    }),
    ("wind_speed_10m", "km/h", |weather| {
        json!(weather.wind_speed_10m)
    }),
];

fn current_weather(params: &Params) -> Response {
    let coordinates = coordinate(params, "latitude", 90.0)
        .and_then(|latitude| Ok((latitude, coordinate(params, "longitude", 180.0)?)));
    let (latitude, longitude) = match coordinates {
        Ok(coordinates) => coordinates,
        Err(reason) => return error(StatusCode::BAD_REQUEST, &reason),
    };
    let city = city_at(latitude, longitude);
    let timezone = params.get("timezone").map(String::as_str);
    let local_city = city
        .filter(|city| matches!(timezone, Some(zone) if zone == "auto" || zone == city.timezone));
    let (zone, abbreviation, offset, time) = match local_city {
        Some(city) => (
            city.timezone,
            city.timezone_abbreviation,
            city.utc_offset_seconds,
            city.local_time,
        ),
        None => ("GMT", "GMT", 0, UTC_TIME),
    };
    let mut body = json!({
        "latitude": latitude,
        "longitude": longitude,
        "generationtime_ms": GENERATION_TIME_MS,
        "utc_offset_seconds": offset,
        "timezone": zone,
        "timezone_abbreviation": abbreviation,
        "elevation": city.map_or(0.0, |city| city.elevation)
    });
    if let Some(requested) = params.get("current") {
        let weather = city.map_or(ELSEWHERE, |city| city.current);
        let mut units = Map::from_iter([
            ("time".to_owned(), json!("iso8601")),
            ("interval".to_owned(), json!("seconds")),
        ]);
        let mut current = Map::from_iter([
            ("time".to_owned(), json!(time)),
            ("interval".to_owned(), json!(900)),
        ]);
        for variable in requested.split(',').filter(|variable| !variable.is_empty()) {
            let Some((name, unit, read)) = CURRENT_VARIABLES
                .iter()
                .find(|(known, _, _)| *known == variable)
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "Cannot initialize ForecastVariable from invalid String value {variable} for key current"
                    ),
                );
            };
            units.insert((*name).to_owned(), json!(unit));
            current.insert((*name).to_owned(), read(&weather));
        }
        body["current_units"] = Value::Object(units);
        body["current"] = Value::Object(current);
    }
    Json(body).into_response()
}

/// Parses `params[name]` as a coordinate within `±limit`, or gives Open-Meteo's reason why not.
fn coordinate(params: &Params, name: &str, limit: f64) -> Result<f64, String> {
    let Some(value) = params
        .get(name)
        .and_then(|value| value.trim().parse::<f64>().ok())
    else {
        return Err(format!(
            "Parameter '{name}' is required and must be a floating point number"
        ));
    };
    if value.abs() > limit {
        let mut label = name.to_owned();
        label[..1].make_ascii_uppercase();
        return Err(format!(
            "{label} must be in range of -{limit} to {limit}°. Given: {value}."
        ));
    }
    Ok(value)
}
