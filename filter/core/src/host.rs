//! The one seam between the core and its host (Envoy's proxy-wasm ABI, or a test double).

use std::borrow::Cow;

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
    /// Sets request-scoped filter state (`wasm.<name>` in Envoy), read by other filters.
    fn set_property(&mut self, name: &str, value: &[u8]);
    /// Makes Envoy pick the request's route again, after filter state it matches on changed
    /// (header edits do this implicitly; filter state does not).
    fn clear_route_cache(&mut self);
    /// A counter's value, summed over workers.
    fn counter(&self, metric: &str) -> u64;
}
