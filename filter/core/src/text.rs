//! Strings built on the per-request path without the `format!` machinery, which costs the
//! module a thousand-odd instructions a call where these cost tens.

/// The parts joined, in one allocation of the exact size.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_in_order() {
        assert_eq!(concat(&["a/", "", "b", "/c"]), "a/b/c");
        assert_eq!(concat(&[]), "");
    }
}
