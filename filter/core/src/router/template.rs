//! The router's prompt templates: text with `{{placeholder}}` slots, parsed once when the
//! configuration is compiled and filled per request in one pass (a value is never scanned for
//! placeholders again, so a conversation quoting `{{latest}}` stays as written).
//!
//! A placeholder is `{{name}}`, spaces inside the braces allowed, with `name` one of
//! [`Slot::name`]'s. Each kind of template takes its own set (the classifier's prompt the
//! labels, a route's system prompt the clock, ...); a well-formed placeholder outside that set
//! is refused at load, so a typo is an error rather than text the model reads. Any other `{{`
//! (a JSON or Jinja example in a prompt) is plain text.

use std::borrow::Cow;

/// A value a template can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The router's route labels, comma-separated.
    Labels,
    /// The prior turns the classifier sees, oldest first, one `role: text` block each.
    History,
    /// The latest user turn's text.
    Latest,
    /// The enrichment model's answer.
    Answer,
    /// The current date in the route's time zone, `2025-03-14`.
    Date,
    /// The current time in the route's time zone, `09:26`.
    Time,
    /// The current day of the week in English, `Friday`.
    Weekday,
    /// The route's IANA time zone, `Europe/Berlin`.
    TimeZone,
    /// All of the above in one phrase: `Friday, 2025-03-14 09:26 CET (Europe/Berlin, UTC+01:00)`.
    DateTime,
}

impl Slot {
    const ALL: [Slot; 9] = [
        Slot::Labels,
        Slot::History,
        Slot::Latest,
        Slot::Answer,
        Slot::Date,
        Slot::Time,
        Slot::Weekday,
        Slot::TimeZone,
        Slot::DateTime,
    ];

    /// The slots of the current date and time, filled from a route's clock.
    pub const CLOCK: [Slot; 5] = [
        Slot::Date,
        Slot::Time,
        Slot::Weekday,
        Slot::TimeZone,
        Slot::DateTime,
    ];

    /// The placeholder's name, as written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Labels => "labels",
            Slot::History => "history",
            Slot::Latest => "latest",
            Slot::Answer => "answer",
            Slot::Date => "date",
            Slot::Time => "time",
            Slot::Weekday => "weekday",
            Slot::TimeZone => "time_zone",
            Slot::DateTime => "datetime",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Slot),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, whose placeholders must be among `allowed`. The error names the first
    /// placeholder that is not, and the ones that are.
    pub fn parse(text: &str, allowed: &[Slot]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let (before, from) = rest.split_at(open);
            literal.push_str(before);
            let inner = from.get(2..).unwrap_or("");
            let named = inner.find("}}").and_then(|close| {
                let name = inner.get(..close)?.trim();
                let well_formed =
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                well_formed.then_some((name, close))
            });
            let Some((name, close)) = named else {
                literal.push_str("{{");
                rest = inner;
                continue;
            };
            match allowed.iter().find(|s| s.name() == name) {
                Some(slot) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Slot(*slot));
                }
                None => {
                    let known: Vec<String> = allowed
                        .iter()
                        .map(|s| format!("{{{{{}}}}}", s.name()))
                        .collect();
                    let known = if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    };
                    let what = if Slot::ALL.iter().any(|s| s.name() == name) {
                        "is not available here"
                    } else {
                        "is not a placeholder"
                    };
                    return Err(format!(
                        "`{{{{{name}}}}}` {what} (this text takes: {known})"
                    ));
                }
            }
            rest = inner.get(close + 2..).unwrap_or("");
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// A template of plain text (no placeholders read).
    pub fn literal(text: &str) -> Template {
        Template {
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// Whether the template uses `slot`.
    pub fn uses(&self, slot: Slot) -> bool {
        self.parts.contains(&Part::Slot(slot))
    }

    /// Whether the template uses any of `slots`.
    pub fn uses_any(&self, slots: &[Slot]) -> bool {
        slots.iter().any(|s| self.uses(*s))
    }

    /// The text with each placeholder replaced by `value(slot)`.
    pub fn render<'v>(&self, value: &dyn Fn(Slot) -> Cow<'v, str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Slot(s) => out.push_str(&value(*s)),
            }
        }
        out
    }

    /// The text with no value filled in (placeholders left empty): what a template costs.
    pub fn text_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.len(),
                Part::Slot(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(s: Slot) -> Cow<'static, str> {
        Cow::Owned(format!("<{}>", s.name()))
    }

    #[test]
    fn placeholders_are_filled_once_and_other_braces_are_text() {
        let t = Template::parse(
            "Labels: {{labels}}. Say {\"label\": \"X\"}. {{ latest }} {{not closed",
            &[Slot::Labels, Slot::Latest],
        )
        .unwrap();
        assert_eq!(
            t.render(&fill),
            "Labels: <labels>. Say {\"label\": \"X\"}. <latest> {{not closed"
        );
        assert!(t.uses(Slot::Latest) && !t.uses(Slot::History));
        // A value holding a placeholder is not expanded again.
        let t = Template::parse("[{{latest}}]", &[Slot::Latest]).unwrap();
        assert_eq!(t.render(&|_| Cow::Borrowed("{{latest}}")), "[{{latest}}]");
        // Jinja-like or upper-case braces are text.
        let t = Template::parse("{{ User }} {{a-b}} {{}}", &[]).unwrap();
        assert_eq!(t.render(&fill), "{{ User }} {{a-b}} {{}}");
    }

    #[test]
    fn unknown_or_unavailable_placeholders_are_refused() {
        let e = Template::parse("{{lables}}", &[Slot::Labels]).unwrap_err();
        assert_eq!(
            e,
            "`{{lables}}` is not a placeholder (this text takes: {{labels}})"
        );
        let e = Template::parse("{{answer}}", &[Slot::Date]).unwrap_err();
        assert!(e.contains("is not available here"), "{e}");
    }
}
