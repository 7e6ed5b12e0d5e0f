//! A router as compiled (`[[routers]]`): its virtual model name, its classifier, its routes
//! with their transforms and enrichment, its META rules. Prompts are text here (files were read
//! at load), templates are parsed, time zones carry their rules: the filter reads nothing else.

use crate::api::ApiSet;
use crate::router::enrich::Inject;
use crate::router::meta::MetaRule;
use crate::router::template::Template;
use crate::router::transforms::Transforms;

/// A virtual model served by classifier routing.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    /// The name clients call; no `[[models]]` entry matches it.
    pub name: String,
    /// `chat`, and optionally legacy `completions`.
    pub apis: ApiSet,
    /// Index into `routes` of the route serving when there is no usable label.
    pub default_route: usize,
    pub classifier: Classifier,
    /// The routes, in file order (never empty).
    pub routes: Vec<Route>,
    /// META rules, in file order.
    pub meta: Vec<MetaRule>,
}

/// The model that labels a router's requests, and how it is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// A `[[models]]` name (or a name a pattern serves) resolving on chat to a model on
    /// OpenAI-compatible backends.
    pub model: String,
    /// The system prompt (placeholder `{{labels}}`).
    pub prompt: Template,
    /// The user message showing the conversation (`{{history}}`, `{{latest}}`, `{{labels}}`).
    pub template: Template,
    /// Milliseconds the call may take.
    pub timeout_ms: u64,
    /// Tokens of conversation shown (4 bytes a token).
    pub context_budget_tokens: u32,
    /// `max_tokens` of the classifier's request.
    pub max_tokens: u32,
    /// A JSON reply's confidence under this takes the default route.
    pub min_confidence: Option<f64>,
}

/// One route: a label, the model that serves it, and what is done to its requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The label as configured (matched without regard to ASCII case).
    pub label: String,
    /// A `[[models]]` name (or a name a pattern serves), resolved per request on its API.
    pub model: String,
    /// Indices of the routes tried, in order, when this one's model cannot serve.
    pub fallback: Vec<usize>,
    pub transforms: Transforms,
    pub enrich: Option<Enrich>,
}

/// A route's enrichment: a Responses API call whose answer becomes context.
#[derive(Debug, Clone, PartialEq)]
pub struct Enrich {
    /// A `[[models]]` name resolving on `responses` to a model on OpenAI-compatible backends.
    pub model: String,
    /// Responses API tool types (`web_search`, ...).
    pub tools: Vec<String>,
    /// The request's `instructions`.
    pub instructions: Option<String>,
    /// How the answer is shown (`{{answer}}`).
    pub template: Template,
    pub inject: Inject,
    pub timeout_ms: u64,
    pub context_budget_tokens: u32,
    pub max_output_tokens: Option<u32>,
}

impl Router {
    /// The labels, in route order (what `{{labels}}` shows and the label parser accepts).
    pub fn labels(&self) -> Vec<&str> {
        self.routes.iter().map(|r| r.label.as_str()).collect()
    }

    /// The route labelled `label`, without regard to ASCII case.
    pub fn route_index(&self, label: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.label.eq_ignore_ascii_case(label))
    }
}
