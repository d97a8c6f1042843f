//! The `weather` tool against a mock Open-Meteo (wiremock) and a raw TCP server, over loopback.

use std::sync::Arc;
use std::time::Duration;

use midstream_tools::builtin::{WeatherConfig, WeatherTool};
use midstream_tools::{
    CallContext, Dispatcher, DispatcherConfig, Tool, ToolError, ToolRegistry, ToolSettings,
};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Bound on waiting for something that should happen at once; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(20);

fn paris() -> Value {
    json!({
        "results": [{
            "id": 2988507, "name": "Paris", "latitude": 48.85341, "longitude": 2.3488,
            "elevation": 42.0, "feature_code": "PPLC", "country_code": "FR",
            "timezone": "Europe/Paris", "population": 2138551, "country": "France",
            "admin1": "Île-de-France"
        }],
        "generationtime_ms": 0.9
    })
}

fn forecast(temperature: f64, unit: &str) -> Value {
    json!({
        "latitude": 48.86, "longitude": 2.3399997, "generationtime_ms": 0.05,
        "utc_offset_seconds": 7200, "timezone": "Europe/Paris", "timezone_abbreviation": "CEST",
        "elevation": 43.0,
        "current_units": {
            "time": "iso8601", "interval": "seconds", "temperature_2m": unit,
            "relative_humidity_2m": "%", "weather_code": "wmo code", "wind_speed_10m": "km/h"
        },
        "current": {
            "time": "2025-06-04T14:00", "interval": 900, "temperature_2m": temperature,
            "relative_humidity_2m": 55, "weather_code": 2, "wind_speed_10m": 11.2
        }
    })
}

async fn mount_geocoding(server: &MockServer, body: Value) {
    Mock::given(method("GET"))
        .and(path("/v1/search"))
        .and(query_param("name", "Paris"))
        .and(query_param("count", "1"))
        .and(query_param("language", "en"))
        .and(query_param("format", "json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

fn tool_for(server: &MockServer) -> WeatherTool {
    WeatherTool::new(
        &WeatherConfig {
            geocoding_base_url: server.uri(),
            forecast_base_url: server.uri(),
        },
        reqwest::Client::new(),
    )
    .expect("the mock's URL is valid")
}

async fn call(tool: &WeatherTool, args: Value) -> Result<Value, ToolError> {
    tool.call(args, &CallContext::default()).await
}

fn dispatcher(tool: WeatherTool, settings: ToolSettings) -> Dispatcher {
    let mut registry = ToolRegistry::new();
    registry
        .register(Arc::new(tool), settings)
        .expect("the weather tool registers");
    Dispatcher::new(registry, DispatcherConfig::default())
}

#[tokio::test]
async fn reports_the_current_weather_of_a_city() {
    let server = MockServer::start().await;
    mount_geocoding(&server, paris()).await;
    Mock::given(method("GET"))
        .and(path("/v1/forecast"))
        .and(query_param("latitude", "48.85341"))
        .and(query_param("longitude", "2.3488"))
        .and(query_param(
            "current",
            "temperature_2m,relative_humidity_2m,weather_code,wind_speed_10m",
        ))
        .and(query_param("timezone", "auto"))
        .and(query_param_is_missing("temperature_unit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(forecast(21.5, "°C")))
        .expect(1)
        .mount(&server)
        .await;

    let result = call(&tool_for(&server), json!({"city": "Paris"}))
        .await
        .unwrap();
    assert_eq!(
        result,
        json!({
            "city": "Paris", "country": "France", "latitude": 48.85341, "longitude": 2.3488,
            "temperature": 21.5, "temperature_unit": "celsius", "humidity": 55.0,
            "wind_speed_kmh": 11.2, "weather_code": 2, "conditions": "partly cloudy"
        })
    );
}

#[tokio::test]
async fn asks_for_fahrenheit_when_told_to() {
    let server = MockServer::start().await;
    mount_geocoding(&server, paris()).await;
    Mock::given(method("GET"))
        .and(path("/v1/forecast"))
        .and(query_param("temperature_unit", "fahrenheit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(forecast(70.7, "°F")))
        .expect(1)
        .mount(&server)
        .await;

    let result = call(
        &tool_for(&server),
        json!({"city": "Paris", "units": "fahrenheit"}),
    )
    .await
    .unwrap();
    assert_eq!(result["temperature"], 70.7);
    assert_eq!(result["temperature_unit"], "fahrenheit");
}

#[tokio::test]
async fn an_unknown_city_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"generationtime_ms": 0.4})))
        .mount(&server)
        .await;
    Mock::given(path("/v1/forecast"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;

    let error = call(&tool_for(&server), json!({"city": "Atlantis"}))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ToolError::NotFound("no place called \"Atlantis\"".into())
    );
}

#[tokio::test]
async fn a_server_error_is_an_upstream_error_with_its_status_and_reason() {
    let server = MockServer::start().await;
    mount_geocoding(&server, paris()).await;
    Mock::given(path("/v1/forecast"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": true, "reason": "Internal weather failure"})),
        )
        .mount(&server)
        .await;

    let error = call(&tool_for(&server), json!({"city": "Paris"}))
        .await
        .unwrap_err();
    let ToolError::Upstream { status, message } = &error else {
        panic!("expected an upstream error, got {error:?}");
    };
    assert_eq!(*status, Some(500));
    assert!(
        message.contains("forecast API") && message.contains("Internal weather failure"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_is_an_upstream_error() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>rate limited</html>"))
        .mount(&server)
        .await;

    let error = call(&tool_for(&server), json!({"city": "Paris"}))
        .await
        .unwrap_err();
    let ToolError::Upstream { status, message } = &error else {
        panic!("expected an upstream error, got {error:?}");
    };
    assert_eq!(*status, Some(200));
    assert!(
        message.contains("geocoding API sent an unexpected body"),
        "{message}"
    );
    assert!(message.contains("rate limited"), "{message}");

    // Well-formed JSON of the wrong shape is no better.
    let server = MockServer::start().await;
    mount_geocoding(&server, paris()).await;
    Mock::given(path("/v1/forecast"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"current": {"temperature_2m": "warm"}})),
        )
        .mount(&server)
        .await;
    let error = call(&tool_for(&server), json!({"city": "Paris"}))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "upstream");
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let server = MockServer::start().await;
    let huge = format!(
        "{{\"results\": [], \"padding\": \"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    Mock::given(path("/v1/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string(huge))
        .mount(&server)
        .await;

    let error = call(&tool_for(&server), json!({"city": "Paris"}))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
}

#[tokio::test]
async fn an_unreachable_api_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let tool = WeatherTool::new(
        &WeatherConfig {
            geocoding_base_url: closed.clone(),
            forecast_base_url: closed,
        },
        reqwest::Client::new(),
    )
    .unwrap();

    let error = call(&tool, json!({"city": "Paris"})).await.unwrap_err();
    assert_eq!(error.code(), "unavailable", "{error}");
    assert!(
        error
            .to_string()
            .contains("geocoding API could not be reached"),
        "{error}"
    );
}

#[tokio::test]
async fn a_slow_api_times_out_through_the_dispatcher() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/search"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(paris())
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let timeout = Duration::from_millis(300);
    let dispatcher = dispatcher(
        tool_for(&server),
        ToolSettings {
            timeout,
            cache_ttl: Some(Duration::from_secs(600)),
        },
    );

    let mut tools = dispatcher.stream(Some("s".into()), CancellationToken::new());
    tools.start("weather", json!({"city": "Paris"}));
    let outcome = tokio::time::timeout(PATIENCE, tools.next_outcome())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.result.unwrap_err(), ToolError::Timeout(timeout));
    assert!(
        !dispatcher
            .cache()
            .contains("weather", &json!({"city": "Paris"}))
    );
}

#[tokio::test]
async fn the_dispatcher_validates_arguments_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let dispatcher = dispatcher(tool_for(&server), ToolSettings::default());
    let mut tools = dispatcher.stream(None, CancellationToken::new());
    tools.start("weather", json!({"city": ""}));
    tools.start("weather", json!({"city": "Paris", "units": "kelvin"}));
    tools.start("weather", json!({"town": "Paris"}));
    for _ in 0..3 {
        let outcome = tools.next_outcome().await.unwrap();
        assert_eq!(outcome.result.unwrap_err().code(), "invalid_arguments");
    }
}

#[tokio::test]
async fn the_cache_serves_a_city_once_across_streams() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(paris()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/forecast"))
        .respond_with(ResponseTemplate::new(200).set_body_json(forecast(18.0, "°C")))
        .expect(1)
        .mount(&server)
        .await;
    let dispatcher = dispatcher(
        tool_for(&server),
        ToolSettings {
            timeout: Duration::from_secs(10),
            cache_ttl: Some(Duration::from_secs(600)),
        },
    );

    let mut streams: Vec<_> = (0..5)
        .map(|i| dispatcher.stream(Some(format!("s{i}")), CancellationToken::new()))
        .collect();
    for tools in &mut streams {
        tools.start("weather", json!({"city": "Paris"}));
    }
    let mut cached = 0;
    for tools in &mut streams {
        let outcome = tools.next_outcome().await.unwrap();
        assert_eq!(outcome.result.unwrap()["temperature"], 18.0);
        cached += usize::from(outcome.cached);
    }
    assert_eq!(cached, 4);
    // MockServer verifies the `expect(1)`s when it is dropped.
}

#[tokio::test]
async fn a_dropped_stream_drops_the_request_in_flight() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (received_tx, received_rx) = tokio::sync::oneshot::channel::<String>();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<usize>();
    // A server that reads the request, never answers, and reports when the client hangs up.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = socket.read(&mut buffer).await.unwrap();
            assert!(read > 0, "the client hung up before sending its request");
            request.extend_from_slice(&buffer[..read]);
        }
        received_tx
            .send(String::from_utf8_lossy(&request).into_owned())
            .unwrap();
        let read = socket.read(&mut buffer).await.unwrap_or(0);
        closed_tx.send(read).unwrap();
    });
    let tool = WeatherTool::new(
        &WeatherConfig {
            geocoding_base_url: base.clone(),
            forecast_base_url: base,
        },
        reqwest::Client::new(),
    )
    .unwrap();
    let dispatcher = dispatcher(
        tool,
        ToolSettings {
            timeout: Duration::from_secs(3600),
            cache_ttl: None,
        },
    );

    let mut tools = dispatcher.stream(Some("s".into()), CancellationToken::new());
    tools.start("weather", json!({"city": "Paris"}));
    let request = tokio::time::timeout(PATIENCE, received_rx)
        .await
        .unwrap()
        .unwrap();
    assert!(
        request.starts_with("GET /v1/search?name=Paris&count=1&language=en&format=json "),
        "{request}"
    );

    drop(tools);
    let read = tokio::time::timeout(PATIENCE, closed_rx)
        .await
        .expect("the server saw the connection close")
        .unwrap();
    assert_eq!(read, 0, "the connection was closed, not written to");
    server.await.unwrap();
}
