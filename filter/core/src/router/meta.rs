//! META detection: requests a client generates about a conversation rather than in it (Open
//! WebUI's title, tag and follow-up prompts: one long user message with markers such as
//! `### Task:`) skip the classifier and go to a configured route. A rule holds when every
//! condition it sets holds; the first rule that holds wins.

use super::turns::Turn;

/// One `[[routers.meta]]` rule, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRule {
    /// The route it sends requests to (an index into the router's routes).
    pub route: usize,
    /// The conversation is exactly one user message (other roles aside from system and
    /// developer messages make it not).
    pub single_user_message: bool,
    /// The latest user turn contains one of these (as written, case included); empty: no
    /// condition.
    pub contains_any: Vec<String>,
    /// The latest user turn is at least this many characters long.
    pub min_chars: Option<usize>,
}

impl MetaRule {
    /// Whether the rule holds for `turns`.
    pub fn matches(&self, turns: &[Turn]) -> bool {
        let Some(latest) = turns.iter().rev().find(|t| t.is_user()) else {
            return false;
        };
        if self.single_user_message {
            let instructions = |t: &&Turn| t.role == "system" || t.role == "developer";
            let others = turns.iter().filter(|t| !instructions(t)).count();
            if others != 1 {
                return false;
            }
        }
        if !self.contains_any.is_empty()
            && !self
                .contains_any
                .iter()
                .any(|m| latest.text.contains(m.as_str()))
        {
            return false;
        }
        self.min_chars
            .is_none_or(|min| latest.text.chars().nth(min.saturating_sub(1)).is_some())
    }
}

/// The index of the first rule of `rules` that holds for `turns`.
pub fn detect(rules: &[MetaRule], turns: &[Turn]) -> Option<usize> {
    rules.iter().position(|r| r.matches(turns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_json::Rng;

    fn user(text: &str) -> Turn {
        Turn {
            role: "user".into(),
            text: text.into(),
        }
    }

    fn open_webui_title() -> MetaRule {
        MetaRule {
            route: 1,
            single_user_message: true,
            contains_any: vec!["### Task:".into(), "### Chat History:".into()],
            min_chars: Some(40),
        }
    }

    #[test]
    fn open_webui_meta_prompts_match_and_conversations_do_not() {
        let rule = open_webui_title();
        let title = user("### Task:\nGenerate a concise, 3-5 word title with an emoji summarizing the chat history.\n### Chat History:\n<chat_history>USER: hi</chat_history>");
        assert!(rule.matches(std::slice::from_ref(&title)));
        let system = Turn {
            role: "system".into(),
            text: "x".into(),
        };
        assert!(
            rule.matches(&[system, title.clone()]),
            "system messages aside"
        );
        let assistant = Turn {
            role: "assistant".into(),
            text: "x".into(),
        };
        assert!(!rule.matches(&[assistant, title.clone()]), "a conversation");
        assert!(!rule.matches(&[user("### Task: short")]), "under min_chars");
        assert!(!rule.matches(&[user(&"no markers ".repeat(10))]));
        assert!(!rule.matches(&[]));
        assert_eq!(detect(&[open_webui_title()], &[title]), Some(0));
    }

    #[test]
    fn min_chars_counts_characters_not_bytes() {
        let rule = MetaRule {
            route: 0,
            single_user_message: false,
            contains_any: vec![],
            min_chars: Some(3),
        };
        assert!(rule.matches(&[user("ééé")]));
        assert!(!rule.matches(&[user("éé")]));
    }

    #[test]
    fn random_conversations_match_exactly_when_every_condition_holds() {
        let rule = open_webui_title();
        let mut rng = Rng::new(0x3e7a);
        let pieces = ["### Task:", "### Chat", " History:", "hello ", "é", "\n"];
        let roles = ["user", "assistant", "system"];
        for _ in 0..5000 {
            let turns: Vec<Turn> = (0..rng.next(4))
                .map(|_| Turn {
                    role: roles[rng.next(3) as usize].into(),
                    text: (0..rng.next(12))
                        .map(|_| pieces[rng.next(pieces.len() as u64) as usize])
                        .collect(),
                })
                .collect();
            let latest = turns.iter().rev().find(|t| t.is_user());
            let want = latest.is_some_and(|l| {
                turns.iter().filter(|t| t.role != "system").count() == 1
                    && (l.text.contains("### Task:") || l.text.contains("### Chat History:"))
                    && l.text.chars().count() >= 40
            });
            assert_eq!(rule.matches(&turns), want, "{turns:?}");
        }
    }
}
