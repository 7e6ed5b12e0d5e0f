//! Model resolution: exact name, then the most specific matching pattern, then the API's default.

use std::collections::HashMap;

use wildmatch::WildMatch;

use crate::api::Api;
use crate::config::{Backend, Model, Plan};

/// A model-name glob: `*` matches any run of characters, `?` exactly one.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    matcher: WildMatch,
    /// Literal characters: the more, the more specific.
    specificity: usize,
}

impl Pattern {
    pub fn is_pattern(text: &str) -> bool {
        text.contains(['*', '?', '[', ']', '{', '}'])
    }

    /// Builds a pattern (a plain name is a pattern matching only itself).
    pub fn new(text: &str) -> Result<Pattern, String> {
        if text.is_empty() || text.len() > 256 {
            return Err("must be 1-256 characters".into());
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        if text.contains(['[', ']', '{', '}']) {
            return Err(format!(
                "`{text}`: only `*` and `?` are wildcards; character classes and alternatives are not supported"
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            matcher: WildMatch::new(text),
            specificity: text.chars().filter(|c| !matches!(c, '*' | '?')).count(),
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        self.matcher.matches(name)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// How a requested name was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Exact,
    Pattern,
    Default,
}

/// Lookup tables built once from the plan's models.
#[derive(Debug, Default)]
pub struct ModelResolver {
    exact: HashMap<String, Vec<usize>>,
    /// Pattern models, most specific first (ties: longer text, then file order).
    patterns: Vec<usize>,
    defaults: [Option<usize>; Api::ALL.len()],
}

impl ModelResolver {
    pub fn new(models: &[Model]) -> Self {
        let mut r = ModelResolver::default();
        for (i, m) in models.iter().enumerate() {
            match &m.pattern {
                Some(_) => r.patterns.push(i),
                None => r.exact.entry(m.name.clone()).or_default().push(i),
            }
            if m.default {
                for api in m.apis.iter() {
                    r.defaults[api.index()] = Some(i);
                }
            }
        }
        let key = |i: &usize| {
            models
                .get(*i)
                .and_then(|m| m.pattern.as_ref())
                .map_or((0, 0), |p| (p.specificity, p.text.len()))
        };
        r.patterns
            .sort_by(|a, b| key(b).cmp(&key(a)).then(a.cmp(b)));
        r
    }

    /// The index of the model serving `name` on `api`, and how it was found.
    pub fn resolve(&self, models: &[Model], api: Api, name: &str) -> Option<(usize, How)> {
        let serves = |i: &usize| models.get(*i).is_some_and(|m| m.apis.contains(api));
        if let Some(i) = self
            .exact
            .get(name)
            .and_then(|v| v.iter().copied().find(serves))
        {
            return Some((i, How::Exact));
        }
        let by_pattern = self.patterns.iter().copied().find(|i| {
            serves(i)
                && models
                    .get(*i)
                    .and_then(|m| m.pattern.as_ref())
                    .is_some_and(|p| p.matches(name))
        });
        if let Some(i) = by_pattern {
            return Some((i, How::Pattern));
        }
        self.defaults[api.index()].map(|i| (i, How::Default))
    }

    /// Whether `name` is served on some API by an exact name or a pattern (not by a default).
    pub fn knows(&self, models: &[Model], name: &str) -> bool {
        self.exact.contains_key(name)
            || self.patterns.iter().any(|i| {
                models
                    .get(*i)
                    .and_then(|m| m.pattern.as_ref())
                    .is_some_and(|p| p.matches(name))
            })
    }
}

/// Where one request goes.
#[derive(Debug, Clone)]
pub struct Target<'p> {
    pub model: &'p Model,
    /// The model's index in [`Plan::models`].
    pub index: usize,
    pub backend: &'p Backend,
    pub how: How,
    /// The name the client sees in responses.
    pub client_name: String,
    /// The name the backend is sent.
    pub backend_model: String,
}

impl Plan {
    pub fn resolve(&self, api: Api, requested: &str) -> Option<Target<'_>> {
        let (i, how) = self.resolver.resolve(&self.models, api, requested)?;
        let model = self.models.get(i)?;
        let primary = model.primary()?;
        let backend = self.backends.get(primary.backend)?;
        let client_name = match how {
            How::Exact | How::Pattern => requested.to_string(),
            How::Default => model.name.clone(),
        };
        let backend_model = Model::name_at(primary, &client_name).to_string();
        Some(Target {
            model,
            index: i,
            backend,
            how,
            client_name,
            backend_model,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_validate_and_match() {
        assert!(Pattern::new("gpt-[45]").is_err());
        assert!(Pattern::new("").is_err());
        let p = Pattern::new("gpt-4*").unwrap();
        assert!(p.matches("gpt-4o") && p.matches("gpt-4") && !p.matches("gpt-3.5"));
        let q = Pattern::new("llama-?b").unwrap();
        assert!(q.matches("llama-8b") && !q.matches("llama-70b"));
        assert!(Pattern::new("exact").unwrap().matches("exact"));
    }
}
