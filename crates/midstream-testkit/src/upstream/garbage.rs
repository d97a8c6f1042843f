//! The body of [`Scenario::garbage`](super::Scenario::garbage): malformed frames between valid ones.

/// Frame by frame: a valid role chunk with content `"before garbage"`; truncated JSON;
/// non-JSON data; a line with no colon; an unknown field; a stray `event:` line with no
/// data; invalid UTF-8 data; a valid chunk with content `" still streaming"` whose lines
/// end with CRLF; `data: [DONE]`.
pub(crate) const GARBAGE_BODY: &[u8] = b"\
data: {\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"before garbage\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n\
data: {\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"trunc\n\n\
data: this is not json\n\n\
a line without any field separator\n\n\
garbage: an unknown field\n\n\
event: surprise\n\n\
data: \xff\xfe\xfd not utf-8 \xe2\x82\n\n\
data: {\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion.chunk\",\"created\":1727346168,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" still streaming\"},\"logprobs\":null,\"finish_reason\":null}]}\r\n\r\n\
data: [DONE]\n\n";
