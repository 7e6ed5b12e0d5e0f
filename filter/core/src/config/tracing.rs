//! `[tracing]` checked: the receiver is a `host:port`, the service name a plain name, the
//! sampling a percentage; the result is the plan's [`Tracing`].

use super::error::{ConfigError, Locator};
use super::raw::RawTracing;
use super::Tracing;

/// Longest service name.
const MAX_SERVICE_NAME: usize = 64;

/// Checks `[tracing]`, pushing what is wrong to `errs`; the plan's tracing when its values hold.
pub(super) fn compile_tracing(
    loc: &Locator,
    raw: &RawTracing,
    errs: &mut Vec<ConfigError>,
) -> Option<Tracing> {
    let before = errs.len();
    let endpoint = super::grpc_api::endpoint(raw.endpoint.get_ref()).ok();
    if endpoint.is_none() {
        errs.push(loc.error(
            raw.endpoint.span(),
            "tracing.endpoint",
            "must be host:port of an OTLP/gRPC receiver (an OpenTelemetry Collector's 4317)",
        ));
    }
    let name = raw.service_name.get_ref();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > MAX_SERVICE_NAME || !name.chars().all(plain) {
        errs.push(loc.error(
            raw.service_name.span(),
            "tracing.service_name",
            format!("must be 1 to {MAX_SERVICE_NAME} letters, digits, '.', '_' or '-'"),
        ));
    }
    let sampling = *raw.sampling.get_ref();
    if !(0.0..=100.0).contains(&sampling) {
        errs.push(loc.error(
            raw.sampling.span(),
            "tracing.sampling",
            "must be a percentage, between 0 and 100",
        ));
    }
    match endpoint {
        Some(endpoint) if errs.len() == before => Some(Tracing {
            endpoint,
            service_name: name.clone(),
            sampling_percent: sampling,
        }),
        _ => None,
    }
}
