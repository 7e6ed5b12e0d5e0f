//! A client-visible model as compiled (`[[models]]`): its name or pattern, its APIs and its
//! targets in failover order, with the names each target and its state are kept under.

use super::TritonModel;
use crate::api::ApiSet;
use crate::pattern::Pattern;

/// `owned_by` of a model in `/v1/models` when its configuration names no owner.
pub const DEFAULT_OWNED_BY: &str = "airouter";

/// A client-visible model, checked: its name or pattern resolves requests to its targets.
#[derive(Debug, Clone)]
pub struct Model {
    /// The client-visible name, or the pattern's text.
    pub name: String,
    pub pattern: Option<Pattern>,
    pub apis: ApiSet,
    /// Where requests go, in priority order (never empty; more than one means failover).
    pub targets: Vec<ModelTarget>,
    pub default: bool,
    /// `owned_by` in `/v1/models`: the model's setting, else [`DEFAULT_OWNED_BY`].
    pub owned_by: String,
    /// How to drive the model, when its backend is a Triton server.
    pub triton: Option<TritonModel>,
}

/// One target of a model: a backend and the model's name there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTarget {
    /// Index into [`Plan::backends`](super::Plan::backends).
    pub backend: usize,
    /// `None` passes the client's name through.
    pub backend_model: Option<String>,
}

impl Model {
    /// Every target in priority order.
    pub fn targets(&self) -> &[ModelTarget] {
        &self.targets
    }

    /// The first target.
    pub fn primary(&self) -> Option<&ModelTarget> {
        self.targets.first()
    }

    /// Whether Envoy fails over between several targets.
    pub fn fails_over(&self) -> bool {
        self.targets.len() > 1
    }

    /// The model's name at a target: the configured one, or the name the client used.
    pub fn name_at<'a>(target: &'a ModelTarget, client_name: &'a str) -> &'a str {
        target.backend_model.as_deref().unwrap_or(client_name)
    }

    /// What a target's state (its cool-down after a 429) is kept under at its backend: the
    /// configured model name there, or, for a target that passes the client's name through, this
    /// model's configured name or pattern. Never the client's text, so the state a client can make
    /// the router keep is bounded by the configuration.
    pub fn state_name_at<'a>(&'a self, target: &'a ModelTarget) -> &'a str {
        target.backend_model.as_deref().unwrap_or(&self.name)
    }

    /// The Envoy route key of a model's failover over its targets from `first` on.
    pub fn failover_key(index: usize, first: usize) -> String {
        crate::contract::failover_route(index, first)
    }
}
