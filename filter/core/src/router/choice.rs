//! Which route serves a request: the one its label (or META rule, or the default) wants, unless
//! that route's model cannot serve now; then the wanted route's `fallback` routes in order,
//! then the router's default route. A route is never chosen while its model is unconfigured
//! for the request's API, keyless, at its limit, cooling down or unhealthy ([`Unavailable`]).
//! Every route passed over is recorded with its reason.
//!
//! Pure: the flow answers [`choose`]'s question "can this route serve now?" from what it
//! already keeps (see [`TargetState`] and the module doc of [`super`]). When no route can
//! serve, the default route is still chosen, marked [`Choice::none_available`], and the normal
//! routing answers as it does for any model none of whose targets can serve (a 429 with
//! `Retry-After` when they are limited or cooling down).

use serde::Serialize;

/// Why a route's model cannot serve now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// The model does not serve the request's API (or names no target).
    Unconfigured,
    /// Its backend's key comes from an environment variable that was not set.
    Keyless,
    /// Its backend is at its `rate_limit`.
    Limited,
    /// It is cooling down after a 429.
    CoolingDown,
    /// Its backend failed a connection or timed out in the last 30 s.
    Unhealthy,
}

impl Unavailable {
    /// The reason in words, for the decision record.
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::Unconfigured => "its model does not serve this API",
            Unavailable::Keyless => "its backend's API key is not set",
            Unavailable::Limited => "its backend is at its request limit",
            Unavailable::CoolingDown => "its model is cooling down after a 429",
            Unavailable::Unhealthy => "its backend failed recently",
        }
    }
}

/// What the flow knows of one target of a route's model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetState {
    /// The backend's `api_key_env` was not set (its credential is missing).
    pub keyless: bool,
    /// The backend's connection failed or timed out within `admin::UNHEALTHY_FOR_MS`.
    pub unhealthy: bool,
    /// The target is cooling down after a 429.
    pub cooling_down: bool,
    /// The backend's request limit has no room left.
    pub limited: bool,
}

impl TargetState {
    /// Why the target cannot serve, the most lasting reason first; `None` when it can.
    pub fn unavailable(self) -> Option<Unavailable> {
        if self.keyless {
            Some(Unavailable::Keyless)
        } else if self.unhealthy {
            Some(Unavailable::Unhealthy)
        } else if self.cooling_down {
            Some(Unavailable::CoolingDown)
        } else if self.limited {
            Some(Unavailable::Limited)
        } else {
            None
        }
    }
}

/// Whether a model whose targets are in `targets` can serve: when any target can (the normal
/// routing then skips the others, or fails over to them); otherwise the first target's reason.
pub fn model_availability(targets: &[TargetState]) -> Result<(), Unavailable> {
    let mut first = None;
    for t in targets {
        match t.unavailable() {
            None => return Ok(()),
            Some(why) => {
                first.get_or_insert(why);
            }
        }
    }
    Err(first.unwrap_or(Unavailable::Unconfigured))
}

/// How the serving route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// The classifier's label named it.
    Classifier,
    /// A META rule named it.
    Meta,
    /// The default route: no label (unknown, error, timeout, no classifier), or none available.
    Default,
    /// The wanted route could not serve; one of its fallbacks, or the default, does.
    Fallback,
}

/// The route that serves, how it was chosen, and the routes passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index of the serving route in the router's routes.
    pub route: usize,
    pub by: ChosenBy,
    /// Routes passed over, in the order tried, each with its reason.
    pub skipped: Vec<(usize, Unavailable)>,
    /// No route could serve: `route` is the default, for the normal routing's error.
    pub none_available: bool,
}

/// Chooses the route for a request that wants route `wanted` (chosen `by` the classifier, a
/// META rule or the default), with `fallback` the wanted route's fallback routes and `default`
/// the router's default route. `can_serve(route)` says whether a route's model can serve now;
/// it is asked at most once per route.
pub fn choose(
    wanted: usize,
    by: ChosenBy,
    fallback: &[usize],
    default: usize,
    can_serve: &mut dyn FnMut(usize) -> Result<(), Unavailable>,
) -> Choice {
    let mut skipped: Vec<(usize, Unavailable)> = Vec::new();
    let order = std::iter::once(wanted)
        .chain(fallback.iter().copied())
        .chain(std::iter::once(default));
    for (n, route) in order.enumerate() {
        if route == wanted && n > 0 || skipped.iter().any(|(r, _)| *r == route) {
            continue;
        }
        match can_serve(route) {
            Ok(()) => {
                let by = if n == 0 { by } else { ChosenBy::Fallback };
                return Choice {
                    route,
                    by,
                    skipped,
                    none_available: false,
                };
            }
            Err(why) => skipped.push((route, why)),
        }
    }
    Choice {
        route: default,
        by: ChosenBy::Default,
        skipped,
        none_available: true,
    }
}

#[cfg(test)]
mod tests;
