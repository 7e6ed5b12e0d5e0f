//! Where the filter's GenAI facts show in Envoy's output: the span attributes of the OpenAI
//! listener's span (HCM `tracing.custom_tags`, each a substitution-format `value` reading one
//! filter-state property, as Envoy 1.40 allows) and the fields of its JSON access log. Pairs of
//! (name, property of [`crate::contract`]); `airouter envoy` renders both from these lists.

use crate::contract;

/// The OpenTelemetry GenAI attributes on Envoy's span, each from its filter-state property.
/// `gen_ai.request.model` and `gen_ai.response.model` are both the client-visible name: the
/// filter renames every answer, so the model the client got is the one it asked for.
pub const SPAN_ATTRIBUTES: [(&str, &str); 8] = [
    ("gen_ai.operation.name", contract::OPERATION_PROPERTY),
    ("gen_ai.provider.name", contract::BACKEND_PROPERTY),
    ("gen_ai.request.model", contract::MODEL_PROPERTY),
    ("gen_ai.response.model", contract::MODEL_PROPERTY),
    ("gen_ai.usage.input_tokens", contract::INPUT_TOKENS_PROPERTY),
    (
        "gen_ai.usage.output_tokens",
        contract::OUTPUT_TOKENS_PROPERTY,
    ),
    (
        "gen_ai.response.finish_reasons",
        contract::FINISH_REASON_PROPERTY,
    ),
    ("airouter.key_name", contract::KEY_NAME_PROPERTY),
];

/// The access log's fields from the filter (`[telemetry] access_log`), beside Envoy's own
/// (route, backend, attempts, ...).
pub const ACCESS_LOG_FIELDS: [(&str, &str); 7] = [
    ("operation", contract::OPERATION_PROPERTY),
    ("model", contract::MODEL_PROPERTY),
    ("backend_model", contract::BACKEND_MODEL_PROPERTY),
    ("key_name", contract::KEY_NAME_PROPERTY),
    ("input_tokens", contract::INPUT_TOKENS_PROPERTY),
    ("output_tokens", contract::OUTPUT_TOKENS_PROPERTY),
    ("finish_reason", contract::FINISH_REASON_PROPERTY),
];

/// Envoy's substitution format reading `property` as text (absent: the tag is left out, the
/// log field is `null`).
pub fn format_of(property: &str) -> String {
    format!("%FILTER_STATE({}:PLAIN)%", contract::filter_state(property))
}
