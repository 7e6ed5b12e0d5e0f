//! A resolved request: the model a requested name resolves to under a plan, its primary target's
//! backend, and the names the client and the backend see.

use super::{Backend, Model, Plan};
use crate::api::Api;
use crate::resolve::How;

/// Where one request goes.
#[derive(Debug, Clone)]
pub struct Target<'p> {
    pub model: &'p Model,
    /// The model's index in [`Plan::models`].
    pub index: usize,
    pub backend: &'p Backend,
    pub how: How,
    /// The name the client sees in responses.
    pub client_name: String,
    /// The name the backend is sent.
    pub backend_model: String,
}

impl Plan {
    /// Resolves the name a client asked for on `api` (see [`crate::resolve`]); `None` when no
    /// model serves it.
    pub fn resolve(&self, api: Api, requested: &str) -> Option<Target<'_>> {
        let (i, how) = self.resolver.resolve(api, requested)?;
        let model = self.models.get(i)?;
        let primary = model.primary()?;
        let backend = self.backends.get(primary.backend)?;
        let client_name = match how {
            How::Exact | How::Pattern => requested.to_string(),
            How::Default => model.name.clone(),
        };
        let backend_model = Model::name_at(primary, &client_name).to_string();
        Some(Target {
            model,
            index: i,
            backend,
            how,
            client_name,
            backend_model,
        })
    }
}
