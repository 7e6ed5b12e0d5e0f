//! Why a generation stopped, in both APIs: Anthropic's `stop_reason` and OpenAI's
//! `finish_reason`, mapped one way and back.

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`: `end_turn` and `stop_sequence` →
/// `stop`, `max_tokens` → `length`, `tool_use` → `tool_calls`, `refusal` → `content_filter`,
/// `pause_turn` → `stop` (the turn is over for this request); anything else → `stop`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`: `stop` → `end_turn` (or
/// `stop_sequence` when the caller knows a stop sequence matched), `length` → `max_tokens`,
/// `tool_calls` and `function_call` → `tool_use`, `content_filter` → `refusal`; anything else
/// → `end_turn`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_maps_and_the_common_ones_map_back() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(anthropic), openai);
            assert_eq!(stop_reason(openai), anthropic);
        }
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("pause_turn"), "stop");
        assert_eq!(finish_reason("something new"), "stop");
        assert_eq!(stop_reason("function_call"), "tool_use");
    }
}
