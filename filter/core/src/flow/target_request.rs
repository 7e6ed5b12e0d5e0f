//! Rewrites a request for one target: the `model` in the body (JSON or multipart) and the headers
//! a backend needs (path with its prefix, `:authority`, credentials, the sidecar's instructions).
//! Used by the downstream flow for single-target models and by the upstream flow for each attempt
//! of a failover model. Every function is a pure edit of what the host holds now, so repeating it
//! for another attempt gives that attempt's request.

use std::ops::Range;

use crate::api::{Api, BodyKind};
use crate::auth::presented_key;
use crate::config::{Backend, BackendKind, Credential, Plan};
use crate::contract::{
    CLIENT_MODEL_HEADER, CLIENT_PATH_HEADER, INSTRUCTION_HEADERS, SIDECAR_AUTHORITY,
    SIDECAR_SECRET_HEADER, TRITON_BACKEND_HEADER, TRITON_MODEL_HEADER,
};
use crate::errors::ApiError;
use crate::host::{Headers, Host};
use crate::text::concat;
use crate::{json_body, multipart};

/// Where the request's model name is in the body, and the name. The body must give one reading
/// to every parser a backend may use (see [`json_body`] and [`multipart`]), or it is refused.
pub fn locate_model(
    api: Api,
    body: &[u8],
    content_type: &str,
) -> Result<(Range<usize>, String), ApiError> {
    match api.body_kind() {
        BodyKind::Json => {
            let f = json_body::find_model(body)?;
            Ok((f.span, f.name))
        }
        BodyKind::Multipart => {
            let boundary = multipart::boundary(content_type).map_err(ApiError::bad_multipart)?;
            let field = multipart::find_field(body, boundary, "model")
                .map_err(|e| match e {
                    multipart::FormError::Malformed(why) => ApiError::bad_multipart(why),
                    multipart::FormError::Repeated => {
                        ApiError::ambiguous_model("the form has more than one `model` part")
                    }
                })?
                .ok_or_else(ApiError::missing_model)?;
            Ok((field.span, field.value))
        }
    }
}

/// The longest model name a client may send, in bytes (configured names and patterns have the
/// same limit).
pub const MAX_MODEL_NAME_BYTES: usize = 256;

/// Checks a model name as a client sent it (body, form field or `/v1/models/{id}`): at most
/// [`MAX_MODEL_NAME_BYTES`], no control characters (Unicode `Cc`) and no invisible formatting
/// ones (bidirectional overrides and isolates, zero-width characters, the byte order mark: see
/// [`is_format_char`]), which would make a name read as another. A 400 otherwise, before the
/// name reaches a header, a log line or any state.
pub fn check_model_name(name: &str) -> Result<(), ApiError> {
    if name.len() > MAX_MODEL_NAME_BYTES {
        return Err(ApiError::model_name_too_long(MAX_MODEL_NAME_BYTES));
    }
    if name.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Err(ApiError::model_name_control_chars());
    }
    Ok(())
}

/// Unicode's invisible formatting characters (general category `Cf`) that change how text
/// around them reads: the soft hyphen, the Arabic and Syriac marks, the Mongolian vowel
/// separator, zero-width characters and directional marks (U+200B to U+200F), bidirectional
/// embeddings and overrides (U+202A to U+202E), word joiners and isolates (U+2060 to U+206F),
/// the byte order mark, interlinear annotations and tag characters.
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE0001 | 0xE0020..=0xE007F)
}

/// The body with its model replaced by `name`.
pub fn replace_model(api: Api, body: &[u8], span: Range<usize>, name: &str) -> Vec<u8> {
    match api.body_kind() {
        BodyKind::Json => json_body::splice_string(body, span, name),
        BodyKind::Multipart => json_body::splice(body, span, name.as_bytes()),
    }
}

/// The path of Anthropic's Messages API below a backend's base URL (`/v1`).
pub const ANTHROPIC_MESSAGES_SUFFIX: &str = "/messages";
/// The header carrying the Messages API version a request is written for.
pub const ANTHROPIC_VERSION_HEADER: &str = "anthropic-version";

/// One target, as the headers need it.
pub struct TargetRef<'a> {
    pub backend: &'a Backend,
    pub backend_model: &'a str,
    pub client_name: &'a str,
    /// An Anthropic client's request sent as it came (its path below the backend's URL).
    pub direct: Option<super::front::Direct>,
}

/// Sets the path, authority, credentials and (for Triton) the sidecar's instructions.
/// `keep_failover` leaves the failover headers the next attempt needs in place.
pub fn apply_headers(
    host: &mut dyn Host,
    plan: &Plan,
    api: Api,
    query: &str,
    t: &TargetRef<'_>,
    keep_failover: bool,
) {
    let req = Headers::Request;
    for name in INSTRUCTION_HEADERS {
        if !(keep_failover && (name == CLIENT_MODEL_HEADER || name == CLIENT_PATH_HEADER)) {
            host.set_header(req, name, None);
        }
    }
    let backend = t.backend;
    let (prefix, authority) = match backend.kind {
        BackendKind::Openai | BackendKind::Anthropic => (
            backend.url.path_prefix.as_str(),
            backend.url.authority.as_str(),
        ),
        BackendKind::Triton => ("/v1", SIDECAR_AUTHORITY),
    };
    let suffix = match backend.kind {
        // The only API an Anthropic backend serves (the config allows no other).
        BackendKind::Anthropic => t
            .direct
            .map_or(ANTHROPIC_MESSAGES_SUFFIX, |d| d.path_suffix()),
        _ => api.path_suffix(),
    };
    let path = match query {
        "" => concat(&[prefix, suffix]),
        _ => concat(&[prefix, suffix, "?", query]),
    };
    host.set_header(req, ":path", Some(&path));
    host.set_header(req, ":authority", Some(authority));
    // Responses are rewritten, so they must come back uncompressed.
    host.set_header(req, "accept-encoding", None);
    if backend.kind != BackendKind::Anthropic {
        // An earlier attempt's, or an Anthropic client's: not this backend's business.
        host.set_header(req, ANTHROPIC_VERSION_HEADER, None);
        host.set_header(req, "anthropic-beta", None);
    }
    match backend.kind {
        BackendKind::Openai => set_credentials(host, &backend.credential),
        BackendKind::Anthropic => {
            set_credentials(host, &backend.credential);
            // Anthropic takes the key in `x-api-key`, and the API version in its own header.
            let bearer = host.header(req, "authorization");
            let key = bearer
                .as_deref()
                .and_then(|b| b.strip_prefix("Bearer "))
                .map(str::to_string);
            host.set_header(req, "authorization", None);
            host.set_header(req, "x-api-key", key.as_deref());
            // The client's own `anthropic-*` headers (beta features, which change the answer's
            // shape, an organization, browser access) are not the backend's business: only the
            // configured API version goes.
            for name in host.header_names_with_prefix(req, "anthropic-") {
                host.set_header(req, &name, None);
            }
            let version = backend.anthropic.as_ref().map(|a| a.version.as_str());
            host.set_header(req, ANTHROPIC_VERSION_HEADER, version);
        }
        BackendKind::Triton => {
            set_credentials(host, &Credential::None);
            host.set_header(req, TRITON_BACKEND_HEADER, Some(&backend.name));
            host.set_header(req, TRITON_MODEL_HEADER, Some(t.backend_model));
            host.set_header(req, CLIENT_MODEL_HEADER, Some(t.client_name));
            if let Some(secret) = plan.sidecar.as_ref().and_then(|s| s.secret.as_ref()) {
                host.set_header(req, SIDECAR_SECRET_HEADER, Some(secret.expose()));
            }
        }
    }
}

fn set_credentials(host: &mut dyn Host, credential: &Credential) {
    let req = Headers::Request;
    let bearer = match credential {
        Credential::Key(secret) => Some(concat(&["Bearer ", secret.expose()])),
        Credential::PassThrough => {
            let authz = host.header(req, "authorization");
            let api_key = host.header(req, "api-key");
            let x_api_key = host.header(req, "x-api-key");
            presented_key(authz.as_deref(), api_key.as_deref(), x_api_key.as_deref())
                .map(|k| concat(&["Bearer ", k]))
        }
        Credential::None => None,
    };
    host.set_header(req, "authorization", bearer.as_deref());
    host.set_header(req, "api-key", None);
    host.set_header(req, "x-api-key", None);
}
