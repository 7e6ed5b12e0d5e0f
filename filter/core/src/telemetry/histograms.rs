//! The GenAI histograms in Envoy's stats, named after the OpenTelemetry GenAI semantic
//! conventions' metrics (`gen_ai.client.token.usage`, `gen_ai.server.request.duration`,
//! `gen_ai.server.time_to_first_token`, `gen_ai.server.time_per_output_token`) with their
//! bucket boundaries, tagged with `stats_config.stats_tags` as the filter's counters are
//! ([`crate::metrics::TAGS`] and [`TAGS`]).
//!
//! One deviation, forced by Envoy: its histograms hold integers, so the durations, which the
//! conventions measure in seconds, are recorded in milliseconds, and their names say so with the
//! unit suffix OpenTelemetry's Prometheus mapping gives a metric in `ms`
//! (`gen_ai_server_request_duration_milliseconds`); the buckets are the conventions' seconds
//! times 1000. Token usage is a count (`{token}`), as the conventions have it.
//!
//! Stat names carry their tags as `.TAG.VALUE` segments after the metric's name:
//! `NAME.gen_ai_operation_name.OP[.gen_ai_token_type.T][.key_name.K].gen_ai_request_model.M
//! [.gen_ai_provider_name.B]`. Envoy matches each `stats_tags` regex against the whole name
//! (as measured with Envoy 1.40), so each of [`TAGS`] finds its segment anywhere, and
//! `/stats/prometheus` shows `gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat",
//! gen_ai_token_type="input",key_name="team-a",gen_ai_request_model="chat",
//! gen_ai_provider_name="vllm",le="16"}`: the conventions' attribute names, the model being the
//! configured name or pattern and the provider the backend's configured name.

/// Tokens per request, by type (`gen_ai_token_type` `input` or `output`).
pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
/// The request's duration, from its headers to the response's end, in ms.
pub const REQUEST_DURATION: &str = "gen_ai.server.request.duration_milliseconds";
/// A successful stream's time to its first text, from the request's headers, in ms.
pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai.server.time_to_first_token_milliseconds";
/// A successful stream's time per output token after the first, in ms.
pub const TIME_PER_OUTPUT_TOKEN: &str = "gen_ai.server.time_per_output_token_milliseconds";

/// Each histogram's explicit bucket boundaries: the conventions' (`ExplicitBucketBoundaries`),
/// durations in ms.
pub const BUCKETS: [(&str, &[f64]); 4] = [
    (
        TOKEN_USAGE,
        &[
            1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
            4194304.0, 16777216.0, 67108864.0,
        ],
    ),
    (
        REQUEST_DURATION,
        &[
            10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0, 2560.0, 5120.0, 10240.0, 20480.0,
            40960.0, 81920.0,
        ],
    ),
    (
        TIME_TO_FIRST_TOKEN,
        &[
            1.0, 5.0, 10.0, 20.0, 40.0, 60.0, 80.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
            5000.0, 7500.0, 10000.0,
        ],
    ),
    (
        TIME_PER_OUTPUT_TOKEN,
        &[
            10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 2500.0,
        ],
    ),
];

/// The tags of these histograms, beside [`crate::metrics::TAGS`], each found anywhere in the
/// name (a segment ends at the next `.` or the name's end). Named as OpenTelemetry's Prometheus
/// mapping names the conventions' attributes; `key_name` is ours.
pub const TAGS: [(&str, &str); 5] = [
    (
        "gen_ai_operation_name",
        r"(\.gen_ai_operation_name\.([^.]+))(?:\.|$)",
    ),
    (
        "gen_ai_token_type",
        r"(\.gen_ai_token_type\.([^.]+))(?:\.|$)",
    ),
    (
        "gen_ai_request_model",
        r"(\.gen_ai_request_model\.([^.]+))(?:\.|$)",
    ),
    (
        "gen_ai_provider_name",
        r"(\.gen_ai_provider_name\.([^.]+))(?:\.|$)",
    ),
    ("key_name", r"(\.key_name\.([^.]+))(?:\.|$)"),
];

/// One request's tag values: configured names only.
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a> {
    pub operation: &'a str,
    pub model: &'a str,
    pub backend: Option<&'a str>,
    pub key: Option<&'a str>,
}

/// One histogram series: the metric and its labels (name, cleaned value), in the order the stat
/// name spells them. A host with labelled histograms (the dynamic module's) records it under its
/// labels; one with plain names (proxy-wasm) under [`Series::stat_name`]. Both give Envoy the same
/// stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// One of the four metrics above.
    pub metric: &'static str,
    /// `(label, value)` pairs: `gen_ai_operation_name`, then `gen_ai_token_type` (token usage
    /// only), `key_name` (with a key), `gen_ai_request_model`, `gen_ai_provider_name` (with a
    /// backend).
    pub labels: Vec<(&'static str, String)>,
}

impl Series {
    /// The stat name: `METRIC.LABEL.VALUE...`, labels in order (what [`TAGS`] take apart).
    pub fn stat_name(&self) -> String {
        let mut name = self.metric.to_string();
        for (label, value) in &self.labels {
            name.push('.');
            name.push_str(label);
            name.push('.');
            name.push_str(value);
        }
        name
    }

    /// The label names, in order.
    pub fn label_names(&self) -> Vec<&'static str> {
        self.labels.iter().map(|(l, _)| *l).collect()
    }
}

/// Every label list a series of `metric` can have, in order (a key and a backend are optional):
/// what a host that defines labelled histograms up front defines.
pub fn label_sets(metric: &str) -> Vec<Vec<&'static str>> {
    let mut sets = Vec::with_capacity(4);
    for key in [false, true] {
        for backend in [false, true] {
            let mut labels = vec![OPERATION];
            if metric == TOKEN_USAGE {
                labels.push(TOKEN_TYPE);
            }
            if key {
                labels.push(KEY);
            }
            labels.push(MODEL);
            if backend {
                labels.push(PROVIDER);
            }
            sets.push(labels);
        }
    }
    sets
}

const OPERATION: &str = "gen_ai_operation_name";
const TOKEN_TYPE: &str = "gen_ai_token_type";
const KEY: &str = "key_name";
const MODEL: &str = "gen_ai_request_model";
const PROVIDER: &str = "gen_ai_provider_name";

impl Tags<'_> {
    /// The series of histogram `metric` with these tags.
    pub fn series(&self, metric: &'static str) -> Series {
        self.with(metric, None)
    }

    /// The series of [`TOKEN_USAGE`] for tokens of type `kind` (`input` or `output`).
    pub fn token_usage(&self, kind: &str) -> Series {
        self.with(TOKEN_USAGE, Some(kind))
    }

    fn with(&self, metric: &'static str, token_type: Option<&str>) -> Series {
        let mut labels = vec![(OPERATION, clean(self.operation))];
        if let Some(t) = token_type {
            labels.push((TOKEN_TYPE, clean(t)));
        }
        if let Some(k) = self.key {
            labels.push((KEY, clean(k)));
        }
        labels.push((MODEL, clean(self.model)));
        if let Some(b) = self.backend {
            labels.push((PROVIDER, clean(b)));
        }
        Series { metric, labels }
    }
}

/// Keeps a tag value within one stat-name segment (as [`crate::metrics`] does).
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
