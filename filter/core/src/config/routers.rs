//! `[[routers]]` checked: each router's virtual model name (valid, and no `[[models]]` name or
//! pattern matching it, no other router's), its APIs (chat and legacy completions), its routes'
//! labels (unique without regard to case), its default route, its classifier (a chat model on
//! OpenAI-compatible backends, a prompt, limits) and its META rules; each route is checked in
//! `routes.rs`. The result is the plan's [`Router`]s, in file order.

use std::collections::BTreeMap;

use toml::Spanned;

use super::error::{ConfigError, Locator};
use super::models::check_model_name;
use super::prompts::TextKey;
use super::raw::{RawClassifier, RawMetaRule, RawRouter, RawTransition};
use super::routes::compile_route;
use super::sources::Sources;
use super::{Backend, BackendKind, Classifier, Model, Router};
use crate::api::{Api, ApiSet};
use crate::resolve::{How, ModelResolver};
use crate::router::classifier::{DEFAULT_TEMPLATE, PROMPT_SLOTS, TEMPLATE_SLOTS};
use crate::router::meta::MetaRule;

/// What the routers' checks read of the compiled plan.
pub(super) struct Context<'a> {
    pub models: &'a [Model],
    pub backends: &'a [Backend],
    pub resolver: &'a ModelResolver,
    /// `[time_zones]`: each zone's offset changes.
    pub time_zones: &'a BTreeMap<String, Vec<RawTransition>>,
    pub sources: &'a Sources<'a>,
}

impl Context<'_> {
    /// Checks that `name` (at `key`) names a model serving `api` by its name or a pattern, on
    /// OpenAI-compatible backends only when `openai_only`. `what` says what the model is for.
    pub fn check_model(
        &self,
        loc: &Locator,
        key: &str,
        name: &Spanned<String>,
        api: Api,
        openai_only: bool,
        errs: &mut Vec<ConfigError>,
    ) -> bool {
        let n = name.get_ref();
        let found = self
            .resolver
            .resolve(api, n)
            .filter(|(_, how)| *how != How::Default);
        let Some(model) = found.and_then(|(i, _)| self.models.get(i)) else {
            let why = if self.resolver.knows(n) {
                format!("the model `{n}` does not serve `{}`", api.config_name())
            } else {
                format!("no `[[models]]` model named `{n}`")
            };
            errs.push(loc.error(name.span(), key, why));
            return false;
        };
        let on_triton = model.targets().iter().any(|t| {
            self.backends
                .get(t.backend)
                .is_some_and(|b| b.kind == BackendKind::Triton)
        });
        if openai_only && on_triton {
            errs.push(loc.error(
                name.span(),
                key,
                format!("`{n}` has a target on a Triton backend; the router calls this model directly, so its targets must be `openai` backends"),
            ));
            return false;
        }
        true
    }
}

/// Checks every router, pushing what is wrong to `errs`; returns the routers that compiled.
pub(super) fn compile_routers(
    loc: &Locator,
    raw: &[RawRouter],
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Vec<Router> {
    let mut routers: Vec<Router> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let name = r.name.get_ref();
        if raw.iter().take(i).any(|o| o.name.get_ref() == name) {
            errs.push(loc.error(
                r.name.span(),
                format!("routers[{i}].name"),
                format!("`{name}` names two routers"),
            ));
        }
        if let Some(router) = compile_router(loc, i, r, cx, errs) {
            routers.push(router);
        }
    }
    routers
}

/// A label: 1-64 letters, digits, `_` and `-`, starting and ending with a letter or digit.
fn valid_label(label: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    label.len() <= 64
        && edge(label.chars().next())
        && edge(label.chars().last())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn compile_router(
    loc: &Locator,
    i: usize,
    r: &RawRouter,
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Option<Router> {
    let key = |field: &str| format!("routers[{i}].{field}");
    let before = errs.len();
    let name = r.name.get_ref();
    if let Err(why) = check_model_name(name) {
        errs.push(loc.error(r.name.span(), key("name"), why));
    } else if cx.resolver.knows(name) {
        errs.push(loc.error(
            r.name.span(),
            key("name"),
            format!("`{name}` is also a `[[models]]` name or matches one's pattern"),
        ));
    }
    let apis = match &r.apis {
        None => [Api::Chat].into_iter().collect(),
        Some(list) => {
            let bad = list
                .get_ref()
                .iter()
                .find(|a| !matches!(a, Api::Chat | Api::Completions));
            if list.get_ref().is_empty() || bad.is_some() {
                errs.push(loc.error(
                    list.span(),
                    key("apis"),
                    "a router serves `chat` and optionally `completions`",
                ));
            }
            list.get_ref().iter().copied().collect::<ApiSet>()
        }
    };
    let routes_raw = r.routes.get_ref();
    if routes_raw.is_empty() {
        errs.push(loc.error(
            r.routes.span(),
            key("routes"),
            "must list at least one route",
        ));
        return None;
    }
    for (j, route) in routes_raw.iter().enumerate() {
        let label = route.label.get_ref();
        let lkey = format!("routers[{i}].routes[{j}].label");
        if !valid_label(label) {
            errs.push(loc.error(
                route.label.span(),
                lkey,
                "labels are 1-64 letters, digits, `_` and `-`, starting and ending with a letter or digit",
            ));
        } else if routes_raw
            .iter()
            .take(j)
            .any(|o| o.label.get_ref().eq_ignore_ascii_case(label))
        {
            errs.push(loc.error(
                route.label.span(),
                lkey,
                format!("`{label}` labels two routes (labels are matched without regard to case)"),
            ));
        }
    }
    let label_index = |label: &str| {
        routes_raw
            .iter()
            .position(|o| o.label.get_ref().eq_ignore_ascii_case(label))
    };
    let known = || {
        routes_raw
            .iter()
            .map(|o| o.label.get_ref().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let default_route = label_index(r.default_route.get_ref());
    if default_route.is_none() {
        errs.push(loc.error(
            r.default_route.span(),
            key("default_route"),
            format!(
                "no route labelled `{}` (labels: {})",
                r.default_route.get_ref(),
                known()
            ),
        ));
    }
    let classifier = compile_classifier(loc, i, &r.classifier, cx, errs);
    let budget = classifier.as_ref().map_or(0, |c| c.context_budget_tokens);
    let routes: Vec<_> = routes_raw
        .iter()
        .enumerate()
        .filter_map(|(j, route)| {
            compile_route(loc, (i, j), route, &label_index, apis, budget, cx, errs)
        })
        .collect();
    let meta: Vec<MetaRule> = r
        .meta
        .iter()
        .enumerate()
        .filter_map(|(j, m)| compile_meta(loc, (i, j), m, &label_index, &known, errs))
        .collect();
    if errs.len() > before {
        return None;
    }
    Some(Router {
        name: name.clone(),
        apis,
        default_route: default_route?,
        classifier: classifier?,
        routes,
        meta,
    })
}

fn compile_classifier(
    loc: &Locator,
    i: usize,
    table: &Spanned<RawClassifier>,
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Option<Classifier> {
    let c = table.get_ref();
    let prefix = format!("routers[{i}].classifier");
    let key = |field: &str| format!("{prefix}.{field}");
    let model_ok = cx.check_model(loc, &key("model"), &c.model, Api::Chat, true, errs);
    let prompt = TextKey {
        prefix: &prefix,
        field: "prompt",
        inline: c.prompt.as_ref(),
        file: c.prompt_file.as_ref(),
    };
    let prompt = match prompt.template(loc, cx.sources, &PROMPT_SLOTS, None, errs) {
        Ok(Some(p)) => Some(p),
        Ok(None) => {
            errs.push(loc.error(
                table.span(),
                key("prompt"),
                "the classifier needs a `prompt` or a `prompt_file`",
            ));
            None
        }
        Err(()) => None,
    };
    let template = TextKey {
        prefix: &prefix,
        field: "template",
        inline: c.template.as_ref(),
        file: c.template_file.as_ref(),
    }
    .template(
        loc,
        cx.sources,
        &TEMPLATE_SLOTS,
        Some(DEFAULT_TEMPLATE),
        errs,
    )
    .ok()
    .flatten();
    let timeout_ms = bounded(
        loc,
        &key("timeout_ms"),
        c.timeout_ms.as_ref(),
        5_000,
        1..=600_000,
        errs,
    );
    let context_budget_tokens = bounded(
        loc,
        &key("context_budget_tokens"),
        c.context_budget_tokens.as_ref(),
        2_000,
        16..=1_000_000,
        errs,
    );
    let max_tokens = bounded(
        loc,
        &key("max_tokens"),
        c.max_tokens.as_ref(),
        256,
        1..=65_536,
        errs,
    );
    let min_confidence = c.min_confidence.as_ref().and_then(|m| {
        let v = *m.get_ref();
        if (0.0..=1.0).contains(&v) {
            Some(v)
        } else {
            errs.push(loc.error(m.span(), key("min_confidence"), "must be within 0 and 1"));
            None
        }
    });
    if !model_ok {
        return None;
    }
    Some(Classifier {
        model: c.model.get_ref().clone(),
        prompt: prompt?,
        template: template?,
        timeout_ms,
        context_budget_tokens,
        max_tokens,
        min_confidence,
    })
}

/// `value` (default `default` when absent) within `range`; an error at its span otherwise.
pub(super) fn bounded<T>(
    loc: &Locator,
    key: &str,
    value: Option<&Spanned<T>>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    errs: &mut Vec<ConfigError>,
) -> T
where
    T: Copy + PartialOrd + std::fmt::Display,
{
    let Some(v) = value else {
        return default;
    };
    if !range.contains(v.get_ref()) {
        errs.push(loc.error(
            v.span(),
            key,
            format!("must be within {} and {}", range.start(), range.end()),
        ));
    }
    *v.get_ref()
}

fn compile_meta(
    loc: &Locator,
    (i, j): (usize, usize),
    m: &RawMetaRule,
    label_index: &dyn Fn(&str) -> Option<usize>,
    known: &dyn Fn() -> String,
    errs: &mut Vec<ConfigError>,
) -> Option<MetaRule> {
    let key = |field: &str| format!("routers[{i}].meta[{j}].{field}");
    let Some(route) = label_index(m.route.get_ref()) else {
        errs.push(loc.error(
            m.route.span(),
            key("route"),
            format!(
                "no route labelled `{}` (labels: {})",
                m.route.get_ref(),
                known()
            ),
        ));
        return None;
    };
    if !m.single_user_message && m.contains_any.is_empty() && m.min_chars.is_none() {
        errs.push(loc.error(
            m.route.span(),
            format!("routers[{i}].meta[{j}]"),
            "a META rule needs a condition: `single_user_message`, `contains_any` or `min_chars`",
        ));
        return None;
    }
    if m.contains_any.iter().any(String::is_empty) {
        errs.push(loc.error(
            m.route.span(),
            key("contains_any"),
            "markers must not be empty",
        ));
        return None;
    }
    Some(MetaRule {
        route,
        single_user_message: m.single_user_message,
        contains_any: m.contains_any.clone(),
        min_chars: m.min_chars.map(|n| n as usize),
    })
}

#[cfg(test)]
mod tests;
