//! [`Host`] over Envoy's proxy-wasm ABI: the only place the core meets the host.

use std::cell::RefCell;
use std::collections::HashMap;

use airouter_core::host::{Headers, Host, SharedWrite};

use crate::abi;

thread_local! {
    /// Counter ids by name. Each `define_metric` allocates a new id, so each name is defined
    /// once per VM (one VM per worker) and kept.
    static COUNTERS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
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

/// Envoy, as seen from one HTTP context's callbacks.
pub struct EnvoyHost;

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

impl Host for EnvoyHost {
    fn header(&self, m: Headers, name: &str) -> Option<String> {
        abi::header(map(m), name)
    }

    fn set_header(&mut self, m: Headers, name: &str, value: Option<&str>) {
        if !abi::set_header(map(m), name, value) && value.is_some() {
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
        abi::now_ms()
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        abi::shared_get(key)
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        match abi::shared_set(key, value, cas) {
            0 => SharedWrite::Written,
            8 => SharedWrite::Conflict,
            _ => SharedWrite::Failed,
        }
    }

    fn add(&mut self, metric: &str, n: u64) {
        if let Some(id) = counter_id(metric) {
            abi::increment(id, n);
        }
    }

    fn set_property(&mut self, name: &str, value: &[u8]) {
        if !abi::set_property(name, value) {
            abi::log(abi::LOG_WARN, "could not set filter state");
        }
    }

    fn counter(&self, metric: &str) -> u64 {
        counter_id(metric).map_or(0, abi::metric_value)
    }

    fn log_warn(&self, message: &str) {
        abi::log(abi::LOG_WARN, message);
    }
}
