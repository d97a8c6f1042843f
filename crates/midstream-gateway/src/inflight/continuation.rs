//! The follow-up upstream request: when the model asked only for tools the gateway owns, the
//! conversation continues with their results in a new request to the same route, whose stream
//! continues the client's (`[model_tools] continue = true`).
//!
//! This is the one part of a stream's analysis that does network I/O; the rest only reads
//! what passes and starts tools.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::model_calls::ModelCalls;
use crate::protocol::request::ChatRequest;
use crate::upstream::{Route, UpstreamError, UpstreamResponse};

/// A follow-up request's ingredients.
#[derive(Debug)]
pub(super) struct Continuation {
    route: Route,
    request: ChatRequest,
    steps_left: u32,
    /// `(model call id, result JSON)` of the current response's owned calls.
    results: Vec<(Option<String>, String)>,
}

impl Continuation {
    /// Copies what a follow-up request needs; at most `max_steps` are sent.
    pub(super) fn new(route: &Route, request: &ChatRequest, max_steps: u32) -> Continuation {
        Continuation {
            route: route.clone(),
            request: request.clone(),
            steps_left: max_steps,
            results: Vec::new(),
        }
    }

    /// Whether a follow-up request is still allowed (steps left).
    pub(super) fn can_continue(&self) -> bool {
        self.steps_left > 0
    }

    /// Keeps an owned call's result (or error, as JSON) for the next request.
    pub(super) fn push_result(&mut self, model_call_id: Option<String>, content: String) {
        self.results.push((model_call_id, content));
    }

    /// The follow-up request: the conversation so far, the model's assistant message with its
    /// calls, and one `tool` message per result. Resets `model` for the next response.
    pub(super) fn next_request(
        &mut self,
        model: &mut ModelCalls,
    ) -> BoxFuture<'static, Result<UpstreamResponse, UpstreamError>> {
        self.steps_left -= 1;
        let mut messages = self.request.messages().to_vec();
        messages.push(model.assistant_message());
        for (id, result) in self.results.drain(..) {
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
        }
        model.reset();
        self.request
            .body
            .insert("messages".to_owned(), Value::Array(messages));
        let route = self.route.clone();
        let request = self.request.clone();
        Box::pin(async move { route.upstream.chat(&request, &route.model).await })
    }
}
