//! `chunk_reader`: the gateway reads every chunk payload exactly as serde_json alone reads it
//! (issue 17), and never panics.
//!
//! [`ChunkView::parse`] is the hand-written fast reader, with serde's derive reading whatever
//! it declines; [`ChunkReader::read`] is the same with a stream's memo, which reads a chunk by
//! the start and the shape of the chunks before it. Each must give what
//! `serde_json::from_slice::<ChunkView>` gives: the same accept or reject, an equal view, and
//! each value borrowed from the same bytes of the payload (the redaction rewrites the payload
//! at the content's address). Where the fast reader declines, the gateway's answer is serde's
//! by construction, so every difference found here is a payload the fast reader accepted and
//! read otherwise than serde: the property its module documents ("at least as strict as serde")
//! broken.
//!
//! Input: the payloads of one stream, separated by 0x1E (ASCII record separator, as in RFC 7464
//! JSON text sequences). JSON never holds that byte raw (control characters are not whitespace
//! and must be escaped in strings), so splitting there loses no payload serde reads. An input
//! without it is one payload.

#![no_main]

use std::ops::Range;

use libfuzzer_sys::fuzz_target;
use midstream_gateway::protocol::chunk::{ChunkReader, ChunkView, RawJson, span_in};

/// Ends a payload of the input.
const SEPARATOR: u8 = 0x1E;

fuzz_target!(|input: &[u8]| {
    let mut stream = ChunkReader::default();
    for payload in input.split(|&byte| byte == SEPARATOR) {
        let serde = serde_json::from_slice::<ChunkView<'_>>(payload).ok();
        reads_as_serde(
            "ChunkView::parse",
            payload,
            ChunkView::parse(payload),
            &serde,
        );
        reads_as_serde("ChunkReader::read", payload, stream.read(payload), &serde);
    }
});

/// Panics unless `read` (what the gateway read) is `serde`, value for value and byte for byte.
fn reads_as_serde(
    how: &str,
    payload: &[u8],
    read: Option<ChunkView<'_>>,
    serde: &Option<ChunkView<'_>>,
) {
    let text = String::from_utf8_lossy(payload);
    assert_eq!(
        &read, serde,
        "{how} (left) reads unlike serde (right): {text:?}"
    );
    if let (Some(read), Some(serde)) = (&read, serde) {
        assert_eq!(
            spans(payload, read),
            spans(payload, serde),
            "{how} (left) borrows other bytes than serde (right): {text:?}"
        );
    }
}

/// Where each of the view's raw JSON values sits in `payload` (`None`: absent).
///
/// Not the finish reason: it is a `Cow` compared by value, and the two readers differ in
/// allocation only. The fast reader borrows it; serde's derive never borrows through an
/// `Option<Cow<str>>`, `#[serde(borrow)]` or not (serde-rs/serde#2016), so serde allocates it.
fn spans(payload: &[u8], view: &ChunkView<'_>) -> [Option<Range<usize>>; 8] {
    let raw =
        |value: Option<RawJson<'_>>| value.and_then(|raw| span_in(payload, raw.get().as_bytes()));
    let choice = view.choices.as_ref();
    let delta = choice.and_then(|choice| choice.delta.as_ref());
    let message = choice.and_then(|choice| choice.message.as_ref());
    [
        raw(view.id),
        raw(view.created),
        raw(view.model),
        raw(view.error),
        raw(delta.and_then(|delta| delta.content)),
        raw(delta.and_then(|delta| delta.tool_calls)),
        raw(message.and_then(|message| message.content)),
        raw(message.and_then(|message| message.tool_calls)),
    ]
}
