//! `[global_limits]` checked: a Redis URL (kept as a secret: it may carry a password), the
//! limiter's timeout and the reserved completion tokens. The result is the plan's
//! [`GlobalLimits`]; the port the limiter is served on is the sidecar's gRPC port (see
//! `sidecar.rs`).

use super::error::{ConfigError, Locator};
use super::raw::{FailureMode, RawGlobalLimits};
use super::{GlobalLimits, Secret};

/// Checks `[global_limits]`, pushing what is wrong to `errs`; the plan's limits when the
/// section's own values hold.
pub(super) fn compile_global_limits(
    loc: &Locator,
    g: &RawGlobalLimits,
    errs: &mut Vec<ConfigError>,
) -> Option<GlobalLimits> {
    let url = g.redis.get_ref();
    let mut ok = true;
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        errs.push(loc.error(
            g.redis.span(),
            "global_limits.redis",
            "must be a `redis://`, `rediss://` or `unix://` URL",
        ));
        ok = false;
    }
    let timeout_ms = *g.timeout_ms.get_ref();
    if timeout_ms == 0 || timeout_ms > 60_000 {
        errs.push(loc.error(
            g.timeout_ms.span(),
            "global_limits.timeout_ms",
            "must be between 1 and 60000",
        ));
        ok = false;
    }
    let default_max_tokens = *g.default_max_tokens.get_ref();
    if default_max_tokens == 0 {
        errs.push(loc.error(
            g.default_max_tokens.span(),
            "global_limits.default_max_tokens",
            "must be above 0",
        ));
        ok = false;
    }
    ok.then(|| GlobalLimits {
        redis: Secret(url.clone()),
        fail_open: g.failure_mode == FailureMode::Open,
        timeout_ms,
        default_max_tokens,
    })
}
