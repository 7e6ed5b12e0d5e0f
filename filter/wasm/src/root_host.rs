//! [`RootHost`] over Envoy's proxy-wasm ABI: what the root context's timer (model discovery)
//! may do outside any request.

use std::cell::Cell;

use airouter_core::host::{CallOut, RootHost, SharedWrite};

use crate::abi;

/// Envoy, as seen from one callback of the root context.
#[derive(Default)]
pub struct EnvoyRoot {
    /// The clock, read at most once per callback.
    now: Cell<Option<u64>>,
}

impl RootHost for EnvoyRoot {
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

    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        abi::http_call(call.cluster, call.headers, call.body, call.timeout_ms)
    }

    fn log_warn(&self, message: &str) {
        abi::log(abi::LOG_WARN, message);
    }
}
