//! `[grpc_api]` compiled: its defaults, values as written, and each mistake named by file, line
//! and key.

use crate::config::{compile, Endpoint};

const BASE: &str = "[backends.b]\nkind = \"openai\"\nurl = \"http://127.0.0.1:9000/v1\"\n";

fn errors(extra: &str) -> String {
    let text = format!("{BASE}{extra}");
    compile("t.toml", &text, &|_| None).unwrap_err().to_string()
}

#[test]
fn defaults_are_the_one_sidecar_and_the_listener_on_loopback() {
    let text = format!("{BASE}[sidecar]\ngrpc_port = 9191\n[grpc_api]\n");
    let plan = compile("t.toml", &text, &|_| None).unwrap();
    let api = plan.grpc_api.unwrap();
    assert_eq!(
        (api.address.as_str(), api.port, api.reflection),
        ("0.0.0.0", 50051, true)
    );
    assert_eq!(
        api.sidecars,
        vec![Endpoint {
            host: "127.0.0.1".into(),
            port: 9191
        }]
    );
    assert_eq!(
        (api.openai.host.as_str(), api.openai.port),
        ("127.0.0.1", 8080)
    );
    assert!(plan.sidecar.is_some(), "[grpc_api] needs the sidecar");
}

#[test]
fn replicas_and_url_as_written() {
    let text = format!(
        "{BASE}[listener]\naddress = \"::\"\nport = 8181\n[grpc_api]\naddress = \"127.0.0.1\"\nport = 50052\nreflection = false\nsidecars = [\"10.0.0.7:8091\", \"[fd00::8]:8091\", \"sidecar-2.mesh:9000\"]\nopenai_url = \"http://envoy.mesh:8080\"\n"
    );
    let api = compile("t.toml", &text, &|_| None)
        .unwrap()
        .grpc_api
        .unwrap();
    assert_eq!((api.port, api.reflection), (50052, false));
    let hosts: Vec<_> = api
        .sidecars
        .iter()
        .map(|e| (e.host.as_str(), e.port))
        .collect();
    assert_eq!(
        hosts,
        [
            ("10.0.0.7", 8091),
            ("fd00::8", 8091),
            ("sidecar-2.mesh", 9000)
        ]
    );
    assert_eq!(api.openai.authority, "envoy.mesh:8080");

    let text = format!("{BASE}[listener]\naddress = \"::\"\n[grpc_api]\n");
    let api = compile("t.toml", &text, &|_| None)
        .unwrap()
        .grpc_api
        .unwrap();
    assert_eq!((api.openai.host.as_str(), api.openai.port), ("::1", 8080));
}

#[test]
fn mistakes_name_line_and_key() {
    let e = errors("[listener]\nport = 9000\n[grpc_api]\nport = 9000\n");
    assert!(
        e.contains("t.toml:7") && e.contains("grpc_api.port") && e.contains("[listener]'s port"),
        "{e}"
    );
    let e = errors("[grpc_api]\nport = 9901\n");
    assert!(
        e.contains("grpc_api.port") && e.contains("[admin]'s port"),
        "{e}"
    );
    let e = errors("[grpc_api]\nsidecars = []\n");
    assert!(
        e.contains("grpc_api.sidecars") && e.contains("at least one"),
        "{e}"
    );
    for bad in [
        "\"10.0.0.7\"",
        "\"10.0.0.7:x\"",
        "\"a b:1\"",
        "\"h:1/p\"",
        "\"::1:80\"",
    ] {
        let e = errors(&format!("[grpc_api]\nsidecars = [{bad}]\n"));
        assert!(
            e.contains("t.toml:5") && e.contains("grpc_api.sidecars"),
            "{bad}: {e}"
        );
    }
    let e = errors("[grpc_api]\nsidecars = [\"h:1\", \"h:1\"]\n");
    assert!(e.contains("named twice"), "{e}");
    for bad in ["https://e:1", "grpc://e:1", "http://e:1/v1", "ftp://e"] {
        let e = errors(&format!("[grpc_api]\nopenai_url = \"{bad}\"\n"));
        assert!(e.contains("grpc_api.openai_url"), "{bad}: {e}");
    }
    let e = errors("[grpc_api]\nprot = 1\n");
    assert!(e.contains("unknown field"), "{e}");
}
