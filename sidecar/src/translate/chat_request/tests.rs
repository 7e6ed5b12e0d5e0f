//! OpenAI request bodies that are read, and those refused with the parameter at fault.

use serde_json::json;

use super::*;

#[test]
fn chat_parameters_are_read_and_checked() {
    let r = chat(&json!({"model":"m","messages":[{"role":"developer","content":[{"type":"text","text":"be "},{"type":"text","text":"brief"}]},{"role":"user","content":"hi"}],"max_completion_tokens":5,"stop":"x","n":2,"stream":true,"stream_options":{"include_usage":true},"seed":3}), 16).unwrap();
    assert_eq!(
        r.messages[0],
        Message {
            role: "system".into(),
            content: "be brief".into()
        }
    );
    assert_eq!(
        (r.sampling.max_tokens, r.n, r.stream, r.include_usage),
        (5, 2, true, true)
    );
    assert_eq!(r.sampling.stop, vec!["x".to_string()]);
    assert_eq!(
        chat(&json!({"messages":[{"role":"user","content":"hi"}]}), 16)
            .unwrap()
            .sampling
            .max_tokens,
        16
    );
}

#[test]
fn bad_parameters_name_themselves() {
    let cases = [
        (json!({"messages":[]}), "messages"),
        (json!({"messages":[{"content":"x"}]}), "messages"),
        (
            json!({"messages":[{"role":"user","content":[{"type":"image_url"}]}]}),
            "messages",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"temperature":3}),
            "temperature",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"n":0}),
            "n",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"n":99}),
            "n",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"stop":[1]}),
            "stop",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"stop":"x".repeat(1025)}),
            "stop",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"stop":["a","é".repeat(513)]}),
            "stop",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}),
            "stop",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"max_tokens":0}),
            "max_tokens",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}),
            "stream_options",
        ),
        (
            json!({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}),
            "tools",
        ),
    ];
    for (body, param) in cases {
        let e = chat(&body, 16).unwrap_err();
        assert_eq!((e.status, e.param), (400, Some(param)), "{body}");
    }
}

#[test]
fn completion_prompts() {
    assert_eq!(
        completion(&json!({"prompt":["a","b"],"echo":true}), 16)
            .unwrap()
            .prompts,
        ["a", "b"]
    );
    assert_eq!(
        completion(&json!({"prompt":[1,2]}), 16).unwrap_err().param,
        Some("prompt")
    );
    assert!(completion(&json!({"prompt":7}), 16).is_err());
}

#[test]
fn stop_strings_up_to_the_bound_are_taken() {
    let longest = "é".repeat(MAX_STOP_BYTES / 2);
    let four = vec![longest.clone(); MAX_STOP_STRINGS];
    let r = chat(
        &json!({"messages":[{"role":"user","content":"x"}],"stop":four}),
        16,
    )
    .unwrap();
    assert_eq!(r.sampling.stop, vec![longest; MAX_STOP_STRINGS]);
    let e = chat(
        &json!({"messages":[{"role":"user","content":"x"}],"stop":"x".repeat(MAX_STOP_BYTES + 1)}),
        16,
    )
    .unwrap_err();
    assert_eq!(e.kind, "invalid_request_error");
    assert!(e.message.contains("1024 bytes"), "{}", e.message);
}
