//! Built-in demo weather: plausible, deterministic conditions for any city, without a network.
//!
//! Used on a first run (the demo model, no `[tools.weather]` base URL), so the demo works on a
//! machine without internet and never calls the public Open-Meteo behind the user's back. Every
//! value comes from a stable hash of the city's name (FNV-1a, fixed across runs and Rust
//! versions), so "Lisbon" always gets the same weather. A short table of well-known cities
//! gives their real coordinates and country, and a climate that depends on the latitude; any
//! other name still gets an answer, without coordinates.

use super::Current;

/// A well-known city: its display name, country and coordinates.
struct KnownCity {
    name: &'static str,
    country: &'static str,
    latitude: f64,
    longitude: f64,
}

const fn city(
    name: &'static str,
    country: &'static str,
    latitude: f64,
    longitude: f64,
) -> KnownCity {
    KnownCity {
        name,
        country,
        latitude,
        longitude,
    }
}

/// Cities the demo knows the place of (coordinates as Open-Meteo's geocoding gives them).
const KNOWN: &[KnownCity] = &[
    city("Amsterdam", "Netherlands", 52.37403, 4.88969),
    city("Berlin", "Germany", 52.52437, 13.41053),
    city("Buenos Aires", "Argentina", -34.61315, -58.37723),
    city("Cairo", "Egypt", 30.06263, 31.24967),
    city("Cape Town", "South Africa", -33.92584, 18.42322),
    city("Chicago", "United States", 41.85003, -87.65005),
    city("Dubai", "United Arab Emirates", 25.07725, 55.30927),
    city("Istanbul", "Turkey", 41.01384, 28.94966),
    city("Lisbon", "Portugal", 38.71667, -9.13333),
    city("London", "United Kingdom", 51.50853, -0.12574),
    city("Los Angeles", "United States", 34.05223, -118.24368),
    city("Madrid", "Spain", 40.4165, -3.70256),
    city("Mexico City", "Mexico", 19.42847, -99.12766),
    city("Mumbai", "India", 19.07283, 72.88261),
    city("New York", "United States", 40.71427, -74.00597),
    city("Oslo", "Norway", 59.91273, 10.74609),
    city("Paris", "France", 48.85341, 2.3488),
    city("Rome", "Italy", 41.89193, 12.51133),
    city("San Francisco", "United States", 37.77493, -122.41942),
    city("São Paulo", "Brazil", -23.5475, -46.63611),
    city("Seoul", "South Korea", 37.566, 126.9784),
    city("Singapore", "Singapore", 1.28967, 103.85007),
    city("Stockholm", "Sweden", 59.32938, 18.06871),
    city("Sydney", "Australia", -33.86785, 151.20732),
    city("Tokyo", "Japan", 35.6895, 139.69171),
    city("Toronto", "Canada", 43.70643, -79.39864),
    city("Vienna", "Austria", 48.20849, 16.37208),
    city("Warsaw", "Poland", 52.22977, 21.01178),
];

/// The demo's answer for one city: the place as far as it is known, and its conditions.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DemoReport {
    /// The known city's name, else the name as asked (trimmed).
    pub name: String,
    /// Known cities only.
    pub country: Option<&'static str>,
    /// Known cities only: (latitude, longitude).
    pub coordinates: Option<(f64, f64)>,
    /// Temperature in °C, humidity, wind and WMO code, as Open-Meteo reports them.
    pub current: Current,
}

/// One kind of weather the demo draws.
#[derive(Debug, Clone, Copy)]
struct Kind {
    /// WMO code.
    code: u16,
    /// Its weight among the draws.
    weight: u64,
    /// The temperatures in °C it is plausible at.
    temperature: (f64, f64),
    /// Its relative humidity range, in %.
    humidity: (f64, f64),
}

const fn kind(code: u16, weight: u64, temperature: (f64, f64), humidity: (f64, f64)) -> Kind {
    Kind {
        code,
        weight,
        temperature,
        humidity,
    }
}

/// The kinds of weather the demo knows, by WMO code.
const WEATHER: &[Kind] = &[
    kind(0, 5, (-4.0, 34.0), (25.0, 55.0)),   // clear sky
    kind(1, 5, (-4.0, 33.0), (30.0, 60.0)),   // mainly clear
    kind(2, 6, (-6.0, 31.0), (40.0, 70.0)),   // partly cloudy
    kind(3, 4, (-8.0, 27.0), (55.0, 85.0)),   // overcast
    kind(45, 1, (-2.0, 14.0), (88.0, 100.0)), // fog
    kind(51, 2, (2.0, 20.0), (75.0, 95.0)),   // light drizzle
    kind(61, 2, (3.0, 26.0), (75.0, 97.0)),   // slight rain
    kind(63, 1, (4.0, 24.0), (80.0, 98.0)),   // moderate rain
    kind(80, 2, (6.0, 30.0), (70.0, 95.0)),   // slight rain showers
    kind(95, 1, (14.0, 33.0), (70.0, 95.0)),  // thunderstorm
];

/// The demo weather of `city` (already checked not to be blank).
pub(super) fn report(city: &str) -> DemoReport {
    let asked = city.trim();
    let key = asked.to_lowercase();
    let known = KNOWN.iter().find(|c| c.name.to_lowercase() == key);
    let mut draws = Draws::new(&key);

    let total: u64 = WEATHER.iter().map(|k| k.weight).sum();
    let mut pick = draws.below(total);
    let mut chosen = WEATHER[0];
    for entry in WEATHER {
        if pick < entry.weight {
            chosen = *entry;
            break;
        }
        pick -= entry.weight;
    }
    // A climate: warmer near the equator for known places, temperate for the rest; then
    // within what the conditions allow (no thunderstorm at -5 °C).
    let typical = known.map_or(15.0, |c| 29.0 - 0.32 * c.latitude.abs());
    let (low, high) = chosen.temperature;
    let temperature = (typical + draws.between(-7.0, 7.0)).clamp(low, high);
    let top_wind = if chosen.code == 95 { 45.0 } else { 28.0 };
    DemoReport {
        name: known.map_or_else(|| asked.to_owned(), |c| c.name.to_owned()),
        country: known.map(|c| c.country),
        coordinates: known.map(|c| (c.latitude, c.longitude)),
        current: Current {
            temperature_2m: tenths(temperature),
            relative_humidity_2m: Some(draws.between(chosen.humidity.0, chosen.humidity.1).round()),
            weather_code: Some(chosen.code),
            wind_speed_10m: Some(tenths(draws.between(2.0, top_wind))),
        },
    }
}

/// Rounds to one decimal, as Open-Meteo reports.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// A deterministic sequence of numbers seeded by a name (FNV-1a, then splitmix64 steps).
struct Draws(u64);

impl Draws {
    fn new(name: &str) -> Draws {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Draws(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// In `low..=high`.
    fn between(&mut self, low: f64, high: f64) -> f64 {
        // The top 53 bits, exactly representable: a uniform value in [0, 1).
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low) * unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_city_always_gets_the_same_weather_whatever_its_case() {
        let lisbon = report("Lisbon");
        assert_eq!(report("Lisbon"), lisbon);
        assert_eq!(report("  lisbon "), lisbon);
        assert_eq!(lisbon.name, "Lisbon");
        assert_eq!(lisbon.country, Some("Portugal"));
        assert_eq!(lisbon.coordinates, Some((38.71667, -9.13333)));
    }

    #[test]
    fn unknown_places_get_weather_but_no_coordinates() {
        let somewhere = report("Smallville");
        assert_eq!(somewhere.name, "Smallville");
        assert_eq!(somewhere.country, None);
        assert_eq!(somewhere.coordinates, None);
        assert_eq!(report("Smallville"), somewhere);
    }

    #[test]
    fn values_are_plausible_and_vary_between_cities() {
        let names: Vec<String> = KNOWN
            .iter()
            .map(|c| c.name.to_owned())
            .chain((0..200).map(|i| format!("Town {i}")))
            .collect();
        let mut codes = std::collections::BTreeSet::new();
        let mut temperatures = std::collections::BTreeSet::new();
        for name in &names {
            let current = report(name).current;
            let t = current.temperature_2m;
            assert!((-15.0..=40.0).contains(&t), "{name}: {t}");
            assert_eq!(t, tenths(t), "{name}: one decimal");
            let humidity = current.relative_humidity_2m.unwrap_or(-1.0);
            assert!((20.0..=100.0).contains(&humidity), "{name}: {humidity}");
            let wind = current.wind_speed_10m.unwrap_or(-1.0);
            assert!((2.0..=45.0).contains(&wind), "{name}: {wind}");
            let code = current.weather_code.unwrap_or(u16::MAX);
            assert_ne!(super::super::conditions(code), "unknown", "{name}: {code}");
            if matches!(code, 51 | 61 | 63 | 80 | 95) {
                assert!(t >= 2.0, "{name}: rain at {t} °C");
            }
            codes.insert(code);
            temperatures.insert(t.to_bits());
        }
        assert!(codes.len() >= 6, "conditions vary: {codes:?}");
        assert!(temperatures.len() >= 50, "temperatures vary");
    }

    #[test]
    fn hot_and_cold_places_differ_on_average() {
        let mean = |names: &[&str]| {
            names
                .iter()
                .map(|n| report(n).current.temperature_2m)
                .sum::<f64>()
                / names.len() as f64
        };
        let tropical = mean(&["Singapore", "Mumbai", "Dubai", "Mexico City"]);
        let northern = mean(&["Oslo", "Stockholm", "Warsaw", "Amsterdam"]);
        assert!(tropical > northern + 5.0, "{tropical} vs {northern}");
    }
}
