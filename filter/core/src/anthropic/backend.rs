//! OpenAI chat in, Anthropic Messages out, and the backend's answers back into OpenAI's form.

// STUB (replaced by the anth-back branch): the agreed signatures, so the flow compiles.
use crate::errors::ApiError;

/// How a chat request is made into a Messages request for one backend.
pub struct RequestOptions<'a> {
    pub model: &'a str,
    pub default_max_tokens: u32,
    pub drop_unsupported: bool,
}

/// Tokens a stream reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

pub fn messages_request(_chat: &[u8], _opts: &RequestOptions) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::internal("not built"))
}

pub fn chat_completion(_message: &[u8], _created: u64) -> Option<Vec<u8>> {
    None
}

#[derive(Debug, Default)]
pub struct ChunkStream;

impl ChunkStream {
    pub fn new(_created: u64) -> Self {
        ChunkStream
    }
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        chunk.to_vec()
    }
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
    pub fn usage(&self) -> Option<Usage> {
        None
    }
}

pub fn openai_error(status: u16, body: &[u8]) -> (u16, Vec<u8>) {
    (status, body.to_vec())
}
