//! The `[tools]` table and the built-in registry it configures.

use std::time::Duration;

use midstream_store::{Store, StoreOptions};
use midstream_tools::{
    CallContext, ToolError, ToolSettings, ToolsConfig, WeatherDefault, builtin_registry,
};
use serde::Deserialize;
use tempfile::TempDir;

/// The part of `midstream.toml` this crate reads.
#[derive(Debug, Deserialize)]
struct File {
    tools: ToolsConfig,
}

fn parse(text: &str) -> Result<ToolsConfig, toml::de::Error> {
    toml::from_str::<File>(text).map(|file| file.tools)
}

/// A store in a fresh directory, removed when the returned `TempDir` is dropped.
async fn store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("tools.db").display());
    (
        Store::connect(&url, StoreOptions::default())
            .await
            .expect("a SQLite file can be created"),
        dir,
    )
}

#[test]
fn the_documented_example_parses() {
    let config = parse(
        r#"
        [tools.weather]
        geocoding_base_url = "http://127.0.0.1:9000/geo"
        forecast_base_url = "http://127.0.0.1:9000/fc"
        timeout_ms = 1500
        cache_ttl_s = 60
        [tools.calendar]
        timeout_ms = 2500
        timezone = "Europe/Paris"
        "#,
    )
    .unwrap();
    assert_eq!(
        config.weather.geocoding_base_url.as_deref(),
        Some("http://127.0.0.1:9000/geo")
    );
    assert_eq!(config.weather.timeout_ms, 1500);
    assert_eq!(config.weather.cache_ttl_s, 60);
    assert_eq!(config.calendar.timezone, "Europe/Paris");
    assert_eq!(config.calendar.timeout_ms, 2500);
}

#[test]
fn every_key_has_a_default() {
    let config = parse("[tools]").unwrap();
    assert_eq!(config, ToolsConfig::default());
    // Unset base URLs: the public Open-Meteo, or demo data on a first run (see
    // `weather_answers_from_demo_data_only_when_asked_and_no_url_is_set`).
    assert_eq!(config.weather.geocoding_base_url, None);
    assert_eq!(config.weather.forecast_base_url, None);
    assert_eq!(config.weather.timeout_ms, 3000);
    assert_eq!(config.weather.cache_ttl_s, 600);
    assert_eq!(config.calendar.timeout_ms, 2000);
    assert_eq!(config.calendar.timezone, "UTC");
    let partial = parse("[tools.weather]\ntimeout_ms = 10").unwrap();
    assert_eq!(partial.weather.timeout_ms, 10);
    assert_eq!(partial.weather.cache_ttl_s, 600);
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let error = parse("[tools.weather]\ntimeout = 10").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `timeout`"),
        "{error}"
    );
    let error = parse("[tools.clock]\nx = 1").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `clock`"),
        "{error}"
    );
}

#[tokio::test]
async fn the_builtin_registry_holds_both_tools_with_their_settings() {
    let (store, _dir) = store().await;
    let registry = builtin_registry(
        &ToolsConfig::default(),
        store,
        reqwest::Client::new(),
        WeatherDefault::OpenMeteo,
    )
    .unwrap();
    assert_eq!(
        registry.names().collect::<Vec<_>>(),
        ["calendar", "weather"]
    );
    assert_eq!(
        registry.get("weather").unwrap().settings(),
        ToolSettings {
            timeout: Duration::from_secs(3),
            cache_ttl: Some(Duration::from_secs(600)),
        }
    );
    assert_eq!(
        registry.get("calendar").unwrap().settings(),
        ToolSettings {
            timeout: Duration::from_secs(2),
            cache_ttl: None,
        }
    );
    let described = registry.describe();
    assert_eq!(described.len(), 2);
    assert_eq!(
        described[1].parameters["required"],
        serde_json::json!(["city"])
    );
}

#[tokio::test]
async fn a_zero_cache_ttl_turns_caching_off() {
    let (store, _dir) = store().await;
    let config = parse("[tools.weather]\ncache_ttl_s = 0").unwrap();
    let registry = builtin_registry(
        &config,
        store,
        reqwest::Client::new(),
        WeatherDefault::OpenMeteo,
    )
    .unwrap();
    assert_eq!(registry.get("weather").unwrap().settings().cache_ttl, None);
}

#[tokio::test]
async fn invalid_values_name_their_key() {
    let (store, _dir) = store().await;
    for (text, key) in [
        (
            "[tools.weather]\ntimeout_ms = 0",
            "tools.weather.timeout_ms",
        ),
        (
            "[tools.weather]\ngeocoding_base_url = \"nope\"",
            "tools.weather.geocoding_base_url",
        ),
        (
            "[tools.weather]\nforecast_base_url = \"file:///etc\"",
            "tools.weather.forecast_base_url",
        ),
        (
            "[tools.calendar]\ntimezone = \"Nowhere/Town\"",
            "tools.calendar.timezone",
        ),
        (
            "[tools.calendar]\ntimeout_ms = 0",
            "tools.calendar.timeout_ms",
        ),
    ] {
        let config = parse(text).unwrap();
        let error = builtin_registry(
            &config,
            store.clone(),
            reqwest::Client::new(),
            WeatherDefault::DemoData,
        )
        .unwrap_err();
        assert_eq!(error.code(), "invalid_config", "{text}: {error}");
        assert!(error.to_string().contains(key), "{text}: {error}");
    }
}

#[tokio::test]
async fn weather_answers_from_demo_data_only_when_asked_and_no_url_is_set() {
    let (store, _dir) = store().await;
    let weather =
        |registry: &midstream_tools::ToolRegistry| registry.get("weather").unwrap().tool().clone();
    let args = || serde_json::json!({"city": "Lisbon"});

    let demo = builtin_registry(
        &ToolsConfig::default(),
        store.clone(),
        reqwest::Client::new(),
        WeatherDefault::DemoData,
    )
    .unwrap();
    let result = weather(&demo)
        .call(args(), &CallContext::default())
        .await
        .unwrap();
    assert_eq!(result["source"], "demo");
    assert_eq!(result["city"], "Lisbon");
    assert!(result["temperature"].is_f64(), "{result}");
    // The demo keeps the configured settings.
    assert_eq!(
        demo.get("weather").unwrap().settings().cache_ttl,
        Some(Duration::from_secs(600))
    );

    // One base URL configured: that API, even in demo mode (the other one is the public
    // default). Port 9 (discard) refuses, so the call fails instead of inventing weather.
    for config in [
        "[tools.weather]\ngeocoding_base_url = \"http://127.0.0.1:9\"",
        "[tools.weather]\ngeocoding_base_url = \"http://127.0.0.1:9\"\nforecast_base_url = \"http://127.0.0.1:9\"",
    ] {
        let registry = builtin_registry(
            &parse(config).unwrap(),
            store.clone(),
            reqwest::Client::new(),
            WeatherDefault::DemoData,
        )
        .unwrap();
        let outcome = weather(&registry)
            .call(args(), &CallContext::default())
            .await;
        assert!(
            matches!(outcome, Err(ToolError::Unavailable(_))),
            "{config}: {outcome:?}"
        );
    }
}
