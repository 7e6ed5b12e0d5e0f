//! Whether a route's model can serve, read from the state the flow keeps per target.

use super::host::FakeHost;
use crate::api::Api;
use crate::config::{compile, Plan};
use crate::flow::route_status::route_status;
use crate::router::choice::Unavailable;
use crate::{admin, limits};

const CONFIG: &str = r#"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"
rate_limit = { requests = 1, window_ms = 60000 }

[backends.cloud]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "CLOUD_KEY"
api_key_optional = true

[backends.spare]
kind = "openai"
url = "http://127.0.0.1:8001/v1"

[[models]]
name = "local-chat"
apis = ["chat"]
target = { backend = "local", model = "qwen3" }

[[models]]
name = "cloud-chat"
apis = ["chat"]
target = { backend = "cloud", model = "big" }

[[models]]
name = "two-targets"
apis = ["chat"]
targets = [{ backend = "local", model = "qwen3" }, { backend = "spare", model = "qwen3" }]
"#;

fn plan(cloud_key: &'static str) -> Plan {
    let env = move |name: &str| (name == "CLOUD_KEY").then(|| cloud_key.to_string());
    compile("t.toml", CONFIG, &env).unwrap()
}

#[test]
fn each_reason_a_route_cannot_serve() {
    let plan = plan("");
    let mut host = FakeHost {
        now: 1_000_000,
        ..FakeHost::default()
    };
    assert_eq!(route_status(&host, &plan, Api::Chat, "local-chat"), Ok(()));
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "cloud-chat"),
        Err(Unavailable::Keyless),
        "api_key_env empty"
    );
    assert_eq!(
        route_status(&host, &plan, Api::Embeddings, "local-chat"),
        Err(Unavailable::Unconfigured)
    );
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "nobody"),
        Err(Unavailable::Unconfigured)
    );
    // At its limit (the one request the window holds is taken): limited, and asking counts nothing.
    assert!(limits::try_acquire(
        &mut host,
        "local",
        plan.backends[1].rate_limit.unwrap(),
        1_000_000
    )
    .is_ok());
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "local-chat"),
        Err(Unavailable::Limited)
    );
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "two-targets"),
        Ok(()),
        "the spare serves"
    );
    // Cooling down after a 429, then failing connections: the more lasting reason is given.
    limits::cool_down(&mut host, &limits::target_key("spare", "qwen3"), 1_030_000);
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "two-targets"),
        Err(Unavailable::Limited),
        "the first target's reason"
    );
    admin::record_failure(&mut host, "local");
    assert_eq!(
        route_status(&host, &plan, Api::Chat, "local-chat"),
        Err(Unavailable::Unhealthy)
    );
    host.now += admin::UNHEALTHY_FOR_MS + 60_000;
    assert_eq!(route_status(&host, &plan, Api::Chat, "two-targets"), Ok(()));
}

#[test]
fn a_backend_with_its_key_serves() {
    let plan = plan("sk-cloud");
    let host = FakeHost::default();
    assert_eq!(route_status(&host, &plan, Api::Chat, "cloud-chat"), Ok(()));
}
