//! `airouter istio FILE` and `airouter envoy-gateway FILE`: the manifests that run the filter in a
//! service mesh, rendered from the same `airouter.toml` and the same Envoy pieces as
//! `airouter envoy` (nothing here re-derives a cluster or a route: they are taken from
//! [`crate::bootstrap::parts`]).
//!
//! For Istio (the API versions named in `docs/mesh.md`), one YAML stream of:
//! - the filter: a `TrafficExtension` (Istio 1.30+) or, with `--api wasm-plugin`, a `WasmPlugin`
//!   (`extension`), which makes Istio's agent pull the module's OCI image and puts the filter in
//!   the gateway's chain;
//! - an `EnvoyFilter` (`envoy_filter`) for what those cannot express: the filter's
//!   `allow_on_headers_stop_iteration` (without it a request whose body the filter reads stalls),
//!   the per-attempt upstream filter, the backend and failover clusters, the routes matching the
//!   filter state, the connection manager's client limits and OpenAI-shaped local replies, and
//!   the bootstrap's stats tags and histogram buckets (a `BOOTSTRAP` patch);
//! - a `Gateway` and `VirtualService` on the listener's port (`gateway`);
//! - a `ServiceEntry` and `DestinationRule` per hosted (`https`) backend (`egress`);
//! - the sidecar (`airouter serve`) as a `Deployment` and `Service` when the file needs it
//!   (`workload`), its config Secret mounted so the files the TOML names resolve (`files`).
//!
//! The gRPC client API (`[grpc_api]`) is not part of the Istio recipe: its listener, cluster and
//! the sidecar's way back to the OpenAI listener are left out, and `airouter istio` says so.
//!
//! For Envoy Gateway, an `EnvoyExtensionPolicy` (`envoy_gateway`) and an `EnvoyProxy`
//! (`envoy_proxy`: the stats tags and histogram buckets, and with `[tracing]` the tracer).
//!
//! Secrets never enter a manifest: backend keys reach the gateway's Envoy through its environment
//! (filled from a Kubernetes Secret the operator creates), the sidecar reads its file and keys
//! from Secrets; the rendered objects only name them.

mod egress;
mod envoy_filter;
mod envoy_gateway;
mod envoy_proxy;
mod extension;
mod files;
mod gateway;
mod workload;

use std::path::PathBuf;

use crate::bootstrap::{FilterModule, Parts};

use airouter_core::config::{json, Plan};
use serde_json::{json, Value};

pub use envoy_gateway::envoy_extension_policy;
pub use envoy_proxy::envoy_proxy;

/// The name every rendered object starts with, and the plugin's name in Envoy.
pub const NAME: &str = "airouter";
/// The sidecar's Kubernetes `Service` (and `Deployment`) name.
pub const SIDECAR_SERVICE: &str = "airouter-sidecar";
/// The Secret holding the environment variables with backend keys (and the sidecar's secret).
pub const KEYS_SECRET: &str = "airouter-keys";
/// The Secret holding `airouter.toml` and the files it names, for the sidecar.
pub const CONFIG_SECRET: &str = "airouter-config";

/// The environment variable of Istio's agent (`pilot-agent`, read at its start) that, `true`,
/// makes it fetch the proxy's bootstrap from istiod, which then applies the `EnvoyFilter`'s
/// `BOOTSTRAP` patch. Set on the gateway's `istio-proxy` container, or as `proxyMetadata` in the
/// pod's `proxy.istio.io/config` annotation, which Istio's injection turns into that variable.
pub const BOOTSTRAP_XDS_AGENT: &str = "BOOTSTRAP_XDS_AGENT";

/// Which Istio API places the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionApi {
    /// `extensions.istio.io/v1alpha1` `TrafficExtension` (Istio 1.30 and later).
    TrafficExtension,
    /// `extensions.istio.io/v1alpha1` `WasmPlugin` (older releases).
    WasmPlugin,
}

/// What the manifests need beyond the file: where things live in the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// The namespace of every object (the gateway's).
    pub namespace: String,
    /// The module's OCI image (`oci://registry/repo:tag`), as `examples/oci/pack_wasm.py` pushes.
    pub wasm_image: String,
    /// The image manifest's SHA-256 as 64 lowercase hex digits (`--wasm-sha256` takes them bare
    /// or as `examples/oci/pack_wasm.py` prints them, `sha256:<hex>`), which Istio and Envoy
    /// Gateway check the pulled image against when given.
    pub wasm_sha256: Option<String>,
    /// The sidecar's container image (the Dockerfile in `examples/compose/`).
    pub sidecar_image: String,
    /// Label selecting the gateway's pods (`istio=ingressgateway`).
    pub selector: (String, String),
    /// TrafficExtension or WasmPlugin.
    pub api: ExtensionApi,
    /// The CA bundle inside the proxy's image, for `https` backends.
    pub ca_file: PathBuf,
    /// For Envoy Gateway: the `Gateway` the policy attaches to.
    pub gateway: String,
}

/// The namespace `airouter istio` renders into without `--namespace`: Istio's own, where its
/// ingress gateway runs.
pub const ISTIO_NAMESPACE: &str = "istio-system";
/// The namespace `airouter envoy-gateway` renders into without `--namespace`: the one Envoy
/// Gateway's quickstart puts its `Gateway` (`eg`) in.
pub const ENVOY_GATEWAY_NAMESPACE: &str = "default";

impl Options {
    /// Parses `airouter istio`'s options: `--wasm-image URL [--namespace NS] [--wasm-sha256
    /// [sha256:]HEX] [--sidecar-image IMAGE] [--selector KEY=VALUE] [--api
    /// traffic-extension|wasm-plugin] [--ca-file PATH] [--gateway NAME]`; `--wasm-image` is
    /// required, the namespace defaults to [`ISTIO_NAMESPACE`].
    pub fn parse(args: &[String]) -> Result<Self, String> {
        Self::parse_in(ISTIO_NAMESPACE, args)
    }

    /// Parses the options of `airouter CMD` (`istio` or `envoy-gateway`): as [`Options::parse`],
    /// the namespace defaulting to the command's ([`ENVOY_GATEWAY_NAMESPACE`] for Envoy Gateway).
    pub fn parse_for(cmd: &str, args: &[String]) -> Result<Self, String> {
        match cmd {
            "envoy-gateway" => Self::parse_in(ENVOY_GATEWAY_NAMESPACE, args),
            _ => Self::parse(args),
        }
    }

    fn parse_in(namespace: &str, args: &[String]) -> Result<Self, String> {
        let mut o = Options {
            namespace: namespace.into(),
            wasm_image: String::new(),
            wasm_sha256: None,
            sidecar_image: "airouter:latest".into(),
            selector: ("istio".into(), "ingressgateway".into()),
            api: ExtensionApi::TrafficExtension,
            ca_file: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            gateway: "eg".into(),
        };
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().ok_or(format!("{flag} needs a value"))?.clone();
            match flag.as_str() {
                "--namespace" => o.namespace = value,
                "--wasm-image" => o.wasm_image = value,
                "--wasm-sha256" => o.wasm_sha256 = Some(sha256_hex(&value)?),
                "--sidecar-image" => o.sidecar_image = value,
                "--ca-file" => o.ca_file = PathBuf::from(value),
                "--gateway" => o.gateway = value,
                "--selector" => {
                    let (k, v) = value.split_once('=').ok_or("--selector takes KEY=VALUE")?;
                    o.selector = (k.into(), v.into());
                }
                "--api" => {
                    o.api = match value.as_str() {
                        "traffic-extension" => ExtensionApi::TrafficExtension,
                        "wasm-plugin" => ExtensionApi::WasmPlugin,
                        _ => return Err("--api takes traffic-extension or wasm-plugin".into()),
                    }
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.wasm_image.is_empty() {
            return Err("--wasm-image oci://REGISTRY/REPO:TAG is required".into());
        }
        Ok(o)
    }

    /// The image reference without its `oci://` scheme (Envoy Gateway's form).
    fn image_reference(&self) -> &str {
        self.wasm_image
            .strip_prefix("oci://")
            .unwrap_or(&self.wasm_image)
    }
}

/// The 64 lowercase hex digits of a SHA-256 digest written bare or as an OCI digest
/// (`sha256:<hex>`, as `examples/oci/pack_wasm.py` prints it); the form both control planes'
/// `sha256` fields take.
fn sha256_hex(value: &str) -> Result<String, String> {
    let hex = value.strip_prefix("sha256:").unwrap_or(value);
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(format!(
            "--wasm-sha256 takes 64 lowercase hex digits, bare or as sha256:<hex>, not {value}"
        ));
    }
    Ok(hex.to_string())
}

/// A Kubernetes object's `metadata`.
fn metadata(name: &str, o: &Options) -> Value {
    json!({ "name": name, "namespace": o.namespace, "labels": { "app.kubernetes.io/part-of": NAME } })
}

/// The filter's configuration as the control planes carry it: its JSON form.
pub fn plugin_config(toml_text: &str) -> Result<Value, String> {
    json::to_json(toml_text).map(Value::Object)
}

/// What a control plane's proxy needs of the bootstrap's `stats_config` so that
/// `/stats/prometheus` shows the filter's series as under `airouter envoy`: the `stats_tags` of
/// its counters and GenAI histograms and, with `[telemetry] metrics`, the histograms'
/// `histogram_bucket_settings`. Both control planes merge it into their own bootstrap as
/// protobufs merge, appending to both lists. `use_all_default_tags` is left out: the proxy keeps
/// its own (Istio turns Envoy's default tags off and names those stats with its own tags).
fn stats_config(parts: &Parts) -> Value {
    let mut config = parts.stats_config.clone();
    if let Some(c) = config.as_object_mut() {
        c.remove("use_all_default_tags");
    }
    config
}

/// The environment variables the filter reads (backend keys, the sidecar's secret), by name.
fn env_keys(plan: &Plan) -> Vec<String> {
    let mut keys: Vec<String> = plan
        .backends
        .iter()
        .filter_map(|b| b.key_env.clone())
        .chain(plan.sidecar.as_ref().and_then(|s| s.secret_env.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Every Istio object for `plan`, whose configuration as Envoy holds it is `toml_text` (the
/// sanitized text `airouter envoy` renders: no secret in it), for a file naming no other file.
pub fn render(plan: Plan, toml_text: &str, o: &Options) -> Result<Vec<Value>, String> {
    render_with_files(plan, toml_text, &files::NamedFiles::default(), o)
}

/// [`render`] for a file naming the files `named`, which the sidecar's pod mounts beside it.
pub fn render_with_files(
    mut plan: Plan,
    toml_text: &str,
    named: &files::NamedFiles,
    o: &Options,
) -> Result<Vec<Value>, String> {
    let config = plugin_config(toml_text)?;
    // Not part of the Istio recipe (see the module's doc): no listener, no cluster.
    plan.grpc_api = None;
    // Inside the cluster Envoy reaches the sidecar through its Service.
    let sidecar_host = format!("{SIDECAR_SERVICE}.{}.svc.cluster.local", o.namespace);
    let sidecar = plan.sidecar.clone();
    if let Some(s) = plan.sidecar.as_mut() {
        s.address.clone_from(&sidecar_host);
    }
    let parts = crate::bootstrap::parts(
        &plan,
        toml_text,
        FilterModule::Wasm(&PathBuf::from("unused.wasm")),
        &o.ca_file,
    );
    let mut docs = vec![
        extension::extension(&plan, &config, o),
        envoy_filter::envoy_filter(&plan, &parts, o)?,
    ];
    docs.extend(gateway::gateway(&plan, o));
    docs.extend(egress::egress(&plan, o));
    if let Some(s) = &sidecar {
        docs.extend(workload::sidecar(&plan, s, named, o)?);
    }
    Ok(docs)
}

/// `airouter istio` (`cmd` "istio") or `airouter envoy-gateway`: the YAML stream for `plan`, the
/// plan of `file` (whose text is `text`) as Envoy holds it (`toml_text`). Names on stderr the
/// environment variables the proxy needs, which go in the Secret [`KEYS_SECRET`], never in a
/// manifest; for Istio also how to create the sidecar's config Secret, what the pod needs that
/// the manifests cannot carry, and that the gRPC client API is not part of the recipe.
pub fn command(
    cmd: &str,
    file: &str,
    text: &str,
    plan: Plan,
    toml_text: &str,
    o: &Options,
) -> Result<String, String> {
    let vars = env_keys(&plan);
    if !vars.is_empty() {
        eprintln!(
            "{file}: the proxy's environment needs {} (from the Secret {KEYS_SECRET}), never written in a manifest",
            vars.join(", ")
        );
    }
    let docs = if cmd == "istio" {
        eprintln!(
            "{file}: the gateway's proxy needs {BOOTSTRAP_XDS_AGENT}=true in its environment for the EnvoyFilter's BOOTSTRAP patch (the filter's stats tags and histogram buckets), read when it starts"
        );
        let mut notes = Vec::new();
        if plan.grpc_api.is_some() {
            notes.push(format!("{file}: note: [grpc_api] is not part of the Istio recipe: no listener or cluster is rendered for it (run the gRPC client API with `airouter envoy`)"));
        }
        let named = match &plan.sidecar {
            Some(s) => {
                let named = files::named(file, text, &plan)?;
                notes.extend(workload::notes(file, s));
                notes.extend(files::notes(file, &o.namespace, &named));
                named
            }
            None => files::NamedFiles::default(),
        };
        let docs = render_with_files(plan, toml_text, &named, o)?;
        for n in notes {
            eprintln!("{n}");
        }
        docs
    } else {
        eprintln!(
            "{file}: the Gateway {} names the EnvoyProxy {NAME} in spec.infrastructure.parametersRef (group gateway.envoyproxy.io, kind EnvoyProxy)",
            o.gateway
        );
        let parts = crate::bootstrap::parts(
            &plan,
            toml_text,
            FilterModule::Wasm(&PathBuf::from("unused.wasm")),
            &o.ca_file,
        );
        vec![
            envoy_extension_policy(&plan, toml_text, o)?,
            envoy_proxy(&plan, &parts, o)?,
        ]
    };
    yaml_stream(&docs, file)
}

/// A YAML stream of `docs`, each written as JSON (YAML 1.2 reads JSON as it is), after a comment
/// saying what made it.
pub fn yaml_stream(docs: &[Value], what: &str) -> Result<String, String> {
    let mut out =
        format!("# {what}: rendered by `airouter`; edit airouter.toml and render again\n");
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_json::to_string_pretty(d).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
