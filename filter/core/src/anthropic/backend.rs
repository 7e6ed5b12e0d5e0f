//! OpenAI chat in, Anthropic Messages out, and the backend's answers back into OpenAI's form.
