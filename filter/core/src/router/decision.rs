//! The record of how one request to a router was routed, for the session log and the stats:
//! which route served and why, what the classifier said and how long it took, and how the
//! enrichment went. Serialized as JSON (field names are the session log's).

use serde::Serialize;

use super::choice::{ChosenBy, Unavailable};
use super::context::cut_to;

/// The most of a classifier's reply a record keeps (both ends, as [`cut_to`] cuts).
pub const MAX_RECORDED_REPLY_BYTES: usize = 2048;

/// How one request to a router was routed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingDecision {
    /// The router's name: the model the client asked for and sees.
    pub virtual_model: String,
    /// The label the classifier's reply named, if it named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The label of the route that served.
    pub route: String,
    /// That route's model (its `[[models]]` name).
    pub model: String,
    pub chosen_by: ChosenBy,
    /// Why, in words: the label, the META rule, why the default, why a fallback.
    pub reason: String,
    /// Routes passed over because their model could not serve, in the order tried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRoute>,
    /// The classifier call, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierOutcome>,
    /// The enrichment call, when the route enriches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrichment: Option<EnrichmentOutcome>,
}

/// A route passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRoute {
    pub route: String,
    pub reason: Unavailable,
}

/// The classifier call of one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassifierOutcome {
    /// The reply's answer text, at most [`MAX_RECORDED_REPLY_BYTES`] (both ends kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// The confidence the reply gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// What went wrong: the call (timeout, status, connection) or the reply (no label, why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From the call's dispatch to its reply (or failure), in milliseconds.
    pub latency_ms: u64,
}

impl ClassifierOutcome {
    /// An outcome keeping at most [`MAX_RECORDED_REPLY_BYTES`] of `reply`.
    pub fn new(
        reply: Option<&str>,
        confidence: Option<f64>,
        error: Option<String>,
        latency_ms: u64,
    ) -> ClassifierOutcome {
        ClassifierOutcome {
            reply: reply.map(|r| cut_to(r, MAX_RECORDED_REPLY_BYTES).into_owned()),
            confidence,
            error,
            latency_ms,
        }
    }
}

/// The enrichment call of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrichmentOutcome {
    /// The model's name (`[[models]]`) that was asked.
    pub model: String,
    /// Whether an answer was injected.
    pub injected: bool,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes of answer injected.
    pub answer_bytes: usize,
    /// The answer was cut to [`super::enrich::MAX_ANSWER_BYTES`].
    pub answer_cut: bool,
    pub latency_ms: u64,
}

impl RoutingDecision {
    /// The decision as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_serializes_with_the_session_logs_names() {
        let d = RoutingDecision {
            virtual_model: "ai-router".into(),
            label: Some("COMPLEX".into()),
            route: "SIMPLE".into(),
            model: "local-chat".into(),
            chosen_by: ChosenBy::Fallback,
            reason: "label COMPLEX; its route could not serve".into(),
            skipped: vec![SkippedRoute {
                route: "COMPLEX".into(),
                reason: Unavailable::Keyless,
            }],
            classifier: Some(ClassifierOutcome::new(
                Some(&format!("<think>{}</think>COMPLEX", "x".repeat(5000))),
                None,
                None,
                41,
            )),
            enrichment: None,
        };
        let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(json["chosen_by"], "fallback");
        assert_eq!(json["skipped"][0]["reason"], "keyless");
        assert_eq!(json["classifier"]["latency_ms"], 41);
        let reply = json["classifier"]["reply"].as_str().unwrap();
        assert!(reply.len() <= MAX_RECORDED_REPLY_BYTES && reply.ends_with("COMPLEX"));
        assert!(json.get("enrichment").is_none() && json["classifier"].get("error").is_none());
    }
}
