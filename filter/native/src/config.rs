//! One filter configuration (`envoy.filters.http.dynamic_modules` entry): the listener's filter or
//! a failover cluster's upstream filter, told apart by `filter_name` (the wasm build's root ids,
//! [`ROOT_ID`] and [`UPSTREAM_ROOT_ID`]). Envoy creates it on its main thread; its filters run on
//! the workers. The configuration text is compiled into a plan once here, so a bad file fails
//! Envoy's load with the same errors as the wasm build; each worker thread then compiles its own
//! plan from the same text on its first request (the core's plan is single-threaded, as it is in
//! the wasm build's one VM per worker), so a worker's requests never contend for it. The
//! listener's filter and the failover clusters' upstream filters of one rendering carry the same
//! text, and a worker holds one plan for all of them.
//!
//! `filter_config` is a `google.protobuf.Struct`, which Envoy hands over as JSON:
//! `{"name": <file name for messages>, "configuration": <airouter.toml text>}`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use airouter_core::auth::KnownKeys;
use airouter_core::config::{compile_in_envoy, Plan};
use airouter_core::contract::{ROOT_ID, UPSTREAM_ROOT_ID};
use airouter_core::metrics;
use airouter_core::telemetry::histograms::{self, Series};
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::abi::{self, ConfigPtr, FilterPtr};

/// The JSON Envoy hands over as `filter_config`.
#[derive(Deserialize)]
struct Wire {
    name: String,
    configuration: String,
}

/// A counter of this configuration: Envoy's id (the listener filter's configuration only), and
/// the process-wide value the core reads back ([`airouter_core::host::Host::counter`]; the ABI has
/// no read of a counter).
struct Counter {
    id: Option<usize>,
    value: Arc<AtomicU64>,
}

/// A filter configuration, shared by every worker's filters (read-only after creation).
pub struct FilterConfig {
    /// This configuration's own id (its scheduled events name it).
    id: u64,
    /// The id of its text ([`LIVE`]): the key of its plan on each worker, shared with every
    /// live configuration of the same text.
    plan_id: u64,
    /// The per-attempt upstream filter rather than the listener's.
    pub upstream: bool,
    counters: FxHashMap<String, Counter>,
    /// The GenAI histograms (listener filter with `[telemetry] metrics` only): one labelled
    /// histogram per metric and label list ([`histograms::label_sets`]), with Envoy's id.
    histograms: Vec<(&'static str, Vec<&'static str>, usize)>,
    /// The model discovery's timer (listener filter with `[discovery]` only), stopped when
    /// the configuration is dropped.
    _discovery: Option<crate::root::Timer>,
}

/// A worker's compiled plan for one configuration.
#[derive(Clone)]
pub struct WorkerPlan {
    pub plan: Rc<Plan>,
    /// Client keys matched so far under this plan, on this worker.
    pub known_keys: Rc<KnownKeys>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The configuration texts of live configurations, by plan id: `(file, text, how many live
/// configurations have it)`. Configurations with the same file and text (the listener's filter
/// and every failover cluster's upstream filter of one rendering) share one plan id, so a worker
/// compiles and holds one plan for all of them; an id is never reused.
static LIVE: Mutex<Option<Texts>> = Mutex::new(None);

/// Plan id → `(file, text, live configurations using it)`.
type Texts = FxHashMap<u64, (String, String, usize)>;
/// Counter values by stat name, shared by every configuration (Envoy's counter of a name is one
/// counter whatever defined it).
static VALUES: Mutex<Option<FxHashMap<String, Arc<AtomicU64>>>> = Mutex::new(None);
/// Counts made by upstream filters, not yet handed to Envoy. Envoy scopes a filter's stats to
/// where it runs, so an upstream filter's own counters would be per cluster
/// (`cluster.NAME.wasmcustom.*`), where the wasm build's are the listener's (`wasmcustom.*`): the
/// listener's filter hands them over at its next hook (for a failover request, before its client
/// sees the response's headers or end).
static PENDING: Mutex<Option<FxHashMap<String, u64>>> = Mutex::new(None);
/// Whether [`PENDING`] holds anything (one atomic read per listener hook when it does not).
static PENDING_ANY: AtomicBool = AtomicBool::new(false);

thread_local! {
    static PLANS: RefCell<FxHashMap<u64, WorkerPlan>> = RefCell::new(FxHashMap::default());
}

fn value_of(name: &str) -> Arc<AtomicU64> {
    let mut guard = VALUES.lock().unwrap_or_else(PoisonError::into_inner);
    let values = guard.get_or_insert_with(FxHashMap::default);
    Arc::clone(values.entry(name.to_string()).or_default())
}

fn live<T>(f: impl FnOnce(&mut Texts) -> T) -> T {
    let mut guard = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(FxHashMap::default))
}

fn is_live(plan_id: u64) -> bool {
    live(|texts| texts.contains_key(&plan_id))
}

/// One configuration of plan `plan_id` is gone; the last one takes the text with it.
fn release(plan_id: u64) {
    live(|texts| {
        if let Some((_, _, users)) = texts.get_mut(&plan_id) {
            *users = users.saturating_sub(1);
            if *users == 0 {
                texts.remove(&plan_id);
            }
        }
    });
}

/// The plan id of `(file, text)`: a live configuration's with the same, or a new one.
fn plan_id_of(file: &str, text: &str) -> u64 {
    live(|texts| {
        let same = texts
            .iter_mut()
            .find(|(_, (f, t, _))| f == file && t == text);
        if let Some((id, (_, _, users))) = same {
            *users += 1;
            return *id;
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        texts.insert(id, (file.to_string(), text.to_string(), 1));
        id
    })
}

/// Compiles `text` (named `file` in messages) with the process's environment.
fn compile_text(file: &str, text: &str) -> Result<Plan, Vec<String>> {
    match compile_in_envoy(file, text, &|name| std::env::var(name).ok()) {
        Ok(plan) => match plan.missing_env_error(file) {
            Some(message) => Err(vec![message]),
            None => Ok(plan),
        },
        Err(errors) => Err(errors.0.iter().map(|e| format!("{e}")).collect()),
    }
}

impl FilterConfig {
    /// The configuration Envoy asked for by `name` with `config`, or the messages saying why it
    /// is refused (Envoy then refuses the listener or cluster: at start, Envoy does not start).
    pub fn new(envoy: ConfigPtr, name: &[u8], config: &[u8]) -> Result<Self, Vec<String>> {
        let upstream = match name {
            n if n == ROOT_ID.as_bytes() => false,
            n if n == UPSTREAM_ROOT_ID.as_bytes() => true,
            other => {
                return Err(vec![format!(
                    "unknown filter_name {:?} (expected {ROOT_ID:?} or {UPSTREAM_ROOT_ID:?})",
                    String::from_utf8_lossy(other)
                )])
            }
        };
        let wire: Wire = serde_json::from_slice(config).map_err(|e| {
            vec![format!(
                "filter_config: expected {{\"name\": ..., \"configuration\": ...}}: {e}"
            )]
        })?;
        let plan = compile_text(&wire.name, &wire.configuration)?;
        // Stats are defined now, so they exist (at 0) before any request: Envoy refuses new ones
        // once the configuration is made. Only the listener's filter defines them (see PENDING).
        let counters = metrics::all(&plan.metric_names)
            .into_iter()
            .map(|name| {
                let id = if upstream {
                    None
                } else {
                    abi::define_counter(envoy, &name)
                };
                let value = value_of(&name);
                (name, Counter { id, value })
            })
            .collect();
        let histograms = if upstream || !plan.telemetry.metrics {
            Vec::new()
        } else {
            define_histograms(envoy)
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let plan_id = plan_id_of(&wire.name, &wire.configuration);
        let _discovery = if upstream {
            None
        } else {
            crate::root::Timer::start(envoy, id, plan)
        };
        Ok(FilterConfig {
            id,
            plan_id,
            upstream,
            counters,
            histograms,
            _discovery,
        })
    }

    /// This thread's plan for this configuration, compiled on first use; `None` only if the
    /// text stopped compiling (an environment variable removed since Envoy started).
    pub fn worker_plan(&self) -> Option<WorkerPlan> {
        PLANS.with(|plans| {
            if let Some(found) = plans.borrow().get(&self.plan_id) {
                return Some(found.clone());
            }
            let (file, text) = live(|texts| {
                texts
                    .get(&self.plan_id)
                    .map(|(file, text, _)| (file.clone(), text.clone()))
            })?;
            let plan = match compile_text(&file, &text) {
                Ok(plan) => plan,
                Err(errors) => {
                    for e in errors {
                        abi::log(abi::LOG_ERROR, &e);
                    }
                    return None;
                }
            };
            let made = WorkerPlan {
                plan: Rc::new(plan),
                known_keys: Rc::default(),
            };
            let mut plans = plans.borrow_mut();
            plans.retain(|id, _| is_live(*id));
            plans.insert(self.plan_id, made.clone());
            Some(made)
        })
    }

    /// Adds `n` to counter `name` (a name the plan does not define counts nothing): in Envoy
    /// through `envoy`'s filter when it is the listener's, later when an upstream filter's.
    pub fn count(&self, envoy: FilterPtr, name: &str, n: u64) {
        let Some(counter) = self.counters.get(name) else {
            return;
        };
        counter.value.fetch_add(n, Ordering::Relaxed);
        match counter.id {
            Some(id) => abi::increment_counter(envoy, id, n),
            None if self.upstream => {
                let mut guard = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
                *guard
                    .get_or_insert_with(FxHashMap::default)
                    .entry(name.to_string())
                    .or_default() += n;
                PENDING_ANY.store(true, Ordering::Release);
            }
            None => {}
        }
    }

    /// Records `value` in `series` through `envoy`'s filter (nothing when the series' histogram
    /// is not defined: metrics off, or an upstream filter's configuration).
    pub fn record(&self, envoy: FilterPtr, series: &Series, value: u64) {
        let names = series.label_names();
        let found = self
            .histograms
            .iter()
            .find(|(metric, labels, _)| *metric == series.metric && *labels == names);
        if let Some((_, _, id)) = found {
            let values: Vec<&str> = series.labels.iter().map(|(_, v)| v.as_str()).collect();
            if !abi::record_histogram(envoy, *id, &values, value) {
                abi::log(abi::LOG_WARN, "could not record a histogram value");
            }
        }
    }

    /// Hands the upstream filters' counts to Envoy through `envoy`, a listener filter's.
    pub fn flush_upstream_counts(&self, envoy: FilterPtr) {
        if self.upstream
            || !PENDING_ANY.load(Ordering::Acquire)
            || !PENDING_ANY.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let pending = PENDING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        for (name, n) in pending {
            if let Some(id) = self.counters.get(&name).and_then(|c| c.id) {
                abi::increment_counter(envoy, id, n);
            }
        }
    }

    /// Counter `name`'s value, summed over workers and filters (0 for an unknown name).
    pub fn counter_value(&self, name: &str) -> u64 {
        self.counters
            .get(name)
            .map_or(0, |c| c.value.load(Ordering::Relaxed))
    }

    /// This configuration's id (its scheduled events name it).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Defines every GenAI histogram with each label list its series can have; Envoy names each
/// series as the wasm build's plain stat names are spelled ([`Series::stat_name`]), so both
/// builds give the same stats, tags and buckets.
fn define_histograms(envoy: ConfigPtr) -> Vec<(&'static str, Vec<&'static str>, usize)> {
    let mut out = Vec::new();
    for (metric, _) in histograms::BUCKETS {
        for labels in histograms::label_sets(metric) {
            match abi::define_histogram(envoy, metric, &labels) {
                Some(id) => out.push((metric, labels, id)),
                None => abi::log(
                    abi::LOG_WARN,
                    &format!("could not define histogram {metric}"),
                ),
            }
        }
    }
    out
}

impl Drop for FilterConfig {
    fn drop(&mut self) {
        release(self.plan_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_of_one_text_share_a_plan_until_the_last_is_gone() {
        let listener = plan_id_of("a.toml", "[listener]\nport = 1\n");
        let upstream = plan_id_of("a.toml", "[listener]\nport = 1\n");
        let other = plan_id_of("a.toml", "[listener]\nport = 2\n");
        assert_eq!(listener, upstream);
        assert_ne!(listener, other);
        release(listener);
        assert!(is_live(upstream));
        release(upstream);
        assert!(!is_live(upstream));
        // The same text again is a new plan: a worker never serves a plan of a former one.
        let again = plan_id_of("a.toml", "[listener]\nport = 1\n");
        assert!(again > other);
        release(again);
        release(other);
    }
}
