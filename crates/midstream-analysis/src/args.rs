//! Tool argument templates: `"$city"` becomes the text of group `city`, `"$0"` the whole
//! match, and `"${city}"` inside a longer string is interpolated.
//!
//! Templates are parsed once when the detector is built, so filling one on a detection is a
//! walk over a small tree with no parsing.

use serde_json::{Map, Value};

/// A reference to part of a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    /// `$0`: the whole match.
    WholeMatch,
    /// `$name`: a named group.
    Group(String),
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Reference(Reference),
}

/// A parsed argument template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgsTemplate {
    /// A value with no reference in it.
    Constant(Value),
    /// A string that is exactly one reference: the referenced text, or `null` when an optional
    /// group did not take part in the match.
    Whole(Reference),
    /// A string with `${name}` references inside; a group that did not take part is "".
    Interpolated(Vec<Piece>),
    /// An array of templates.
    Array(Vec<ArgsTemplate>),
    /// A table of templates, keys in their original order.
    Object(Vec<(String, ArgsTemplate)>),
}

/// What a template needs to be filled in: the match and the text of its named groups.
pub(crate) trait MatchText {
    /// The whole matched text.
    fn whole(&self) -> &str;
    /// The text of a named group, if it took part in the match.
    fn group(&self, name: &str) -> Option<&str>;
}

impl ArgsTemplate {
    /// Parses the `args` table of a tool action.
    pub(crate) fn parse(args: &Map<String, Value>) -> ArgsTemplate {
        ArgsTemplate::Object(
            args.iter()
                .map(|(key, value)| (key.clone(), ArgsTemplate::parse_value(value)))
                .collect(),
        )
    }

    fn parse_value(value: &Value) -> ArgsTemplate {
        match value {
            Value::String(text) => parse_string(text),
            Value::Array(items) => {
                let items: Vec<_> = items.iter().map(ArgsTemplate::parse_value).collect();
                if items
                    .iter()
                    .all(|item| matches!(item, ArgsTemplate::Constant(_)))
                {
                    ArgsTemplate::Constant(value.clone())
                } else {
                    ArgsTemplate::Array(items)
                }
            }
            Value::Object(map) => {
                let entries: Vec<_> = map
                    .iter()
                    .map(|(key, value)| (key.clone(), ArgsTemplate::parse_value(value)))
                    .collect();
                if entries
                    .iter()
                    .all(|(_, item)| matches!(item, ArgsTemplate::Constant(_)))
                {
                    ArgsTemplate::Constant(value.clone())
                } else {
                    ArgsTemplate::Object(entries)
                }
            }
            other => ArgsTemplate::Constant(other.clone()),
        }
    }

    /// Every reference in the template, to check them against the pattern's groups.
    pub(crate) fn references(&self) -> Vec<&Reference> {
        let mut found = Vec::new();
        self.collect_references(&mut found);
        found
    }

    fn collect_references<'a>(&'a self, found: &mut Vec<&'a Reference>) {
        match self {
            ArgsTemplate::Constant(_) => {}
            ArgsTemplate::Whole(reference) => found.push(reference),
            ArgsTemplate::Interpolated(pieces) => {
                found.extend(pieces.iter().filter_map(|piece| match piece {
                    Piece::Reference(reference) => Some(reference),
                    Piece::Text(_) => None,
                }))
            }
            ArgsTemplate::Array(items) => {
                items.iter().for_each(|item| item.collect_references(found))
            }
            ArgsTemplate::Object(entries) => entries
                .iter()
                .for_each(|(_, item)| item.collect_references(found)),
        }
    }

    /// Fills the template from a match.
    pub(crate) fn fill(&self, matched: &dyn MatchText) -> Value {
        match self {
            ArgsTemplate::Constant(value) => value.clone(),
            ArgsTemplate::Whole(reference) => {
                resolve(reference, matched).map_or(Value::Null, |text| text.into())
            }
            ArgsTemplate::Interpolated(pieces) => {
                let mut text = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(literal) => text.push_str(literal),
                        Piece::Reference(reference) => {
                            text.push_str(resolve(reference, matched).unwrap_or_default())
                        }
                    }
                }
                Value::String(text)
            }
            ArgsTemplate::Array(items) => {
                Value::Array(items.iter().map(|item| item.fill(matched)).collect())
            }
            ArgsTemplate::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, item)| (key.clone(), item.fill(matched)))
                    .collect(),
            ),
        }
    }
}

fn resolve<'a>(reference: &Reference, matched: &'a dyn MatchText) -> Option<&'a str> {
    match reference {
        Reference::WholeMatch => Some(matched.whole()),
        Reference::Group(name) => matched.group(name),
    }
}

/// A reference name: `0` or an identifier (`[A-Za-z_][A-Za-z0-9_]*`).
fn reference_name(name: &str) -> Option<Reference> {
    let mut chars = name.chars();
    let first = chars.next()?;
    if name == "0" {
        Some(Reference::WholeMatch)
    } else if (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Some(Reference::Group(name.to_owned()))
    } else {
        None
    }
}

/// `"$name"` / `"${name}"` alone is a whole reference; otherwise `${name}` is interpolated and
/// `$$` is a literal `$`. Any other `$` is kept as written (so "costs $5" stays as it is).
fn parse_string(text: &str) -> ArgsTemplate {
    if let Some(rest) = text.strip_prefix('$') {
        let braced = rest
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'));
        if let Some(reference) = reference_name(braced.unwrap_or(rest)) {
            return ArgsTemplate::Whole(reference);
        }
    }
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
            continue;
        }
        let reference = after
            .strip_prefix('{')
            .and_then(|inner| {
                inner
                    .find('}')
                    .map(|close| (&inner[..close], &inner[close + 1..]))
            })
            .and_then(|(name, tail)| reference_name(name).map(|reference| (reference, tail)));
        match reference {
            Some((reference, tail)) => {
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Reference(reference));
                rest = tail;
            }
            None => {
                literal.push('$');
                rest = after;
            }
        }
    }
    literal.push_str(rest);
    if pieces.is_empty() {
        return ArgsTemplate::Constant(Value::String(literal));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    ArgsTemplate::Interpolated(pieces)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Fixed;

    impl MatchText for Fixed {
        fn whole(&self) -> &str {
            "meet Ann at 3pm"
        }
        fn group(&self, name: &str) -> Option<&str> {
            match name {
                "who" => Some("Ann"),
                "when" => Some("3pm"),
                _ => None,
            }
        }
    }

    fn template(value: Value) -> ArgsTemplate {
        let Value::Object(map) = value else {
            panic!("object expected")
        };
        ArgsTemplate::parse(&map)
    }

    #[test]
    fn fills_whole_interpolated_nested_and_constant_values() {
        let args = template(json!({
            "with": "$who",
            "when": "${when}",
            "all": "$0",
            "title": "Meeting with ${who} (${when})",
            "price": "costs $5 or $$6",
            "missing": "$nope",
            "list": ["$who", 1],
            "nested": {"w": "${who}!"},
            "n": 2,
        }));
        assert_eq!(
            args.fill(&Fixed),
            json!({
                "with": "Ann",
                "when": "3pm",
                "all": "meet Ann at 3pm",
                "title": "Meeting with Ann (3pm)",
                "price": "costs $5 or $6",
                "missing": null,
                "list": ["Ann", 1],
                "nested": {"w": "Ann!"},
                "n": 2,
            })
        );
    }

    #[test]
    fn lists_references_for_validation() {
        let args = template(json!({"a": "$who", "b": "x ${when} y", "c": ["$0"], "d": "$5"}));
        let mut names: Vec<_> = args
            .references()
            .into_iter()
            .map(|reference| match reference {
                Reference::WholeMatch => "0".to_owned(),
                Reference::Group(name) => name.clone(),
            })
            .collect();
        names.sort();
        assert_eq!(names, ["0", "when", "who"]);
    }
}
