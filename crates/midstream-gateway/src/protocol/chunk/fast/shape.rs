//! The shape of a stream's last content chunk: its bytes around the content string, and what
//! the reader had read by the end of `choices`.
//!
//! Once a stream is under way its chunks differ in the content string of choice 0 and, at most,
//! in fields after `choices` (OpenAI's `obfuscation` padding). A chunk that has the shape's
//! bytes before and after its content string is read without walking those bytes again: the
//! content is read as the reader reads every string, the bytes after it are compared, what the
//! shape had read is moved to where the new content put it, and only fields after `choices`
//! are read (see the parent module for why this reads as a fresh reader does). When the chunk's
//! last field, right after `choices`, is a string the view skips (`obfuscation`), it is read as
//! a [`Trailer`]: its key and the chunk's end compared, its string checked, no reader walking.

use std::borrow::Cow;
use std::ops::Range;

use super::{Checkpoint, ChoiceView, ChunkView, MessageView, RawJson, Reader, UsageView};

/// Where a [`ChunkView`]'s borrowed values sit in the payload it was read from, so the view can
/// be rebuilt over another payload with the same bytes there.
#[derive(Debug, Clone, Default)]
pub(super) struct Spans {
    id: Option<Range<usize>>,
    created: Option<Range<usize>>,
    model: Option<Range<usize>>,
    choice: Option<ChoiceSpans>,
    usage: Option<UsageView>,
    error: Option<Range<usize>>,
}

#[derive(Debug, Clone)]
struct ChoiceSpans {
    index: u32,
    delta: Option<MessageSpans>,
    message: Option<MessageSpans>,
    finish_reason: Option<Range<usize>>,
}

#[derive(Debug, Clone)]
struct MessageSpans {
    content: Option<Range<usize>>,
    tool_calls: Option<Range<usize>>,
}

impl Spans {
    /// The spans of `chunk`'s values in `payload`; `None` if one is not borrowed from it.
    pub(super) fn of(chunk: &ChunkView<'_>, payload: &[u8]) -> Option<Spans> {
        let span = |text: &str| super::super::span_in(payload, text.as_bytes());
        let raw = |value: Option<RawJson<'_>>| try_map(value, |raw| span(raw.get()));
        let message = |message: &Option<MessageView<'_>>| {
            let spans = |message: &MessageView<'_>| {
                Some(MessageSpans {
                    content: raw(message.content)?,
                    tool_calls: raw(message.tool_calls)?,
                })
            };
            try_map(message.as_ref(), spans)
        };
        let finish_reason = |reason: &Option<Cow<'_, str>>| match reason {
            Some(Cow::Borrowed(text)) => span(text).map(Some),
            Some(Cow::Owned(_)) => None,
            None => Some(None),
        };
        let choice = |choice: &ChoiceView<'_>| {
            Some(ChoiceSpans {
                index: choice.index,
                delta: message(&choice.delta)?,
                message: message(&choice.message)?,
                finish_reason: finish_reason(&choice.finish_reason)?,
            })
        };
        Some(Spans {
            choice: try_map(chunk.choices.as_ref(), choice)?,
            id: raw(chunk.id)?,
            created: raw(chunk.created)?,
            model: raw(chunk.model)?,
            usage: chunk.usage,
            error: raw(chunk.error)?,
        })
    }

    /// Where the last of the spans that end before `at` ends (0 if none does).
    fn ends_before(&self, at: usize) -> usize {
        let choice = self.choice.iter();
        let messages = choice
            .clone()
            .flat_map(|c| c.delta.iter().chain(&c.message));
        [&self.id, &self.created, &self.model, &self.error]
            .into_iter()
            .chain(choice.map(|c| &c.finish_reason))
            .chain(messages.flat_map(|m| [&m.content, &m.tool_calls]))
            .flatten()
            .map(|span| span.end)
            .filter(|&end| end <= at)
            .max()
            .unwrap_or(0)
    }

    /// The view these spans describe, over a payload whose text is `checked` there, with the
    /// positions `replaced` moved. `None` if a span is not checked text there (it always is in
    /// a payload that matched the bytes the spans were taken from).
    pub(super) fn view<'a>(
        &self,
        checked: &Checked<'a>,
        replaced: Option<&Replaced>,
    ) -> Option<ChunkView<'a>> {
        let at = |span: Range<usize>| match replaced {
            Some(replaced) => checked.get(replaced.map(span)?),
            None => checked.get(span),
        };
        let text = |span: &Option<Range<usize>>| try_map(span.clone(), at);
        let raw = |span: &Option<Range<usize>>| Some(text(span)?.map(RawJson));
        let message = |spans: &Option<MessageSpans>| {
            let view = |spans: &MessageSpans| {
                Some(MessageView {
                    content: raw(&spans.content)?,
                    tool_calls: raw(&spans.tool_calls)?,
                })
            };
            try_map(spans.as_ref(), view)
        };
        let choice = |choice: &ChoiceSpans| {
            Some(ChoiceView {
                index: choice.index,
                delta: message(&choice.delta)?,
                message: message(&choice.message)?,
                finish_reason: text(&choice.finish_reason)?.map(Cow::Borrowed),
            })
        };
        Some(ChunkView {
            choices: try_map(self.choice.as_ref(), choice)?,
            id: raw(&self.id)?,
            created: raw(&self.created)?,
            model: raw(&self.model)?,
            usage: self.usage,
            error: raw(&self.error)?,
        })
    }
}

/// `f` of a value that may be absent: `Some(None)` for none, `None` only when `f` fails.
fn try_map<T, U>(value: Option<T>, f: impl FnOnce(T) -> Option<U>) -> Option<Option<U>> {
    match value {
        Some(value) => f(value).map(Some),
        None => Some(None),
    }
}

/// The parts of a payload checked as UTF-8: its first `head.len()` bytes, and the bytes from
/// `rest_at` on. Spans are cut out of them without checking again.
pub(super) struct Checked<'a> {
    head: &'a str,
    rest_at: usize,
    rest: &'a str,
}

impl<'a> Checked<'a> {
    /// A payload checked whole.
    pub(super) fn whole(text: &'a str) -> Checked<'a> {
        Checked {
            head: text,
            rest_at: text.len(),
            rest: "",
        }
    }

    fn get(&self, span: Range<usize>) -> Option<&'a str> {
        if span.end <= self.head.len() {
            self.head.get(span)
        } else {
            let start = span.start.checked_sub(self.rest_at)?;
            self.rest.get(start..span.end - self.rest_at)
        }
    }
}

/// A payload that differs from another only in one value: `from` there became `to` here.
/// Spans after it move with its end; spans before it stay.
#[derive(Debug, Clone)]
pub(super) struct Replaced {
    from: Range<usize>,
    to: Range<usize>,
}

impl Replaced {
    fn map(&self, span: Range<usize>) -> Option<Range<usize>> {
        if span == self.from {
            Some(self.to.clone())
        } else if span.start >= self.from.end {
            let moved = |at: usize| (at + self.to.end).checked_sub(self.from.end);
            Some(moved(span.start)?..moved(span.end)?)
        } else if span.end <= self.from.start {
            Some(span)
        } else {
            // Spans are of leaf values, which never overlap another.
            None
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct Shape {
    /// The chunk's bytes up to `after_choices.at`: the key after `choices`, or the chunk's end.
    pub(super) bytes: Vec<u8>,
    /// Choice 0's content string in `bytes`, quotes included.
    pub(super) content: Range<usize>,
    /// What was read up to the end of `bytes`.
    after_choices: Checkpoint,
    /// Whether the chunk ended there (no key after `choices`).
    pub(super) ends: bool,
    /// How much of the bytes before the content holds the values read there: the part of a
    /// payload checked as UTF-8 before its content.
    values_end: usize,
    /// The chunk's last field, when it is the key after `choices`, one the view skips and a
    /// string: read without the reader.
    pub(super) trailer: Option<Trailer>,
}

/// A chunk's last field, after `choices`, that the view skips and whose value is a string
/// (OpenAI's `obfuscation`, a different string in every chunk): the bytes before the string
/// (its key, the colon) and after it (the end of the chunk). A chunk that ends with the same
/// key, any string and the same end is read as the reader would read it, which only checks the
/// string and moves on.
#[derive(Debug)]
pub(super) struct Trailer {
    pub(super) key: Vec<u8>,
    pub(super) end: Vec<u8>,
}

impl Trailer {
    /// Reads the trailer at `reader`'s position, to the end of its text; `false` (and the
    /// reader where it was) if the text does not end this way.
    fn read(&self, reader: &mut Reader<'_>) -> bool {
        let start = reader.pos;
        let bytes = reader.text.as_bytes();
        let read = bytes
            .get(start..)
            .is_some_and(|rest| rest.starts_with(&self.key))
            && {
                reader.pos += self.key.len();
                reader.string().is_some() && bytes.get(reader.pos..) == Some(&self.end[..])
            };
        reader.pos = if read { bytes.len() } else { start };
        read
    }
}

impl Shape {
    /// The shape of a chunk read from its start, when its choice 0 has a content string;
    /// `after_choices` is where the reader was after `choices`, `trailer` the string value of
    /// a last field there (see `Marks`).
    pub(super) fn of(
        payload: &[u8],
        chunk: &ChunkView<'_>,
        after_choices: Checkpoint,
        trailer: Option<Range<usize>>,
    ) -> Option<Shape> {
        let content = chunk.message()?.content?.get();
        if !content.starts_with('"') {
            return None;
        }
        let content = super::super::span_in(payload, content.as_bytes())?;
        let bytes = payload.get(..after_choices.at)?;
        let values_end = after_choices.spans.ends_before(content.start);
        let trailer = match trailer {
            Some(value) => Some(Trailer {
                key: payload.get(after_choices.at..value.start)?.to_vec(),
                end: payload.get(value.end..)?.to_vec(),
            }),
            None => None,
        };
        (content.end <= bytes.len()).then(|| Shape {
            bytes: bytes.to_vec(),
            content,
            ends: after_choices.at == payload.len(),
            values_end,
            trailer,
            after_choices,
        })
    }

    /// Reads `payload` if it has this shape; `None` if it has not, or if what follows
    /// `choices` declines (the caller then reads it from its start, as a fresh reader would).
    pub(super) fn read<'a>(&self, payload: &'a [u8]) -> Option<ChunkView<'a>> {
        let open = self.content.start;
        if !payload.starts_with(self.bytes.get(..open)?) {
            return None;
        }
        // The bytes before the content are the shape's, which were UTF-8: checking them again
        // only makes them `str`, so only as far as the values read there.
        let head = std::str::from_utf8(payload.get(..self.values_end)?).ok()?;
        let rest = std::str::from_utf8(payload.get(open..)?).ok()?;
        let mut reader = Reader {
            text: rest,
            pos: 0,
            depth: 0,
        };
        reader.string()?;
        let content = open..open + reader.pos;
        let after_content = self.bytes.get(self.content.end..)?;
        if !rest
            .as_bytes()
            .get(reader.pos..)?
            .starts_with(after_content)
        {
            return None;
        }
        reader.pos += after_content.len();
        let replaced = Replaced {
            from: self.content.clone(),
            to: content,
        };
        let checked = Checked {
            head,
            rest_at: open,
            rest,
        };
        let so_far = self.after_choices.spans.view(&checked, Some(&replaced))?;
        let chunk = if self.ends || self.trailer.as_ref().is_some_and(|t| t.read(&mut reader)) {
            so_far
        } else {
            reader.chunk(Some((self.after_choices.seen, so_far)), None)?
        };
        reader.skip_whitespace();
        (reader.pos == rest.len()).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_value_moves_what_follows_and_keeps_what_precedes() {
        let replaced = Replaced {
            from: 10..15,
            to: 10..12,
        };
        assert_eq!(replaced.map(2..8), Some(2..8));
        assert_eq!(replaced.map(2..10), Some(2..10));
        assert_eq!(replaced.map(10..15), Some(10..12));
        assert_eq!(replaced.map(15..20), Some(12..17));
        assert_eq!(replaced.map(12..20), None);
        assert_eq!(replaced.map(8..12), None);
    }
}
