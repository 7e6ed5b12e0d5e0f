//! KServe v2 responses of a text-generation model → the OpenAI-neutral [`Event`]s of one client
//! request: each choice's text (with the [`super::text_stream`] fix-ups), its finish reason, and
//! the token counts. [`decode`] reads one response; [`StreamDecoder`] follows every choice of a
//! request over Triton's `ModelStreamInfer` stream.

use airouter_core::config::TritonModel;
use airouter_core::errors::ApiError;

use super::chat_request::ChatRequest;
use super::estimate_tokens;
use super::kserve_error;
use super::kserve_request::Extras;
use super::text_stream::TextAssembler;
use crate::kserve::pb::{ModelInferResponse, ModelStreamInferResponse};
use crate::kserve::tensors::{self, DecodeError};

/// What one response carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    /// The `text_output` bytes: a delta or the whole text so far, possibly cut mid-character.
    pub text: Vec<u8>,
    /// `stop` or `length`, when the model says (vLLM sends `None` until the end).
    pub finish_reason: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The last response of its request (always, for a model that is not decoupled).
    pub is_final: bool,
}

/// Reads one response; `extras` says which outputs beyond `text_output` were asked for.
pub fn decode(
    resp: &ModelInferResponse,
    extras: Extras,
    decoupled: bool,
) -> Result<Piece, DecodeError> {
    let mut piece = Piece {
        is_final: !decoupled || tensors::is_final(resp),
        ..Default::default()
    };
    if let Some((_, raw)) = tensors::output(resp, "text_output") {
        piece.text = tensors::decode_bytes(&raw)?.concat();
    }
    if extras.finish_reason {
        if let Some((_, raw)) = tensors::output(resp, "finish_reason") {
            let reason = tensors::decode_bytes(&raw)?.concat();
            let reason = String::from_utf8_lossy(&reason).trim().to_ascii_lowercase();
            if reason == "stop" || reason == "length" {
                piece.finish_reason = Some(reason);
            }
        }
    }
    let count = |name: &str| -> Result<Option<u64>, DecodeError> {
        match tensors::output(resp, name) {
            Some((meta, raw)) => tensors::decode_count(&meta.datatype, &raw).map(Some),
            None => Ok(None),
        }
    };
    if extras.num_input_tokens {
        piece.input_tokens = count("num_input_tokens")?;
    }
    if extras.num_output_tokens {
        piece.output_tokens = count("num_output_tokens")?;
    }
    Ok(piece)
}

/// One step of a client request's answer, in the order the client must see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// More text for a choice (never empty).
    Text { choice: usize, text: String },
    /// A choice is complete; `reason` is OpenAI's `finish_reason`, `stop` or `length`.
    Done { choice: usize, reason: &'static str },
    /// Every choice is complete: the request's token counts (the last event).
    Usage { prompt: u64, completion: u64 },
    /// The answer failed (the last event).
    Failed(ApiError),
}

/// One choice's progress.
struct ChoiceState {
    text: TextAssembler,
    /// The text sent so far, for token estimates.
    produced: String,
    reported_tokens: Option<u64>,
    input_tokens: Option<u64>,
    done: bool,
}

/// Follows every choice of one client request: one Triton request per choice, whose id is
/// `{id}-{choice}`, all answered on one `ModelStreamInfer` stream.
pub struct StreamDecoder {
    id: String,
    client_model: String,
    extras: Extras,
    decoupled: bool,
    max_tokens: u64,
    /// Each choice's prompt.
    prompts: Vec<String>,
    /// Choices per prompt (the client's `n`), which follow each other.
    per_prompt: usize,
    choices: Vec<ChoiceState>,
    remaining: usize,
}

impl StreamDecoder {
    /// Follows the choices of `req`: `prompts` holds each choice's prompt (the client's `n`
    /// choices in a row share one); `extras` and `decoupled` are those the Triton requests were
    /// built with; `client_model` names the model in errors.
    pub fn new(
        id: &str,
        client_model: &str,
        triton: &TritonModel,
        req: &ChatRequest,
        extras: Extras,
        decoupled: bool,
        prompts: Vec<String>,
    ) -> Self {
        let choices: Vec<ChoiceState> = prompts
            .iter()
            .map(|p| ChoiceState {
                text: TextAssembler::new(
                    triton.stream_text,
                    extras.echoes_prompt.then(|| p.clone()),
                    triton.stop_strings.clone(),
                ),
                produced: String::new(),
                reported_tokens: None,
                input_tokens: None,
                done: false,
            })
            .collect();
        StreamDecoder {
            id: id.to_string(),
            client_model: client_model.to_string(),
            extras,
            decoupled,
            max_tokens: u64::from(req.sampling.max_tokens),
            per_prompt: req.n as usize,
            remaining: choices.len(),
            choices,
            prompts,
        }
    }

    /// Choices in the request.
    pub fn choices(&self) -> usize {
        self.choices.len()
    }

    /// Every choice is complete.
    pub fn is_complete(&self) -> bool {
        self.remaining == 0
    }

    /// The events one stream message gives (none for a repeat after a choice ended); a Triton
    /// error or an unreadable answer is an error.
    pub fn accept(&mut self, msg: &ModelStreamInferResponse) -> Result<Vec<Event>, ApiError> {
        if !msg.error_message.is_empty() {
            return Err(kserve_error::from_stream_error(
                &msg.error_message,
                &self.client_model,
            ));
        }
        let Some(resp) = &msg.infer_response else {
            return Ok(Vec::new());
        };
        let index = self.choice_of(&resp.id)?;
        let (decoupled, max_tokens) = (self.decoupled, self.max_tokens);
        let Some(state) = self.choices.get_mut(index) else {
            return Ok(Vec::new());
        };
        if state.done {
            return Ok(Vec::new());
        }
        let piece = decode(resp, self.extras, decoupled).map_err(|e| {
            ApiError::with_status(
                502,
                format!("Triton sent an unreadable answer: {e}"),
                Some("bad_upstream_response"),
            )
        })?;
        if let Some(c) = piece.output_tokens {
            // vLLM reports per response when streaming: the total is the sum.
            *state.reported_tokens.get_or_insert(0) += c;
        }
        if piece.input_tokens.is_some() {
            state.input_tokens = piece.input_tokens;
        }
        let mut events = Vec::new();
        let text = state.text.push(&piece.text);
        state.produced.push_str(&text);
        if !text.is_empty() {
            events.push(Event::Text {
                choice: index,
                text,
            });
        }
        if piece.is_final {
            let tail = state.text.finish();
            state.produced.push_str(&tail);
            if !tail.is_empty() {
                events.push(Event::Text {
                    choice: index,
                    text: tail,
                });
            }
            let produced = completion_tokens(state, decoupled);
            let reason = match piece.finish_reason.as_deref() {
                Some("length") => "length",
                Some(_) => "stop",
                None if produced >= max_tokens => "length",
                None => "stop",
            };
            state.done = true;
            self.remaining -= 1;
            events.push(Event::Done {
                choice: index,
                reason,
            });
        }
        Ok(events)
    }

    /// The request's `(prompt, completion)` token counts once it is complete. The prompt counts
    /// once per prompt, not once per choice.
    pub fn usage(&self) -> (u64, u64) {
        let completion: u64 = self
            .choices
            .iter()
            .map(|c| completion_tokens(c, self.decoupled))
            .sum();
        let prompt: u64 = self
            .choices
            .iter()
            .zip(&self.prompts)
            .step_by(self.per_prompt.max(1))
            .map(|(c, p)| c.input_tokens.unwrap_or(estimate_tokens(p) as u64))
            .sum();
        (prompt, completion)
    }

    fn choice_of(&self, id: &str) -> Result<usize, ApiError> {
        let n = self.choices.len();
        if id.is_empty() && n == 1 {
            return Ok(0);
        }
        id.strip_prefix(&self.id)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|k| *k < n)
            .ok_or_else(|| {
                ApiError::with_status(
                    502,
                    format!("Triton answered an unknown request id `{id}`."),
                    Some("bad_upstream_response"),
                )
            })
    }
}

/// The model's own count when it gives one; else one token per streamed piece; a model that
/// answers in one piece gets an estimate from its text.
fn completion_tokens(c: &ChoiceState, decoupled: bool) -> u64 {
    match c.reported_tokens {
        Some(n) => n,
        None if decoupled && c.text.pieces() > 1 => c.text.pieces() as u64,
        None => estimate_tokens(&c.produced) as u64,
    }
}
