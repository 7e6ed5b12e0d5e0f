//! The sidecar (`airouter serve`) in the cluster: a `Deployment` (`apps/v1`) and a `Service`
//! (`v1`) named [`SIDECAR_SERVICE`], which the gateway's clusters reach by its cluster DNS name.
//! Its `airouter.toml` and the files it names (prompts, chat templates) come from the Secret
//! [`CONFIG_SECRET`], each projected to its path beside the file (`files`), which the operator
//! creates with the command `airouter istio` prints (Redis password and all: the file as written);
//! the environment variables it names from the Secret [`KEYS_SECRET`]. Neither is rendered here.
//! The container runs `serve --listen-address 0.0.0.0`, whatever `[sidecar] address` says, so the
//! pod accepts the gateway's connections and its readiness probe; `[sidecar] secret_env` should be
//! set, since they no longer come from loopback (`airouter istio` warns when it is not). The pod
//! runs without an Istio proxy of its own (`sidecar.istio.io/inject: "false"`): the gateway's
//! clusters speak to it in plain text, as to a local sidecar, and the shared secret authenticates
//! the filter. Non-root, read-only root file system; the session log's `dir` (resolved as the
//! sidecar resolves it, beside the mounted file) gets a writable `emptyDir` (a
//! `PersistentVolumeClaim` for records that outlive the pod is the operator's to substitute).

use std::path::Path;

use airouter_core::config::{Plan, Sidecar};
use serde_json::{json, Value};

use super::files::{self, NamedFiles, CONFIG_DIR, CONFIG_FILE};
use super::{metadata, Options, CONFIG_SECRET, KEYS_SECRET, NAME, SIDECAR_SERVICE};

/// The address the sidecar listens on in its pod: every interface.
pub const POD_ADDRESS: &str = "0.0.0.0";

/// The sidecar's `Deployment` and `Service`; `s` is `[sidecar]` as the file writes it, `named`
/// the files it names. Refuses a session log directory inside the config Secret's read-only
/// mount.
pub(super) fn sidecar(
    plan: &Plan,
    s: &Sidecar,
    named: &NamedFiles,
    o: &Options,
) -> Result<Vec<Value>, String> {
    let labels =
        json!({ "app.kubernetes.io/name": SIDECAR_SERVICE, "app.kubernetes.io/part-of": NAME });
    let mut ports = vec![json!({ "name": "http", "containerPort": s.port })];
    let mut service_ports = vec![json!({ "name": "http", "port": s.port, "targetPort": "http" })];
    if plan.global_limits.is_some() || plan.session_log.is_some() {
        ports.push(json!({ "name": "grpc", "containerPort": s.grpc_port }));
        service_ports.push(json!({
            "name": "grpc", "port": s.grpc_port, "targetPort": "grpc", "appProtocol": "grpc"
        }));
    }
    let mut mounts = vec![json!({ "name": "config", "mountPath": CONFIG_DIR, "readOnly": true })];
    let mut volumes = vec![files::config_volume(named)];
    if let Some(log) = &plan.session_log {
        let dir = files::in_pod(&log.dir);
        if Path::new(&dir).starts_with(CONFIG_DIR) {
            return Err(format!(
                "{}: [session_log] dir = \"{}\" is {dir} in the sidecar's pod, inside the read-only mount of the Secret {CONFIG_SECRET}: write a directory outside the file's (e.g. \"../sessions\" or an absolute path)",
                plan.source, log.dir
            ));
        }
        mounts.push(json!({ "name": "sessions", "mountPath": dir }));
        volumes.push(json!({ "name": "sessions", "emptyDir": {} }));
    }
    let mut pod_labels = labels.clone();
    pod_labels["sidecar.istio.io/inject"] = json!("false");
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(SIDECAR_SERVICE, o),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": pod_labels },
                "spec": {
                    "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{
                        "name": "airouter",
                        "image": o.sidecar_image,
                        "args": [
                            "serve", format!("{CONFIG_DIR}/{CONFIG_FILE}"), "--listen-address", POD_ADDRESS
                        ],
                        "ports": ports,
                        "envFrom": [{ "secretRef": { "name": KEYS_SECRET, "optional": true } }],
                        "readinessProbe": { "httpGet": { "path": "/health", "port": "http" } },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] }
                        },
                        "volumeMounts": mounts
                    }],
                    "volumes": volumes
                }
            }
        }
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(SIDECAR_SERVICE, o),
        "spec": { "selector": labels, "ports": service_ports }
    });
    Ok(vec![deployment, service])
}

/// What the operator should know about `[sidecar]` `s` in a pod: the address it listens on
/// there, and a missing shared secret (without one the sidecar accepts loopback peers only, and
/// the gateway is not one).
pub(super) fn notes(file: &str, s: &Sidecar) -> Vec<String> {
    let mut notes = Vec::new();
    if s.address != POD_ADDRESS {
        notes.push(format!(
            "{file}: note: in its pod the sidecar listens on {POD_ADDRESS} (serve --listen-address), not on [sidecar] address = \"{}\", so the gateway and the readiness probe reach it",
            s.address
        ));
    }
    if s.secret_env.is_none() {
        notes.push(format!(
            "{file}: warning: [sidecar] secret_env is not set: without a shared secret the sidecar answers loopback peers only, and in the cluster the gateway is not one; set secret_env and put the variable in the Secret {KEYS_SECRET}"
        ));
    }
    notes
}
