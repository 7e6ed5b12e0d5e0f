//! `[[routers]]`: a good router compiles, from files or inline, to the same plan; every mistake
//! names file, line and key.

use super::super::{compile, compile_with, ConfigError, Sources};
use crate::api::Api;
use crate::config::Plan;
use crate::router::clock::tests::{kolkata, FIXED_NOW_MS};
use crate::router::clock::Transition;
use crate::router::enrich::Inject;
use crate::router::transforms::MaxTokens;

const GOOD: &str = r####"
[backends.local]
kind = "openai"
url = "http://127.0.0.1:8000/v1"

[backends.cloud]
kind = "openai"
url = "https://api.example.com/v1"
api_key_env = "CLOUD_KEY"

[backends.tri]
kind = "triton"
url = "grpc://127.0.0.1:8001"

[[models]]
name = "local-chat"
apis = ["chat", "completions"]
target = { backend = "local", model = "qwen3-8b" }

[[models]]
name = "orchestrator"
apis = ["chat"]
target = { backend = "local", model = "qwen3-0.6b" }

[[models]]
name = "cloud-*"
apis = ["chat", "responses"]
target = { backend = "cloud" }

[[models]]
name = "tri-chat"
apis = ["chat"]
target = { backend = "tri", model = "m" }
triton = { family = "vllm", template = "llama3" }

[[routers]]
name = "ai-router"
apis = ["chat", "completions"]
default_route = "simple"

[routers.classifier]
model = "orchestrator"
prompt_file = "prompts/classify.md"
timeout_ms = 3000
context_budget_tokens = 1000
min_confidence = 0.5

[[routers.routes]]
label = "SIMPLE"
model = "local-chat"

[[routers.routes]]
label = "COMPLEX"
model = "cloud-big"
fallback = ["simple"]
system_prompt_file = "prompts/complex.md"
time_zone = "Asia/Kolkata"
max_tokens_floor = 4096
set = { reasoning_effort = "high", temperature = 0.25, stop = ["END"] }

[[routers.routes]]
label = "ENRICH"
model = "local-chat"
enrich = { model = "cloud-search", tools = ["web_search", "x_search"], template = "Found:\n{{answer}}", inject = "user_turn" }

[[routers.meta]]
route = "simple"
single_user_message = true
contains_any = ["### Task:"]
"####;

fn env(name: &str) -> Option<String> {
    (name == "CLOUD_KEY").then(|| "sk-cloud".to_string())
}

fn files(path: &str) -> Result<String, String> {
    match path {
        "prompts/classify.md" => Ok("Answer with one of {{labels}}.".into()),
        "prompts/complex.md" => Ok("Be careful. It is {{datetime}}.\n".into()),
        _ => Err("No such file or directory (os error 2)".into()),
    }
}

fn zones(name: &str) -> Option<Vec<Transition>> {
    (name == "Asia/Kolkata").then(kolkata)
}

fn load(text: &str) -> Result<Plan, Vec<ConfigError>> {
    let sources = Sources {
        env: &env,
        read_file: &files,
        time_zone: &zones,
        plain_secrets: true,
    };
    compile_with("airouter.toml", text, &sources).map_err(|e| e.0)
}

#[test]
fn a_router_compiles_with_its_files_and_zones() {
    let plan = load(GOOD).unwrap();
    let r = plan.router(Api::Chat, "ai-router").unwrap();
    assert!(plan.router(Api::Embeddings, "ai-router").is_none());
    assert_eq!(r.labels(), ["SIMPLE", "COMPLEX", "ENRICH"]);
    assert_eq!((r.default_route, r.route_index("complex")), (0, Some(1)));
    assert_eq!(r.classifier.model, "orchestrator");
    assert_eq!(
        (r.classifier.timeout_ms, r.classifier.max_tokens),
        (3000, 256)
    );
    assert_eq!(r.classifier.min_confidence, Some(0.5));
    let complex = &r.routes[1];
    assert_eq!(complex.fallback, [0]);
    assert_eq!(complex.transforms.max_tokens, MaxTokens::Floor(4096));
    assert_eq!(
        complex.transforms.set,
        [
            ("reasoning_effort".to_string(), "\"high\"".to_string()),
            ("stop".to_string(), "[\"END\"]".to_string()),
            ("temperature".to_string(), "0.25".to_string()),
        ]
    );
    assert_eq!(
        complex.transforms.system_text(FIXED_NOW_MS).unwrap(),
        "Be careful. It is Friday, 2025-03-14 09:26 IST (Asia/Kolkata, UTC+05:30)."
    );
    let enrich = r.routes[2].enrich.as_ref().unwrap();
    assert_eq!(enrich.tools, ["web_search", "x_search"]);
    assert_eq!(
        (enrich.inject, enrich.timeout_ms),
        (Inject::UserTurn, 30_000)
    );
    assert_eq!(
        enrich.context_budget_tokens, 1000,
        "the classifier's budget"
    );
    assert_eq!(r.meta[0].route, 0);
}

/// The configuration `airouter envoy` writes: files inline, zones' rules in `[time_zones]`.
fn inlined() -> String {
    let rules: Vec<String> = kolkata()
        .iter()
        .map(|t| format!("[{}, {}, \"{}\"]", t.at, t.offset, t.abbreviation))
        .collect();
    let text = GOOD
        .replace(
            "prompt_file = \"prompts/classify.md\"",
            "prompt = \"Answer with one of {{labels}}.\"",
        )
        .replace(
            "system_prompt_file = \"prompts/complex.md\"",
            "system_prompt = \"Be careful. It is {{datetime}}.\"",
        );
    format!(
        "{text}\n[time_zones]\n\"Asia/Kolkata\" = [{}]\n",
        rules.join(", ")
    )
}

#[test]
fn the_inline_form_is_the_same_router_and_the_filter_reads_no_files() {
    let from_files = load(GOOD).unwrap();
    let inline = compile("airouter.toml", &inlined(), &env).unwrap();
    assert_eq!(from_files.routers, inline.routers);
    // The filter (no files, no tz database) refuses the file form, naming each key.
    let errs = compile("airouter.toml", GOOD, &env).unwrap_err().0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "routers[0].classifier.prompt_file",
            "routers[0].routes[1].system_prompt_file",
        ]
    );
    assert!(
        errs[0].message.contains("the filter reads no files"),
        "{}",
        errs[0]
    );
    let no_zone = inlined();
    let no_zone = &no_zone[..no_zone.find("[time_zones]").unwrap()];
    let errs = compile("airouter.toml", no_zone, &env).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.key == "routers[0].routes[1].time_zone"
                && e.message.contains("no tz database"))
    );
}

/// `GOOD` with `from` replaced by `to` is refused first at `to`'s line, under `key`, with a
/// message containing `says`.
fn refused(from: &str, to: &str, key: &str, says: &str) {
    assert!(GOOD.contains(from), "{from}");
    let at = GOOD.find(from).unwrap();
    let text = GOOD.replacen(from, to, 1);
    let errs = load(&text).expect_err(to);
    let e = &errs[0];
    let first = text[..at].matches('\n').count() + 1;
    let lines = first..=first + to.matches('\n').count();
    assert_eq!(
        (e.key.as_str(), e.file.as_str()),
        (key, "airouter.toml"),
        "{to}: {errs:?}"
    );
    assert!(
        lines.contains(&e.line),
        "{to}: line {} not in {lines:?}",
        e.line
    );
    assert!(e.message.contains(says), "{to}: {}", e.message);
}

#[test]
fn every_mistake_names_file_line_and_key() {
    let r = "routers[0]";
    let cases: &[(&str, &str, String, &str)] = &[
        (
            "name = \"ai-router\"",
            "name = \"cloud-x\"",
            format!("{r}.name"),
            "is also a `[[models]]` name",
        ),
        (
            "name = \"ai-router\"",
            "name = \"local-chat\"",
            format!("{r}.name"),
            "is also a",
        ),
        (
            "apis = [\"chat\", \"completions\"]\ndefault",
            "apis = [\"embeddings\"]\ndefault",
            format!("{r}.apis"),
            "serves `chat`",
        ),
        (
            "default_route = \"simple\"",
            "default_route = \"nope\"",
            format!("{r}.default_route"),
            "no route labelled `nope`",
        ),
        (
            "label = \"COMPLEX\"",
            "label = \"Simple\"",
            format!("{r}.routes[1].label"),
            "labels two routes",
        ),
        (
            "label = \"COMPLEX\"",
            "label = \"too complex\"",
            format!("{r}.routes[1].label"),
            "labels are",
        ),
        (
            "model = \"orchestrator\"",
            "model = \"tri-chat\"",
            format!("{r}.classifier.model"),
            "Triton",
        ),
        (
            "model = \"orchestrator\"",
            "model = \"nobody\"",
            format!("{r}.classifier.model"),
            "no `[[models]]` model named `nobody`",
        ),
        (
            "prompt_file = \"prompts/classify.md\"",
            "prompt_file = \"prompts/missing.md\"",
            format!("{r}.classifier.prompt_file"),
            "cannot read `prompts/missing.md`: No such file",
        ),
        (
            "prompt_file = \"prompts/classify.md\"",
            "prompt = \"{{lables}}\"",
            format!("{r}.classifier.prompt"),
            "`{{lables}}` is not a placeholder",
        ),
        (
            "prompt_file = \"prompts/classify.md\"",
            "prompt = \"x\"\nprompt_file = \"prompts/classify.md\"",
            format!("{r}.classifier.prompt_file"),
            "give one of",
        ),
        (
            "[routers.classifier]\nmodel = \"orchestrator\"\nprompt_file = \"prompts/classify.md\"",
            "[routers.classifier]\nmodel = \"orchestrator\"\ntemplate = \"{{latest}}\"",
            format!("{r}.classifier.prompt"),
            "needs a `prompt`",
        ),
        (
            "min_confidence = 0.5",
            "min_confidence = 2.0",
            format!("{r}.classifier.min_confidence"),
            "within 0 and 1",
        ),
        (
            "context_budget_tokens = 1000",
            "context_budget_tokens = 2",
            format!("{r}.classifier.context_budget_tokens"),
            "within 16 and",
        ),
        (
            "model = \"cloud-big\"",
            "model = \"nowhere\"",
            format!("{r}.routes[1].model"),
            "no `[[models]]` model named `nowhere`",
        ),
        (
            "fallback = [\"simple\"]",
            "fallback = [\"complex\"]",
            format!("{r}.routes[1].fallback[0]"),
            "itself",
        ),
        (
            "fallback = [\"simple\"]",
            "fallback = [\"gone\"]",
            format!("{r}.routes[1].fallback[0]"),
            "no route labelled `gone`",
        ),
        (
            "time_zone = \"Asia/Kolkata\"",
            "time_zone = \"Mars/Olympus\"",
            format!("{r}.routes[1].time_zone"),
            "unknown time zone `Mars/Olympus`",
        ),
        (
            "time_zone = \"Asia/Kolkata\"",
            "time_zone = \"../etc/passwd\"",
            format!("{r}.routes[1].time_zone"),
            "not an IANA time zone name",
        ),
        (
            "time_zone = \"Asia/Kolkata\"",
            "time_zone_x = 1",
            "routers[0].routes[1].time_zone_x".to_string(),
            "unknown field",
        ),
        (
            "max_tokens_floor = 4096",
            "max_tokens_floor = 4096\nremove_max_tokens = true",
            format!("{r}.routes[1].max_tokens_floor"),
            "give one of",
        ),
        (
            "set = { reasoning_effort",
            "set = { model = \"x\", reasoning_effort",
            format!("{r}.routes[1].set.model"),
            "the router's to set",
        ),
        (
            "set = { reasoning_effort",
            "set = { max_tokens = 5, reasoning_effort",
            format!("{r}.routes[1].set.max_tokens"),
            "already sets max tokens",
        ),
        (
            "set = { reasoning_effort",
            "set = { Top_P = 1, reasoning_effort",
            format!("{r}.routes[1].set.Top_P"),
            "lower-case",
        ),
        (
            "set = { reasoning_effort",
            "set = { when = 1979-05-27, reasoning_effort",
            format!("{r}.routes[1].set.when"),
            "no JSON form",
        ),
        (
            "model = \"cloud-search\"",
            "model = \"local-chat\"",
            format!("{r}.routes[2].enrich.model"),
            "does not serve `responses`",
        ),
        (
            "template = \"Found:\\n{{answer}}\"",
            "template = \"Found nothing\"",
            format!("{r}.routes[2].enrich.template"),
            "must use `{{answer}}`",
        ),
        (
            "tools = [\"web_search\", \"x_search\"]",
            "tools = [\"Web Search\"]",
            format!("{r}.routes[2].enrich.tools[0]"),
            "tool types",
        ),
        (
            "route = \"simple\"\nsingle_user_message = true\ncontains_any = [\"### Task:\"]",
            "route = \"simple\"",
            format!("{r}.meta[0]"),
            "needs a condition",
        ),
        (
            "route = \"simple\"\nsingle",
            "route = \"elsewhere\"\nsingle",
            format!("{r}.meta[0].route"),
            "no route labelled `elsewhere`",
        ),
    ];
    for (from, to, key, says) in cases {
        refused(from, to, key, says);
    }
}

#[test]
fn a_system_prompt_with_a_clock_placeholder_needs_a_zone() {
    let text = GOOD.replace("time_zone = \"Asia/Kolkata\"\n", "");
    let errs = load(&text).unwrap_err();
    assert_eq!(errs[0].key, "routers[0].routes[1].time_zone");
    assert!(errs[0].message.contains("needs a `time_zone`"));
}
