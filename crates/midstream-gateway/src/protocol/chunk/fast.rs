//! The fast reader of [`ChunkView::parse`]: one strict pass over the usual shape of a chunk.
//!
//! serde's derive reads a chunk through a visitor per field and re-validates every string it
//! borrows as UTF-8; on a recorded OpenAI stream that was most of the gateway's per-chunk work
//! (criterion `chunk_path/parse_only`, see BENCHMARKS.md). This reader validates the payload
//! as UTF-8 once, then walks it byte by byte, keeping borrowed slices of the values the view
//! needs and checking the JSON grammar of everything it skips.
//!
//! It is **at least as strict as serde**: whatever serde would reject, or would read through
//! a path this reader does not take (a key or finish reason with escapes, a duplicate field, a
//! number that does not fit, a top-level array, nesting deeper than [`MAX_DEPTH`], a lone
//! surrogate escape), makes it return `None`, and [`ChunkView::parse`] asks serde instead. So
//! every payload is read exactly as serde reads it; the property test `fast_reads_as_serde_does`
//! holds the two to that.
//!
//! The chunks of one stream start alike: `id`, `object`, `created`, `model` and
//! `system_fingerprint` repeat, byte for byte, before `choices`, and reading them again was a
//! large part of the reader's work (BENCHMARKS.md, "What changed"). A [`Memo`] keeps that start
//! of the last chunk and what the reader had read when it got there; the next chunk that starts
//! with the same bytes is read from that point on. A reader that goes left to right reaches the same
//! state after the same bytes, so this reads every chunk as a fresh reader does; the property
//! test `a_memo_reads_as_a_fresh_reader_does` holds it to that.
//!
//! Past its start, a stream's content chunks differ only in their content string and, at most,
//! in the fields after `choices` (OpenAI's `obfuscation`). The memo also keeps the [`Shape`] of
//! the last content chunk: its bytes around the content string, up to the key after `choices`.
//! A chunk with the same bytes there is read by reading its content string and the fields after
//! `choices` only: a string's text does not change the reader's state after it, so the reader is
//! where it was in the shape's chunk, with what it had read moved by the content's new length
//! (property test `a_shape_reads_as_a_fresh_reader_does`). Such a chunk costs a fraction of
//! one read from `choices` on; BENCHMARKS.md ("What changed") has the measurements.

use std::borrow::Cow;

use super::{ChoiceView, ChunkView, MessageView, RawJson, UsageView};

mod shape;

use shape::{Checked, Shape, Spans};

/// Nesting the reader follows before it leaves the payload to serde (whose limit is 128).
const MAX_DEPTH: u32 = 64;

/// The fields of a chunk the view reads, by name (in `seen` bit order).
const CHUNK_FIELDS: &[(&str, Top)] = &[
    ("id", Top::Id),
    ("created", Top::Created),
    ("model", Top::Model),
    ("choices", Top::Choices),
    ("usage", Top::Usage),
    ("error", Top::Error),
];
const CHOICE_FIELDS: &[(&str, InChoice)] = &[
    ("index", InChoice::Index),
    ("delta", InChoice::Delta),
    ("message", InChoice::Message),
    ("finish_reason", InChoice::FinishReason),
];
const MESSAGE_FIELDS: &[(&str, InMessage)] = &[
    ("content", InMessage::Content),
    ("tool_calls", InMessage::ToolCalls),
];
const USAGE_FIELDS: &[(&str, InUsage)] = &[
    ("prompt_tokens", InUsage::Prompt),
    ("completion_tokens", InUsage::Completion),
    ("total_tokens", InUsage::Total),
];

#[derive(Debug, Clone, Copy)]
enum Top {
    Id,
    Created,
    Model,
    Choices,
    Usage,
    Error,
}

#[derive(Debug, Clone, Copy)]
enum InChoice {
    Index,
    Delta,
    Message,
    FinishReason,
}

#[derive(Debug, Clone, Copy)]
enum InMessage {
    Content,
    ToolCalls,
}

#[derive(Debug, Clone, Copy)]
enum InUsage {
    Prompt,
    Completion,
    Total,
}

/// A key of an object, as [`Reader::fields`] hands it over: which of the caller's fields it
/// names, where it starts, and the fields seen before it.
struct Key<K> {
    field: Option<K>,
    start: usize,
    seen_before: u32,
}

/// Reads a data payload, or `None` when serde must (see the module docs). With a memo, a
/// payload with the shape of the memo's last content chunk is read from its content on, and
/// one that starts as the memo's last chunk did is read from where that start ends.
pub(super) fn read<'a>(payload: &'a [u8], memo: Option<&mut Memo>) -> Option<ChunkView<'a>> {
    match memo {
        Some(memo) => memo.read(payload),
        None => read_from(payload, None, None),
    }
}

/// Reads a payload from its start, or from a checkpoint taken in a payload that starts with the
/// same bytes up to it; notes its [`Marks`] if asked to.
fn read_from<'a>(
    payload: &'a [u8],
    resume: Option<&Checkpoint>,
    marks: Option<&mut Marks>,
) -> Option<ChunkView<'a>> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut reader = Reader {
        text,
        pos: 0,
        depth: 0,
    };
    let resume = match resume {
        Some(checkpoint) => {
            reader.pos = checkpoint.at;
            let so_far = checkpoint.spans.view(&Checked::whole(text), None)?;
            Some((checkpoint.seen, so_far))
        }
        None => {
            reader.skip_whitespace();
            None
        }
    };
    let chunk = reader.chunk(resume, marks)?;
    reader.skip_whitespace();
    (reader.pos == text.len()).then_some(chunk)
}

/// What a stream's reader remembers of its last chunks (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Memo {
    /// The start of the last chunk, up to the top-level key where the reader's state stopped
    /// being only raw slices (`choices`, `usage` or `error`), and that state.
    prefix: Vec<u8>,
    checkpoint: Option<Checkpoint>,
    /// The shape of the last chunk that had a content string.
    shape: Option<Shape>,
}

/// What the reader had read of the top-level object when it reached a key (or its end).
#[derive(Debug, Clone)]
struct Checkpoint {
    /// Where the key starts (after any whitespace); the payload's length at its end.
    at: usize,
    /// Fields of [`CHUNK_FIELDS`] read before it.
    seen: u32,
    /// What they held.
    spans: Spans,
}

/// Checkpoints taken while a chunk was read from its start (or from a prefix checkpoint).
#[derive(Debug, Default)]
struct Marks {
    /// At the first key whose value is not kept as a raw slice, unless that is the first key
    /// (a resumed reader would then skip a later `{}` inside the object).
    start: Option<Checkpoint>,
    /// Right after `choices`: at the next key, or at the end of the object.
    after_choices: Option<Checkpoint>,
    /// The value of the key after `choices`, when it is the last key, one the view skips, and
    /// a string (OpenAI's `obfuscation`).
    trailer: Option<std::ops::Range<usize>>,
}

impl Memo {
    fn read<'a>(&mut self, payload: &'a [u8]) -> Option<ChunkView<'a>> {
        if let Some(chunk) = self.shape.as_ref().and_then(|shape| shape.read(payload)) {
            return Some(chunk);
        }
        let mut marks = Marks::default();
        let chunk = read_from(payload, self.resume_point(payload), Some(&mut marks))?;
        if let Some(start) = marks.start {
            self.prefix.clear();
            self.prefix.extend_from_slice(&payload[..start.at]);
            self.checkpoint = Some(start);
        }
        if let Some(shape) = marks
            .after_choices
            .and_then(|after_choices| Shape::of(payload, &chunk, after_choices, marks.trailer))
        {
            self.shape = Some(shape);
        }
        Some(chunk)
    }

    /// The checkpoint to resume at, when `payload` starts with the memo's bytes.
    fn resume_point(&self, payload: &[u8]) -> Option<&Checkpoint> {
        let checkpoint = self.checkpoint.as_ref()?;
        payload.starts_with(&self.prefix).then_some(checkpoint)
    }
}

/// Length of the run of bytes at the start of `bytes` that a JSON string holds as they are:
/// up to the first `"`, `\\` or control character. Eight bytes at a time (the SWAR test serde
/// uses too): in each of the three masks only bytes above a true match can be flagged falsely,
/// so the lowest flag of their union is the first match.
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH_BITS: u64 = ONES * 0x80;
    let mut words = bytes.chunks_exact(8);
    let mut run = 0;
    for word in words.by_ref() {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | x.wrapping_sub(ONES * 0x20) & !x)
            & HIGH_BITS;
        if flags != 0 {
            return run + (flags.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    let tail = words.remainder();
    run + tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(tail.len())
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// Objects and arrays open around the position.
    depth: u32,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The top-level object: from its `{`, or resumed at one of its keys with the fields
    /// `seen` before it and what they held. Notes the [`Marks`] a memo keeps, if asked to.
    fn chunk(
        &mut self,
        resume: Option<(u32, ChunkView<'a>)>,
        mut marks: Option<&mut Marks>,
    ) -> Option<ChunkView<'a>> {
        let resumed = resume.is_some();
        let (seen, mut chunk) = resume.unwrap_or_default();
        let mut only_raw_so_far = !resumed && marks.is_some();
        let mut first = true;
        let mut choices_just_read = false;
        self.fields(CHUNK_FIELDS, seen, resumed, |reader, key| {
            let mut after_choices = false;
            if let Some(marks) = marks.as_deref_mut() {
                marks.trailer = None;
                after_choices = std::mem::take(&mut choices_just_read);
                if after_choices {
                    marks.after_choices = reader.checkpoint(key.start, key.seen_before, &chunk);
                }
                if only_raw_so_far
                    && matches!(key.field, Some(Top::Choices | Top::Usage | Top::Error))
                {
                    only_raw_so_far = false;
                    if !first {
                        marks.start = reader.checkpoint(key.start, key.seen_before, &chunk);
                    }
                }
            }
            first = false;
            match key.field {
                Some(Top::Id) => reader.raw_or_null(&mut chunk.id),
                Some(Top::Created) => reader.raw_or_null(&mut chunk.created),
                Some(Top::Model) => reader.raw_or_null(&mut chunk.model),
                Some(Top::Choices) => reader.choice_zero().map(|zero| {
                    chunk.choices = zero;
                    choices_just_read = true;
                }),
                Some(Top::Usage) => reader.null_or(Self::usage).map(|usage| chunk.usage = usage),
                Some(Top::Error) => reader.raw_or_null(&mut chunk.error),
                None => {
                    let start = reader.pos;
                    reader.skip_value()?;
                    if let (Some(marks), true) = (marks.as_deref_mut(), after_choices) {
                        let string = reader.text.as_bytes().get(start) == Some(&b'"');
                        marks.trailer = string.then_some(start..reader.pos);
                    }
                    Some(())
                }
            }
        })?;
        if let (Some(marks), true) = (marks, choices_just_read) {
            self.skip_whitespace();
            marks.after_choices = self.checkpoint(self.pos, 0, &chunk);
        }
        Some(chunk)
    }

    /// A checkpoint at `at`, with the fields `seen` before it holding what `chunk` holds.
    fn checkpoint(&self, at: usize, seen: u32, chunk: &ChunkView<'a>) -> Option<Checkpoint> {
        Some(Checkpoint {
            at,
            seen,
            spans: Spans::of(chunk, self.text.as_bytes())?,
        })
    }

    /// `choices`: null, or an array whose first element with `index` 0 is kept. Elements before
    /// it must be choices; elements after it are only checked to be JSON (serde's `IgnoredAny`).
    fn choice_zero(&mut self) -> Option<Option<ChoiceView<'a>>> {
        self.null_or(|reader| {
            let mut zero = None;
            reader.array(|reader| {
                if zero.is_some() {
                    return reader.skip_value();
                }
                let choice = reader.choice()?;
                if choice.index == 0 {
                    zero = Some(choice);
                }
                Some(())
            })?;
            Some(zero)
        })
        .map(Option::flatten)
    }

    fn choice(&mut self) -> Option<ChoiceView<'a>> {
        let mut choice = ChoiceView {
            index: 0,
            delta: None,
            message: None,
            finish_reason: None,
        };
        self.object(CHOICE_FIELDS, |reader, key| match key.field {
            Some(InChoice::Index) => {
                choice.index = reader.integer()?.parse().ok()?;
                Some(())
            }
            Some(InChoice::Delta) => reader.null_or(Self::message).map(|m| choice.delta = m),
            Some(InChoice::Message) => reader.null_or(Self::message).map(|m| choice.message = m),
            Some(InChoice::FinishReason) => reader
                .null_or(|reader| match reader.string()? {
                    (text, false) => Some(Cow::Borrowed(text)),
                    (_, true) => None,
                })
                .map(|reason| choice.finish_reason = reason),
            None => reader.skip_value(),
        })?;
        Some(choice)
    }

    fn message(&mut self) -> Option<MessageView<'a>> {
        let mut message = MessageView {
            content: None,
            tool_calls: None,
        };
        self.object(MESSAGE_FIELDS, |reader, key| match key.field {
            Some(InMessage::Content) => reader.raw_or_null(&mut message.content),
            Some(InMessage::ToolCalls) => reader.raw_or_null(&mut message.tool_calls),
            None => reader.skip_value(),
        })?;
        Some(message)
    }

    fn usage(&mut self) -> Option<UsageView> {
        let mut usage = UsageView::default();
        self.object(USAGE_FIELDS, |reader, key| {
            let slot = match key.field {
                Some(InUsage::Prompt) => &mut usage.prompt_tokens,
                Some(InUsage::Completion) => &mut usage.completion_tokens,
                Some(InUsage::Total) => &mut usage.total_tokens,
                None => return reader.skip_value(),
            };
            *slot = reader.null_or(|reader| reader.integer()?.parse().ok())?;
            Some(())
        })?;
        Some(usage)
    }

    /// A value kept as raw JSON, or `None` for null (serde's `Option<&RawValue>`).
    fn raw_or_null(&mut self, slot: &mut Option<RawJson<'a>>) -> Option<()> {
        let start = self.pos;
        self.skip_value()?;
        let raw = self.text.get(start..self.pos)?;
        *slot = (raw != "null").then_some(RawJson(raw));
        Some(())
    }

    /// `null` (→ `Some(None)`), or what `read` reads (→ `Some(Some(_))`).
    fn null_or<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        read(self).map(Some)
    }

    /// An object whose `{` is next: see [`Reader::fields`].
    fn object<K: Copy>(
        &mut self,
        fields: &[(&str, K)],
        field: impl FnMut(&mut Self, Key<K>) -> Option<()>,
    ) -> Option<()> {
        self.fields(fields, 0, false, field)
    }

    /// The fields of an object: with `resumed`, the reader is inside it already, at a key of a
    /// checkpoint whose fields were `seen`; otherwise the object's `{` is next. `field` gets
    /// each key with the reader at its value, and reads the value. `fields` names the fields
    /// the caller reads: as serde's derive would, a second occurrence of one of them is
    /// refused, and so is any key with escapes (serde would decode it, perhaps to one of them);
    /// other keys may repeat.
    fn fields<K: Copy>(
        &mut self,
        fields: &[(&str, K)],
        mut seen: u32,
        resumed: bool,
        mut field: impl FnMut(&mut Self, Key<K>) -> Option<()>,
    ) -> Option<()> {
        self.container(b'{', b'}', resumed, |reader| {
            let start = reader.pos;
            let seen_before = seen;
            let (key, escaped) = reader.string()?;
            let mut named = None;
            if !fields.is_empty() {
                if escaped {
                    return None;
                }
                let found = fields
                    .iter()
                    .enumerate()
                    .find(|(_, (name, _))| *name == key);
                if let Some((index, &(_, kind))) = found {
                    let bit = 1 << index;
                    if seen & bit != 0 {
                        return None;
                    }
                    seen |= bit;
                    named = Some(kind);
                }
            }
            reader.skip_whitespace();
            reader.eat(b':')?;
            reader.skip_whitespace();
            let key = Key {
                field: named,
                start,
                seen_before,
            };
            field(reader, key)
        })
    }

    /// An array whose `[` is next; `element` reads each element.
    fn array(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.container(b'[', b']', false, element)
    }

    /// What objects and arrays share: `open` (unless `resumed` inside the container, at an
    /// item), then items read by `item` and separated by commas up to `close`, nested at most
    /// [`MAX_DEPTH`] deep.
    fn container(
        &mut self,
        open: u8,
        close: u8,
        resumed: bool,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        if !resumed {
            self.eat(open)?;
        }
        self.depth += 1;
        self.skip_whitespace();
        if resumed || self.eat(close).is_none() {
            loop {
                self.skip_whitespace();
                item(self)?;
                self.skip_whitespace();
                match self.next_byte()? {
                    b',' => {}
                    byte if byte == close => break,
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// Any JSON value, checked and skipped.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.object::<()>(&[], |reader, _| reader.skip_value()),
            b'[' => self.array(Self::skip_value),
            b'"' => self.string().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let rest = self.text.get(self.pos..)?;
        rest.starts_with(word).then(|| self.pos += word.len())
    }

    /// A string whose `"` is next: its text between the quotes, and whether it has escapes.
    fn string(&mut self) -> Option<(&'a str, bool)> {
        self.eat(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos += plain_run(self.text.as_bytes().get(self.pos..)?);
            match self.next_byte()? {
                b'"' => return Some((self.text.get(start..self.pos - 1)?, escaped)),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None,
            }
        }
    }

    /// The rest of an escape whose backslash was just read. A `\u` escape of a surrogate is
    /// declined: whether serde accepts it depends on what the string is read into.
    fn escape(&mut self) -> Option<()> {
        match self.next_byte()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let hex = self.text.get(self.pos..self.pos + 4)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let unit = u16::from_str_radix(hex, 16).ok()?;
                self.pos += 4;
                (!(0xD800..=0xDFFF).contains(&unit)).then_some(())
            }
            _ => None,
        }
    }

    /// A number in JSON's grammar (serde's `ignore_integer`, `ignore_decimal`,
    /// `ignore_exponent`).
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next_byte()? {
            b'0' => {}
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digit()?;
            self.skip_digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digit()?;
            self.skip_digits();
        }
        Some(())
    }

    /// A number of digits only, as text for the caller to parse into its type (which declines
    /// a number that does not fit). Negative numbers are declined too: serde reads `-0` as a
    /// float, and no count or index the gateway reads is negative.
    fn integer(&mut self) -> Option<&'a str> {
        let start = self.pos;
        self.number()?;
        let text = self.text.get(start..self.pos)?;
        text.bytes().all(|b| b.is_ascii_digit()).then_some(text)
    }

    fn digit(&mut self) -> Option<()> {
        self.next_byte().filter(u8::is_ascii_digit).map(drop)
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::shape::Trailer;
    use super::*;

    fn by_serde(payload: &[u8]) -> Option<ChunkView<'_>> {
        serde_json::from_slice(payload).ok()
    }

    /// Where the content's raw JSON sits: the redaction rewrites the payload at that address.
    fn content_address(chunk: &ChunkView<'_>) -> Option<*const u8> {
        Some(chunk.message()?.content?.get().as_ptr())
    }

    #[test]
    fn every_recorded_chunk_takes_the_fast_path_and_reads_as_serde_does() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../midstream-testkit/fixtures/openai-streams"
        );
        let mut read_fast = 0;
        for entry in std::fs::read_dir(fixtures).expect("fixtures") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("fixture");
            for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if line == "[DONE]" {
                    continue;
                }
                let fast =
                    read(line.as_bytes(), None).unwrap_or_else(|| panic!("declined: {line}"));
                let serde = by_serde(line.as_bytes()).expect("serde reads it");
                assert_eq!(fast, serde, "{line}");
                assert_eq!(content_address(&fast), content_address(&serde));
                read_fast += 1;
            }
        }
        assert!(read_fast > 100, "only {read_fast} chunks in the fixtures");
    }

    #[test]
    fn a_stream_s_chunks_resume_after_the_start_they_repeat() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../midstream-testkit/fixtures/openai-streams"
        );
        let (mut resumed, mut chunks) = (0, 0);
        for entry in std::fs::read_dir(fixtures).expect("fixtures") {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("fixture");
            let mut memo = Memo::default();
            for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if line == "[DONE]" {
                    continue;
                }
                let payload = line.as_bytes();
                if memo.resume_point(payload).is_some() {
                    resumed += 1;
                }
                let with_memo = read(payload, Some(&mut memo)).expect("reads");
                assert_eq!(Some(&with_memo), read(payload, None).as_ref(), "{line}");
                assert_eq!(
                    content_address(&with_memo),
                    content_address(&by_serde(payload).expect("serde reads it"))
                );
                assert!(memo.prefix.ends_with(b","), "{line}");
                chunks += 1;
            }
        }
        // Every chunk but each stream's first starts as the one before it.
        assert!(resumed * 10 > chunks * 9, "{resumed} of {chunks} resumed");
    }

    #[test]
    fn a_stream_s_content_chunks_are_read_by_their_shape() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../midstream-testkit/fixtures/openai-streams"
        );
        let obfuscated = (0..40).map(|n| {
            let padding = "x".repeat(n % 7);
            format!(
                r#"data: {{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"t\"{n}"}},"finish_reason":null}}],"usage":null,"obfuscation":"{padding}"}}"#
            )
        });
        let streams = std::fs::read_dir(fixtures)
            .expect("fixtures")
            .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("fixture"))
            .chain([obfuscated.collect::<Vec<_>>().join("\n")]);
        let (mut by_shape, mut with_content) = (0, 0);
        for text in streams {
            let mut memo = Memo::default();
            for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
                if line == "[DONE]" {
                    continue;
                }
                let payload = line.as_bytes();
                let fresh = read(payload, None).expect("reads");
                if let Some(shaped) = memo.shape.as_ref().and_then(|shape| shape.read(payload)) {
                    assert_eq!(shaped, fresh, "{line}");
                    assert_eq!(content_address(&shaped), content_address(&fresh));
                    by_shape += 1;
                }
                if fresh.message().and_then(|m| m.content).is_some() {
                    with_content += 1;
                }
                assert_eq!(read(payload, Some(&mut memo)), Some(fresh), "{line}");
            }
        }
        // All but the first content chunk of each stream (and the one after its role chunk).
        assert!(
            by_shape * 10 > with_content * 8,
            "{by_shape} of {with_content} content chunks read by their shape"
        );
    }

    #[test]
    fn a_shape_holds_the_bytes_around_the_content_and_the_state_after_choices() {
        let mut memo = Memo::default();
        let first =
            br#"{"id":"a","choices":[{"index":0,"delta":{"content":"Hi"}}] ,"x":1,"usage":null}"#;
        read(first, Some(&mut memo)).expect("reads");
        let shape = memo.shape.as_ref().expect("a shape");
        assert_eq!(&first[shape.content.clone()], br#""Hi""#);
        assert_eq!(
            shape.bytes,
            br#"{"id":"a","choices":[{"index":0,"delta":{"content":"Hi"}}] ,"#
        );
        // Another content, and other fields after `choices`: read from the content on.
        let next = br#"{"id":"a","choices":[{"index":0,"delta":{"content":"\u00e9\n"}}] ,"usage":{"total_tokens":3}}"#;
        let chunk = shape.read(next).expect("has the shape");
        assert_eq!(
            chunk.message().and_then(|m| m.content_text()).as_deref(),
            Some("é\n")
        );
        assert_eq!(chunk.usage.and_then(|u| u.total_tokens), Some(3));
        assert_eq!(chunk.id.map(RawJson::get), Some("\"a\""));
        // `choices` again after the shape's end is refused, as it is from the start.
        let twice = br#"{"id":"a","choices":[{"index":0,"delta":{"content":"b"}}] ,"choices":[]}"#;
        assert!(shape.read(twice).is_none());
        assert!(read(twice, None).is_none());
        // What differs before the content, or right after it, is not this shape.
        assert!(
            shape
                .read(br#"{"id":"b","choices":[{"index":0,"delta":{"content":"b"}}] ,"x":1}"#)
                .is_none()
        );
        assert!(
            shape
                .read(br#"{"id":"a","choices":[{"index":0,"delta":{"content":"b","y":2}}] ,"x":1}"#)
                .is_none()
        );
        // A chunk that ends after `choices` must end where its shape ended.
        let mut memo = Memo::default();
        read(
            br#"{"choices":[{"delta":{"content":"a"}}]} "#,
            Some(&mut memo),
        )
        .expect("reads");
        let shape = memo.shape.as_ref().expect("a shape");
        assert!(shape.ends);
        assert!(
            shape
                .read(br#"{"choices":[{"delta":{"content":"bc"}}]} "#)
                .is_some()
        );
        assert!(
            shape
                .read(br#"{"choices":[{"delta":{"content":"bc"}}]} ,"#)
                .is_none()
        );
        // A last field after `choices` that the view skips, a string, is read without the reader.
        let mut memo = Memo::default();
        let first = br#"{"id":"a","choices":[{"delta":{"content":"a"}}],"obfuscation":"xyz"} "#;
        read(first, Some(&mut memo)).expect("reads");
        let shape = memo.shape.as_ref().expect("a shape");
        let trailer = shape.trailer.as_ref().expect("a trailer");
        assert_eq!(
            (&trailer.key[..], &trailer.end[..]),
            (&br#""obfuscation":"#[..], &b"} "[..])
        );
        let next = br#"{"id":"a","choices":[{"delta":{"content":"bc"}}],"obfuscation":"\"q"} "#;
        assert_eq!(shape.read(next), read(next, None));
        assert!(shape.read(next).is_some());
        // Any other end is read by the reader, as from the start.
        for other in [
            &br#"{"id":"a","choices":[{"delta":{"content":"b"}}],"obfuscation":7} "#[..],
            br#"{"id":"a","choices":[{"delta":{"content":"b"}}],"obfuscation":"q","id":"b"} "#,
            br#"{"id":"a","choices":[{"delta":{"content":"b"}}],"obfuscation":"q"}"#,
            br#"{"id":"a","choices":[{"delta":{"content":"b"}}],"obfuscation":"q\x"} "#,
        ] {
            assert_eq!(shape.read(other), read(other, None), "{other:?}");
        }
        // Content that is not a string gives no shape.
        let mut memo = Memo::default();
        read(
            br#"{"choices":[{"delta":{"content":[1]}}]}"#,
            Some(&mut memo),
        )
        .expect("reads");
        assert!(memo.shape.is_none());
    }

    #[test]
    fn a_memo_keeps_the_start_up_to_the_first_field_it_does_not_hold_raw() {
        let mut memo = Memo::default();
        let first = br#"{"id":"a","object":"x", "model":"m","choices":[],"created":1}"#;
        read(first, Some(&mut memo)).expect("reads");
        assert_eq!(memo.prefix, br#"{"id":"a","object":"x", "model":"m","#);
        let next = br#"{"id":"a","object":"x", "model":"m","created":2,"choices":[{"index":0,"delta":{"content":"b"}}]}"#;
        let chunk = read(next, Some(&mut memo)).expect("reads");
        assert_eq!(chunk.model.map(RawJson::get), Some("\"m\""));
        assert_eq!(chunk.created.map(RawJson::get), Some("2"));
        let repeated = br#"{"id":"a","object":"x", "model":"m","model":"n","choices":[]}"#;
        assert!(read(repeated, Some(&mut memo)).is_none());
        // A chunk whose first field is `choices` gives no start worth keeping.
        let mut memo = Memo::default();
        read(br#"{"choices":[],"id":"a"}"#, Some(&mut memo)).expect("reads");
        assert!(memo.checkpoint.is_none());
    }

    #[test]
    fn what_it_declines_serde_still_reads() {
        let deep = [b"{\"x\":".as_slice(), &[b'['; 70], &[b']'; 70], b"}"].concat();
        let cases: [&[u8]; 8] = [
            // A key with escapes: serde decodes it to `choices`.
            br#"{"\u0063hoices":[{"index":0,"delta":{"content":"a"}}]}"#,
            // A finish reason with escapes.
            br#"{"choices":[{"index":0,"delta":{},"finish_reason":"st\u006fp"}]}"#,
            // A negative count (serde reads it; the reader leaves negatives to serde).
            br#"{"choices":[],"usage":{"prompt_tokens":-1}}"#,
            // A lone surrogate escape in a skipped string (serde skips it unchecked).
            br#"{"object":"\ud800","choices":[]}"#,
            // Invalid UTF-8 in a skipped string (serde does not check it there).
            b"{\"object\":\"\xff\",\"choices\":[]}",
            // A top-level array: serde reads a struct from a sequence, field by field.
            br#"[null,null,null,null,null,null]"#,
            // Deeper than the reader follows.
            &deep,
            // The index after its choice is found is skipped like any other field.
            br#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":-1}],"x":[1e5]}"#,
        ];
        for payload in cases {
            let serde = by_serde(payload).expect("serde reads it");
            let fast = read(payload, None);
            if let Some(fast) = &fast {
                assert_eq!(fast, &serde);
            }
            assert_eq!(ChunkView::parse(payload), Some(serde));
        }
        assert!(read(br#"{"\u0063hoices":[]}"#, None).is_none());
        assert!(read(br#"[null]"#, None).is_none());
    }

    #[test]
    fn plain_runs_end_at_the_first_quote_backslash_or_control_character() {
        let text = b"abcdefgh\"ijklmnop\\qrstuvwx\x1fyz\x7f\xc3\xa9";
        for start in 0..text.len() {
            let expected = text[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(text.len() - start);
            assert_eq!(plain_run(&text[start..]), expected, "from {start}");
        }
        assert_eq!(plain_run(b""), 0);
        assert_eq!(plain_run("0123456789 é \x7f".as_bytes()), 15);
    }

    #[test]
    fn what_serde_rejects_it_rejects() {
        for payload in [
            &br#"{"id":"a","id":"b"}"#[..],
            br#"{"choices":[{"index":0,"index":0}]}"#,
            br#"{"choices":[{"index":4294967296}]}"#,
            br#"{"choices":[{"index":1.0}]}"#,
            br#"{"choices":[null]}"#,
            br#"{"choices":{"index":0}}"#,
            br#"{"usage":{"total_tokens":99999999999999999999}}"#,
            br#"{"usage":{"total_tokens":1e3}}"#,
            br#"{"choices":[],}"#,
            br#"{"choices":[]} x"#,
            br#"{"id":01}"#,
            br#"{"id":"a	b"}"#,
            br#"{"id":"\x"}"#,
            br#"{"id":tru}"#,
            b"{\"id\":\"a\"",
        ] {
            assert!(by_serde(payload).is_none(), "serde reads {payload:?}");
            assert!(read(payload, None).is_none(), "read {payload:?}");
        }
    }

    fn leaf() -> impl Strategy<Value = String> {
        select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "7",
            "-12",
            "3.5",
            "1e3",
            "2E-2",
            "-0.0e+1",
            "4294967296",
            "99999999999999999999",
            r#""""#,
            r#""stop""#,
            r#""a\"b""#,
            r#""\u00e9t\u00e9""#,
            r#""\ud83d\ude00""#,
            r#""\ud800""#,
            r#""é""#,
            r#""t\tab""#,
            "\"raw\ttab\"",
            r#""\/\b\f\n\r""#,
        ])
        .prop_map(str::to_owned)
    }

    fn key() -> impl Strategy<Value = String> {
        select(vec![
            "id",
            "created",
            "model",
            "choices",
            "usage",
            "error",
            "index",
            "delta",
            "message",
            "content",
            "tool_calls",
            "finish_reason",
            "prompt_tokens",
            "total_tokens",
            "object",
            "x",
            r"\u0069d",
            r"con\ntent",
            "",
        ])
        .prop_map(|key| format!("\"{key}\""))
    }

    fn object(fields: Vec<(String, String)>, spaced: bool) -> String {
        let (comma, colon) = if spaced { (" ,\n", " : ") } else { (",", ":") };
        let fields: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{k}{colon}{v}"))
            .collect();
        format!("{{{}}}", fields.join(comma))
    }

    /// A leaf that the fast reader reads (no raw control character, no surrogate escape).
    fn valid_leaf() -> impl Strategy<Value = String> {
        leaf().prop_filter("reads", |leaf| {
            !leaf.contains('\t') && !leaf.contains(r"\ud")
        })
    }

    fn value() -> impl Strategy<Value = String> {
        value_of(leaf())
    }

    fn value_of(leaf: impl Strategy<Value = String> + 'static) -> impl Strategy<Value = String> {
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                (prop::collection::vec((key(), inner), 0..4), any::<bool>())
                    .prop_map(|(fields, spaced)| object(fields, spaced)),
            ]
        })
    }

    /// A field named `name` whose value is drawn from `values`.
    fn field(
        name: &'static str,
        values: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = (String, String)> {
        values.prop_map(move |v| (format!("\"{name}\""), v))
    }

    fn fields(
        choices: Vec<BoxedStrategy<(String, String)>>,
        max: usize,
    ) -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::strategy::Union::new(choices), 0..max),
            any::<bool>(),
        )
            .prop_map(|(fields, spaced)| object(fields, spaced))
    }

    fn message() -> impl Strategy<Value = String> {
        fields(
            vec![
                field("content", prop_oneof![leaf(), value()]).boxed(),
                field("tool_calls", value()).boxed(),
                field("role", leaf()).boxed(),
                (key(), value()).boxed(),
            ],
            4,
        )
    }

    fn choice() -> impl Strategy<Value = String> {
        fields(
            vec![
                field(
                    "index",
                    select(vec!["0", "1", "0", "-0", "null", "\"0\"", "1.0", "00"])
                        .prop_map(str::to_owned),
                )
                .boxed(),
                field("delta", prop_oneof![message(), leaf()]).boxed(),
                field("message", prop_oneof![message(), leaf()]).boxed(),
                field("finish_reason", leaf()).boxed(),
                (key(), value()).boxed(),
            ],
            5,
        )
    }

    fn usage() -> impl Strategy<Value = String> {
        fields(
            vec![
                field("prompt_tokens", leaf()).boxed(),
                field("completion_tokens", leaf()).boxed(),
                field("total_tokens", leaf()).boxed(),
                (key(), value()).boxed(),
            ],
            4,
        )
    }

    fn chunk() -> impl Strategy<Value = String> {
        let choices = prop_oneof![
            prop::collection::vec(choice(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            leaf(),
            value(),
        ];
        fields(
            vec![
                field("id", leaf()).boxed(),
                field("created", leaf()).boxed(),
                field("model", leaf()).boxed(),
                field("choices", choices).boxed(),
                field("usage", prop_oneof![usage(), leaf()]).boxed(),
                field("error", value()).boxed(),
                (key(), value()).boxed(),
            ],
            7,
        )
    }

    /// Each of `fields` or not, in any order, as `"name":value`.
    fn some_of(
        fields: Vec<(&'static str, BoxedStrategy<String>)>,
    ) -> impl Strategy<Value = Vec<String>> {
        let each: Vec<_> = fields
            .into_iter()
            .map(|(name, values)| {
                prop::option::of(values.prop_map(move |value| format!("\"{name}\":{value}")))
            })
            .collect();
        each.prop_map(|fields| fields.into_iter().flatten().collect::<Vec<_>>())
            .prop_shuffle()
    }

    /// A chunk whose choice 0 has a delta with a content string, among other fields that read
    /// (unlike most of [`chunk`]'s), and fields that may follow its `choices`.
    fn content_chunk() -> impl Strategy<Value = (String, Vec<String>)> {
        let text = || valid_leaf().boxed();
        let json = || value_of(valid_leaf()).boxed();
        let top = some_of(vec![
            ("id", text()),
            ("object", text()),
            ("created", text()),
            ("model", text()),
            ("x", json()),
        ]);
        let choice = some_of(vec![
            ("logprobs", json()),
            (
                "finish_reason",
                select(vec!["null", "\"stop\""])
                    .prop_map(str::to_owned)
                    .boxed(),
            ),
            ("y", json()),
        ]);
        let message = some_of(vec![
            ("role", text()),
            ("tool_calls", json()),
            ("refusal", text()),
        ]);
        let after = || {
            let usage = select(vec![
                "null",
                r#"{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}"#,
                r#"{"total_tokens":5,"x":[]}"#,
            ]);
            let fields = vec![
                ("usage", usage.prop_map(str::to_owned).boxed()),
                ("obfuscation", text()),
                ("error", json()),
                ("z", json()),
            ];
            some_of(fields)
        };
        let content = valid_leaf().prop_filter("a string", |leaf| leaf.starts_with('"'));
        // Fields after the shape's end may repeat one read before it, which reads as no chunk.
        let again = prop::option::weighted(0.15, select(vec![r#""id":"b""#, r#""choices":[]"#]));
        let more = (after(), again).prop_map(|(mut more, again)| {
            more.extend(again.map(str::to_owned));
            more
        });
        // Often a last field alone, as OpenAI's `obfuscation`.
        let last = prop_oneof![
            2 => after(),
            1 => text().prop_map(|value| vec![format!("\"obfuscation\":{value}")]),
        ];
        let parts = (top, choice, message, content, last, more);
        (parts, any::<[usize; 2]>(), any::<bool>()).prop_map(
            |((top, mut choice, mut message, content, after, more), [at, also_at], spaced)| {
                let join = |fields: &[String]| fields.join(if spaced { " ,\n" } else { "," });
                message.insert(at % (message.len() + 1), format!("\"content\":{content}"));
                choice.insert(0, "\"index\":0".to_owned());
                let delta = format!("\"delta\":{{{}}}", join(&message));
                choice.insert(1 + also_at % choice.len(), delta);
                let choices = format!("\"choices\":[{{{}}}]", join(&choice));
                let fields: Vec<String> = top.into_iter().chain([choices]).chain(after).collect();
                (format!("{{{}}}", join(&fields)), more)
            },
        )
    }

    /// A JSON string, mostly, or bytes that are not one.
    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => valid_leaf().prop_filter("a string", |leaf| leaf.starts_with('"')),
            1 => leaf(),
            1 => "\"[a-z é\\\\\"\t\u{1}]{0,6}\"",
            1 => "[a-z\"]{0,3}",
        ]
    }

    /// A byte deleted, replaced or inserted somewhere.
    fn mutate(text: String, edit: Option<(usize, u8, u8)>) -> Vec<u8> {
        let mut bytes = text.into_bytes();
        if let Some((at, op, byte)) = edit {
            let at = at % (bytes.len() + 1);
            match op % 3 {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = byte,
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    }

    fn edit() -> impl Strategy<Value = Option<(usize, u8, u8)>> {
        let bytes = b"{}[]:,\" \\0a-.eEnu\x01\xc3".to_vec();
        prop::option::weighted(0.3, (any::<usize>(), any::<u8>(), select(bytes)))
    }

    /// Reads `payload` with `memo` and without: the same view, its content at the same address.
    fn reads_as_a_fresh_reader_does(memo: &mut Memo, payload: &[u8]) -> Result<(), TestCaseError> {
        let with_memo = read(payload, Some(memo));
        let fresh = read(payload, None);
        prop_assert_eq!(&with_memo, &fresh, "{}", String::from_utf8_lossy(payload));
        prop_assert_eq!(
            with_memo.as_ref().and_then(content_address),
            fresh.as_ref().and_then(content_address)
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the reader reads, serde reads the same (values and addresses); the rest it
        /// leaves to serde.
        #[test]
        fn fast_reads_as_serde_does(text in chunk(), edit in edit(), pad in any::<bool>()) {
            let text = if pad { format!(" \n{text}\t ") } else { text };
            let payload = mutate(text, edit);
            if let Some(fast) = read(&payload, None) {
                let serde = by_serde(&payload);
                prop_assert_eq!(Some(&fast), serde.as_ref(), "{}", String::from_utf8_lossy(&payload));
                prop_assert_eq!(content_address(&fast), serde.as_ref().and_then(content_address));
            }
        }

        /// A payload with the bytes of the last content chunk's shape around any string (or
        /// any bytes) in place of its content, and the chunk's own or other fields after the
        /// shape's end, perhaps edited: read with the memo, it reads as a fresh reader reads it.
        #[test]
        fn a_shape_reads_as_a_fresh_reader_does(
            (first, more) in content_chunk(),
            content in any_string(),
            trailer in any_string(),
            edit in edit(),
        ) {
            let mut memo = Memo::default();
            read(first.as_bytes(), Some(&mut memo));
            let next = match &memo.shape {
                Some(shape) => {
                    let end = shape.bytes.len();
                    let after = match (&shape.trailer, more.is_empty() || shape.ends) {
                        (Some(Trailer { key, end }), true) => {
                            let (key, end) = (String::from_utf8_lossy(key), String::from_utf8_lossy(end));
                            format!("{key}{trailer}{end}")
                        }
                        (None, true) => first[end..].to_owned(),
                        (_, false) => format!("{}}}", more.join(",")),
                    };
                    let (before, around) = (&first[..shape.content.start], &first[shape.content.end..end]);
                    format!("{before}{content}{around}{after}")
                }
                None => first,
            };
            reads_as_a_fresh_reader_does(&mut memo, &mutate(next, edit))?;
        }

        /// A payload that starts as the last one did, up to its checkpoint, and goes on with
        /// any fields (or any bytes): read with the memo, it reads as a fresh reader reads it.
        #[test]
        fn a_memo_reads_as_a_fresh_reader_does(
            first in chunk(),
            rest in chunk(),
            edit in edit(),
        ) {
            let mut memo = Memo::default();
            read(first.as_bytes(), Some(&mut memo));
            let start = memo.checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.at);
            let next = format!("{}{}", &first[..start], rest.get(1..).unwrap_or_default());
            reads_as_a_fresh_reader_does(&mut memo, &mutate(next, edit))?;
        }
    }
}
