//! A small proxy-wasm host on wasmtime: loads the release `airouter_filter.wasm` and drives its
//! callbacks the way Envoy does, so the compiled module is tested without starting Envoy.
//!
//! One [`Filter`] owns one wasmtime `Store`; the engine and the compiled module are shared, so
//! tests run in parallel with no global mutable state.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, Context as _, Result};
use wasmtime::{Caller, Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;

mod abi;
mod callout;
pub mod workload;

pub use callout::HttpCall;

pub const CONTINUE: i32 = 0;
pub const PAUSE: i32 = 1;

/// Path of the release module, built by `make wasm`.
pub fn wasm_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm32-wasip1/release/airouter_filter.wasm")
}

type Compiled = Result<(Engine, Module), String>;

/// The module compiled once per process: plain, or metered (every wasm operator the module runs
/// consumes a unit of fuel, which slows it, so timings use the plain one).
fn compiled(metered: bool) -> &'static Compiled {
    static PLAIN: OnceLock<Compiled> = OnceLock::new();
    static METERED: OnceLock<Compiled> = OnceLock::new();
    let slot = if metered { &METERED } else { &PLAIN };
    slot.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(metered);
        // For profiling the module: `perf record` then names its functions (build the module
        // with CARGO_PROFILE_RELEASE_STRIP=false to keep them).
        if std::env::var_os("AIROUTER_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(wasm_path())
            .map_err(|e| format!("{}: {e} (run `make wasm`)", wasm_path().display()))?;
        let module = Module::new(&engine, bytes).map_err(|e| e.to_string())?;
        Ok((engine, module))
    })
}

/// A local reply the module sent.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the host holds for one stream, as Envoy would.
pub struct HostState {
    wasi: WasiP1Ctx,
    pub plugin_config: Vec<u8>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: HashMap<String, Vec<u8>>,
    /// Filter state the module set, by Envoy's key (`wasm.<name>`).
    pub filter_state: HashMap<String, Vec<u8>>,
    /// Times the module asked Envoy to pick the route again.
    pub route_cache_cleared: u32,
    pub local_reply: Option<LocalReply>,
    pub logs: Vec<(u32, String)>,
    /// Shared data: value and CAS token.
    pub shared: HashMap<String, (Vec<u8>, u32)>,
    /// The clock the module sees, in nanoseconds.
    pub now_nanos: u64,
    /// Counters: (name, value), indexed by metric id.
    pub metrics: Vec<(String, u64)>,
    /// Host calls the module made since the stream started, by function.
    pub calls: BTreeMap<&'static str, u32>,
    /// Call-outs the module sent (`proxy_http_call`), in order; a call's token is its position
    /// plus one.
    pub http_calls: Vec<HttpCall>,
    /// The answer of the call-out being delivered: its headers and body.
    pub call_response_headers: Vec<(String, String)>,
    pub call_response_body: Vec<u8>,
    /// Times the module let a held request go on (`proxy_continue_stream`).
    pub resumed: u32,
    /// The root context's timer period, once the module set one (0: stopped).
    pub tick_period_ms: Option<u32>,
}

impl HostState {
    fn called(&mut self, function: &'static str) {
        *self.calls.entry(function).or_default() += 1;
    }

    /// Host calls since the stream started (the clock and logging included).
    pub fn host_calls(&self) -> u32 {
        self.calls.values().sum()
    }
}

/// One VM with the filter loaded and configured.
pub struct Filter {
    store: Store<HostState>,
    memory: Memory,
    on_context_create: TypedFunc<(i32, i32), ()>,
    on_request_headers: TypedFunc<(i32, i32, i32), i32>,
    on_request_body: TypedFunc<(i32, i32, i32), i32>,
    on_request_trailers: TypedFunc<(i32, i32), i32>,
    on_response_headers: TypedFunc<(i32, i32, i32), i32>,
    on_response_body: TypedFunc<(i32, i32, i32), i32>,
    on_done: TypedFunc<i32, i32>,
    on_log: TypedFunc<i32, ()>,
    on_delete: TypedFunc<i32, ()>,
    on_http_call_response: TypedFunc<(i32, i32, i32, i32, i32), ()>,
    on_tick: TypedFunc<i32, ()>,
    next_context: i32,
    pub configured: bool,
}

const ROOT_CONTEXT: i32 = 1;

impl Filter {
    /// Loads the module with `config` as its plugin configuration and `env` as the environment
    /// Envoy exposes; `configured` says whether `on_configure` accepted it.
    pub fn load(config: &str, env: &[(&str, &str)]) -> Result<Filter> {
        Self::load_with(config, env, false)
    }

    /// As [`Filter::load`], on an engine that counts the wasm operators the module runs
    /// ([`Filter::operators`]): a measure of its own work that does not drift with the machine.
    pub fn load_metered(config: &str) -> Result<Filter> {
        Self::load_with(config, &[], true)
    }

    fn load_with(config: &str, env: &[(&str, &str)], metered: bool) -> Result<Filter> {
        let (engine, module) = compiled(metered).as_ref().map_err(|e| anyhow!("{e}"))?;
        let mut wasi = WasiCtxBuilder::new();
        for (k, v) in env {
            wasi.env(k, v);
        }
        let state = HostState {
            wasi: wasi.build_p1(),
            plugin_config: config.as_bytes().to_vec(),
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            request_body: Vec::new(),
            response_body: Vec::new(),
            properties: HashMap::from([("plugin_name".to_string(), b"airouter.toml".to_vec())]),
            filter_state: HashMap::new(),
            route_cache_cleared: 0,
            local_reply: None,
            logs: Vec::new(),
            shared: HashMap::new(),
            now_nanos: 1_700_000_000_000_000_000,
            metrics: Vec::new(),
            calls: BTreeMap::new(),
            http_calls: Vec::new(),
            call_response_headers: Vec::new(),
            call_response_body: Vec::new(),
            resumed: 0,
            tick_period_ms: None,
        };
        let mut store = Store::new(engine, state);
        if metered {
            store.set_fuel(u64::MAX)?;
        }
        let mut linker: Linker<HostState> = Linker::new(engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi)?;
        abi::add_to_linker(&mut linker)?;
        linker.define_unknown_imports_as_traps(module)?;
        let instance: Instance = linker.instantiate(&mut store, module)?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("no memory export")?;
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())?;
        }
        let f2 = |store: &mut Store<HostState>, name: &str| {
            instance.get_typed_func::<(i32, i32), i32>(store, name)
        };
        let f3 = |store: &mut Store<HostState>, name: &str| {
            instance.get_typed_func::<(i32, i32, i32), i32>(store, name)
        };
        let on_context_create =
            instance.get_typed_func::<(i32, i32), ()>(&mut store, "proxy_on_context_create")?;
        on_context_create.call(&mut store, (ROOT_CONTEXT, 0))?;
        f2(&mut store, "proxy_on_vm_start")?.call(&mut store, (ROOT_CONTEXT, 0))?;
        let len = i32::try_from(config.len())?;
        let configured =
            f2(&mut store, "proxy_on_configure")?.call(&mut store, (ROOT_CONTEXT, len))? != 0;
        Ok(Filter {
            on_request_headers: f3(&mut store, "proxy_on_request_headers")?,
            on_request_body: f3(&mut store, "proxy_on_request_body")?,
            on_request_trailers: f2(&mut store, "proxy_on_request_trailers")?,
            on_response_headers: f3(&mut store, "proxy_on_response_headers")?,
            on_response_body: f3(&mut store, "proxy_on_response_body")?,
            on_done: instance.get_typed_func(&mut store, "proxy_on_done")?,
            on_log: instance.get_typed_func(&mut store, "proxy_on_log")?,
            on_delete: instance.get_typed_func(&mut store, "proxy_on_delete")?,
            on_http_call_response: instance
                .get_typed_func(&mut store, "proxy_on_http_call_response")?,
            on_tick: instance.get_typed_func(&mut store, "proxy_on_tick")?,
            on_context_create,
            store,
            memory,
            next_context: ROOT_CONTEXT + 1,
            configured,
        })
    }

    /// Wasm operators run so far, on a metered filter (0 on a plain one).
    pub fn operators(&self) -> u64 {
        self.store.get_fuel().map_or(0, |left| u64::MAX - left)
    }

    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// Starts a new HTTP stream; its callbacks go to the returned context id.
    pub fn new_stream(&mut self) -> Result<i32> {
        let id = self.next_context;
        self.next_context += 1;
        let s = self.store.data_mut();
        s.request_headers.clear();
        s.response_headers.clear();
        s.request_body.clear();
        s.response_body.clear();
        s.local_reply = None;
        s.filter_state.clear();
        s.route_cache_cleared = 0;
        s.calls.clear();
        s.resumed = 0;
        self.on_context_create
            .call(&mut self.store, (id, ROOT_CONTEXT))?;
        Ok(id)
    }

    /// Ends a stream as Envoy does: done, access log, delete.
    pub fn end_stream(&mut self, ctx: i32) -> Result<()> {
        self.on_done.call(&mut self.store, ctx)?;
        self.on_log.call(&mut self.store, ctx)?;
        self.on_delete.call(&mut self.store, ctx)?;
        Ok(())
    }

    pub fn request_headers(
        &mut self,
        ctx: i32,
        headers: &[(&str, &str)],
        end_of_stream: bool,
    ) -> Result<i32> {
        self.store.data_mut().request_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let n = i32::try_from(headers.len())?;
        self.on_request_headers
            .call(&mut self.store, (ctx, n, i32::from(end_of_stream)))
    }

    /// Delivers a body chunk; the buffer grows while the module pauses, as Envoy buffers.
    pub fn request_body(&mut self, ctx: i32, chunk: &[u8], end_of_stream: bool) -> Result<i32> {
        self.store.data_mut().request_body.extend_from_slice(chunk);
        let n = i32::try_from(self.store.data().request_body.len())?;
        self.on_request_body
            .call(&mut self.store, (ctx, n, i32::from(end_of_stream)))
    }

    /// Delivers request trailers (their content does not matter to the filter).
    pub fn request_trailers(&mut self, ctx: i32, count: usize) -> Result<i32> {
        let n = i32::try_from(count)?;
        self.on_request_trailers.call(&mut self.store, (ctx, n))
    }

    /// The route the module picked for Envoy: its filter state, once it asked Envoy to pick
    /// the route again.
    pub fn route(&self) -> Option<String> {
        let s = self.state();
        if s.route_cache_cleared == 0 {
            return None;
        }
        s.filter_state
            .get("wasm.airouter_route")
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn response_headers(
        &mut self,
        ctx: i32,
        headers: &[(&str, &str)],
        end_of_stream: bool,
    ) -> Result<i32> {
        self.store.data_mut().response_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let n = i32::try_from(headers.len())?;
        self.on_response_headers
            .call(&mut self.store, (ctx, n, i32::from(end_of_stream)))
    }

    /// Delivers a response chunk; returns the action and, on `Continue`, the bytes that go
    /// downstream (the buffer is then drained, as Envoy does).
    pub fn response_body(
        &mut self,
        ctx: i32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<(i32, Vec<u8>)> {
        self.store.data_mut().response_body.extend_from_slice(chunk);
        let n = i32::try_from(self.store.data().response_body.len())?;
        let action = self
            .on_response_body
            .call(&mut self.store, (ctx, n, i32::from(end_of_stream)))?;
        let out = if action == CONTINUE {
            std::mem::take(&mut self.store.data_mut().response_body)
        } else {
            Vec::new()
        };
        Ok((action, out))
    }

    /// A counter's value by name.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.state()
            .metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    pub fn request_header(&self, name: &str) -> Option<&str> {
        find(&self.state().request_headers, name)
    }

    pub fn response_header(&self, name: &str) -> Option<&str> {
        find(&self.state().response_headers, name)
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads guest memory.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let start = usize::try_from(ptr)?;
    let end = start + usize::try_from(len)?;
    Ok(mem
        .data(&*caller)
        .get(start..end)
        .context("read out of bounds")?
        .to_vec())
}

pub(crate) fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(anyhow!("no memory")),
    }
}

/// Hands `data` to the guest: allocates with its allocator, copies, writes pointer and size.
pub(crate) fn give(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ptr_out: i32,
    size_out: i32,
) -> Result<()> {
    let alloc = match caller.get_export("proxy_on_memory_allocate") {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&*caller)?,
        _ => return Err(anyhow!("no allocator export")),
    };
    let len = i32::try_from(data.len())?;
    let addr = alloc.call(&mut *caller, len)?;
    let mem = memory(caller)?;
    mem.write(&mut *caller, usize::try_from(addr)?, data)?;
    mem.write(&mut *caller, usize::try_from(ptr_out)?, &addr.to_le_bytes())?;
    mem.write(&mut *caller, usize::try_from(size_out)?, &len.to_le_bytes())?;
    Ok(())
}
