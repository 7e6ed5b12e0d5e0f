//! Translators between the OpenAI API and Triton's KServe v2, one module per direction and API.

pub mod embeddings;
pub mod llm_request;
pub mod llm_response;
pub mod openai_request;
pub mod text_stream;
