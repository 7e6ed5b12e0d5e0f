//! The session log: one JSON record per request the filter handles (`[session_log]`), built here
//! as the request goes and handed to Envoy when it ends; Envoy's gRPC access log service carries
//! it to the sidecar, which writes one file per request (`sidecar/src/session_log/`).
//!
//! A record holds the request id, the client key's name (never a key, never a header), the API,
//! the model as the client sees it, each backend attempt (backend, the model name sent, its
//! status), the status the client got, the filter's refusal if any, usage, timings (total, first
//! byte, first token) and, as `capture` says, the conversation: nothing (`none`), its shape
//! (`metadata`: body size, number of messages, text size), or its content (`full`: the messages
//! sent to the backend, the response text), cut to the record's cap (see `record.rs`). What it
//! holds while the request runs is bounded by that cap too: the newest messages that fit, the
//! first cap's worth of text. Each record is numbered in its Envoy process's sequence as it is
//! handed over (`sequence.rs`), so the sidecar can count the records that never reached it.
//!
//! How the record reaches Envoy's access log, as checked in Envoy 1.40 (`tests/e2e/test_session_log.py`):
//! - The filter's log callback (proxy-wasm `on_log`) runs before the access loggers of the
//!   connection manager, so the record is made once, complete, in [`Recorder::finish`] at
//!   `on_log`, and set as the filter state [`SESSION_PROPERTY`]
//!   (`wasm.airouter_session`); the listener's HTTP gRPC access logger sends it to the sidecar
//!   (`filter_state_objects_to_log`) as a `google.protobuf.BytesValue` packed in an `Any`
//!   (Envoy's `CelState` with the default prototype: bytes, filter-chain life span).
//! - A client that leaves mid-stream still gets its record: `on_log` runs, without the end of
//!   the response body; Envoy's entry carries the `DC` flag.
//!
//! [`SESSION_PROPERTY`]: crate::contract::SESSION_PROPERTY

mod record;
mod request;
pub mod sequence;
mod transcript;

use crate::api::Api;
use crate::config::{Capture, SessionLog};
use crate::errors::ApiError;
use crate::host::{Headers, Host};

pub use record::{Attempt, SCHEMA};
pub use request::RequestContent;
pub use sequence::Sequence;
pub use transcript::{Transcript, Usage};

/// Longest request id kept (Envoy's are 36-byte UUIDs).
const MAX_ID_BYTES: usize = 128;
/// Longest path kept (a client may send a long one to a path the filter refuses).
const MAX_PATH_BYTES: usize = 512;

/// One request's record in the making.
#[derive(Debug)]
pub struct Recorder {
    capture: Capture,
    max_bytes: usize,
    start_ms: u64,
    request_id: Option<String>,
    method: String,
    path: String,
    api: Option<Api>,
    key: Option<String>,
    model: Option<String>,
    stream: Option<bool>,
    /// The request went to a backend (its body was read for the record).
    routed: bool,
    request: RequestContent,
    attempts: Vec<Attempt>,
    error: Option<(&'static str, Option<String>)>,
    first_byte_ms: Option<u64>,
    routing: Option<crate::router::decision::RoutingDecision>,
    sequence: Option<Sequence>,
}

impl Recorder {
    /// Starts the record of the request whose headers `host` holds, under `log`'s settings.
    pub fn start(log: &SessionLog, host: &dyn Host) -> Self {
        let header = |name: &str| host.header(Headers::Request, name);
        let id = header("x-request-id").map(|id| bounded(&id, MAX_ID_BYTES));
        let target = header(":path").unwrap_or_default();
        let path = target.split('?').next().unwrap_or_default();
        Recorder {
            capture: log.capture,
            max_bytes: log.max_record_bytes,
            start_ms: host.now_ms(),
            request_id: id,
            method: bounded(&header(":method").unwrap_or_default(), 16),
            path: bounded(path, MAX_PATH_BYTES),
            api: None,
            key: None,
            model: None,
            stream: None,
            routed: false,
            request: RequestContent::default(),
            attempts: Vec::new(),
            error: None,
            first_byte_ms: None,
            routing: None,
            sequence: None,
        }
    }

    /// The client key's name, once the key is known.
    pub fn key(&mut self, name: &str) {
        self.key = Some(name.to_string());
    }

    /// The API the request is for.
    pub fn api(&mut self, api: Api) {
        self.api = Some(api);
    }

    /// Whether the request's body is read for the record (`capture` other than `none`).
    pub fn reads_body(&self) -> bool {
        self.capture != Capture::None
    }

    /// The request was routed: the model the client sees, and the `body` as sent on (read when
    /// [`Self::reads_body`]).
    pub fn routed(&mut self, api: Api, model: &str, body: Option<&[u8]>) {
        self.api = Some(api);
        self.model = Some(model.to_string());
        self.routed = true;
        if let (Some(body), true) = (body, self.reads_body()) {
            let keep = self.capture == Capture::Full;
            self.request = RequestContent::read(api, body, keep, self.max_bytes);
        }
    }

    /// How a router routed the request (its decision is bounded: labels from the
    /// configuration, the classifier's reply cut). The classifier's reply is conversation text
    /// (reasoning classifiers quote the user), so it is kept only with `capture = "full"`.
    pub fn routing(&mut self, decision: &crate::router::decision::RoutingDecision) {
        let mut d = decision.clone();
        if self.capture != Capture::Full {
            if let Some(c) = d.classifier.as_mut() {
                c.reply = None;
            }
        }
        self.routing = Some(d);
    }

    /// Whether the record has a router's decision yet.
    pub fn has_routing(&self) -> bool {
        self.routing.is_some()
    }

    /// The model the client asked for, when the request ended before it was routed (a router's
    /// request whose client left while its classifier was out, a route probe).
    pub fn asked_for(&mut self, api: Api, model: &str) {
        self.api = Some(api);
        if self.model.is_none() {
            self.model = Some(model.to_string());
        }
    }

    /// Whether the response of a routed request was a stream (known once its headers came).
    pub fn streamed(&mut self, stream: bool) {
        if self.routed {
            self.stream = Some(stream);
        }
    }

    /// A request was sent to `backend` under `model`.
    pub fn attempt(&mut self, backend: &str, model: &str, status: Option<u16>) {
        self.attempts.push(Attempt {
            backend: backend.to_string(),
            model: model.to_string(),
            status,
        });
    }

    /// The last attempt's backend answered `status`.
    pub fn attempt_status(&mut self, status: u16) {
        if let Some(last) = self.attempts.last_mut() {
            last.status = Some(status);
        }
    }

    /// Whether the request has attempts recorded.
    pub fn has_attempts(&self) -> bool {
        !self.attempts.is_empty()
    }

    /// The filter refused the request with `err`.
    pub fn refused(&mut self, err: &ApiError) {
        self.error = Some((err.kind, err.code.map(str::to_string)));
    }

    /// The response's headers arrived at `now_ms`.
    pub fn first_byte(&mut self, now_ms: u64) {
        self.first_byte_ms.get_or_insert(now_ms);
    }

    /// The record's place in the Envoy process's sequence (see [`sequence`]).
    pub fn numbered(&mut self, sequence: Sequence) {
        self.sequence = Some(sequence);
    }

    /// A transcript for the response, when the capture level reads one.
    pub fn transcript(&self) -> Transcript {
        Transcript::new(self.capture == Capture::Full, self.max_bytes)
    }

    /// The record, done: `status` the client got, at `now_ms`, with what the response said
    /// (`transcript`) and, for a stream that reported no usage, the router's `estimated_tokens`.
    /// At most the cap in bytes.
    pub fn finish(
        &mut self,
        status: Option<u16>,
        now_ms: u64,
        transcript: Option<&Transcript>,
        estimated_tokens: Option<u64>,
    ) -> Vec<u8> {
        let end = record::Ending {
            status,
            now_ms,
            transcript,
            estimated_tokens,
        };
        record::render(self, &end)
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> String {
    transcript::prefix(text, max).to_string()
}

#[cfg(test)]
mod tests;
