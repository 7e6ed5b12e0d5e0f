//! `[[models]]` as written: a client-visible name or pattern, its APIs, its target or targets,
//! and a Triton table when a target is a Triton server.

use serde::Deserialize;
use toml::Spanned;

use super::RawTritonModel;
use crate::api::Api;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawModel {
    /// Client-visible name, or a glob pattern (`*` any run, `?` one character) such as `gpt-4*`.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
    /// The OpenAI APIs this model serves.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<Api>"))]
    pub apis: Spanned<Vec<Api>>,
    /// Where requests for this model go (or use `targets`).
    pub target: Option<RawTarget>,
    /// Several targets in priority order: when one fails (connection failure, reset, timeout,
    /// 5xx, 429) or is over its limit, the next serves the request.
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<RawTarget>>"))]
    pub targets: Option<Spanned<Vec<RawTarget>>>,
    /// Serve requests naming an unknown model on each of this model's APIs.
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub default: Option<Spanned<bool>>,
    /// `owned_by` in `/v1/models` (default `airouter`).
    pub owned_by: Option<String>,
    /// How to drive the model when its backend is a Triton server (required then).
    #[cfg_attr(feature = "schema", schemars(with = "Option<RawTritonModel>"))]
    pub triton: Option<Spanned<RawTritonModel>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTarget {
    /// A backend's name from `[backends]`.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub backend: Spanned<String>,
    /// The model's name at the backend (default: the name the client used).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub model: Option<Spanned<String>>,
}
