//! `[[routers]]` as written: a virtual model whose requests a classifier labels, the routes the
//! labels pick (each a `[[models]]` model with its request transforms and an optional
//! enrichment), META rules, and the prompts, inline or from files read at load.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::api::Api;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawRouter {
    /// The virtual model clients call, e.g. `ai-router`; no `[[models]]` name or pattern may
    /// match it.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub name: Spanned<String>,
    /// The APIs it serves: `chat`, and optionally legacy `completions` (default `["chat"]`).
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<Api>>"))]
    pub apis: Option<Spanned<Vec<Api>>>,
    /// The label of the route that serves when there is no usable label.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub default_route: Spanned<String>,
    /// The model that labels requests.
    #[cfg_attr(feature = "schema", schemars(with = "RawClassifier"))]
    pub classifier: Spanned<RawClassifier>,
    /// The routes, one per label.
    #[cfg_attr(feature = "schema", schemars(with = "Vec<RawRoute>"))]
    pub routes: Spanned<Vec<RawRoute>>,
    /// Rules sending client meta-requests (titles, tags, follow-ups) to a route unclassified.
    #[serde(default)]
    pub meta: Vec<RawMetaRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawClassifier {
    /// A `[[models]]` chat model on OpenAI-compatible backends.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub model: Spanned<String>,
    /// The classification prompt (system message), inline; or `prompt_file`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub prompt: Option<Spanned<String>>,
    /// A file holding the classification prompt, relative to this file; read at load.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub prompt_file: Option<Spanned<String>>,
    /// How the conversation is shown to the classifier (`{{history}}`, `{{latest}}`,
    /// `{{labels}}`), inline; or `template_file`. Default: the history, then the latest turn.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub template: Option<Spanned<String>>,
    /// A file holding the template, relative to this file; read at load.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub template_file: Option<Spanned<String>>,
    /// How long the classifier may take, in milliseconds (default 5000).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Tokens of conversation the classifier sees, estimated as 4 bytes a token (default 2000).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub context_budget_tokens: Option<Spanned<u32>>,
    /// `max_tokens` of the classifier's request (default 256, room for a `<think>` block).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub max_tokens: Option<Spanned<u32>>,
    /// A JSON reply's confidence under this (0 to 1) takes the default route.
    #[cfg_attr(feature = "schema", schemars(with = "Option<f64>"))]
    pub min_confidence: Option<Spanned<f64>>,
}

/// How a route's system prompt meets the client's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RawSystemPromptMode {
    /// A system message of its own, before the client's messages.
    #[default]
    Prepend,
    /// At the start of the client's first message when it is a system (or developer) one.
    Merge,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawRoute {
    /// The label the classifier answers for this route (letters, digits, `_`, `-`; matched
    /// without regard to case).
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub label: Spanned<String>,
    /// The `[[models]]` model that serves the route.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub model: Spanned<String>,
    /// Labels of the routes tried, in order, when this route's model cannot serve (then the
    /// default route).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub fallback: Vec<Spanned<String>>,
    /// The route's system prompt, inline; or `system_prompt_file`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub system_prompt: Option<Spanned<String>>,
    /// A file holding the route's system prompt, relative to this file; read at load.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub system_prompt_file: Option<Spanned<String>>,
    /// `prepend` (default) or `merge`.
    #[serde(default)]
    pub system_prompt_mode: RawSystemPromptMode,
    /// An IANA time zone (`Europe/Berlin`): the current date and time in it go into the system
    /// prompt (its `{{datetime}}`-style placeholders, or a line appended).
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub time_zone: Option<Spanned<String>>,
    /// `max_tokens` / `max_completion_tokens` lower than this are raised to it.
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub max_tokens_floor: Option<Spanned<u32>>,
    /// Remove `max_tokens` and `max_completion_tokens`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub remove_max_tokens: Option<Spanned<bool>>,
    /// Request parameters set on every request of the route, e.g. `{ temperature = 0.2 }`.
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<BTreeMap<String, serde_json::Value>>")
    )]
    pub set: Option<Spanned<BTreeMap<String, toml::Value>>>,
    /// Ask an enrichment model (with live search) first and give its answer as context.
    #[cfg_attr(feature = "schema", schemars(with = "Option<RawEnrich>"))]
    pub enrich: Option<Spanned<RawEnrich>>,
}

/// Where an enrichment's answer goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RawInject {
    /// A system message just before the last user message.
    #[default]
    Message,
    /// The start of the last user message's content (for chat templates that take a system
    /// message only first).
    UserTurn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawEnrich {
    /// A `[[models]]` model serving `responses` on OpenAI-compatible backends.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub model: Spanned<String>,
    /// Responses API tool types it may use, e.g. `["web_search"]` (xAI: `"x_search"`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Vec<String>"))]
    pub tools: Vec<Spanned<String>>,
    /// Instructions for the enrichment model, inline; or `prompt_file`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub prompt: Option<Spanned<String>>,
    /// A file holding the instructions, relative to this file; read at load.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub prompt_file: Option<Spanned<String>>,
    /// How the answer is shown to the route's model (`{{answer}}`), inline; or `template_file`.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub template: Option<Spanned<String>>,
    /// A file holding the template, relative to this file; read at load.
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub template_file: Option<Spanned<String>>,
    /// `message` (default) or `user_turn`.
    #[serde(default)]
    pub inject: RawInject,
    /// How long the enrichment may take, in milliseconds (default 30000).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub timeout_ms: Option<Spanned<u64>>,
    /// Tokens of conversation it is sent (default: the classifier's budget).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub context_budget_tokens: Option<Spanned<u32>>,
    /// `max_output_tokens` of its request (default: the model's).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u32>"))]
    pub max_output_tokens: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawMetaRule {
    /// The label of the route such requests go to.
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub route: Spanned<String>,
    /// The request holds exactly one user message (and no assistant or tool one).
    #[serde(default)]
    pub single_user_message: bool,
    /// The latest user message contains one of these, e.g. `["### Task:"]`.
    #[serde(default)]
    pub contains_any: Vec<String>,
    /// The latest user message is at least this many characters long.
    pub min_chars: Option<u32>,
}

/// One offset change of a time zone, as `[time_zones]` lists them: from this Unix second on,
/// this many seconds east of UTC, under this abbreviation (`[1743296400, 7200, "CEST"]`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawTransition(pub i64, pub i32, pub String);
