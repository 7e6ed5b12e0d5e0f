//! Anthropic Messages in (`POST /v1/messages`), OpenAI chat to the backend, and the chat answers
//! back into Anthropic's form.

// STUB (replaced by the anth-front branch): the agreed signatures, so the flow compiles.

/// A Messages request made into the router's inner form, an OpenAI chat request.
pub struct ChatRequest {
    pub body: Vec<u8>,
    pub model: String,
    pub stream: bool,
}

/// A request refused in Anthropic's terms.
pub struct FrontError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

pub fn chat_request(_messages: &[u8]) -> Result<ChatRequest, FrontError> {
    Err(FrontError {
        status: 400,
        kind: "invalid_request_error",
        message: "not built".into(),
    })
}

pub fn message(_chat_completion: &[u8]) -> Option<Vec<u8>> {
    None
}

#[derive(Debug, Default)]
pub struct EventStream;

impl EventStream {
    pub fn new(_model: &str, _input_tokens_estimate: u64) -> Self {
        EventStream
    }
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        chunk.to_vec()
    }
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

pub fn error_body(_status: u16, _kind: &str, message: &str) -> Vec<u8> {
    message.as_bytes().to_vec()
}

pub fn anthropic_error(status: u16, openai_body: &[u8]) -> (u16, Vec<u8>) {
    (status, openai_body.to_vec())
}
