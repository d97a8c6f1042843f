//! Canonical JSON: one spelling per argument object, so equal calls share a cache entry.

use serde_json::Value;

/// `value` as compact JSON with the keys of every object sorted, at any depth: `{"b":2,"a":1}`
/// and `{"a":1,"b":2}` give the same text. Numbers keep serde_json's spelling, so `1` and `1.0`
/// stay different calls (a tool may well treat them differently).
pub fn canonical_json(value: &Value) -> String {
    let mut sorted = value.clone();
    // A no-op unless some crate in the build enables serde_json's `preserve_order`; then it is
    // what keeps the text canonical.
    sorted.sort_all_objects();
    sorted.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn key_order_does_not_matter_at_any_depth() {
        let a = json!({"a": 1, "b": {"y": [1, {"q": 1, "p": 2}], "x": null}});
        let b: Value =
            serde_json::from_str(r#"{"b":{"x":null,"y":[1,{"p":2,"q":1}]},"a":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":1,"b":{"x":null,"y":[1,{"p":2,"q":1}]}}"#
        );
    }

    #[test]
    fn different_values_stay_different() {
        assert_ne!(
            canonical_json(&json!({"a": 1})),
            canonical_json(&json!({"a": "1"}))
        );
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
    }
}
