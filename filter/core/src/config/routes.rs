//! `[[routers.routes]]` checked: the route's model (serving at least one of the router's APIs),
//! its fallback labels, its transforms (system prompt and its placeholders, time zone,
//! `max_tokens` floor or removal, parameters set) and its enrichment (a Responses API model on
//! OpenAI-compatible backends, tools, template). The result is a plan [`Route`].

use super::error::{ConfigError, Locator};
use super::prompts::{clock, TextKey};
use super::raw::{RawEnrich, RawInject, RawRoute, RawSystemPromptMode};
use super::routers::{bounded, Context};
use super::{Enrich, Route};
use crate::api::{Api, ApiSet};
use crate::json_body::may_read_as;
use crate::resolve::How;
use crate::router::enrich::{Inject, DEFAULT_TEMPLATE, TEMPLATE_SLOTS};
use crate::router::template::Slot;
use crate::router::transforms::{MaxTokens, SystemPromptMode, Transforms};

/// Parameters `set` may not touch: the router's own (`model`), the conversation, and what the
/// response handling depends on.
const RESERVED: [&str; 5] = ["model", "messages", "prompt", "stream", "stream_options"];

/// Checks route `j` of router `i`. `label_index` finds a route by label; `apis` are the
/// router's; `budget` is the classifier's context budget (the enrichment's default).
#[allow(clippy::too_many_arguments)]
pub(super) fn compile_route(
    loc: &Locator,
    (i, j): (usize, usize),
    r: &RawRoute,
    label_index: &dyn Fn(&str) -> Option<usize>,
    apis: ApiSet,
    budget: u32,
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Option<Route> {
    let prefix = format!("routers[{i}].routes[{j}]");
    let key = |field: &str| format!("{prefix}.{field}");
    let before = errs.len();
    let serves = |api: Api| {
        cx.resolver
            .resolve(api, r.model.get_ref())
            .is_some_and(|(_, how)| how != How::Default)
    };
    if !apis.iter().any(serves) {
        let api = apis.iter().next().unwrap_or(Api::Chat);
        cx.check_model(loc, &key("model"), &r.model, api, false, errs);
    }
    let mut fallback = Vec::new();
    for (k, f) in r.fallback.iter().enumerate() {
        let fkey = format!("{prefix}.fallback[{k}]");
        match label_index(f.get_ref()) {
            None => errs.push(loc.error(
                f.span(),
                fkey,
                format!("no route labelled `{}`", f.get_ref()),
            )),
            Some(t) if t == j => {
                errs.push(loc.error(f.span(), fkey, "a route cannot fall back to itself"))
            }
            Some(t) if fallback.contains(&t) => {
                errs.push(loc.error(f.span(), fkey, "listed twice"))
            }
            Some(t) => fallback.push(t),
        }
    }
    let transforms = compile_transforms(loc, &prefix, r, cx, errs);
    let enrich = r
        .enrich
        .as_ref()
        .and_then(|e| compile_enrich(loc, &prefix, e.get_ref(), e.span(), budget, cx, errs));
    if errs.len() > before {
        return None;
    }
    Some(Route {
        label: r.label.get_ref().clone(),
        model: r.model.get_ref().clone(),
        fallback,
        transforms: transforms?,
        enrich,
    })
}

fn compile_transforms(
    loc: &Locator,
    prefix: &str,
    r: &RawRoute,
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Option<Transforms> {
    let key = |field: &str| format!("{prefix}.{field}");
    let prompt = TextKey {
        prefix,
        field: "system_prompt",
        inline: r.system_prompt.as_ref(),
        file: r.system_prompt_file.as_ref(),
    };
    let system_prompt = prompt
        .template(loc, cx.sources, &Slot::CLOCK, None, errs)
        .ok()?;
    let clock = match &r.time_zone {
        Some(zone) => Some(clock(
            loc,
            &key("time_zone"),
            zone,
            cx.time_zones,
            cx.sources,
            errs,
        )?),
        None => None,
    };
    if clock.is_none()
        && system_prompt
            .as_ref()
            .is_some_and(|p| p.uses_any(&Slot::CLOCK))
    {
        let span = r
            .system_prompt
            .as_ref()
            .or(r.system_prompt_file.as_ref())
            .map_or(r.label.span(), |s| s.span());
        errs.push(loc.error(
            span,
            key("time_zone"),
            "the system prompt uses a date or time placeholder: the route needs a `time_zone`",
        ));
    }
    let remove = r.remove_max_tokens.as_ref().is_some_and(|b| *b.get_ref());
    let max_tokens = match (&r.max_tokens_floor, remove) {
        (Some(f), true) => {
            errs.push(loc.error(
                f.span(),
                key("max_tokens_floor"),
                "give one of `max_tokens_floor` and `remove_max_tokens`",
            ));
            MaxTokens::Keep
        }
        (Some(f), false) if *f.get_ref() == 0 => {
            errs.push(loc.error(f.span(), key("max_tokens_floor"), "must be above 0"));
            MaxTokens::Keep
        }
        (Some(f), false) => MaxTokens::Floor(*f.get_ref()),
        (None, true) => MaxTokens::Remove,
        (None, false) => MaxTokens::Keep,
    };
    let mut set = Vec::new();
    if let Some(table) = &r.set {
        for (name, value) in table.get_ref() {
            let pkey = format!("{prefix}.set.{name}");
            let is_max =
                may_read_as(name, "max_tokens") || may_read_as(name, "max_completion_tokens");
            let why = if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                Some("parameter names are lower-case letters, digits and `_`".to_string())
            } else if let Some(r) = RESERVED.iter().find(|r| may_read_as(name, r)) {
                Some(format!("`{r}` is the router's to set, not a route's"))
            } else if is_max && max_tokens != MaxTokens::Keep {
                Some(
                    "the route already sets max tokens (`max_tokens_floor` or `remove_max_tokens`)"
                        .into(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                errs.push(loc.error(table.span(), pkey, why));
                continue;
            }
            match to_json(value) {
                Some(json) => set.push((name.clone(), json)),
                None => errs.push(loc.error(
                    table.span(),
                    pkey,
                    "dates and times have no JSON form: write them as strings",
                )),
            }
        }
    }
    let mode = match r.system_prompt_mode {
        RawSystemPromptMode::Prepend => SystemPromptMode::Prepend,
        RawSystemPromptMode::Merge => SystemPromptMode::Merge,
    };
    Some(Transforms {
        system_prompt,
        mode,
        clock,
        max_tokens,
        set,
    })
}

/// A TOML value as JSON text; `None` for TOML dates and times, which JSON has not.
fn to_json(value: &toml::Value) -> Option<String> {
    fn convert(value: &toml::Value) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        Some(match value {
            toml::Value::String(s) => J::String(s.clone()),
            toml::Value::Integer(n) => J::from(*n),
            toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            toml::Value::Boolean(b) => J::Bool(*b),
            toml::Value::Datetime(_) => return None,
            toml::Value::Array(items) => {
                J::Array(items.iter().map(convert).collect::<Option<_>>()?)
            }
            toml::Value::Table(t) => J::Object(
                t.iter()
                    .map(|(k, v)| Some((k.clone(), convert(v)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }
    serde_json::to_string(&convert(value)?).ok()
}

fn compile_enrich(
    loc: &Locator,
    route_prefix: &str,
    e: &RawEnrich,
    span: std::ops::Range<usize>,
    budget: u32,
    cx: &Context,
    errs: &mut Vec<ConfigError>,
) -> Option<Enrich> {
    let prefix = format!("{route_prefix}.enrich");
    let key = |field: &str| format!("{prefix}.{field}");
    let before = errs.len();
    cx.check_model(loc, &key("model"), &e.model, Api::Responses, true, errs);
    let mut tools = Vec::new();
    for (k, t) in e.tools.iter().enumerate() {
        let name = t.get_ref();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            errs.push(loc.error(
                t.span(),
                format!("{prefix}.tools[{k}]"),
                "tool types are lower-case letters, digits and `_`, e.g. `web_search`",
            ));
        } else {
            tools.push(name.clone());
        }
    }
    let instructions = TextKey {
        prefix: &prefix,
        field: "prompt",
        inline: e.prompt.as_ref(),
        file: e.prompt_file.as_ref(),
    }
    .read(loc, cx.sources, errs)
    .ok()
    .flatten()
    .map(|(text, _, _)| text);
    let template_key = TextKey {
        prefix: &prefix,
        field: "template",
        inline: e.template.as_ref(),
        file: e.template_file.as_ref(),
    };
    let template = template_key
        .template(
            loc,
            cx.sources,
            &TEMPLATE_SLOTS,
            Some(DEFAULT_TEMPLATE),
            errs,
        )
        .ok()
        .flatten();
    if template.as_ref().is_some_and(|t| !t.uses(Slot::Answer)) {
        let at = e
            .template
            .as_ref()
            .or(e.template_file.as_ref())
            .map_or(span, |s| s.span());
        errs.push(loc.error(at, key("template"), "the template must use `{{answer}}`"));
    }
    let timeout_ms = bounded(
        loc,
        &key("timeout_ms"),
        e.timeout_ms.as_ref(),
        30_000,
        1..=600_000,
        errs,
    );
    let context_budget_tokens = bounded(
        loc,
        &key("context_budget_tokens"),
        e.context_budget_tokens.as_ref(),
        budget,
        16..=1_000_000,
        errs,
    );
    let max_output_tokens = e.max_output_tokens.as_ref().map(|m| {
        bounded(
            loc,
            &key("max_output_tokens"),
            Some(m),
            1,
            1..=1_000_000,
            errs,
        )
    });
    if errs.len() > before {
        return None;
    }
    Some(Enrich {
        model: e.model.get_ref().clone(),
        tools,
        instructions,
        template: template?,
        inject: match e.inject {
            RawInject::Message => Inject::Message,
            RawInject::UserTurn => Inject::UserTurn,
        },
        timeout_ms,
        context_budget_tokens,
        max_output_tokens,
    })
}
