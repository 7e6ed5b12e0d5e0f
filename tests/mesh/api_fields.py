"""The fields of the Istio and Envoy Gateway objects `airouter istio` and `airouter envoy-gateway`
render, as JSON Schemas written from the APIs' own definitions, for versions docs/mesh.md names:

- Istio 1.30, istio/api: `extensions/v1alpha1/traffic_extension.proto` (TrafficExtension; its
  `phase` values are `UNSPECIFIED`/`AUTHN`/`AUTHZ`/`STATS` spelt as Istio 1.30's reference and
  release blog write them, `phase: AUTHN`: the revision typing it `PluginPhase` and the one with
  a nested `TrafficExtension.ExecutionPhase` both take `AUTHN`; a later revision on istio/api's
  master moves `ExecutionPhase` to the package, its values then `EXECUTION_PHASE_AUTHN`, which
  TRAFFIC_EXTENSION_PHASE_NEXT pins for when the docs name that release), `extensions/v1alpha1/wasm.proto` (WasmPlugin, VmConfig, EnvValueSource,
  FailStrategy, PluginType, PullPolicy), `networking/v1alpha3/envoy_filter.proto` (ApplyTo,
  PatchContext, ListenerMatch, RouteConfigurationMatch, Patch.Operation), `networking/v1/`
  Gateway, VirtualService (HTTPDirectResponse), ServiceEntry (Location, Resolution) and
  DestinationRule (ClientTLSSettings.TLSmode, PortTrafficPolicy).
- Envoy Gateway v1.5, envoyproxy/gateway: `api/v1alpha1/wasm_types.go` and the generated
  `gateway.envoyproxy.io_envoyextensionpolicies.yaml` (EnvoyExtensionPolicy, Wasm,
  WasmCodeSource, ImageWasmCodeSource with its `sha256`, WasmEnv with `hostKeys`: the proxy's
  environment variables handed to the VM); `api/v1alpha1/envoyproxy_types.go` (EnvoyProxy's
  ProxyBootstrap, BootstrapType) and `envoyproxy_tracing_types.go` (ProxyTracing,
  TracingProvider, the `BackendRef`s of BackendCluster, gateway-api's Fraction), with one field
  of a later release: ProxyTracing's `tags` (envoyproxy/gateway#7828, after v1.6), whose values
  are Envoy substitution formats.

Each object admits only the fields listed here (`additionalProperties: false`), so a field the
renderer writes that the API does not define, a misspelt one or a wrong enum value fails the test.
Only the parts of each API the renderer can write are spelt out; Envoy's own configuration inside
EnvoyFilter patches (a `Struct` to Istio) is checked by real Envoy instead (test_manifests.py).
"""

STRING = {"type": "string"}
INT = {"type": "integer"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
LABELS = {"type": "object", "additionalProperties": STRING}


def obj(properties, required=()):
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def enum(*values):
    return {"type": "string", "enum": list(values)}


def array(items, **kw):
    return {"type": "array", "items": items, **kw}


METADATA = obj({"name": STRING, "namespace": STRING, "labels": LABELS, "annotations": LABELS}, ["name"])

# istio.type.v1beta1.WorkloadSelector / PolicyTargetReference
WORKLOAD_SELECTOR = obj({"matchLabels": LABELS})
TARGET_REF = obj({"group": STRING, "kind": STRING, "name": STRING, "namespace": STRING}, ["kind", "name"])
# wasm.proto: PluginPhase, FailStrategy, PullPolicy, PluginType, VmConfig, EnvVar, TrafficSelector
PHASE = enum("UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS")
# traffic_extension.proto: TrafficExtension.ExecutionPhase (Istio 1.30), and the package-level
# ExecutionPhase of istio/api's master, not rendered.
TRAFFIC_EXTENSION_PHASE = enum("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS")
TRAFFIC_EXTENSION_PHASE_NEXT = enum("EXECUTION_PHASE_UNSPECIFIED", "EXECUTION_PHASE_AUTHN",
                                    "EXECUTION_PHASE_AUTHZ", "EXECUTION_PHASE_STATS")
FAIL_STRATEGY = enum("FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD")
PULL_POLICY = enum("UNSPECIFIED_POLICY", "IfNotPresent", "Always")
PLUGIN_TYPE = enum("UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK")
VM_CONFIG = obj({"env": array(obj({"name": STRING, "value": STRING, "valueFrom": enum("INLINE", "HOST")}, ["name"]))})
TRAFFIC_SELECTOR = obj({
    "mode": enum("UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"),
    "ports": array(obj({"number": PORT}, ["number"])),
})
SHA256 = {"type": "string", "pattern": "^[a-f0-9]{64}$"}
WASM_FIELDS = {
    "url": {"type": "string", "minLength": 1},
    "sha256": SHA256,
    "imagePullPolicy": PULL_POLICY,
    "imagePullSecret": STRING,
    "pluginConfig": {"type": "object"},
    "pluginName": {"type": "string", "minLength": 1, "maxLength": 256},
    "failStrategy": FAIL_STRATEGY,
    "vmConfig": VM_CONFIG,
    "type": PLUGIN_TYPE,
}
PLACEMENT = {
    "selector": WORKLOAD_SELECTOR,
    "targetRefs": array(TARGET_REF, maxItems=16),
    "phase": PHASE,
    "priority": INT,
    "match": array(TRAFFIC_SELECTOR),
}

TRAFFIC_EXTENSION = obj({
    **PLACEMENT,
    "phase": TRAFFIC_EXTENSION_PHASE,
    "wasm": obj(WASM_FIELDS, ["url"]),
    "lua": obj({"inlineCode": {"type": "string", "minLength": 1, "maxLength": 65536}}, ["inlineCode"]),
})
WASM_PLUGIN = obj({**PLACEMENT, "targetRef": TARGET_REF, "verificationKey": STRING, **WASM_FIELDS}, ["url"])

# networking/v1alpha3/envoy_filter.proto
FILTER_MATCH = obj({"name": STRING, "subFilter": obj({"name": STRING})})
LISTENER_MATCH = obj({
    "portNumber": PORT,
    "filterChain": obj({"name": STRING, "sni": STRING, "transportProtocol": STRING,
                        "applicationProtocols": STRING, "filter": FILTER_MATCH, "destinationPort": PORT}),
    "listenerFilter": STRING,
    "name": STRING,
})
ROUTE_CONFIGURATION_MATCH = obj({
    "portNumber": PORT, "portName": STRING, "gateway": STRING, "name": STRING,
    "vhost": obj({"name": STRING, "domainName": STRING,
                  "route": obj({"name": STRING, "action": enum("ANY", "ROUTE", "REDIRECT", "DIRECT_RESPONSE")})}),
})
ENVOY_FILTER = obj({
    "workloadSelector": obj({"labels": LABELS}),
    "targetRefs": array(TARGET_REF),
    "priority": INT,
    "configPatches": array(obj({
        "applyTo": enum("INVALID", "LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER",
                        "ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER", "EXTENSION_CONFIG",
                        "BOOTSTRAP", "LISTENER_FILTER"),
        "match": obj({
            "context": enum("ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"),
            "proxy": obj({"proxyVersion": STRING, "metadata": LABELS}),
            "listener": LISTENER_MATCH,
            "routeConfiguration": ROUTE_CONFIGURATION_MATCH,
            "cluster": obj({"portNumber": PORT, "service": STRING, "subset": STRING, "name": STRING}),
        }),
        "patch": obj({
            "operation": enum("INVALID", "MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER",
                              "INSERT_FIRST", "REPLACE"),
            "value": {"type": "object"},
            "filterClass": enum("UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"),
        }, ["operation"]),
    }, ["applyTo", "patch"])),
})

# networking/v1: Gateway, VirtualService, ServiceEntry, DestinationRule
PORT_SPEC = obj({"number": PORT, "protocol": enum("HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"),
                 "name": STRING, "targetPort": PORT}, ["number", "protocol", "name"])
GATEWAY = obj({
    "selector": LABELS,
    "servers": array(obj({"port": PORT_SPEC, "bind": STRING, "hosts": array(STRING, minItems=1),
                          "tls": {"type": "object"}, "name": STRING}, ["port", "hosts"])),
})
VIRTUAL_SERVICE = obj({
    "hosts": array(STRING),
    "gateways": array(STRING),
    "exportTo": array(STRING),
    "http": array(obj({
        "name": STRING,
        "match": array({"type": "object"}),
        "route": array({"type": "object"}),
        "directResponse": obj({"status": {"type": "integer", "minimum": 200, "maximum": 599},
                               "body": obj({"string": STRING, "bytes": STRING})}, ["status"]),
    })),
})
SERVICE_ENTRY = obj({
    "hosts": array(STRING, minItems=1),
    "addresses": array(STRING),
    "ports": array(obj({"number": PORT, "protocol": STRING, "name": STRING, "targetPort": PORT},
                       ["number", "name"])),
    "location": enum("MESH_EXTERNAL", "MESH_INTERNAL"),
    "resolution": enum("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"),
    "exportTo": array(STRING),
}, ["hosts"])
CLIENT_TLS = obj({"mode": enum("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"), "sni": STRING,
                  "credentialName": STRING, "subjectAltNames": array(STRING), "caCertificates": STRING,
                  "insecureSkipVerify": {"type": "boolean"}})
DESTINATION_RULE = obj({
    "host": STRING,
    "trafficPolicy": obj({
        "tls": CLIENT_TLS,
        "portLevelSettings": array(obj({"port": obj({"number": PORT}), "tls": CLIENT_TLS})),
    }),
    "exportTo": array(STRING),
}, ["host"])

# Envoy Gateway: EnvoyExtensionPolicy
ENVOY_EXTENSION_POLICY = obj({
    "targetRefs": array(obj({"group": STRING, "kind": STRING, "name": STRING, "sectionName": STRING},
                            ["group", "kind", "name"])),
    "priority": INT,
    "wasm": array(obj({
        "name": STRING,
        "rootID": STRING,
        "code": obj({
            "type": enum("HTTP", "Image", "ConfigMap"),
            "http": obj({"url": STRING, "sha256": STRING}, ["url"]),
            "image": obj({"url": STRING, "pullSecretRef": {"type": "object"}, "sha256": SHA256}, ["url"]),
            "pullPolicy": enum("IfNotPresent", "Always"),
        }, ["type"]),
        "config": {},
        "failOpen": {"type": "boolean"},
        "env": obj({"hostKeys": array({"type": "string", "minLength": 1})}),
    }, ["code"])),
})


# Envoy Gateway: EnvoyProxy (the parts the renderer writes, with the API's CEL rules on them)
TRACING_PROVIDER = obj({
    "type": enum("OpenTelemetry", "Zipkin", "Datadog"),
    "backendRefs": array(obj({"group": STRING, "kind": STRING, "name": STRING, "namespace": STRING, "port": PORT},
                             ["name"]), maxItems=16),
    "host": STRING,
    "port": {"type": "integer", "minimum": 0},
    "zipkin": {"type": "object"},
}, ["type"])
TRACING_PROVIDER["anyOf"] = [{"required": ["host"]}, {"required": ["backendRefs"]}]
PROXY_TRACING = obj({
    "samplingRate": {"type": "integer", "minimum": 0, "maximum": 100},
    "samplingFraction": obj({"numerator": {"type": "integer", "minimum": 0},
                             "denominator": {"type": "integer", "minimum": 1}}, ["numerator"]),
    "customTags": {"type": "object"},
    "tags": {"type": "object", "additionalProperties": STRING},
    "provider": TRACING_PROVIDER,
}, ["provider"])
PROXY_TRACING["not"] = {"required": ["samplingRate", "samplingFraction"]}
ENVOY_PROXY = obj({
    "bootstrap": obj({"type": enum("Merge", "Replace", "JSONPatch"), "value": STRING,
                      "jsonPatches": array({"type": "object"})}),
    "telemetry": obj({"accessLog": {"type": "object"}, "tracing": PROXY_TRACING, "metrics": {"type": "object"}}),
    "provider": {"type": "object"},
    "logging": {"type": "object"},
    "concurrency": INT,
})


def document(api_version, kind, spec):
    return obj({"apiVersion": {"const": api_version}, "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
               ["apiVersion", "kind", "metadata", "spec"])


SCHEMAS = {
    ("extensions.istio.io/v1alpha1", "TrafficExtension"): TRAFFIC_EXTENSION,
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): WASM_PLUGIN,
    ("networking.istio.io/v1alpha3", "EnvoyFilter"): ENVOY_FILTER,
    ("networking.istio.io/v1", "Gateway"): GATEWAY,
    ("networking.istio.io/v1", "VirtualService"): VIRTUAL_SERVICE,
    ("networking.istio.io/v1", "ServiceEntry"): SERVICE_ENTRY,
    ("networking.istio.io/v1", "DestinationRule"): DESTINATION_RULE,
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"): ENVOY_EXTENSION_POLICY,
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy"): ENVOY_PROXY,
}


def schema_for(doc):
    """The schema of a rendered object, or None for Kubernetes' own kinds."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    spec = SCHEMAS.get(key)
    return document(key[0], key[1], spec) if spec else None
