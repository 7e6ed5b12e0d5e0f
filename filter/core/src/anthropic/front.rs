//! Anthropic Messages in (`POST /v1/messages`), OpenAI chat to the backend, and the chat answers
//! back into Anthropic's form.
