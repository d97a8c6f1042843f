//! The OpenAI Responses API (`/v1/responses`), for upstreams that speak only chat completions:
//! the request is translated to a chat completion ([`request`]), which runs through the same
//! pipeline as `/v1/chat/completions` (analysis, tools, redact and stop, the record, the event
//! log), and its answer is translated back ([`stream`] for the events, [`object`] for the
//! `response` object).
//!
//! # Gateway events on this endpoint
//!
//! On a Responses stream the `event:` line is the protocol, and the SDKs dispatch on each
//! event's `type`; their stream helpers accumulate the final response from the types they
//! know and refuse the others: openai-node's `ResponseStream` throws `Unhandled response
//! stream event` on a type it does not know (tried with `midstream.*` types). So the gateway's
//! events travel as `keepalive` events — a type OpenAI itself sends on long streams, which
//! every helper passes through and leaves out of the response it builds — with a `midstream`
//! member: `{"type": "keepalive", "sequence_number": N, "midstream": {"type": "intent", …}}`.
//! openai-python yields it as an event whose `model_extra["midstream"]` holds the gateway's
//! event, openai-node as `event.midstream`; the AI SDK's Responses provider ignores it. Each is
//! proven by a test with the real package (`tests/sdk.rs`, `tests/ai_sdk.rs`). The final
//! `response` object also carries them, as `midstream.events`. `X-Midstream-Events: off`
//! turns both off.

pub mod object;
pub mod request;
pub mod stream;
