//! [`Host`] over Envoy's proxy-wasm ABI: the only place the core meets the host.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use crate::header_snapshot::HeaderSnapshot;
use airouter_core::host::{CallOut, Headers, Host, SharedWrite};
use airouter_core::telemetry::histograms::Series;

use rustc_hash::FxHashMap;

use crate::abi;

thread_local! {
    /// Counter ids by name. Each `define_metric` allocates a new id, so each name is defined
    /// once per VM (one VM per worker) and kept. Looked up several times per request, so the
    /// hash is Fx rather than SipHash: the names are the operator's, not a client's.
    static COUNTERS: RefCell<FxHashMap<String, u32>> = RefCell::new(FxHashMap::default());
    /// Histogram ids by name, likewise.
    static HISTOGRAMS: RefCell<FxHashMap<String, u32>> = RefCell::new(FxHashMap::default());
}

/// The id of a histogram, defining it on first use.
fn histogram_id(name: &str) -> Option<u32> {
    HISTOGRAMS.with(|h| {
        if let Some(id) = h.borrow().get(name) {
            return Some(*id);
        }
        let id = abi::define_histogram(name)?;
        h.borrow_mut().insert(name.to_string(), id);
        Some(id)
    })
}

/// The id of a counter, defining it on first use.
pub fn counter_id(name: &str) -> Option<u32> {
    COUNTERS.with(|c| {
        if let Some(id) = c.borrow().get(name) {
            return Some(*id);
        }
        let id = abi::define_counter(name)?;
        c.borrow_mut().insert(name.to_string(), id);
        Some(id)
    })
}

/// Header maps read whole, once per phase: the request's when its headers callback starts (and
/// kept for its body callbacks), the response's likewise. One host call instead of one per
/// lookup, and edits that would change nothing are not sent at all. This relies on nothing else
/// editing a map between its headers callback and the body callbacks that follow: filters ahead
/// of this one are done with the headers by then, and Envoy's own additions come earlier.
#[derive(Default)]
pub struct HeaderCache {
    request: Option<HeaderSnapshot>,
    response: Option<HeaderSnapshot>,
}

impl HeaderCache {
    /// Reads `m` afresh; on a host failure lookups fall back to one call each.
    pub fn load(&mut self, m: Headers) {
        let snapshot = abi::header_pairs(map(m)).and_then(HeaderSnapshot::from_wire);
        *self.slot(m) = snapshot;
    }

    fn slot(&mut self, m: Headers) -> &mut Option<HeaderSnapshot> {
        match m {
            Headers::Request => &mut self.request,
            Headers::Response => &mut self.response,
        }
    }

    fn get(&self, m: Headers) -> Option<&HeaderSnapshot> {
        match m {
            Headers::Request => self.request.as_ref(),
            Headers::Response => self.response.as_ref(),
        }
    }
}

/// Envoy, as seen from one callback of an HTTP context.
pub struct EnvoyHost<'a> {
    headers: &'a mut HeaderCache,
    /// The clock, read at most once per callback.
    now: Cell<Option<u64>>,
}

impl<'a> EnvoyHost<'a> {
    pub fn new(headers: &'a mut HeaderCache) -> Self {
        EnvoyHost {
            headers,
            now: Cell::new(None),
        }
    }
}

fn map(h: Headers) -> u32 {
    match h {
        Headers::Request => abi::REQUEST_HEADERS,
        Headers::Response => abi::RESPONSE_HEADERS,
    }
}

fn body_kind(h: Headers) -> u32 {
    match h {
        Headers::Request => abi::REQUEST_BODY,
        Headers::Response => abi::RESPONSE_BODY,
    }
}

impl Host for EnvoyHost<'_> {
    fn header(&self, m: Headers, name: &str) -> Option<Cow<'_, str>> {
        match self.headers.get(m) {
            Some(snapshot) => snapshot.get(name),
            None => abi::header(map(m), name).map(Cow::Owned),
        }
    }

    fn header_names_with_prefix(&self, m: Headers, prefix: &str) -> Vec<String> {
        match self.headers.get(m) {
            Some(snapshot) => snapshot.names_with_prefix(prefix),
            None => abi::header_pairs(map(m))
                .and_then(HeaderSnapshot::from_wire)
                .map(|s| s.names_with_prefix(prefix))
                .unwrap_or_default(),
        }
    }

    fn header_names(&self, m: Headers) -> Vec<String> {
        match self.headers.get(m) {
            Some(snapshot) => snapshot.names().into_iter().map(str::to_string).collect(),
            None => abi::header_pairs(map(m))
                .and_then(|wire| crate::header_snapshot::decode_pairs(&wire))
                .map(|pairs| pairs.into_iter().map(|(k, _)| k).collect())
                .unwrap_or_default(),
        }
    }

    fn set_header(&mut self, m: Headers, name: &str, value: Option<&str>) {
        if self.headers.get(m).is_some_and(|s| !s.changes(name, value)) {
            return;
        }
        if abi::set_header(map(m), name, value) {
            if let Some(snapshot) = self.headers.slot(m) {
                snapshot.apply(name, value);
            }
        } else if value.is_some() {
            abi::log(abi::LOG_WARN, &format!("could not set header {name}"));
        }
    }

    fn body(&self, m: Headers, len: usize) -> Option<Vec<u8>> {
        abi::buffer(body_kind(m), 0, len)
    }

    fn replace_body(&mut self, m: Headers, len: usize, data: &[u8]) -> bool {
        abi::set_buffer(body_kind(m), 0, len, data)
    }

    fn send_response(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        if !abi::send_response(status, headers, body) {
            abi::log(abi::LOG_WARN, "could not send a local reply");
        }
    }

    fn property(&self, path: &[&str]) -> Option<String> {
        abi::property(path).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn now_ms(&self) -> u64 {
        if let Some(now) = self.now.get() {
            return now;
        }
        let now = abi::now_ms();
        self.now.set(Some(now));
        now
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::shared_get(key)
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        abi::shared_set(key, value, cas)
    }

    fn add(&mut self, metric: &str, n: u64) {
        if let Some(id) = counter_id(metric) {
            abi::increment(id, n);
        }
    }

    fn record(&mut self, series: &Series, value: u64) {
        if let Some(id) = histogram_id(&series.stat_name()) {
            abi::record(id, value);
        }
    }

    fn set_property(&mut self, name: &str, value: &[u8]) {
        if !abi::set_property(name, value) {
            abi::log(abi::LOG_WARN, "could not set filter state");
        }
    }

    fn clear_route_cache(&mut self) {
        if !abi::clear_route_cache() {
            abi::log(abi::LOG_WARN, "could not clear the route cache");
        }
    }

    fn counter(&self, metric: &str) -> u64 {
        counter_id(metric).map_or(0, abi::metric_value)
    }

    fn log_warn(&self, message: &str) {
        abi::log(abi::LOG_WARN, message);
    }

    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        abi::http_call(call.cluster, call.headers, call.body, call.timeout_ms)
    }

    fn resume_request(&mut self) -> bool {
        abi::continue_request()
    }
}
