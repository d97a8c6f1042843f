//! `weather`: current conditions for a city from an Open-Meteo-compatible API, or, on a first
//! run, from built-in demo data ([`WeatherTool::demo`]: no network, marked `"source": "demo"`).
//!
//! Against the API, two requests: the geocoding API turns the city into coordinates
//! (`GET {geocoding}/v1/search?name=…&count=1&language=en&format=json`), then the forecast API
//! gives the current conditions there (`GET {forecast}/v1/forecast?latitude=…&longitude=…&current=…`).
//! No timeout of its own: the dispatcher bounds the whole call and drops it on cancellation.

use async_trait::async_trait;
use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{CallContext, Tool, ToolError};

mod demo;

/// Largest response body read from either API; a larger one is an upstream error. Real answers
/// are about 1 KiB.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Longest piece of an upstream error body quoted in a [`ToolError`].
const MAX_QUOTED_CHARS: usize = 200;

/// Where the weather comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeatherConfig {
    /// Base URL of the geocoding API (a path prefix is kept).
    pub geocoding_base_url: String,
    /// Base URL of the forecast API (a path prefix is kept).
    pub forecast_base_url: String,
}

impl Default for WeatherConfig {
    fn default() -> Self {
        WeatherConfig {
            geocoding_base_url: "https://geocoding-api.open-meteo.com".to_owned(),
            forecast_base_url: "https://api.open-meteo.com".to_owned(),
        }
    }
}

/// The `weather` tool.
#[derive(Debug)]
pub struct WeatherTool {
    source: Source,
    parameters: Value,
}

/// Where the tool's answers come from.
#[derive(Debug)]
enum Source {
    /// An Open-Meteo-compatible API.
    Api(OpenMeteo),
    /// Built-in demo data.
    Demo,
}

/// The two endpoints of an Open-Meteo-compatible API.
#[derive(Debug)]
struct OpenMeteo {
    http: reqwest::Client,
    search_url: Url,
    forecast_url: Url,
}

/// Arguments, once the schema has accepted them.
#[derive(Debug, Deserialize)]
struct WeatherArgs {
    city: String,
    #[serde(default)]
    units: Units,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Units {
    #[default]
    Celsius,
    Fahrenheit,
}

impl Units {
    fn name(self) -> &'static str {
        match self {
            Units::Celsius => "celsius",
            Units::Fahrenheit => "fahrenheit",
        }
    }
}

#[derive(Debug, Deserialize)]
struct GeocodingResponse {
    /// Absent (not empty) when nothing matches.
    #[serde(default)]
    results: Vec<Place>,
}

#[derive(Debug, Deserialize)]
struct Place {
    name: String,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ForecastResponse {
    current: Current,
}

/// Open-Meteo reports `null` for a variable it has no value for; only the temperature is
/// required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Current {
    temperature_2m: f64,
    relative_humidity_2m: Option<f64>,
    weather_code: Option<u16>,
    wind_speed_10m: Option<f64>,
}

impl WeatherTool {
    /// The tool's registered name.
    pub const NAME: &'static str = "weather";

    /// A weather tool using `http` (share the gateway's client: it pools connections). Fails if
    /// a base URL is not an absolute http(s) URL.
    pub fn new(config: &WeatherConfig, http: reqwest::Client) -> Result<Self, ToolError> {
        Ok(WeatherTool {
            source: Source::Api(OpenMeteo {
                http,
                search_url: endpoint(
                    "geocoding_base_url",
                    &config.geocoding_base_url,
                    "v1/search",
                )?,
                forecast_url: endpoint(
                    "forecast_base_url",
                    &config.forecast_base_url,
                    "v1/forecast",
                )?,
            }),
            parameters: parameters(),
        })
    }

    /// A weather tool that never touches the network: every city gets plausible, deterministic
    /// conditions (the same city always the same), in the API's result shape plus
    /// `"source": "demo"`. For a first run with the demo model, so the demo works offline.
    pub fn demo() -> Self {
        WeatherTool {
            source: Source::Demo,
            parameters: parameters(),
        }
    }

    /// Whether this tool answers from demo data.
    pub fn is_demo(&self) -> bool {
        matches!(self.source, Source::Demo)
    }
}

/// The tool's JSON Schema, whatever its source.
fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "City name, e.g. \"Paris\" or \"New York\"."
            },
            "units": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": "Temperature unit (default celsius)."
            }
        },
        "required": ["city"],
        "additionalProperties": false
    })
}

impl OpenMeteo {
    async fn locate(&self, city: &str) -> Result<Place, ToolError> {
        let mut url = self.search_url.clone();
        url.query_pairs_mut()
            .append_pair("name", city)
            .append_pair("count", "1")
            .append_pair("language", "en")
            .append_pair("format", "json");
        let found: GeocodingResponse = self.get_json("geocoding API", url).await?;
        found
            .results
            .into_iter()
            .next()
            .ok_or_else(|| ToolError::NotFound(format!("no place called {city:?}")))
    }

    async fn current(&self, place: &Place, units: Units) -> Result<Current, ToolError> {
        let mut url = self.forecast_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("latitude", &place.latitude.to_string())
                .append_pair("longitude", &place.longitude.to_string())
                .append_pair(
                    "current",
                    "temperature_2m,relative_humidity_2m,weather_code,wind_speed_10m",
                )
                .append_pair("timezone", "auto");
            if let Units::Fahrenheit = units {
                query.append_pair("temperature_unit", "fahrenheit");
            }
        }
        let forecast: ForecastResponse = self.get_json("forecast API", url).await?;
        Ok(forecast.current)
    }

    /// GETs `url` and decodes its JSON body, turning every failure into a [`ToolError`] that
    /// names `api`.
    async fn get_json<T: DeserializeOwned>(&self, api: &str, url: Url) -> Result<T, ToolError> {
        let mut response = self.http.get(url).send().await.map_err(|error| {
            let message = format!("{api} could not be reached: {}", error_chain(&error));
            if error.is_connect() || error.is_timeout() {
                ToolError::Unavailable(message)
            } else {
                ToolError::Upstream {
                    status: None,
                    message,
                }
            }
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| ToolError::Upstream {
                status: Some(status.as_u16()),
                message: format!("{api} response broke off: {}", error_chain(&error)),
            })?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ToolError::Upstream {
                    status: Some(status.as_u16()),
                    message: format!("{api} response is larger than {MAX_BODY_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(ToolError::Upstream {
                status: Some(status.as_u16()),
                message: format!("{api} answered {status}: {}", error_reason(&body)),
            });
        }
        serde_json::from_slice(&body).map_err(|error| ToolError::Upstream {
            status: Some(status.as_u16()),
            message: format!("{api} sent an unexpected body ({error}): {}", quote(&body)),
        })
    }
}

#[async_trait]
impl Tool for WeatherTool {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Current weather for a city: temperature, humidity, wind and conditions."
    }

    fn parameters(&self) -> &Value {
        &self.parameters
    }

    async fn call(&self, args: Value, _ctx: &CallContext) -> Result<Value, ToolError> {
        let args: WeatherArgs = serde_json::from_value(args)
            .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
        let city = args.city.trim();
        if city.is_empty() {
            return Err(ToolError::InvalidArguments("city is blank".into()));
        }
        match &self.source {
            Source::Api(api) => {
                let place = api.locate(city).await?;
                let current = api.current(&place, args.units).await?;
                Ok(report(
                    &place.name,
                    place.country.as_deref(),
                    Some((place.latitude, place.longitude)),
                    &current,
                    args.units,
                ))
            }
            Source::Demo => {
                let demo = demo::report(city);
                let mut current = demo.current;
                if let Units::Fahrenheit = args.units {
                    current.temperature_2m =
                        (current.temperature_2m * 9.0 / 5.0 * 10.0 + 320.0).round() / 10.0;
                }
                let mut result = report(
                    &demo.name,
                    demo.country,
                    demo.coordinates,
                    &current,
                    args.units,
                );
                result["source"] = json!("demo");
                Ok(result)
            }
        }
    }
}

/// The result, in one shape whatever the source.
fn report(
    city: &str,
    country: Option<&str>,
    coordinates: Option<(f64, f64)>,
    current: &Current,
    units: Units,
) -> Value {
    json!({
        "city": city,
        "country": country,
        "latitude": coordinates.map(|c| c.0),
        "longitude": coordinates.map(|c| c.1),
        "temperature": current.temperature_2m,
        "temperature_unit": units.name(),
        "humidity": current.relative_humidity_2m,
        "wind_speed_kmh": current.wind_speed_10m,
        "weather_code": current.weather_code,
        "conditions": current.weather_code.map(conditions),
    })
}

/// `base` + `path`, keeping any path prefix of `base` (`http://mock/openmeteo` →
/// `http://mock/openmeteo/v1/search`).
fn endpoint(key: &str, base: &str, path: &str) -> Result<Url, ToolError> {
    let invalid = |message: String| ToolError::InvalidConfig {
        key: format!("tools.weather.{key}"),
        message,
    };
    let mut url =
        Url::parse(base).map_err(|error| invalid(format!("{base:?} is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid(format!("{base:?} is not an http(s) URL")));
    }
    if !url.path().ends_with('/') {
        let with_slash = format!("{}/", url.path());
        url.set_path(&with_slash);
    }
    url.join(path)
        .map_err(|error| invalid(format!("cannot append {path:?} to {base:?}: {error}")))
}

/// Words for a WMO weather interpretation code, as Open-Meteo documents them.
fn conditions(code: u16) -> &'static str {
    match code {
        0 => "clear sky",
        1 => "mainly clear",
        2 => "partly cloudy",
        3 => "overcast",
        45 => "fog",
        48 => "depositing rime fog",
        51 => "light drizzle",
        53 => "moderate drizzle",
        55 => "dense drizzle",
        56 => "light freezing drizzle",
        57 => "dense freezing drizzle",
        61 => "slight rain",
        63 => "moderate rain",
        65 => "heavy rain",
        66 => "light freezing rain",
        67 => "heavy freezing rain",
        71 => "slight snow fall",
        73 => "moderate snow fall",
        75 => "heavy snow fall",
        77 => "snow grains",
        80 => "slight rain showers",
        81 => "moderate rain showers",
        82 => "violent rain showers",
        85 => "slight snow showers",
        86 => "heavy snow showers",
        95 => "thunderstorm",
        96 => "thunderstorm with slight hail",
        99 => "thunderstorm with heavy hail",
        _ => "unknown",
    }
}

/// Open-Meteo explains a refused request as `{"error": true, "reason": "…"}`; anything else is
/// quoted as it came.
fn error_reason(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        reason: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => error.reason.chars().take(MAX_QUOTED_CHARS).collect(),
        Err(_) => quote(body),
    }
}

/// The start of a body, for an error message.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut quoted: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    if text.chars().count() > MAX_QUOTED_CHARS {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

/// An error with its causes: reqwest's own message ("error sending request") hides the reason.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let url = endpoint("k", "http://127.0.0.1:9/openmeteo", "v1/search").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/openmeteo/v1/search");
        let url = endpoint("k", "https://api.open-meteo.com", "v1/forecast").unwrap();
        assert_eq!(url.as_str(), "https://api.open-meteo.com/v1/forecast");
    }

    #[test]
    fn bad_base_urls_name_the_key() {
        let error = endpoint("forecast_base_url", "ftp://x", "v1/forecast").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("tools.weather.forecast_base_url"),
            "{error}"
        );
        assert!(endpoint("k", "not a url", "v1").is_err());
    }

    #[tokio::test]
    async fn demo_data_has_the_api_shape_marked_as_demo() {
        let tool = WeatherTool::demo();
        assert!(tool.is_demo());
        let ctx = CallContext::default();
        let lisbon = tool
            .call(json!({"city": "lisbon"}), &ctx)
            .await
            .expect("demo weather never fails");
        let api_shape = report("x", None, None, &demo::report("x").current, Units::Celsius);
        let mut keys: Vec<&String> = lisbon.as_object().expect("an object").keys().collect();
        let mut expected: Vec<&String> = api_shape.as_object().expect("an object").keys().collect();
        let source = "source".to_owned();
        expected.push(&source);
        keys.sort();
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(lisbon["source"], "demo");
        assert_eq!(lisbon["city"], "Lisbon");
        assert_eq!(lisbon["country"], "Portugal");
        assert_eq!(lisbon["temperature_unit"], "celsius");
        let code = lisbon["weather_code"].as_u64().expect("a code");
        assert_eq!(
            lisbon["conditions"],
            conditions(u16::try_from(code).expect("small"))
        );
        let again = tool
            .call(json!({"city": "Lisbon"}), &ctx)
            .await
            .expect("ok");
        assert_eq!(again, lisbon, "deterministic");

        let fahrenheit = tool
            .call(json!({"city": "Lisbon", "units": "fahrenheit"}), &ctx)
            .await
            .expect("ok");
        let celsius = lisbon["temperature"].as_f64().expect("a number");
        let converted = fahrenheit["temperature"].as_f64().expect("a number");
        assert!(
            (converted - (celsius * 1.8 + 32.0)).abs() < 0.051,
            "{celsius} °C = {converted} °F"
        );
        assert_eq!(fahrenheit["temperature_unit"], "fahrenheit");

        let blank = tool.call(json!({"city": "  "}), &ctx).await;
        assert!(
            matches!(blank, Err(ToolError::InvalidArguments(_))),
            "{blank:?}"
        );
    }

    #[test]
    fn wmo_codes_have_words() {
        assert_eq!(conditions(0), "clear sky");
        assert_eq!(conditions(2), "partly cloudy");
        assert_eq!(conditions(63), "moderate rain");
        assert_eq!(conditions(1234), "unknown");
    }

    #[test]
    fn upstream_reasons_are_quoted_briefly() {
        assert_eq!(
            error_reason(br#"{"error":true,"reason":"Latitude must be in range"}"#),
            "Latitude must be in range"
        );
        let long = vec![b'x'; 1000];
        assert!(quote(&long).chars().count() < 210);
    }
}
