//! The places the mock weather API knows, with fixed weather so tests can predict results.
//!
//! Ids, coordinates, elevations and populations are GeoNames' (what Open-Meteo's geocoding
//! returns); the weather is made up and fixed at 2025-01-15 12:00 UTC, a date on which every
//! zone below is on standard time, so `utc_offset_seconds` is exact.

/// Current conditions of a [`KnownCity`], as `/v1/forecast` reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurrentWeather {
    /// `temperature_2m`, °C.
    pub temperature_2m: f64,
    /// `relative_humidity_2m`, %.
    pub relative_humidity_2m: u8,
    /// `weather_code`, a WMO code.
    pub weather_code: u8,
    /// `wind_speed_10m`, km/h.
    pub wind_speed_10m: f64,
}

/// A place the mock geocodes, and its fixed current weather.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownCity {
    /// GeoNames id.
    pub id: u64,
    /// Name as geocoding returns it (matched case-insensitively).
    pub name: &'static str,
    /// WGS84 latitude.
    pub latitude: f64,
    /// WGS84 longitude.
    pub longitude: f64,
    /// Metres above sea level.
    pub elevation: f64,
    /// GeoNames feature code (`PPLC` = capital).
    pub feature_code: &'static str,
    /// Country name.
    pub country: &'static str,
    /// ISO 3166-1 alpha-2 code.
    pub country_code: &'static str,
    /// First-level administrative area.
    pub admin1: &'static str,
    /// IANA time zone.
    pub timezone: &'static str,
    /// Zone abbreviation on the fixed date.
    pub timezone_abbreviation: &'static str,
    /// Offset from UTC on the fixed date.
    pub utc_offset_seconds: i32,
    /// The fixed date and time in the city's zone, `YYYY-MM-DDTHH:MM`.
    pub local_time: &'static str,
    /// Inhabitants.
    pub population: u64,
    /// The fixed current weather.
    pub current: CurrentWeather,
}

/// The fixed moment in UTC, for forecasts not asked in a city's zone.
pub(crate) const UTC_TIME: &str = "2025-01-15T12:00";

/// Weather reported for coordinates that match no known city.
pub(crate) const ELSEWHERE: CurrentWeather = CurrentWeather {
    temperature_2m: 15.0,
    relative_humidity_2m: 60,
    weather_code: 2,
    wind_speed_10m: 10.0,
};

const CITIES: [KnownCity; 6] = [
    KnownCity {
        id: 2_988_507,
        name: "Paris",
        latitude: 48.85341,
        longitude: 2.3488,
        elevation: 42.0,
        feature_code: "PPLC",
        country: "France",
        country_code: "FR",
        admin1: "Île-de-France",
        timezone: "Europe/Paris",
        timezone_abbreviation: "GMT+1",
        utc_offset_seconds: 3600,
        local_time: "2025-01-15T13:00",
        population: 2_138_551,
        current: CurrentWeather {
            temperature_2m: 6.2,
            relative_humidity_2m: 81,
            weather_code: 3,
            wind_speed_10m: 11.5,
        },
    },
    KnownCity {
        id: 2_643_743,
        name: "London",
        latitude: 51.50853,
        longitude: -0.12574,
        elevation: 25.0,
        feature_code: "PPLC",
        country: "United Kingdom",
        country_code: "GB",
        admin1: "England",
        timezone: "Europe/London",
        timezone_abbreviation: "GMT",
        utc_offset_seconds: 0,
        local_time: "2025-01-15T12:00",
        population: 8_961_989,
        current: CurrentWeather {
            temperature_2m: 7.4,
            relative_humidity_2m: 86,
            weather_code: 61,
            wind_speed_10m: 18.7,
        },
    },
    KnownCity {
        id: 2_950_159,
        name: "Berlin",
        latitude: 52.52437,
        longitude: 13.41053,
        elevation: 74.0,
        feature_code: "PPLC",
        country: "Germany",
        country_code: "DE",
        admin1: "Land Berlin",
        timezone: "Europe/Berlin",
        timezone_abbreviation: "GMT+1",
        utc_offset_seconds: 3600,
        local_time: "2025-01-15T13:00",
        population: 3_426_354,
        current: CurrentWeather {
            temperature_2m: 1.8,
            relative_humidity_2m: 79,
            weather_code: 71,
            wind_speed_10m: 14.2,
        },
    },
    KnownCity {
        id: 1_850_147,
        name: "Tokyo",
        latitude: 35.6895,
        longitude: 139.69171,
        elevation: 44.0,
        feature_code: "PPLC",
        country: "Japan",
        country_code: "JP",
        admin1: "Tokyo",
        timezone: "Asia/Tokyo",
        timezone_abbreviation: "GMT+9",
        utc_offset_seconds: 32_400,
        local_time: "2025-01-15T21:00",
        population: 8_336_599,
        current: CurrentWeather {
            temperature_2m: 9.1,
            relative_humidity_2m: 42,
            weather_code: 0,
            wind_speed_10m: 6.8,
        },
    },
    KnownCity {
        id: 5_128_581,
        name: "New York",
        latitude: 40.71427,
        longitude: -74.00597,
        elevation: 10.0,
        feature_code: "PPL",
        country: "United States",
        country_code: "US",
        admin1: "New York",
        timezone: "America/New_York",
        timezone_abbreviation: "GMT-5",
        utc_offset_seconds: -18_000,
        local_time: "2025-01-15T07:00",
        population: 8_804_190,
        current: CurrentWeather {
            temperature_2m: -1.3,
            relative_humidity_2m: 55,
            weather_code: 1,
            wind_speed_10m: 21.6,
        },
    },
    KnownCity {
        id: 5_391_959,
        name: "San Francisco",
        latitude: 37.77493,
        longitude: -122.41942,
        elevation: 16.0,
        feature_code: "PPLA2",
        country: "United States",
        country_code: "US",
        admin1: "California",
        timezone: "America/Los_Angeles",
        timezone_abbreviation: "GMT-8",
        utc_offset_seconds: -28_800,
        local_time: "2025-01-15T04:00",
        population: 864_816,
        current: CurrentWeather {
            temperature_2m: 12.7,
            relative_humidity_2m: 74,
            weather_code: 2,
            wind_speed_10m: 9.4,
        },
    },
];

/// Coordinates closer than this (in degrees, on both axes) to a city are that city.
const SAME_PLACE_DEGREES: f64 = 0.05;

/// Every place the mock knows.
pub fn known_cities() -> &'static [KnownCity] {
    &CITIES
}

/// The city called `name`, ignoring case and surrounding spaces.
pub(crate) fn city_named(name: &str) -> Option<&'static KnownCity> {
    let name = name.trim();
    CITIES
        .iter()
        .find(|city| city.name.eq_ignore_ascii_case(name))
}

/// The city at these coordinates (within [`SAME_PLACE_DEGREES`]).
pub(crate) fn city_at(latitude: f64, longitude: f64) -> Option<&'static KnownCity> {
    CITIES.iter().find(|city| {
        (city.latitude - latitude).abs() < SAME_PLACE_DEGREES
            && (city.longitude - longitude).abs() < SAME_PLACE_DEGREES
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cities_are_found_by_name_and_by_rounded_coordinates() {
        assert_eq!(
            city_named(" new york ").map(|city| city.id),
            Some(5_128_581)
        );
        assert_eq!(city_at(48.85, 2.35).map(|city| city.name), Some("Paris"));
        assert_eq!(city_at(0.0, 0.0), None);
        assert_eq!(city_named("Atlantis"), None);
    }
}
