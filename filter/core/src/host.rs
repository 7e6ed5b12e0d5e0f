//! The one seam between the core and its host (Envoy's proxy-wasm ABI, or a test double).

use std::borrow::Cow;

use crate::telemetry::histograms::Series;

/// Header maps a callback can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headers {
    Request,
    Response,
}

/// What a callback tells the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Headers: stop iteration. Body: stop and buffer.
    Pause,
}

/// The outcome of a compare-and-swap write to shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedWrite {
    Written,
    /// Another worker wrote first: read again and retry.
    Conflict,
    Failed,
}

/// An HTTP request the filter sends on its own (Envoy's HTTP call-out, `proxy_http_call`) while
/// the client's request is held: to `cluster` (a cluster name of the rendered bootstrap), with
/// `headers` (`:method`, `:path` and `:authority` are required by Envoy), `body`, and a deadline of
/// `timeout_ms` milliseconds after which Envoy ends the call without a response.
#[derive(Debug, Clone, Copy)]
pub struct CallOut<'a> {
    pub cluster: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub timeout_ms: u32,
}

/// The most bytes of a call-out's response body the host hands to the core; a longer body is
/// reported by its length only (see [`CallResponse::body_len`]).
pub const CALL_RESPONSE_MAX_BYTES: usize = 1 << 20;

/// What a call-out brought back. `status` is 0 when there was no response at all (timeout,
/// connection refused, reset); then `headers` and `body` are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallResponse {
    pub status: u16,
    /// Response headers as the backend sent them (names lower case, values as bytes read
    /// lossily as UTF-8); they never reach the client.
    pub headers: Vec<(String, String)>,
    /// The first [`CALL_RESPONSE_MAX_BYTES`] bytes of the body at most.
    pub body: Vec<u8>,
    /// The body's whole length in bytes; above `body.len()` when the body was cut.
    pub body_len: usize,
}

/// Host calls the per-request flow needs. Implementations never panic: a failed call returns
/// `None`/`false` and the flow carries on as well as it can.
pub trait Host {
    /// The first value of a header; borrowed from the host's copy of the map where it can be.
    fn header(&self, map: Headers, name: &str) -> Option<Cow<'_, str>>;
    /// The names of the headers of `map` that start with `prefix` (lower case, as Envoy holds
    /// them), each once. Empty when none does.
    fn header_names_with_prefix(&self, map: Headers, prefix: &str) -> Vec<String>;
    /// The names in a header map, each once (what the response-header allow-list,
    /// [`crate::response_headers`], checks).
    fn header_names(&self, map: Headers) -> Vec<String>;
    /// Sets (`Some`) or removes (`None`) a header.
    fn set_header(&mut self, map: Headers, name: &str, value: Option<&str>);
    /// The first `len` bytes of the body buffered so far.
    fn body(&self, map: Headers, len: usize) -> Option<Vec<u8>>;
    /// Replaces the first `len` bytes of the current body buffer with `data`.
    fn replace_body(&mut self, map: Headers, len: usize, data: &[u8]) -> bool;
    /// Answers the client directly; the request goes no further.
    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    /// An Envoy attribute such as `response.code_details`, as text.
    fn property(&self, path: &[&str]) -> Option<String>;
    fn log_warn(&self, message: &str);
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// A value shared by all workers of this Envoy, with its CAS token.
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes a shared value if its CAS token is still `cas` (0: unconditionally).
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite;
    /// Adds `n` to a counter named by [`crate::metrics`].
    fn add(&mut self, metric: &str, n: u64);
    /// Adds one to a counter.
    fn count(&mut self, metric: &str) {
        self.add(metric, 1);
    }
    /// Records `value` in a histogram series ([`crate::telemetry::histograms`]: the metric and
    /// its labels). A host without histograms ignores it.
    fn record(&mut self, series: &Series, value: u64) {
        let _ = (series, value);
    }
    /// Sets request-scoped filter state (`wasm.<name>` in Envoy), read by other filters.
    fn set_property(&mut self, name: &str, value: &[u8]);
    /// Makes Envoy pick the request's route again, after filter state it matches on changed
    /// (header edits do this implicitly; filter state does not).
    fn clear_route_cache(&mut self);
    /// A counter's value, summed over workers.
    fn counter(&self, metric: &str) -> u64;
    /// Sends a call-out; its token, which the answer's callback carries, or `None` when the host
    /// refused it (an unknown cluster, a missing pseudo-header).
    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32>;
    /// Lets a request held since its headers or body go on (after a call-out answered); `false`
    /// when the host refused (the request is gone).
    fn resume_request(&mut self) -> bool;
}

/// Host calls of a root context: one per worker, outside any request, woken by its timer
/// (model discovery, [`crate::discovery`]). Implementations never panic: a failed call returns
/// `None` or [`SharedWrite::Failed`].
pub trait RootHost {
    /// Wall-clock time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// A value shared by all workers of this Envoy, with its CAS token.
    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes a shared value if its CAS token is still `cas` (0: unconditionally).
    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite;
    /// Sends a call-out; its token, which the answer's callback (on this root context) carries,
    /// or `None` when the host refused it.
    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32>;
    fn log_warn(&self, message: &str);
}
