//! Chat chunks written in several `data:` lines of one event.
//!
//! Legal SSE that OpenAI never sends but another upstream may: a client joins the lines with
//! `\n`, which JSON reads as whitespace when the breaks fall between tokens. A gateway that
//! reads only one-line events would forward such a chunk unread (issue 20).

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Breaks the JSON of each chunk frame into lines, at points drawn from a seeded generator so
/// a failing case can be replayed.
#[derive(Debug)]
pub(crate) struct LineBreaker {
    /// Boxed: a frame source holds this, and stays small when it does not.
    rng: Box<StdRng>,
}

impl LineBreaker {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: Box::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// `data: {json}\n\n` as the same JSON in two or more `data:` lines, each break between two
    /// tokens; any other frame (`data: [DONE]`) as it is.
    pub(crate) fn break_lines(&mut self, frame: Bytes) -> Bytes {
        let Some(json) = frame
            .strip_prefix(b"data: ")
            .and_then(|rest| rest.strip_suffix(b"\n\n"))
            .filter(|json| json.starts_with(b"{"))
        else {
            return frame;
        };
        let boundaries = token_boundaries(json);
        let mut breaks: Vec<usize> = boundaries
            .iter()
            .copied()
            .filter(|_| self.rng.random_bool(0.5))
            .collect();
        if breaks.is_empty() && !boundaries.is_empty() {
            breaks.push(boundaries[self.rng.random_range(0..boundaries.len())]);
        }
        let mut out = Vec::with_capacity(frame.len() + 8 * (breaks.len() + 1));
        let mut start = 0;
        for end in breaks.into_iter().chain([json.len()]) {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&json[start..end]);
            out.push(b'\n');
            start = end;
        }
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// Offsets in compact JSON where a line may break without splitting a token: after `{`, `[`,
/// `,` or `:`, and before `}` or `]`, outside strings.
fn token_boundaries(json: &[u8]) -> Vec<usize> {
    let mut boundaries = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    for (index, &byte) in json.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' | b',' | b':' => boundaries.push(index + 1),
            b'}' | b']' if index > 0 => boundaries.push(index),
            _ => {}
        }
    }
    boundaries.retain(|&at| at > 0 && at < json.len());
    boundaries.dedup();
    boundaries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    #[test]
    fn chunks_span_lines_and_join_back_to_the_same_json() {
        let json = r#"{"id":"c","choices":[{"delta":{"content":"a, \"b\": [c]"}}],"x":{}}"#;
        let frame = Bytes::from(format!("data: {json}\n\n"));
        for seed in 0..20 {
            let broken = LineBreaker::new(seed).break_lines(frame.clone());
            let frames = SseParser::new().push(&broken).expect("valid SSE");
            let data = frames[0].data.as_deref().expect("data");
            assert!(data.contains('\n'), "at least two lines: {broken:?}");
            let value: serde_json::Value = serde_json::from_str(data).expect("JSON");
            assert_eq!(
                value,
                serde_json::from_str::<serde_json::Value>(json).expect("JSON")
            );
        }
        let done = Bytes::from_static(b"data: [DONE]\n\n");
        assert_eq!(LineBreaker::new(1).break_lines(done.clone()), done);
    }
}
