//! Limits shared by several Envoy instances as compiled (`[global_limits]`): kept in Redis by
//! the sidecar, asked by Envoy's global rate limit filter.

use super::Secret;

/// Limits shared by several Envoy instances (`[global_limits]`).
#[derive(Debug, Clone)]
pub struct GlobalLimits {
    /// The Redis URL; it may carry a password.
    pub redis: Secret,
    /// Requests pass while the limiter is unreachable.
    pub fail_open: bool,
    /// How long Envoy waits for the limiter's answer, in milliseconds.
    pub timeout_ms: u64,
    /// Completion tokens reserved for a request that sets no `max_tokens`.
    pub default_max_tokens: u32,
}
