//! `airouter`: AI Router's command-line tool and sidecar service.
//!
//! - `airouter check FILE` validates an `airouter.toml` (chat templates included).
//! - `airouter envoy FILE [--filter wasm|native] [--wasm PATH] [--native PATH] [--ca-file PATH]
//!   [--xds-dir DIR] [--env-file PATH]` prints a complete Envoy bootstrap running the filter as a
//!   proxy-wasm module (the default) or as a dynamic module (`--filter native`); with `--xds-dir`, one whose listener and clusters come
//!   from files in DIR. No secret is written into it: backend keys written in FILE go to Envoy
//!   through its environment, and `--env-file` writes those variables (mode 0600).
//! - `airouter reload FILE --xds-dir DIR [--filter ...] [--wasm PATH] [--ca-file PATH] [--env-file PATH]`
//!   rewrites those files from a changed FILE: Envoy picks them up without a restart, in-flight
//!   streams finish.
//! - `airouter istio FILE --wasm-image URL [...]` prints the Istio manifests running the filter
//!   (see [`airouter_sidecar::istio`]); `airouter envoy-gateway FILE --wasm-image URL
//!   [--gateway NAME]` the Envoy Gateway `EnvoyExtensionPolicy` and `EnvoyProxy`.
//! - `airouter envoy FILE --plugin-config json` writes the filter's configuration in its JSON
//!   form, as Istio and Envoy Gateway pass it; `--listen-address ADDR` binds the listeners (the
//!   OpenAI one, the gRPC client API's) and the admin port there instead of the file's addresses (a container publishes ports from
//!   `0.0.0.0`: `examples/compose/`).
//! - `airouter serve FILE [--listen-address ADDR]` runs the sidecar that serves the file's Triton
//!   models (on ADDR instead of `[sidecar] address`: in a pod, `0.0.0.0`).
//! - `airouter schema` prints the JSON Schema of `airouter.toml`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use airouter_core::config::{compile, url, Plan, Secret, Sources};
use airouter_sidecar::bootstrap;
use airouter_sidecar::bootstrap::plugin_config::{self, PluginConfig};
use airouter_sidecar::config_files::{self, ConfigFiles};
use airouter_sidecar::grpc_api;
use airouter_sidecar::istio;
use airouter_sidecar::otel;
use airouter_sidecar::ratelimit::service::Limiter;
use airouter_sidecar::ratelimit::store::Store;
use airouter_sidecar::serve::{self, State};
use airouter_sidecar::session_log;

const USAGE: &str = "usage:
  airouter check FILE
  airouter envoy FILE [--filter wasm|native] [--wasm PATH] [--native PATH] [--ca-file PATH] [--xds-dir DIR]
                [--env-file PATH] [--plugin-config toml|json] [--listen-address ADDR]
  airouter istio FILE --wasm-image oci://REF [--namespace NS (istio-system)] [--wasm-sha256 [sha256:]HEX]
                      [--sidecar-image IMAGE] [--selector KEY=VALUE] [--api traffic-extension|wasm-plugin]
                      [--ca-file PATH]
  airouter envoy-gateway FILE --wasm-image oci://REF [--namespace NS (default)] [--gateway NAME (eg)]
                      [--wasm-sha256 [sha256:]HEX]
  airouter reload FILE --xds-dir DIR [--filter wasm|native] [--wasm PATH] [--native PATH] [--ca-file PATH]
                  [--env-file PATH]
  airouter serve FILE [--listen-address ADDR]
  airouter schema";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Every message is shown without URL credentials, whatever produced it.
            eprintln!("{}", url::redact(&message));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    // `airouter --help`, `airouter istio --help`, ...: the usage, on stdout, whatever else is given.
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    match args.first().map(String::as_str) {
        Some("check") => {
            let file = args.get(1).ok_or(USAGE)?;
            let plan = load(file)?;
            // Compiles and test-renders every chat template.
            serve::compile_templates(&plan, &config_dir(file))
                .map_err(|e| format!("{file}: {e}"))?;
            for var in &plan.missing_env {
                eprintln!("{file}: warning: environment variable {var} is not set here; Envoy needs it at start");
            }
            for b in plan.backends.iter().filter(|b| b.is_keyless()) {
                let var = b.key_env.as_deref().unwrap_or_default();
                eprintln!("{file}: note: backend {} has no key here ({var} unset, api_key_optional): its targets would be skipped", b.name);
            }
            println!(
                "{file}: ok ({} backends, {} models, {} client keys{})",
                plan.backends.len(),
                plan.models.len(),
                plan.keys.keys().len(),
                if plan.keys.is_open() {
                    ", open: no key needed"
                } else {
                    ""
                }
            );
            Ok(())
        }
        Some(cmd @ ("envoy" | "reload")) => {
            let file = args.get(1).ok_or(USAGE)?;
            let opts = EnvoyOptions::parse(args.get(2..).unwrap_or(&[]))?;
            let text = read(file)?;
            let plan =
                config_files::compile_file(file, &text, &|_| None).map_err(|e| e.to_string())?;
            serve::compile_templates(&plan, &config_dir(file))
                .map_err(|e| format!("{file}: {e}"))?;
            let (mut for_envoy, rendered) = plan_for_envoy(file, &plan, &text)?;
            if let Some(address) = &opts.listen_address {
                for_envoy.listener.address.clone_from(address);
                for_envoy.admin.address.clone_from(address);
                if let Some(api) = for_envoy.grpc_api.as_mut() {
                    api.address.clone_from(address);
                }
            }
            for b in &plan.backends {
                if let Some(var) = &b.key_env {
                    let without = if b.key_optional {
                        "without it the backend is skipped (api_key_optional)"
                    } else {
                        "Envoy refuses to start without it"
                    };
                    eprintln!("{file}: Envoy needs the environment variable {var} (backend {}'s key); {without}", b.name);
                }
            }
            match &opts.env_file {
                Some(path) => write_env_file(file, path, &rendered.env)?,
                None => {
                    for (var, _) in &rendered.env {
                        eprintln!("{file}: a backend api_key is written in the file; Envoy reads it from the environment variable {var}, not from its configuration: pass --env-file PATH to write it to a file (mode 0600) and start Envoy with it");
                    }
                }
            }
            let plugin_text = match opts.plugin_config.as_str() {
                "toml" => rendered.text.clone(),
                "json" => airouter_sidecar::istio::plugin_config(&rendered.text)?.to_string(),
                other => return Err(format!("--plugin-config takes toml or json, not {other}")),
            };
            let module = absolute(opts.module())?;
            if !module.is_file() {
                eprintln!("{file}: warning: {} does not exist (yet): Envoy will not start without it (`make {}` builds it, --{} names another)", module.display(), opts.filter, opts.filter);
            }
            let filter = match opts.filter.as_str() {
                "wasm" => bootstrap::FilterModule::Wasm(&module),
                "native" => bootstrap::FilterModule::Native(&module),
                other => return Err(format!("--filter takes wasm or native, not {other}")),
            };
            let parts = bootstrap::parts(&for_envoy, &plugin_text, filter, &opts.ca_file);
            let doc = match (&opts.xds_dir, cmd) {
                (Some(dir), _) => {
                    write_discovery_files(&parts, dir)?;
                    if cmd == "reload" {
                        eprintln!("{file}: reloaded into {}", dir.display());
                        return Ok(());
                    }
                    bootstrap::render_dynamic(&parts, &absolute(dir)?)
                }
                (None, "reload") => return Err(format!("reload needs --xds-dir\n{USAGE}")),
                (None, _) => bootstrap::render(parts),
            };
            let out = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(())
        }
        Some(cmd @ ("istio" | "envoy-gateway")) => {
            let file = args.get(1).ok_or(USAGE)?;
            let opts = istio::Options::parse_for(cmd, args.get(2..).unwrap_or(&[]))
                .map_err(|e| format!("{e}\n{USAGE}"))?;
            let text = read(file)?;
            let plan =
                config_files::compile_file(file, &text, &|_| None).map_err(|e| e.to_string())?;
            serve::compile_templates(&plan, &config_dir(file))
                .map_err(|e| format!("{file}: {e}"))?;
            let (for_envoy, rendered) = plan_for_envoy(file, &plan, &text)?;
            print!(
                "{}",
                istio::command(cmd, file, &text, for_envoy, &rendered.text, &opts)?
            );
            Ok(())
        }
        Some("serve") => {
            let file = args.get(1).ok_or(USAGE)?;
            let listen_address = match args.get(2..).unwrap_or(&[]) {
                [] => None,
                [flag, address] if flag == "--listen-address" => Some(address.as_str()),
                _ => return Err(USAGE.to_string()),
            };
            serve_sidecar(file, listen_address)
        }
        Some("schema") => {
            let schema = schemars::schema_for!(airouter_core::config::raw::RawConfig);
            let out = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
            println!("{out}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

/// The configuration text Envoy will hold (no secrets) and the plan the filter compiles from it,
/// checked to behave as the operator's `plan`.
fn plan_for_envoy(file: &str, plan: &Plan, text: &str) -> Result<(Plan, PluginConfig), String> {
    let files = ConfigFiles::beside(file);
    let read_file = |path: &str| files.read(path);
    let none = |_: &str| None;
    let sources = Sources {
        env: &none,
        read_file: &read_file,
        time_zone: &config_files::zone_transitions,
        plain_secrets: true,
    };
    let rendered = plugin_config::sanitize(text, &sources).map_err(|e| format!("{file}: {e}"))?;
    let env = |name: &str| {
        rendered
            .env
            .iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.expose().to_string())
    };
    let for_envoy = compile(file, &rendered.text, &env).map_err(|e| {
        format!("{file}: the configuration rendered for Envoy does not compile (a bug, please report it): {e}")
    })?;
    if !plugin_config::same_behaviour(plan, &for_envoy) {
        return Err(format!(
            "{file}: the configuration rendered for Envoy would behave differently (a bug, please report it)"
        ));
    }
    Ok((for_envoy, rendered))
}

/// Writes `VAR=value` lines, values verbatim (as `docker --env-file` and systemd's
/// `EnvironmentFile` read them), readable by the owner only: written to a temporary file created
/// with mode 0600, then renamed over `path`. Warns when the values changed, since Envoy reads its
/// environment only when it starts.
fn write_env_file(file: &str, path: &Path, env: &[(String, Secret)]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let text: String = env
        .iter()
        .map(|(var, value)| format!("{var}={}\n", value.expose()))
        .collect();
    let before = std::fs::read_to_string(path).ok();
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map_or("airouter.env".into(), |n| n.to_string_lossy())
    ));
    let shown = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| shown(&tmp, e))?;
    f.write_all(text.as_bytes()).map_err(|e| shown(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| shown(path, e))?;
    if before.is_some_and(|b| b != text) {
        eprintln!(
            "{file}: backend keys changed in {}: Envoy reads its environment when it starts, so restart it for them to take effect",
            path.display()
        );
    }
    Ok(())
}

struct EnvoyOptions {
    /// `wasm` (the proxy-wasm module, run by v8) or `native` (the dynamic module).
    filter: String,
    wasm: PathBuf,
    /// The dynamic module's file (`--filter native`).
    native: PathBuf,
    ca_file: PathBuf,
    xds_dir: Option<PathBuf>,
    env_file: Option<PathBuf>,
    /// `toml` or `json`: the form of the filter's configuration in the bootstrap.
    plugin_config: String,
    /// Where the listener and the admin port bind, instead of the file's addresses.
    listen_address: Option<String>,
}

impl EnvoyOptions {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut opts = EnvoyOptions {
            filter: "wasm".into(),
            wasm: PathBuf::from("target/wasm32-wasip1/release/airouter_filter.wasm"),
            native: PathBuf::from("target/native/libairouter_native.so"),
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            xds_dir: None,
            env_file: None,
            plugin_config: "toml".into(),
            listen_address: None,
        };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = PathBuf::from(rest.next().ok_or(USAGE)?);
            match flag.as_str() {
                "--filter" => opts.filter = value.display().to_string(),
                "--wasm" => opts.wasm = value,
                "--native" => opts.native = value,
                "--ca-file" => opts.ca_file = value,
                "--xds-dir" => opts.xds_dir = Some(value),
                "--env-file" => opts.env_file = Some(value),
                "--plugin-config" => opts.plugin_config = value.display().to_string(),
                "--listen-address" => opts.listen_address = Some(value.display().to_string()),
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        Ok(opts)
    }

    /// The file of the build `--filter` chose.
    fn module(&self) -> &Path {
        if self.filter == "native" {
            &self.native
        } else {
            &self.wasm
        }
    }
}

/// Writes the cluster file, then the listener file, each by rename so Envoy never reads half a
/// file; clusters first, so the new listener's routes find their clusters.
fn write_discovery_files(parts: &bootstrap::Parts, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let version = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let (lds, cds) = bootstrap::discovery_files(parts, &version);
    for (name, doc) in [(bootstrap::CDS_FILE, cds), (bootstrap::LDS_FILE, lds)] {
        let tmp = dir.join(format!(".{name}.tmp"));
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(name))
            .map_err(|e| format!("{}: {e}", dir.join(name).display()))?;
    }
    Ok(())
}

fn config_dir(file: &str) -> PathBuf {
    Path::new(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Runs the sidecar for `file`, on `listen_address` instead of `[sidecar] address` when given
/// (a pod's: `sidecar/src/istio/workload.rs`).
fn serve_sidecar(file: &str, listen_address: Option<&str>) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIROUTER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut plan = load(file)?;
    if let (Some(s), Some(address)) = (plan.sidecar.as_mut(), listen_address) {
        s.address = address.to_string();
    }
    let sidecar = plan.sidecar.clone().ok_or_else(|| {
        format!(
            "{file}: no backend has kind = \"triton\" and there is no [global_limits], [session_log] or [grpc_api]; the sidecar has nothing to serve"
        )
    })?;
    // Only the sidecar's own secret matters here; backend keys are Envoy's business.
    if let (Some(var), None) = (&sidecar.secret_env, &sidecar.secret) {
        return Err(format!(
            "{file}: environment variable {var} (sidecar.secret_env) is not set"
        ));
    }
    let dir = config_dir(file);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut session_writer = None;
    let writer_slot = &mut session_writer;
    let served = runtime.block_on(async move {
        // The gRPC clients need the runtime, so the state is built inside it (and the span
        // exporter, a gRPC client too).
        let spans = match &plan.tracing {
            Some(t) => Some(otel::start(t).map_err(|e| format!("{file}: {e}"))?),
            None => None,
        };
        let grpc = grpc_services(file, &plan, &dir).await?;
        let session_stats = grpc.session_stats.clone();
        *writer_slot = grpc.session_writer.zip(session_stats.clone());
        let grpc_task = match grpc.router {
            Some(router) => {
                let addr = format!("{}:{}", sidecar.address, sidecar.grpc_port);
                let listener = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("{addr} (sidecar.grpc_port): {e}"))?;
                tracing::info!(
                    "gRPC services ({}) listening on {addr}",
                    grpc.names.join(", ")
                );
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                Some(tokio::spawn(router.serve_with_incoming(incoming)))
            }
            None => None,
        };
        let mut state = State::build(plan, &dir).map_err(|e| format!("{file}: {e}"))?;
        state.session_log = session_stats;
        let state = Arc::new(state);
        state
            .check_models()
            .await
            .map_err(|e| format!("{file}: {e}"))?;
        let addr = format!("{}:{}", sidecar.address, sidecar.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tracing::info!("airouter sidecar listening on http://{addr}");
        tokio::select! {
            () = serve::serve(state, listener) => {}
            _ = shutdown_signal() => tracing::info!("stopping"),
        }
        if let Some(task) = grpc_task {
            task.abort();
        }
        if let Some(provider) = spans {
            // Sends the spans still batched; the exporter's channel needs the runtime.
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!("spans not all exported: {e}");
            }
        }
        Ok(())
    });
    // Dropping the runtime drops the access log service, which ends the session log's queue:
    // its writer then writes what is queued and saves its counts before the process exits.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Some((writer, stats)) = session_writer {
        writer.finish(&stats);
    }
    served
}

/// The gRPC services the sidecar serves on its one gRPC port, by what the plan asks for: the
/// rate limit service (`[global_limits]`), the access log service (`[session_log]`) and the
/// gRPC client API with health and reflection (`[grpc_api]`).
struct GrpcServices {
    router: Option<tonic::transport::server::Router>,
    names: Vec<&'static str>,
    session_stats: Option<Arc<session_log::Stats>>,
    session_writer: Option<session_log::WriterThread>,
}

async fn grpc_services(file: &str, plan: &Plan, dir: &Path) -> Result<GrpcServices, String> {
    let limiter = match &plan.global_limits {
        Some(g) => {
            let store = Store::new(g.redis.expose(), Duration::from_millis(g.timeout_ms))
                .map_err(|e| format!("{file}: {}", url::redact(&e)))?;
            Some(Limiter::new(plan, store).into_server())
        }
        None => None,
    };
    let (sessions, session_stats, session_writer) = match &plan.session_log {
        Some(log) => {
            let (receiver, stats, writer) =
                session_log::start(log, dir.join(&log.dir)).map_err(|e| format!("{file}: {e}"))?;
            tracing::info!("session records go to {}", dir.join(&log.dir).display());
            (Some(receiver.into_server()), Some(stats), Some(writer))
        }
        None => (None, None, None),
    };
    let mut names = Vec::new();
    if limiter.is_some() {
        names.push("envoy.service.ratelimit.v3");
    }
    if sessions.is_some() {
        names.push("envoy.service.accesslog.v3");
    }
    if plan.grpc_api.is_some() {
        names.push(grpc_api::SERVICE_NAME);
    }
    let mut router = (!names.is_empty()).then(|| {
        tonic::transport::Server::builder()
            .add_optional_service(limiter)
            .add_optional_service(sessions)
    });
    if let Some(api) = &plan.grpc_api {
        if let Some(r) = router.take() {
            let r = grpc_api::add_to(r, api, &plan.listener).await;
            router = Some(r.map_err(|e| format!("{file}: {e}"))?);
        }
    }
    Ok(GrpcServices {
        router,
        names,
        session_stats,
        session_writer,
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

fn read(file: &str) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))
}

fn load(file: &str) -> Result<Plan, String> {
    let text = read(file)?;
    config_files::compile_file(file, &text, &|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}
