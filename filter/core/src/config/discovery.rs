//! `[discovery]` checked: the interval, timeout, grace period and model cap are bounded, and the
//! backends to ask are picked from the models: those a pattern model passes the client's name
//! through to. The result is the plan's [`Discovery`].

use super::error::{ConfigError, Locator};
use super::raw::RawDiscovery;
use super::{Backend, Credential, Discovery, Model};
use toml::Spanned;

/// Shortest interval between two fetches of one backend.
pub const MIN_INTERVAL_MS: u64 = 1000;
/// Longest interval: a day.
const MAX_INTERVAL_MS: u64 = 86_400_000;
/// Bounds of one fetch's deadline.
const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// Most models kept per backend.
const MAX_MODELS: u32 = 10_000;

/// Checks `[discovery]` against the compiled `models` and `backends`, pushing what is wrong to
/// `errs`; the plan's discovery when its values hold.
pub(super) fn compile_discovery(
    loc: &Locator,
    raw: &RawDiscovery,
    models: &[Model],
    backends: &[Backend],
    errs: &mut Vec<ConfigError>,
) -> Option<Discovery> {
    let before = errs.len();
    let interval_ms = *raw.interval_ms.get_ref();
    if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&interval_ms) {
        errs.push(loc.error(
            raw.interval_ms.span(),
            "discovery.interval_ms",
            format!("must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}"),
        ));
    }
    let timeout_ms = *raw.timeout_ms.get_ref();
    if !TIMEOUT_MS.contains(&timeout_ms) || timeout_ms >= interval_ms {
        errs.push(loc.error(
            written(&raw.timeout_ms, &raw.interval_ms),
            "discovery.timeout_ms",
            format!(
                "must be between {} and {} and shorter than `interval_ms` (timeout {timeout_ms}, interval {interval_ms})",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            ),
        ));
    }
    let grace_ms = *raw.grace_ms.get_ref();
    if grace_ms < interval_ms.saturating_mul(2) {
        errs.push(loc.error(
            written(&raw.grace_ms, &raw.interval_ms),
            "discovery.grace_ms",
            format!("must be at least twice `interval_ms`, else the models vanish between two fetches (grace {grace_ms}, interval {interval_ms})"),
        ));
    }
    let max_models = *raw.max_models.get_ref();
    if max_models == 0 || max_models > MAX_MODELS {
        errs.push(loc.error(
            raw.max_models.span(),
            "discovery.max_models",
            format!("must be between 1 and {MAX_MODELS}"),
        ));
    }
    (errs.len() == before).then(|| Discovery {
        interval_ms,
        timeout_ms,
        grace_ms,
        max_models: usize::try_from(max_models).unwrap_or(usize::MAX),
        backends: sources(models, backends),
    })
}

/// Where to point at a value checked against `other`: the value as written, else (left to its
/// default) `other`.
fn written<T>(value: &Spanned<T>, other: &Spanned<u64>) -> std::ops::Range<usize> {
    if value.span().is_empty() {
        other.span()
    } else {
        value.span()
    }
}

/// The backends to ask, in index order, each once: targets passing the client's name through
/// from a pattern model, on a backend whose kind has a list the filter reads and that is sent
/// the router's own key or none.
fn sources(models: &[Model], backends: &[Backend]) -> Vec<usize> {
    let mut out: Vec<usize> = models
        .iter()
        .filter(|m| m.pattern.is_some())
        .flat_map(|m| m.targets())
        .filter(|t| t.backend_model.is_none())
        .map(|t| t.backend)
        .filter(|&b| backends.get(b).is_some_and(askable))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn askable(b: &Backend) -> bool {
    crate::discovery::lists_models(b.kind)
        && b.credential != Credential::PassThrough
        && !b.is_keyless()
}
