//! Backend base URLs: `http[s]://host[:port][/prefix]`, split into what Envoy and the filter need;
//! and [`redact`], which takes the credentials out of every URL in a text before it is shown.

use std::borrow::Cow;

/// A parsed backend base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `grpc://` or `grpcs://` rather than `http://` or `https://`.
    pub grpc: bool,
    pub tls: bool,
    /// Host name or IP address, without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash (`""` or `/v1`).
    pub path_prefix: String,
    /// The `:authority` to send: host, with the port when it is not the scheme's default.
    pub authority: String,
}

pub fn parse(url: &str) -> Result<BaseUrl, String> {
    let schemes = [
        ("https://", true, false),
        ("http://", false, false),
        ("grpcs://", true, true),
        ("grpc://", false, true),
    ];
    let Some((tls, grpc, rest)) = schemes
        .iter()
        .find_map(|(prefix, tls, grpc)| url.strip_prefix(prefix).map(|r| (*tls, *grpc, r)))
    else {
        return Err("must start with http://, https://, grpc:// or grpcs://".into());
    };
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    let (hostport, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if hostport.contains('@') {
        return Err("must not carry credentials; use api_key or api_key_env".into());
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port, bracketed) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("has an unclosed `[`")?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => default_port,
            None => return Err("has junk after the IPv6 address".into()),
        };
        (h.to_string(), port, true)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p)?, false),
            None => (hostport.to_string(), default_port, false),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if !bracketed
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(format!("has an invalid host `{host}`"));
    }
    let shown_host = if bracketed {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let authority = if port == default_port {
        shown_host
    } else {
        format!("{shown_host}:{port}")
    };
    Ok(BaseUrl {
        grpc,
        tls,
        host,
        port,
        path_prefix: path.trim_end_matches('/').to_string(),
        authority,
    })
}

/// What replaces a URL's credentials in text that is shown.
pub const REDACTED: &str = "<redacted>";

/// `text` with the credentials of every URL in it (`scheme://...`) replaced by [`REDACTED`]:
/// the user information before an `@` (`https://user:pass@host` → `https://<redacted>@host`) and
/// the query string (`?key=...` → `?<redacted>`), which often carries keys. A URL ends at
/// whitespace, a quote, a backtick or an angle bracket. Text without such parts is borrowed.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find("://")) {
        let start = from + found + 3;
        let rest = text.get(start..).unwrap_or("");
        let len = rest
            .find(|c: char| c.is_whitespace() || "`\"'<>".contains(c))
            .unwrap_or(rest.len());
        let token = rest.get(..len).unwrap_or("");
        let tail_at = token.find(['?', '#']).unwrap_or(token.len());
        let (before, tail) = token.split_at(tail_at);
        let userinfo = before.rfind('@');
        let query = tail.starts_with('?');
        if userinfo.is_some() || query {
            out.push_str(text.get(done..start).unwrap_or(""));
            match userinfo {
                Some(at) => {
                    out.push_str(REDACTED);
                    out.push_str(before.get(at..).unwrap_or(""));
                }
                None => out.push_str(before),
            }
            if query {
                out.push('?');
                out.push_str(REDACTED);
                out.push_str(tail.find('#').and_then(|h| tail.get(h..)).unwrap_or(""));
            } else {
                out.push_str(tail);
            }
            done = start + len;
        }
        from = start + len;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(text.get(done..).unwrap_or(""));
    Cow::Owned(out)
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("has an invalid port `{p}`")),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_scheme_host_port_prefix() {
        let u = parse("https://api.openai.com/v1/").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port), ("api.openai.com", 443));
        assert_eq!(u.path_prefix, "/v1");
        assert_eq!(u.authority, "api.openai.com");

        let u = parse("http://127.0.0.1:8000").unwrap();
        assert_eq!((u.port, u.path_prefix.as_str()), (8000, ""));
        assert_eq!(u.authority, "127.0.0.1:8000");

        let u = parse("http://[::1]:9000/openai/v1").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.authority, "[::1]:9000");
    }

    #[test]
    fn redacts_credentials_of_every_url_in_a_text() {
        let cases = [
            (
                "`https://user:pass@api.example.com/v1` must not carry credentials",
                "`https://<redacted>@api.example.com/v1` must not carry credentials",
            ),
            (
                "redis://:s3cret@10.0.0.7:6379/0 and rediss://u:p@h",
                "redis://<redacted>@10.0.0.7:6379/0 and rediss://<redacted>@h",
            ),
            (
                "\"http://h/v1?api-key=sk-1&x=2#frag\" is refused",
                "\"http://h/v1?<redacted>#frag\" is refused",
            ),
            (
                "unix:///run/redis.sock?pass=pw",
                "unix:///run/redis.sock?<redacted>",
            ),
            // An `@` in a password with a slash: everything up to the last `@` goes.
            ("http://u:p@ss@h/x", "http://<redacted>@h/x"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
        for clean in [
            "must start with http://, https://, grpc:// or grpcs://",
            "http://127.0.0.1:8000/v1",
            "no URL here",
            "ends with ://",
        ] {
            assert!(matches!(redact(clean), Cow::Borrowed(_)), "{clean}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_route() {
        for bad in [
            "ftp://x",
            "grpc:/x",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://u:p@h",
            "http://h/v1?x=1",
            "http://h h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
