//! `[listener]` checked: the body limit, the client-side timeouts and the connection cap are
//! bounded so Envoy can take them; the result is the plan's [`Listener`].

use super::error::{ConfigError, Locator};
use super::raw::RawListener;
use super::Listener;

/// Largest body limit: Envoy's buffers count in 32-bit sizes.
const MAX_BODY_LIMIT: u64 = 1 << 30;

/// Longest listener timeout: one day.
const MAX_LISTENER_TIMEOUT_MS: u64 = 86_400_000;

/// Most client connections `listener.max_connections` may allow.
const MAX_CONNECTIONS: u64 = 1_000_000;

/// Checks `[listener]`, pushing what is wrong to `errs`; the plan's listener either way (the
/// caller refuses the file when `errs` is not empty).
pub(super) fn compile_listener(
    loc: &Locator,
    raw: &RawListener,
    errs: &mut Vec<ConfigError>,
) -> Listener {
    let max_body = *raw.max_body_bytes.get_ref();
    if max_body == 0 || max_body > MAX_BODY_LIMIT {
        errs.push(loc.error(
            raw.max_body_bytes.span(),
            "listener.max_body_bytes",
            format!("must be between 1 and {MAX_BODY_LIMIT}"),
        ));
    }

    let listener_timeouts = [
        (
            "request_headers_timeout_ms",
            &raw.request_headers_timeout_ms,
        ),
        ("request_timeout_ms", &raw.request_timeout_ms),
        ("stream_idle_timeout_ms", &raw.stream_idle_timeout_ms),
        ("idle_timeout_ms", &raw.idle_timeout_ms),
        (
            "max_connection_duration_ms",
            &raw.max_connection_duration_ms,
        ),
    ];
    for (name, value) in listener_timeouts {
        if *value.get_ref() > MAX_LISTENER_TIMEOUT_MS {
            errs.push(loc.error(
                value.span(),
                format!("listener.{name}"),
                format!("must be at most {MAX_LISTENER_TIMEOUT_MS} (one day); 0 means none"),
            ));
        }
    }
    let max_connections = *raw.max_connections.get_ref();
    if max_connections == 0 || max_connections > MAX_CONNECTIONS {
        errs.push(loc.error(
            raw.max_connections.span(),
            "listener.max_connections",
            format!("must be between 1 and {MAX_CONNECTIONS}"),
        ));
    }
    Listener {
        address: raw.address.clone(),
        port: raw.port,
        max_body_bytes: max_body,
        request_headers_timeout_ms: *raw.request_headers_timeout_ms.get_ref(),
        request_timeout_ms: *raw.request_timeout_ms.get_ref(),
        stream_idle_timeout_ms: *raw.stream_idle_timeout_ms.get_ref(),
        idle_timeout_ms: *raw.idle_timeout_ms.get_ref(),
        max_connection_duration_ms: *raw.max_connection_duration_ms.get_ref(),
        max_connections,
    }
}
