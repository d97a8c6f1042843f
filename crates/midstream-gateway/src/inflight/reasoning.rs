//! Reasoning text a chunk streams (`reasoning_content`, or `reasoning` as some servers name
//! it), for a stream's browser subscribers. The chunk reader on the hot path does not read it:
//! a chunk is parsed again, with serde, only when it names such a field.

use std::borrow::Cow;

#[derive(serde::Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

#[derive(serde::Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
}

#[derive(serde::Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
}

/// Choice 0's reasoning delta in a chunk's JSON, if it has one.
pub(super) fn reasoning_text(payload: &[u8]) -> Option<Cow<'_, str>> {
    memchr::memmem::find(payload, b"\"reasoning")?;
    let chunk: Chunk<'_> = serde_json::from_slice(payload).ok()?;
    let delta = chunk.choices.into_iter().next()?.delta?;
    delta.reasoning_content.or(delta.reasoning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_field_name_is_read_and_other_chunks_cost_one_search() {
        let read = |json: &str| reasoning_text(json.as_bytes()).map(Cow::into_owned);
        assert_eq!(
            read(r#"{"choices":[{"delta":{"reasoning_content":"a\"b"}}]}"#),
            Some("a\"b".to_owned())
        );
        assert_eq!(
            read(r#"{"choices":[{"delta":{"reasoning":"c"}}]}"#),
            Some("c".to_owned())
        );
        assert_eq!(read(r#"{"choices":[{"delta":{"content":"x"}}]}"#), None);
        assert_eq!(
            read(r#"{"choices":[{"delta":{"reasoning_content":null}}]}"#),
            None
        );
    }
}
