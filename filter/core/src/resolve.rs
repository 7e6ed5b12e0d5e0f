//! Model resolution: exact name, then the most specific matching pattern, then the API's default.
//! The tables are built once per plan from each model's name, pattern, APIs and default flag,
//! and answer with the model's index in the plan.

use std::collections::HashMap;

use crate::api::{Api, ApiSet};
use crate::pattern::Pattern;

/// How a requested name was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Exact,
    Pattern,
    Default,
}

/// What the resolver needs of one configured model.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The client-visible name (a pattern's text when `pattern` is set).
    pub name: &'a str,
    pub pattern: Option<&'a Pattern>,
    /// The APIs the model serves.
    pub apis: ApiSet,
    /// The model is its APIs' default.
    pub default: bool,
}

/// Lookup tables built once from the plan's models.
#[derive(Debug, Default)]
pub struct ModelResolver {
    exact: HashMap<String, Vec<usize>>,
    /// Pattern models with their indices, most specific first (ties: longer text, then file
    /// order).
    patterns: Vec<(usize, Pattern)>,
    /// The APIs each model serves, by index.
    apis: Vec<ApiSet>,
    defaults: [Option<usize>; Api::ALL.len()],
}

impl ModelResolver {
    /// Tables for `models`, indexed in their order.
    pub fn new<'a>(models: impl IntoIterator<Item = Entry<'a>>) -> Self {
        let mut r = ModelResolver::default();
        for (i, m) in models.into_iter().enumerate() {
            match m.pattern {
                Some(p) => r.patterns.push((i, p.clone())),
                None => r.exact.entry(m.name.to_string()).or_default().push(i),
            }
            if m.default {
                for api in m.apis.iter() {
                    r.defaults[api.index()] = Some(i);
                }
            }
            r.apis.push(m.apis);
        }
        r.patterns
            .sort_by(|(a, pa), (b, pb)| pb.specificity().cmp(&pa.specificity()).then(a.cmp(b)));
        r
    }

    /// The index of the model serving `name` on `api`, and how it was found.
    pub fn resolve(&self, api: Api, name: &str) -> Option<(usize, How)> {
        let serves = |i: &usize| self.apis.get(*i).is_some_and(|a| a.contains(api));
        if let Some(i) = self
            .exact
            .get(name)
            .and_then(|v| v.iter().copied().find(serves))
        {
            return Some((i, How::Exact));
        }
        let by_pattern = self
            .patterns
            .iter()
            .find(|(i, p)| serves(i) && p.matches(name));
        if let Some((i, _)) = by_pattern {
            return Some((*i, How::Pattern));
        }
        self.defaults[api.index()].map(|i| (i, How::Default))
    }

    /// Whether `name` is served on some API by an exact name or a pattern (not by a default).
    pub fn knows(&self, name: &str) -> bool {
        self.exact.contains_key(name) || self.patterns.iter().any(|(_, p)| p.matches(name))
    }
}
