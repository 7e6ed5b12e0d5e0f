//! The read side, for `/v1/models` and `/router/health`: what shared data holds of each
//! discovered backend at one moment, and the models each pattern model serves from it.

use super::state::{decode_models, decode_state, models_key, state_key, State};
use super::DiscoveredModel;
use crate::config::{Model, Plan};
use crate::resolve::How;

/// Reads a shared-data value by key (the host's `shared_get`, without the CAS token).
pub type SharedRead<'a> = &'a dyn Fn(&str) -> Option<Vec<u8>>;

/// One discovered backend as shared data holds it now.
#[derive(Debug, Clone)]
pub struct BackendView {
    /// Index into [`Plan::backends`].
    pub backend: usize,
    pub state: State,
    /// The models of its last success while they are listed (within the grace period), else
    /// none.
    pub models: Vec<DiscoveredModel>,
}

/// Every discovered backend at one moment.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub backends: Vec<BackendView>,
}

impl Listed {
    /// What shared data holds at `now` of every backend `plan` discovers (nothing without
    /// `[discovery]`); the models only of backends whose last success is within the grace
    /// period.
    pub fn load(get: SharedRead<'_>, plan: &Plan, now: u64) -> Listed {
        let Some(config) = &plan.discovery else {
            return Listed::default();
        };
        let backends = config
            .backends
            .iter()
            .filter_map(|&i| {
                let name = &plan.backends.get(i)?.name;
                let state = get(&state_key(name)).map_or_else(State::default, |b| decode_state(&b));
                let models = if state.listed(now, config.grace_ms) {
                    get(&models_key(name)).map_or_else(Vec::new, |b| decode_models(&b))
                } else {
                    Vec::new()
                };
                Some(BackendView {
                    backend: i,
                    state,
                    models,
                })
            })
            .collect();
        Listed { backends }
    }

    /// The listed models of backend `backend` (an index into [`Plan::backends`]).
    pub fn models_of(&self, backend: usize) -> &[DiscoveredModel] {
        self.backends
            .iter()
            .find(|v| v.backend == backend)
            .map_or(&[], |v| v.models.as_slice())
    }

    /// Every listed model a pattern model serves, with that model, in plan order then each
    /// backend's order: a model of a backend the pattern passes the client's name through to,
    /// whose name the pattern matches and that resolves to that pattern model on one of its
    /// APIs (not to an exact name or a more specific pattern). The client's name is the
    /// backend's, as the pattern passes it through. A name may come more than once. A name the
    /// configuration gives a target (`model = "..."`, in any ASCII case) is never listed: the
    /// configuration hides it behind a client-visible name, and responses rename it.
    pub fn served<'a>(&'a self, plan: &'a Plan) -> Vec<(&'a DiscoveredModel, &'a Model)> {
        if self.backends.is_empty() {
            return Vec::new();
        }
        let hidden: Vec<&str> = plan
            .models
            .iter()
            .flat_map(|m| m.targets())
            .filter_map(|t| t.backend_model.as_deref())
            .collect();
        let configured = |id: &str| hidden.iter().any(|h| h.eq_ignore_ascii_case(id));
        let mut out = Vec::new();
        for (i, m) in plan.models.iter().enumerate() {
            let Some(pattern) = &m.pattern else { continue };
            for t in m.targets().iter().filter(|t| t.backend_model.is_none()) {
                for d in self.models_of(t.backend) {
                    let resolves_here = || {
                        m.apis
                            .iter()
                            .any(|api| plan.resolver.resolve(api, &d.id) == Some((i, How::Pattern)))
                    };
                    if pattern.matches(&d.id) && !configured(&d.id) && resolves_here() {
                        out.push((d, m));
                    }
                }
            }
        }
        out
    }
}
