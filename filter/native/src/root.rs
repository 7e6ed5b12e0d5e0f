//! The model discovery outside any request: the wasm build runs it in each worker's root context
//! on proxy-wasm's timer; here one [`Discoverer`] per listener configuration runs on Envoy's main
//! thread. A small thread of ours sleeps between ticks and wakes the main thread through the
//! configuration's scheduler (the ABI has no timer); the fetches are the configuration's HTTP
//! call-outs, answered on the main thread too. The core's shared-data leases work as they do in
//! wasm, with one fetcher instead of one per worker.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airouter_core::config::Plan;
use airouter_core::discovery::{self, Discoverer};
use airouter_core::host::{CallOut, CallResponse, RootHost, SharedWrite};
use rustc_hash::FxHashMap;

use crate::abi::{self, ConfigPtr};
use crate::shared;

/// The scheduled event that is a discovery tick.
const TICK: u64 = 1;

thread_local! {
    /// Per configuration (by id): its plan and discoverer, on the main thread.
    static DISCOVERY: RefCell<FxHashMap<u64, (Rc<Plan>, Discoverer)>> =
        RefCell::new(FxHashMap::default());
}

/// A configuration's discovery timer: the thread committing ticks, stopped (and the scheduler
/// freed) when the configuration is destroyed.
pub struct Timer {
    config_id: u64,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// `abi::SchedulerPtr` as an address, so the thread may hold it.
    scheduler: usize,
}

impl Timer {
    /// Starts ticking for `plan` when it discovers models; `None` when it does not (or the
    /// thread could not start, which is logged).
    pub fn start(envoy: ConfigPtr, config_id: u64, plan: Plan) -> Option<Timer> {
        let period = Duration::from_millis(discovery::tick_ms(&plan)?);
        let scheduler = abi::scheduler_new(envoy) as usize;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("airouter-discovery".to_string())
            .spawn(move || loop {
                match stopped.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => {
                        abi::scheduler_commit(scheduler as abi::SchedulerPtr, TICK)
                    }
                    _ => return,
                }
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                abi::log(
                    abi::LOG_WARN,
                    &format!("could not start the model discovery timer: {e}"),
                );
                abi::scheduler_delete(scheduler as abi::SchedulerPtr);
                return None;
            }
        };
        DISCOVERY.with(|d| {
            d.borrow_mut()
                .insert(config_id, (Rc::new(plan), Discoverer::default()))
        });
        Some(Timer {
            config_id,
            stop: Some(stop),
            thread: Some(thread),
            scheduler,
        })
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only sleeps and commits: it ends at once when the channel closes.
            let _ = thread.join();
        }
        abi::scheduler_delete(self.scheduler as abi::SchedulerPtr);
        DISCOVERY.with(|d| d.borrow_mut().remove(&self.config_id));
    }
}

/// A scheduled event of configuration `config_id` (on the main thread).
pub fn on_scheduled(envoy: ConfigPtr, config_id: u64, event: u64) {
    if event != TICK {
        return;
    }
    DISCOVERY.with(|d| {
        if let Some((plan, discoverer)) = d.borrow_mut().get_mut(&config_id) {
            discoverer.on_tick(&mut MainThread::new(envoy), plan);
        }
    });
}

/// A configuration's call-out has answered (on the main thread).
pub fn on_callout_done(envoy: ConfigPtr, config_id: u64, callout_id: u64, answer: &CallResponse) {
    let Ok(token) = u32::try_from(callout_id) else {
        return;
    };
    DISCOVERY.with(|d| {
        if let Some((plan, discoverer)) = d.borrow_mut().get_mut(&config_id) {
            discoverer.on_response(&mut MainThread::new(envoy), plan, token, answer);
        }
    });
}

/// Envoy's main thread, as the discovery sees it.
struct MainThread {
    envoy: ConfigPtr,
    now: Cell<Option<u64>>,
}

impl MainThread {
    fn new(envoy: ConfigPtr) -> Self {
        MainThread {
            envoy,
            now: Cell::new(None),
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall clock read once per hook: `cell` holds the first reading for the rest of it.
pub fn clock_once(cell: &Cell<Option<u64>>) -> u64 {
    if let Some(now) = cell.get() {
        return now;
    }
    let now = wall_clock_ms();
    cell.set(Some(now));
    now
}

impl RootHost for MainThread {
    fn now_ms(&self) -> u64 {
        clock_once(&self.now)
    }

    fn shared_get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        shared::get(key)
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: u32) -> SharedWrite {
        shared::set(key, value, cas)
    }

    fn http_call(&mut self, call: &CallOut<'_>) -> Option<u32> {
        let id = abi::config_http_callout(
            self.envoy,
            call.cluster,
            call.headers,
            call.body,
            call.timeout_ms,
        )?;
        u32::try_from(id).ok()
    }

    fn log_warn(&self, message: &str) {
        abi::log(abi::LOG_WARN, message);
    }
}
