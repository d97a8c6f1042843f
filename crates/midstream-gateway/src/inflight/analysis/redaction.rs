//! A frame whose content a `redact` or `stop` rule changed: only choice 0's `content` string is
//! rewritten, every other byte is sent as the upstream sent it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::chunk::{ChunkView, span_in};

/// The frame with choice 0's `content` string replaced; every other byte as received.
pub(super) fn rewrite_content(
    frame: &Bytes,
    payload_start: usize,
    chunk: &ChunkView<'_>,
    text: &str,
) -> Option<Bytes> {
    let raw = chunk.message()?.content?;
    let span = span_in(&frame[payload_start..], raw.get().as_bytes())?;
    let (start, end) = (payload_start + span.start, payload_start + span.end);
    let encoded = serde_json::to_string(text).ok()?;
    let mut out = BytesMut::with_capacity(frame.len() - (end - start) + encoded.len());
    out.put_slice(&frame[..start]);
    out.put_slice(encoded.as_bytes());
    out.put_slice(&frame[end..]);
    Some(out.freeze())
}
