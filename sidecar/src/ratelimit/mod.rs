//! Envoy's rate limit service (`envoy.service.ratelimit.v3`) for `[global_limits]`: Envoy's
//! `ratelimit` filter asks it about every routed request, and once more when a stream with a token
//! reservation ends. Limits come from the same `airouter.toml` as Envoy's; counts live in Redis,
//! so every Envoy sharing the Redis shares the limits.

pub mod descriptors;
pub mod service;
pub mod store;

#[allow(clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("envoy.service.ratelimit.v3");
}
