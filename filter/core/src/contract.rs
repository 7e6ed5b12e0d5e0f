//! The wire contract between the three parts that make up a running router: the filter (this
//! crate, compiled to wasm), the Envoy configuration `airouter envoy` renders, and the sidecar
//! (`airouter serve`). Every name one of them writes and another reads is defined here once, and
//! nothing else in the workspace spells it as a literal: change one here and all three agree.
//!
//! The parties and what passes between them:
//! - **Envoy's plugin config → the filter**: the VM and root ids select the listener filter or the
//!   per-attempt upstream filter ([`VM_ID`], [`ROOT_ID`], [`UPSTREAM_ROOT_ID`]).
//! - **The filter → Envoy's routes**: the filter state [`ROUTE_FILTER_STATE`] names the route, and
//!   the clusters are named by [`backend_cluster`] and [`failover_cluster`].
//! - **Envoy's endpoints → the upstream filter**: each failover endpoint carries its backend's
//!   name in [`BACKEND_METADATA_PATH`].
//! - **The filter → the sidecar**: instruction headers ([`TRITON_BACKEND_HEADER`] and the rest),
//!   sent to the [`SIDECAR_AUTHORITY`], trusted when they carry [`SIDECAR_SECRET_HEADER`].
//! - **The filter → Envoy's global rate limit filter → the sidecar's rate limit service**: the
//!   `RL_*` headers, moved into [`RL_METADATA_NAMESPACE`] and turned into descriptors of domain
//!   [`RL_DOMAIN`]; the tokens to settle in [`USED_PROPERTY`].
//! - **The filter → Envoy's local reply mapper**: the details of the filter's own replies,
//!   [`LOCAL_REPLY_DETAILS`].
//! - **Listener filter ↔ upstream filters** (separate plugin instances): the failover state
//!   [`FAILOVER_PROPERTY`], the attempts of [`SESSION_ATTEMPTS_PROPERTY`] and the shared-data
//!   keys at the end of this file.
//! - **The filter → Envoy's gRPC access logger → the sidecar's access log service**: the session
//!   record in [`SESSION_FILTER_STATE`], under the log name [`SESSION_LOG_NAME`].
//!
//! Not here because each is defined beside the only code that builds it: the stat names and the
//! `stats_tags` that split them ([`crate::metrics`]), and the rate limit descriptors' kinds and
//! reservation format ([`crate::global_limits`]).
//!
//! Every header here starts with [`INTERNAL_HEADER_PREFIX`], and the filter removes every header
//! with that prefix a client sends before anything reads one. Filter-state properties are named
//! as the filter sets them; Envoy and its config see them under [`FILTER_STATE_PREFIX`].

// ---------------------------------------------------------------- plugin instances

/// The wasm VM both plugin instances share (`vm_config.vm_id`).
pub const VM_ID: &str = "airouter";
/// The root id of the listener's HTTP filter (`root_id`).
pub const ROOT_ID: &str = "airouter";
/// The root id of the filter running as a failover cluster's upstream HTTP filter, once per
/// attempt.
pub const UPSTREAM_ROOT_ID: &str = "airouter-upstream";
/// The response-code details of every reply the filter sends itself (proxy-wasm's
/// `send_local_response`); Envoy's local reply mapper leaves replies with these details alone.
pub const LOCAL_REPLY_DETAILS: &str = "airouter";

// ---------------------------------------------------------------- routing

/// What proxy-wasm prefixes to a property the filter sets, in Envoy's filter state.
pub const FILTER_STATE_PREFIX: &str = "wasm.";
/// The filter state the generated routes match to pick a backend's cluster, or a failover
/// model's aggregate cluster. Its value is a backend name or [`failover_route`]. Filter state,
/// not a header, so no client can choose a route: a request the filter did not route matches
/// only the catch-all route.
pub const ROUTE_PROPERTY: &str = "airouter_route";
/// [`ROUTE_PROPERTY`] as Envoy's config names it (`FILTER_STATE_PREFIX` + `ROUTE_PROPERTY`).
pub const ROUTE_FILTER_STATE: &str = "wasm.airouter_route";

/// Filter state the listener filter sets (to `1`) on a request from a client of Anthropic's
/// API (`/v1/messages`, `/v1/messages/count_tokens`), whatever path the request has by then:
/// Envoy's local reply mapper gives Envoy's own replies to it Anthropic's error shape.
pub const ANTHROPIC_FRONT_PROPERTY: &str = "airouter_anthropic_front";
/// [`ANTHROPIC_FRONT_PROPERTY`] as Envoy's config names it.
pub const ANTHROPIC_FRONT_FILTER_STATE: &str = "wasm.airouter_anthropic_front";

/// The Envoy cluster serving the backend named `backend`.
pub fn backend_cluster(backend: &str) -> String {
    format!("airouter_backend_{backend}")
}

/// The [`ROUTE_PROPERTY`] value routing to model number `index`'s failover chain starting at its
/// target number `first` (the filter skips targets at their limit).
pub fn failover_route(index: usize, first: usize) -> String {
    format!("@failover-{index}-{first}")
}

/// The aggregate cluster serving [`failover_route`]`(index, first)`.
pub fn failover_cluster(index: usize, first: usize) -> String {
    format!("airouter_failover_{index}_{first}")
}

/// The endpoint metadata namespace (`filter_metadata.airouter`) of a failover endpoint.
pub const METADATA_NAMESPACE: &str = "airouter";
/// The key in [`METADATA_NAMESPACE`] holding the endpoint's backend name.
pub const BACKEND_METADATA_KEY: &str = "backend";
/// The property path the upstream filter reads the endpoint's backend name from.
pub const BACKEND_METADATA_PATH: [&str; 5] = [
    "xds",
    "upstream_host_metadata",
    "filter_metadata",
    METADATA_NAMESPACE,
    BACKEND_METADATA_KEY,
];

// ---------------------------------------------------------------- headers

/// Every header the filter, Envoy's generated config and the sidecar pass between themselves
/// starts with this. A client's own are removed from every request before anything reads them.
pub const INTERNAL_HEADER_PREFIX: &str = "x-airouter-";

/// To the sidecar: the Triton backend serving the request.
pub const TRITON_BACKEND_HEADER: &str = "x-airouter-triton-backend";
/// To the sidecar: the model's name on that Triton server.
pub const TRITON_MODEL_HEADER: &str = "x-airouter-triton-model";
/// To the sidecar (and between failover attempts): the model name the client used, which the
/// answer carries.
pub const CLIENT_MODEL_HEADER: &str = "x-airouter-client-model";
/// To the sidecar: the shared secret proving the instructions come from the filter, when
/// `[sidecar] secret_env` is set.
pub const SIDECAR_SECRET_HEADER: &str = "x-airouter-sidecar-secret";
/// Between failover attempts: the client's path (an earlier attempt may have rewritten `:path`,
/// as attempts share one header map).
pub const CLIENT_PATH_HEADER: &str = "x-airouter-client-path";
/// A former attempt counter, kept only so it is removed; no attempt sends it.
pub const ATTEMPT_HEADER: &str = "x-airouter-attempt";
/// Every header only the filter may set for a backend.
pub const INSTRUCTION_HEADERS: [&str; 5] = [
    TRITON_BACKEND_HEADER,
    TRITON_MODEL_HEADER,
    CLIENT_MODEL_HEADER,
    CLIENT_PATH_HEADER,
    SIDECAR_SECRET_HEADER,
];
/// The `:authority` of every request to the sidecar (and of its health checks).
pub const SIDECAR_AUTHORITY: &str = "airouter-sidecar";

// ---------------------------------------------------------------- failover attempts

/// Request filter state carrying what the listener filter left in [`CLIENT_MODEL_HEADER`] and
/// [`CLIENT_PATH_HEADER`] from one attempt to the next, with the number of attempts so far:
/// `attempts\npath\nmodel`.
pub const FAILOVER_PROPERTY: &str = "airouter_failover";

// ---------------------------------------------------------------- session log

/// Filter state holding the request's session record (one JSON object), set by the listener
/// filter's log callback; Envoy's gRPC access logger sends it to the sidecar.
pub const SESSION_PROPERTY: &str = "airouter_session";
/// [`SESSION_PROPERTY`] as Envoy's config names it.
pub const SESSION_FILTER_STATE: &str = "wasm.airouter_session";
/// Request filter state where a failover model's upstream filter notes each attempt for the
/// session record and the GenAI telemetry (the access log shows it as is), one line per
/// attempt: `backend\tmodel`, then `\tstatus` once it answered.
pub const SESSION_ATTEMPTS_PROPERTY: &str = "airouter_attempts";
/// The `log_name` of Envoy's gRPC access logger carrying session records: the sidecar keeps
/// only the records of streams that name it.
pub const SESSION_LOG_NAME: &str = "airouter_session";

// ---------------------------------------------------------------- telemetry

/// Filter state the listener filter sets for a routed request's GenAI facts (`[tracing]`,
/// `[telemetry] access_log`), read by Envoy's tracer (the span's custom tags) and its JSON
/// access log as `%FILTER_STATE(wasm.NAME:PLAIN)%`. Set when the response has ended, before
/// Envoy finishes the span (which it does before the filter's log callback), or at that
/// callback when the client left first. Values are plain text; none ever holds a key.
/// The OpenTelemetry GenAI operation (`chat`, `text_completion`, `embeddings`, ...).
pub const OPERATION_PROPERTY: &str = "airouter_operation";
/// The model as the client named it and got it back.
pub const MODEL_PROPERTY: &str = "airouter_model";
/// The backend (its configured name) that answered; for failover, the last attempt's.
pub const BACKEND_PROPERTY: &str = "airouter_backend";
/// The model name that backend was sent.
pub const BACKEND_MODEL_PROPERTY: &str = "airouter_backend_model";
/// The client key's configured name (never the key).
pub const KEY_NAME_PROPERTY: &str = "airouter_key_name";
/// Input (prompt) tokens the backend reported.
pub const INPUT_TOKENS_PROPERTY: &str = "airouter_input_tokens";
/// Output (completion) tokens the backend reported.
pub const OUTPUT_TOKENS_PROPERTY: &str = "airouter_output_tokens";
/// Why the answer ended (`stop`, `length`, ...), as the response said.
pub const FINISH_REASON_PROPERTY: &str = "airouter_finish_reason";

/// A filter-state property as Envoy's configuration names it ([`FILTER_STATE_PREFIX`] + name).
pub fn filter_state(property: &str) -> String {
    format!("{FILTER_STATE_PREFIX}{property}")
}

/// The cluster of the OTLP/gRPC receiver Envoy's tracer exports to (`[tracing]`).
pub const TRACING_CLUSTER: &str = "airouter_otlp";

// ---------------------------------------------------------------- global rate limits

/// The client key, for `header_to_metadata` (which removes the header).
pub const RL_KEY_HEADER: &str = "x-airouter-rl-key";
/// The routed backend, likewise.
pub const RL_BACKEND_HEADER: &str = "x-airouter-rl-backend";
/// The token reservation, likewise.
pub const RL_RESERVE_HEADER: &str = "x-airouter-rl-reserve";
/// Every rate-limit header.
pub const RL_HEADERS: [&str; 3] = [RL_KEY_HEADER, RL_BACKEND_HEADER, RL_RESERVE_HEADER];
/// The dynamic metadata namespace the rate-limit headers land in.
pub const RL_METADATA_NAMESPACE: &str = "airouter.rl";
/// The entry of [`RL_METADATA_NAMESPACE`] holding [`RL_KEY_HEADER`].
pub const RL_KEY_ENTRY: &str = "key";
/// The entry holding [`RL_BACKEND_HEADER`].
pub const RL_BACKEND_ENTRY: &str = "backend";
/// The entry holding [`RL_RESERVE_HEADER`].
pub const RL_RESERVE_ENTRY: &str = "reserve";
/// Filter state holding the tokens to charge when the stream ends (the reservation until the
/// response's usage is known); the settlement descriptor's `hits_addend` reads it.
pub const USED_PROPERTY: &str = "airouter_used";
/// The rate limit domain.
pub const RL_DOMAIN: &str = "airouter";
/// The first descriptor entry's key, naming what is limited.
pub const RL_KIND_ENTRY: &str = "airouter";

// ---------------------------------------------------------------- shared data

/// Shared-data key prefix of a backend's local request counter (followed by the backend name).
pub const SHARED_COUNTER_PREFIX: &str = "airouter/rl/";
/// Shared-data key prefix of a target's cool-down (followed by the target key).
pub const SHARED_COOLDOWN_PREFIX: &str = "airouter/cool/";
/// Shared-data key prefix of a backend's last connection failure (followed by its name).
pub const SHARED_DOWN_PREFIX: &str = "airouter/down/";
/// Shared-data key prefix of a backend's model discovery state (followed by its name): when it
/// is next due, which worker fetches it now, its last success and failure (`discovery/state.rs`).
pub const SHARED_DISCOVERY_STATE_PREFIX: &str = "airouter/discovery/state/";
/// Shared-data key prefix of the models discovered from a backend (followed by its name).
pub const SHARED_DISCOVERY_MODELS_PREFIX: &str = "airouter/discovery/models/";
/// Shared-data key of the Envoy process's session record sequence (`[session_log]`: its epoch
/// and last number, see `session/sequence.rs`).
pub const SHARED_SESSION_SEQUENCE_KEY: &str = "airouter/session/sequence";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_state_names_are_the_properties_envoy_prefixes() {
        assert_eq!(
            ROUTE_FILTER_STATE,
            format!("{FILTER_STATE_PREFIX}{ROUTE_PROPERTY}")
        );
        assert_eq!(
            SESSION_FILTER_STATE,
            format!("{FILTER_STATE_PREFIX}{SESSION_PROPERTY}")
        );
        assert_eq!(
            ANTHROPIC_FRONT_FILTER_STATE,
            format!("{FILTER_STATE_PREFIX}{ANTHROPIC_FRONT_PROPERTY}")
        );
    }

    #[test]
    fn every_internal_header_has_the_prefix_the_filter_strips() {
        for h in INSTRUCTION_HEADERS
            .iter()
            .chain(&RL_HEADERS)
            .chain(&[ATTEMPT_HEADER])
        {
            assert!(h.starts_with(INTERNAL_HEADER_PREFIX), "{h}");
            assert_eq!(h.to_ascii_lowercase(), *h, "{h}");
        }
    }
}
