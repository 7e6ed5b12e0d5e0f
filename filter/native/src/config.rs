//! One filter configuration (`envoy.filters.http.dynamic_modules` entry): the listener's filter or
//! a failover cluster's upstream filter, told apart by `filter_name` (the wasm build's root ids,
//! [`ROOT_ID`] and [`UPSTREAM_ROOT_ID`]). Envoy creates it on its main thread; its filters run on
//! the workers. The configuration text is compiled into a plan once here, so a bad file fails
//! Envoy's load with the same errors as the wasm build; each worker thread then compiles its own
//! plan from the same text on its first request (the core's plan is single-threaded, as it is in
//! the wasm build's one VM per worker), so a worker's requests never contend for it.
//!
//! `filter_config` is a `google.protobuf.Struct`, which Envoy hands over as JSON:
//! `{"name": <file name for messages>, "configuration": <airouter.toml text>}`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use airouter_core::auth::KnownKeys;
use airouter_core::config::{compile, Plan};
use airouter_core::contract::{ROOT_ID, UPSTREAM_ROOT_ID};
use airouter_core::metrics;
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::abi::{self, ConfigPtr};

/// The JSON Envoy hands over as `filter_config`.
#[derive(Deserialize)]
struct Wire {
    name: String,
    configuration: String,
}

/// A counter of this configuration: Envoy's id, and the process-wide value the core reads back
/// ([`airouter_core::host::Host::counter`]; the ABI has no read of a counter).
struct Counter {
    id: usize,
    value: Arc<AtomicU64>,
}

/// A filter configuration, shared by every worker's filters (read-only after creation).
pub struct FilterConfig {
    /// Tells this configuration's per-worker plans apart from a former one's.
    id: u64,
    /// The per-attempt upstream filter rather than the listener's.
    pub upstream: bool,
    file: String,
    text: String,
    counters: FxHashMap<String, Counter>,
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
/// The ids of configurations not yet destroyed.
static LIVE: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
/// Counter values by stat name, shared by every configuration (Envoy's counter of a name is one
/// counter whatever defined it).
static VALUES: Mutex<Option<FxHashMap<String, Arc<AtomicU64>>>> = Mutex::new(None);

thread_local! {
    static PLANS: RefCell<FxHashMap<u64, WorkerPlan>> = RefCell::new(FxHashMap::default());
}

fn value_of(name: &str) -> Arc<AtomicU64> {
    let mut guard = VALUES.lock().unwrap_or_else(PoisonError::into_inner);
    let values = guard.get_or_insert_with(FxHashMap::default);
    Arc::clone(values.entry(name.to_string()).or_default())
}

fn live(f: impl FnOnce(&mut HashSet<u64>)) {
    let mut guard = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(HashSet::new));
}

fn is_live(id: u64) -> bool {
    let mut alive = false;
    live(|set| alive = set.contains(&id));
    alive
}

/// Compiles `text` (named `file` in messages) with the process's environment.
fn compile_text(file: &str, text: &str) -> Result<Plan, Vec<String>> {
    match compile(file, text, &|name| std::env::var(name).ok()) {
        Ok(plan) if !plan.missing_env.is_empty() => Err(vec![format!(
            "{file}: environment variables not set for Envoy: {}",
            plan.missing_env.join(", ")
        )]),
        Ok(plan) => Ok(plan),
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
        // once the configuration is made.
        let counters = metrics::all(&plan.metric_names)
            .into_iter()
            .filter_map(|name| {
                let id = abi::define_counter(envoy, &name)?;
                let value = value_of(&name);
                Some((name, Counter { id, value }))
            })
            .collect();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        live(|set| {
            set.insert(id);
        });
        let _discovery = if upstream {
            None
        } else {
            crate::root::Timer::start(envoy, id, plan)
        };
        Ok(FilterConfig {
            id,
            upstream,
            file: wire.name,
            text: wire.configuration,
            counters,
            _discovery,
        })
    }

    /// This thread's plan for this configuration, compiled on first use; `None` only if the
    /// text stopped compiling (an environment variable removed since Envoy started).
    pub fn worker_plan(&self) -> Option<WorkerPlan> {
        PLANS.with(|plans| {
            if let Some(found) = plans.borrow().get(&self.id) {
                return Some(found.clone());
            }
            let plan = match compile_text(&self.file, &self.text) {
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
            plans.insert(self.id, made.clone());
            Some(made)
        })
    }

    /// Envoy's id of counter `name` and its process-wide value; `None` for a name the plan
    /// does not define.
    pub fn counter(&self, name: &str) -> Option<(usize, &AtomicU64)> {
        self.counters.get(name).map(|c| (c.id, c.value.as_ref()))
    }

    /// This configuration's id (its scheduled events name it).
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for FilterConfig {
    fn drop(&mut self) {
        live(|set| {
            set.remove(&self.id);
        });
    }
}
