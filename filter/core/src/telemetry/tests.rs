use super::*;

fn stream() -> Exchange<'static> {
    Exchange {
        api: Some(Api::Chat),
        model: "gpt-4o-mini",
        configured_model: "gpt-4o*",
        backend: Some("openai"),
        backend_model: Some("gpt-4o-mini-2024"),
        key: Some("team a"),
        input_tokens: Some(12),
        output_tokens: Some(5),
        finish_reason: Some("stop"),
        succeeded: true,
        streamed: true,
        start_ms: 1_000,
        first_token_ms: Some(1_100),
        end_ms: 1_500,
    }
}

#[test]
fn properties_carry_what_is_known_and_never_more() {
    let props = stream().properties();
    let get = |p: &str| props.iter().find(|(k, _)| *k == p).map(|(_, v)| v.as_str());
    assert_eq!(get(contract::OPERATION_PROPERTY), Some("chat"));
    assert_eq!(get(contract::MODEL_PROPERTY), Some("gpt-4o-mini"));
    assert_eq!(get(contract::BACKEND_PROPERTY), Some("openai"));
    assert_eq!(
        get(contract::BACKEND_MODEL_PROPERTY),
        Some("gpt-4o-mini-2024")
    );
    assert_eq!(get(contract::KEY_NAME_PROPERTY), Some("team a"));
    assert_eq!(get(contract::INPUT_TOKENS_PROPERTY), Some("12"));
    assert_eq!(get(contract::OUTPUT_TOKENS_PROPERTY), Some("5"));
    assert_eq!(get(contract::FINISH_REASON_PROPERTY), Some("stop"));
    let bare = Exchange {
        model: "chat",
        ..Exchange::default()
    };
    assert_eq!(
        bare.properties(),
        vec![(contract::MODEL_PROPERTY, "chat".to_string())]
    );
}

#[test]
fn operations_use_the_conventions_well_known_names() {
    assert_eq!(operation_name(Api::Chat), "chat");
    assert_eq!(operation_name(Api::Responses), "chat");
    assert_eq!(operation_name(Api::Completions), "text_completion");
    assert_eq!(operation_name(Api::Embeddings), "embeddings");
    assert_eq!(operation_name(Api::AudioSpeech), "audio.speech");
}

#[test]
fn a_stream_is_observed_with_configured_names_only() {
    let obs = named(stream().observations());
    let tail = ".key_name.team_a.gen_ai_request_model.gpt-4o_.gen_ai_provider_name.openai";
    assert_eq!(
        obs,
        vec![
            (
                format!("{TOKEN}.gen_ai_operation_name.chat.gen_ai_token_type.input{tail}"),
                12
            ),
            (
                format!("{TOKEN}.gen_ai_operation_name.chat.gen_ai_token_type.output{tail}"),
                5
            ),
            (format!("{DURATION}.gen_ai_operation_name.chat{tail}"), 500),
            (format!("{TTFT}.gen_ai_operation_name.chat{tail}"), 100),
            // 400 ms after the first token for the 4 tokens after it.
            (format!("{TPOT}.gen_ai_operation_name.chat{tail}"), 100),
        ]
    );
    assert!(obs.iter().all(|(n, _)| !n.contains("gpt-4o-mini")));
}

const TOKEN: &str = histograms::TOKEN_USAGE;
const DURATION: &str = histograms::REQUEST_DURATION;
const TTFT: &str = histograms::TIME_TO_FIRST_TOKEN;
const TPOT: &str = histograms::TIME_PER_OUTPUT_TOKEN;

#[test]
fn an_answer_or_a_failure_has_no_token_timings() {
    let answer = Exchange {
        streamed: false,
        output_tokens: None,
        input_tokens: None,
        key: None,
        backend: None,
        ..stream()
    };
    assert_eq!(
        named(answer.observations()),
        vec![(
            format!("{DURATION}.gen_ai_operation_name.chat.gen_ai_request_model.gpt-4o_"),
            500
        )]
    );
    let failed = Exchange {
        succeeded: false,
        ..stream()
    };
    assert!(named(failed.observations())
        .iter()
        .all(|(n, _)| !n.starts_with(TTFT)));
}

#[test]
fn each_tag_segment_is_found_anywhere_in_the_name() {
    // Envoy matches every regex against the whole name; each must find exactly its segment.
    let name = stream().observations().remove(0).0.stat_name();
    for (tag, regex) in histograms::TAGS {
        let marker = format!(".{tag}.");
        let at = name
            .find(&marker)
            .unwrap_or_else(|| panic!("{tag} in {name}"));
        let rest = &name[at + marker.len()..];
        let value = rest.split('.').next().unwrap_or_default();
        assert!(!value.is_empty(), "{tag}");
        assert!(regex.starts_with(&format!(r"(\.{tag}\.")), "{regex}");
        assert!(regex.ends_with(r"(?:\.|$)"), "{regex}");
    }
    // None of the counters' end-anchored tags takes a segment of these names.
    for (tag, _) in crate::metrics::TAGS {
        assert!(!name.contains(&format!(".{tag}.")), "{tag} in {name}");
    }
}

/// Observations with their series spelled as stat names.
fn named(obs: Vec<(histograms::Series, u64)>) -> Vec<(String, u64)> {
    obs.into_iter().map(|(s, v)| (s.stat_name(), v)).collect()
}

#[test]
fn every_series_has_one_of_its_metrics_label_sets() {
    for (series, _) in stream().observations() {
        assert!(histograms::label_sets(series.metric).contains(&series.label_names()));
    }
    let bare = Exchange {
        key: None,
        backend: None,
        ..stream()
    };
    for (series, _) in bare.observations() {
        assert!(histograms::label_sets(series.metric).contains(&series.label_names()));
    }
}
