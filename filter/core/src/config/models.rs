//! `[[models]]` checked: each model's name (or glob pattern), its APIs, its targets (every one a
//! known backend, none twice), a default only on a concrete name, and a `triton` table exactly
//! when a target is a Triton server; then, across models, one model per name and API and one
//! default per API. The result is the plan's [`Model`]s, in file order.

use std::collections::{BTreeMap, HashMap};

use super::error::{ConfigError, Locator};
use super::raw::{RawBackend, RawModel};
use super::triton::compile_triton;
use super::{Backend, BackendKind, Model, ModelTarget, DEFAULT_OWNED_BY};
use crate::api::{Api, ApiSet};
use crate::pattern::Pattern;

/// Checks every model against the backends that compiled (`backends`, found by name through
/// `backend_index`; `raw_backends` tells a failed backend from a missing one), then the models
/// against each other. Pushes what is wrong to `errs`; returns the models that compiled.
pub(super) fn compile_models(
    loc: &Locator,
    raw: &[RawModel],
    raw_backends: &BTreeMap<String, RawBackend>,
    backends: &[Backend],
    backend_index: &HashMap<String, usize>,
    errs: &mut Vec<ConfigError>,
) -> Vec<Model> {
    let mut models = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        let kinds = |b: usize| backends.get(b).map(|b: &Backend| b.kind);
        if let Some(model) = compile_model(loc, i, m, raw_backends, backend_index, &kinds, errs) {
            models.push(model);
        }
    }
    check_model_overlaps(loc, raw, &models, errs);
    models
}

fn compile_model(
    loc: &Locator,
    i: usize,
    m: &RawModel,
    raw_backends: &BTreeMap<String, RawBackend>,
    backend_index: &HashMap<String, usize>,
    kinds: &dyn Fn(usize) -> Option<BackendKind>,
    errs: &mut Vec<ConfigError>,
) -> Option<Model> {
    let key = |field: &str| format!("models[{i}].{field}");
    let name = m.name.get_ref();
    let pattern = if Pattern::is_pattern(name) {
        match Pattern::new(name) {
            Ok(p) => Some(p),
            Err(why) => {
                errs.push(loc.error(m.name.span(), key("name"), why));
                return None;
            }
        }
    } else {
        if let Err(why) = check_model_name(name) {
            errs.push(loc.error(m.name.span(), key("name"), why));
            return None;
        }
        None
    };
    if m.apis.get_ref().is_empty() {
        errs.push(loc.error(m.apis.span(), key("apis"), "must list at least one API"));
    }
    let (targets, targets_span, targets_key) = match (&m.target, &m.targets) {
        (Some(t), None) => (vec![t.clone()], t.backend.span(), "target"),
        (None, Some(list)) if !list.get_ref().is_empty() => {
            (list.get_ref().clone(), list.span(), "targets")
        }
        (None, Some(list)) => {
            errs.push(loc.error(list.span(), key("targets"), "must list at least one target"));
            return None;
        }
        _ => {
            errs.push(loc.error(
                m.name.span(),
                key("target"),
                "give exactly one of `target` and `targets`",
            ));
            return None;
        }
    };
    let mut resolved = Vec::new();
    for (j, t) in targets.iter().enumerate() {
        let tkey = if targets_key == "target" {
            key("target")
        } else {
            format!("models[{i}].targets[{j}]")
        };
        let backend_name = t.backend.get_ref();
        let Some(&backend) = backend_index.get(backend_name) else {
            if !raw_backends.contains_key(backend_name) {
                let known: Vec<&str> = raw_backends.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                errs.push(loc.error(
                    t.backend.span(),
                    format!("{tkey}.backend"),
                    format!("no backend named `{backend_name}` (defined: {known})"),
                ));
            }
            return None;
        };
        if resolved.iter().any(|r: &ModelTarget| r.backend == backend) {
            errs.push(loc.error(
                t.backend.span(),
                format!("{tkey}.backend"),
                format!("backend `{backend_name}` is already a target of this model"),
            ));
            return None;
        }
        let backend_model = match &t.model {
            Some(tm) => {
                if let Err(why) = check_model_name(tm.get_ref()) {
                    errs.push(loc.error(tm.span(), format!("{tkey}.model"), why));
                }
                Some(tm.get_ref().clone())
            }
            None => None,
        };
        resolved.push(ModelTarget {
            backend,
            backend_model,
        });
    }
    let targets = resolved;
    let default = m.default.as_ref().is_some_and(|d| *d.get_ref());
    if default && pattern.is_some() {
        if let Some(d) = &m.default {
            errs.push(loc.error(
                d.span(),
                key("default"),
                "a default model needs a concrete name, not a pattern",
            ));
        }
    }
    let apis: ApiSet = m.apis.get_ref().iter().copied().collect();
    let on_anthropic = targets
        .iter()
        .any(|t| kinds(t.backend) == Some(BackendKind::Anthropic));
    if on_anthropic && m.apis.get_ref().iter().any(|a| *a != Api::Chat) {
        errs.push(loc.error(
            m.apis.span(),
            key("apis"),
            "a model on an Anthropic backend serves only `chat` (the Messages API's counterpart)",
        ));
    }
    let on_triton = targets
        .iter()
        .map(|t| t.backend)
        .any(|b| kinds(b) == Some(BackendKind::Triton));
    let triton = match (on_triton, &m.triton) {
        (true, Some(t)) => compile_triton(loc, i, t.get_ref(), t.span(), apis, errs),
        (true, None) => {
            errs.push(loc.error(
                targets_span.clone(),
                key("triton"),
                "a model on a Triton backend needs a `triton` table (family, template)",
            ));
            None
        }
        (_, Some(t)) => {
            errs.push(loc.error(
                t.span(),
                key("triton"),
                "only models on Triton backends take a `triton` table",
            ));
            None
        }
        (_, None) => None,
    };
    Some(Model {
        name: name.clone(),
        pattern,
        apis,
        targets,
        default,
        owned_by: m
            .owned_by
            .clone()
            .unwrap_or_else(|| DEFAULT_OWNED_BY.into()),
        triton,
    })
}

pub(super) fn check_model_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 256 {
        return Err("must be 1-256 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

/// Two models may share a name only for different APIs; one default per API.
fn check_model_overlaps(
    loc: &Locator,
    raw: &[RawModel],
    models: &[Model],
    errs: &mut Vec<ConfigError>,
) {
    // Models that failed to compile are skipped, so map by name back to the raw entry for spans.
    let span_of = |name: &str, nth: usize| -> (usize, std::ops::Range<usize>) {
        raw.iter()
            .enumerate()
            .filter(|(_, r)| r.name.get_ref() == name)
            .nth(nth)
            .map_or((0, 0..0), |(i, r)| (i, r.name.span()))
    };
    let mut seen: HashMap<&str, Vec<ApiSet>> = HashMap::new();
    for m in models {
        let earlier = seen.entry(m.name.as_str()).or_default();
        if earlier.iter().any(|a| a.intersects(m.apis)) {
            let (i, span) = span_of(&m.name, earlier.len());
            errs.push(loc.error(
                span,
                format!("models[{i}].name"),
                format!("`{}` is defined twice for the same API", m.name),
            ));
        }
        earlier.push(m.apis);
    }
    let mut defaults: [Option<&str>; Api::ALL.len()] = [None; Api::ALL.len()];
    for (i, r) in raw.iter().enumerate() {
        let Some(d) = r.default.as_ref().filter(|d| *d.get_ref()) else {
            continue;
        };
        for api in r.apis.get_ref() {
            let slot = &mut defaults[api.index()];
            match slot {
                Some(other) => errs.push(loc.error(
                    d.span(),
                    format!("models[{i}].default"),
                    format!(
                        "API `{}` already has a default model, `{other}`",
                        api.config_name()
                    ),
                )),
                None => *slot = Some(r.name.get_ref()),
            }
        }
    }
}
