//! [`Host`] over Envoy's dynamic-module ABI: the core's seam, as the wasm build's `EnvoyHost` is
//! over proxy-wasm. Header lookups borrow Envoy's own bytes (no copy, no cache needed: a lookup
//! is a call into the process, not across a VM). Filter state is written under the names the
//! wasm build's properties get ([`FILTER_STATE_PREFIX`]), so the rendered routes, access logs and
//! rate limits read the same keys whichever build runs.

use std::borrow::Cow;
use std::cell::Cell;

use airouter_core::contract::{
    BACKEND_METADATA_PATH, FILTER_STATE_PREFIX, LOCAL_REPLY_DETAILS, METADATA_NAMESPACE,
};
use airouter_core::host::{CallOut, Headers, Host, SharedWrite};
use airouter_core::telemetry::histograms::Series;

use crate::abi::{self, FilterPtr};
use crate::config::FilterConfig;
use crate::root::clock_once;
use crate::shared;

/// Envoy, as seen from one event hook of one filter.
pub struct NativeHost<'a> {
    envoy: FilterPtr,
    config: &'a FilterConfig,
    /// The body whose hook is running, if any: its received chunk exists only then.
    in_body: Option<Headers>,
    /// The clock, read at most once per hook.
    now: Cell<Option<u64>>,
}

impl<'a> NativeHost<'a> {
    /// The host of one hook; a listener filter's first hands Envoy what upstream filters
    /// counted since the last.
    pub fn new(envoy: FilterPtr, config: &'a FilterConfig, in_body: Option<Headers>) -> Self {
        config.flush_upstream_counts(envoy);
        NativeHost {
            envoy,
            config,
            in_body,
            now: Cell::new(None),
        }
    }

    /// The buffered and received body types of `m`'s direction.
    fn bodies(m: Headers) -> (u32, u32) {
        match m {
            Headers::Request => (abi::BUFFERED_REQUEST_BODY, abi::RECEIVED_REQUEST_BODY),
            Headers::Response => (abi::BUFFERED_RESPONSE_BODY, abi::RECEIVED_RESPONSE_BODY),
        }
    }

    /// The body so far: what Envoy buffered for this filter, then the chunk of the running hook.
    fn whole_body(&self, m: Headers) -> Vec<u8> {
        let (buffered, received) = Self::bodies(m);
        let mut out = Vec::new();
        abi::read_body(self.envoy, buffered, &mut out);
        if self.in_body == Some(m) {
            abi::read_body(self.envoy, received, &mut out);
        }
        out
    }
}

fn map(m: Headers) -> u32 {
    match m {
        Headers::Request => abi::REQUEST_HEADERS,
        Headers::Response => abi::RESPONSE_HEADERS,
    }
}

/// The header names of `map` that `keep` accepts, each once, in Envoy's order.
fn names(envoy: FilterPtr, m: Headers, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (name, _) in abi::headers(envoy, map(m)) {
        if keep(&name) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

impl Host for NativeHost<'_> {
    fn header(&self, m: Headers, name: &str) -> Option<Cow<'_, str>> {
        // SAFETY: the bytes stay valid while `self` is borrowed: every call that could change
        // the map takes `&mut self`, and a host lives for one event hook only.
        let bytes = unsafe { abi::header(self.envoy, map(m), name) }?;
        Some(String::from_utf8_lossy(bytes))
    }

    fn header_names_with_prefix(&self, m: Headers, prefix: &str) -> Vec<String> {
        names(self.envoy, m, |n| n.starts_with(prefix))
    }

    fn header_names(&self, m: Headers) -> Vec<String> {
        names(self.envoy, m, |_| true)
    }

    fn set_header(&mut self, m: Headers, name: &str, value: Option<&str>) {
        if !abi::set_header(self.envoy, map(m), name, value) && value.is_some() {
            abi::log(abi::LOG_WARN, &format!("could not set header {name}"));
        }
    }

    fn body(&self, m: Headers, len: usize) -> Option<Vec<u8>> {
        let mut body = self.whole_body(m);
        body.truncate(len);
        Some(body)
    }

    fn replace_body(&mut self, m: Headers, len: usize, data: &[u8]) -> bool {
        let (buffered, received) = Self::bodies(m);
        let whole = self.whole_body(m);
        let mut new = Vec::with_capacity(data.len() + whole.len().saturating_sub(len));
        new.extend_from_slice(data);
        new.extend_from_slice(whole.get(len..).unwrap_or(&[]));
        abi::drain_body(self.envoy, buffered, abi::body_size(self.envoy, buffered));
        // Within the body's hook the new bytes take the received chunk's place (Envoy adds it
        // to the buffer when the filter stops, or passes it on); outside it (a held request
        // resumed) they are the buffer.
        let target = if self.in_body == Some(m) {
            abi::drain_body(self.envoy, received, abi::body_size(self.envoy, received));
            received
        } else {
            buffered
        };
        new.is_empty() || abi::append_body(self.envoy, target, &new)
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        abi::send_response(self.envoy, status, headers, body, LOCAL_REPLY_DETAILS);
    }

    fn property(&self, path: &[&str]) -> Option<String> {
        let bytes = match path {
            ["response", "code_details"] => {
                abi::attribute_string(self.envoy, abi::ATTRIBUTE_RESPONSE_CODE_DETAILS)
            }
            [name] => abi::filter_state(self.envoy, &format!("{FILTER_STATE_PREFIX}{name}")),
            [.., ns, key]
                if path.len() == BACKEND_METADATA_PATH.len() && *ns == METADATA_NAMESPACE =>
            {
                (path == BACKEND_METADATA_PATH)
                    .then(|| abi::metadata_string(self.envoy, abi::METADATA_HOST, ns, key))
                    .flatten()
            }
            _ => None,
        }?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn log_warn(&self, message: &str) {
        abi::log(abi::LOG_WARN, message);
    }

    fn now_ms(&self) -> u64 {
        clock_once(&self.now)
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        shared::get(key)
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        shared::set(key, value, cas)
    }

    fn add(&mut self, metric: &str, n: u64) {
        self.config.count(self.envoy, metric, n);
    }

    fn record(&mut self, series: &Series, value: u64) {
        self.config.record(self.envoy, series, value);
    }

    fn set_property(&mut self, name: &str, value: &[u8]) {
        let key = format!("{FILTER_STATE_PREFIX}{name}");
        if !abi::set_filter_state(self.envoy, &key, value) {
            abi::log(abi::LOG_WARN, "could not set filter state");
        }
    }

    fn clear_route_cache(&mut self) {
        abi::clear_route_cache(self.envoy);
    }

    fn counter(&self, metric: &str) -> u64 {
        self.config.counter_value(metric)
    }

    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        let id = abi::http_callout(
            self.envoy,
            call.cluster,
            call.headers,
            call.body,
            call.timeout_ms,
        )?;
        u32::try_from(id).ok()
    }

    fn resume_request(&mut self) -> bool {
        abi::continue_decoding(self.envoy);
        true
    }
}
