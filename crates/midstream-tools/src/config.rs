//! The `[tools]` table of `midstream.toml`, and the registry of built-in tools it describes.

use std::sync::Arc;
use std::time::Duration;

use midstream_store::Store;
use serde::Deserialize;

use crate::builtin::{CalendarConfig, CalendarTool, SystemClock, WeatherConfig, WeatherTool};
use crate::{ToolError, ToolRegistry, ToolSettings};

/// The `[tools]` table. Every key is optional; unknown keys are an error (a typo must not
/// silently fall back to a default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// `[tools.weather]`.
    pub weather: WeatherSection,
    /// `[tools.calendar]`.
    pub calendar: CalendarSection,
}

/// `[tools.weather]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeatherSection {
    /// Open-Meteo-compatible geocoding API; unset: see [`WeatherDefault`].
    pub geocoding_base_url: Option<String>,
    /// Open-Meteo-compatible forecast API; unset: see [`WeatherDefault`].
    pub forecast_base_url: Option<String>,
    /// Bound on one call (both requests), in ms; at least 1.
    pub timeout_ms: u64,
    /// How long a city's weather is reused, in seconds; 0 = not cached.
    pub cache_ttl_s: u64,
}

impl Default for WeatherSection {
    fn default() -> Self {
        WeatherSection {
            geocoding_base_url: None,
            forecast_base_url: None,
            timeout_ms: 3_000,
            cache_ttl_s: 600,
        }
    }
}

/// `[tools.calendar]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSection {
    /// Bound on one call, in ms; at least 1.
    pub timeout_ms: u64,
    /// Zone in which "tomorrow at 3pm" is read: IANA name, `UTC`, or `+02:00`.
    pub timezone: String,
}

impl Default for CalendarSection {
    fn default() -> Self {
        CalendarSection {
            timeout_ms: 2_000,
            timezone: "UTC".to_owned(),
        }
    }
}

/// What `weather` answers from when `[tools.weather]` sets neither base URL. A configured base
/// URL always means that API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeatherDefault {
    /// The public Open-Meteo API.
    #[default]
    OpenMeteo,
    /// Built-in demo data, without network ([`WeatherTool::demo`]): the gateway's first run,
    /// with its demo model, works on a machine without internet.
    DemoData,
}

/// A registry holding `weather` (over `http`, or demo data: see [`WeatherDefault`]) and
/// `calendar` (over `store`), configured by `config`. An invalid value fails with the key that
/// holds it.
pub fn builtin_registry(
    config: &ToolsConfig,
    store: Store,
    http: reqwest::Client,
    weather_default: WeatherDefault,
) -> Result<ToolRegistry, ToolError> {
    let mut registry = ToolRegistry::new();

    let weather = &config.weather;
    let tool = match (
        &weather.geocoding_base_url,
        &weather.forecast_base_url,
        weather_default,
    ) {
        (None, None, WeatherDefault::DemoData) => {
            tracing::info!(
                "no [tools.weather] base URL: the weather tool answers from built-in DEMO data \
                 (no network; results say \"source\": \"demo\"); set geocoding_base_url and \
                 forecast_base_url for real weather"
            );
            WeatherTool::demo()
        }
        (geocoding, forecast, _) => {
            let public = WeatherConfig::default();
            WeatherTool::new(
                &WeatherConfig {
                    geocoding_base_url: geocoding.clone().unwrap_or(public.geocoding_base_url),
                    forecast_base_url: forecast.clone().unwrap_or(public.forecast_base_url),
                },
                http,
            )?
        }
    };
    let settings = ToolSettings {
        timeout: timeout("tools.weather.timeout_ms", weather.timeout_ms)?,
        cache_ttl: (weather.cache_ttl_s > 0).then(|| Duration::from_secs(weather.cache_ttl_s)),
    };
    registry.register(Arc::new(tool), settings)?;

    let calendar = &config.calendar;
    let tool = CalendarTool::new(
        store,
        CalendarConfig {
            timezone: calendar.timezone.clone(),
            clock: Arc::new(SystemClock),
        },
    )?;
    let settings = ToolSettings {
        timeout: timeout("tools.calendar.timeout_ms", calendar.timeout_ms)?,
        cache_ttl: None,
    };
    registry.register(Arc::new(tool), settings)?;

    Ok(registry)
}

fn timeout(key: &str, ms: u64) -> Result<Duration, ToolError> {
    if ms == 0 {
        return Err(ToolError::InvalidConfig {
            key: key.to_owned(),
            message: "must be at least 1 (ms)".into(),
        });
    }
    Ok(Duration::from_millis(ms))
}
