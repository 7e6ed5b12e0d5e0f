//! The sidecar (`airouter serve`) in the cluster: a `Deployment` (`apps/v1`) and a `Service`
//! (`v1`) named [`SIDECAR_SERVICE`], which the gateway's clusters reach by its cluster DNS name.
//! Its `airouter.toml` (and the files it names: prompts, chat templates) come from the Secret
//! [`CONFIG_SECRET`], which the operator creates from the file as written, Redis password and
//! all; the environment variables it names from the Secret [`KEYS_SECRET`]. Neither is rendered
//! here. `[sidecar] address` must be `0.0.0.0` in that file, so the pod accepts the gateway's
//! connections, and `[sidecar] secret_env` should be set, since they no longer come from
//! loopback. The pod runs without an Istio proxy of its own (`sidecar.istio.io/inject: "false"`):
//! the gateway's clusters speak to it in plain text, as to a local sidecar, and the shared secret
//! authenticates the filter. Non-root, read-only root file system; the session log, when
//! configured with an absolute `dir`, gets an `emptyDir` there (a `PersistentVolumeClaim` for
//! records that outlive the pod is the operator's to substitute).

use airouter_core::config::{Plan, Sidecar};
use serde_json::{json, Value};

use super::{metadata, Options, CONFIG_SECRET, KEYS_SECRET, NAME, SIDECAR_SERVICE};

/// Where the config Secret is mounted in the sidecar's container.
const CONFIG_DIR: &str = "/etc/airouter";

/// The sidecar's `Deployment` and `Service`; `s` is `[sidecar]` as the file writes it.
pub(super) fn sidecar(plan: &Plan, s: &Sidecar, o: &Options) -> Vec<Value> {
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
    let mut volumes = vec![json!({ "name": "config", "secret": { "secretName": CONFIG_SECRET } })];
    if let Some(log) = plan.session_log.as_ref().filter(|l| l.dir.starts_with('/')) {
        mounts.push(json!({ "name": "sessions", "mountPath": log.dir }));
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
                        "args": ["serve", format!("{CONFIG_DIR}/airouter.toml")],
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
    vec![deployment, service]
}
