//! The context budget at its edges, and on random conversations.

use super::*;
use crate::test_json::Rng;

fn turn(role: &str, text: &str) -> Turn {
    Turn {
        role: role.into(),
        text: text.into(),
    }
}

/// A conversation of `sizes` bytes per turn, alternating user and assistant, ending with a
/// user turn of `latest` bytes.
fn conversation(sizes: &[usize], latest: usize) -> Vec<Turn> {
    let mut turns: Vec<Turn> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let role = if (sizes.len() - i) % 2 == 1 {
                "assistant"
            } else {
                "user"
            };
            turn(role, &"a".repeat(*n))
        })
        .collect();
    turns.push(turn("user", &"q".repeat(latest)));
    turns
}

#[test]
fn exactly_at_the_budget_fits_and_one_byte_over_does_not() {
    // 10 tokens: 40 bytes. Latest 8 bytes, prior turns 12 + 20 = 32: exactly 40.
    let at = build(&conversation(&[12, 20], 8), 10).unwrap();
    assert_eq!((at.history.len(), at.dropped, at.bytes), (2, 0, 40));
    assert_eq!(at.history[0].1.len(), 12, "oldest first");
    // One byte more in the oldest turn: it is cut, the newer one kept.
    let over = build(&conversation(&[13, 20], 8), 10).unwrap();
    assert_eq!((over.history.len(), over.dropped, over.bytes), (1, 1, 28));
    assert_eq!(over.history[0].1.len(), 20);
    // A newer turn that does not fit cuts every older one too, even small ones.
    let gap = build(&conversation(&[1, 1, 40], 8), 10).unwrap();
    assert_eq!((gap.history.len(), gap.dropped), (0, 3));
}

#[test]
fn a_latest_turn_larger_than_the_budget_keeps_both_ends() {
    let text = format!("Summarise this:{}Thanks!", "x".repeat(500));
    let ctx = build(&[turn("assistant", "earlier"), turn("user", &text)], 10).unwrap();
    assert!(ctx.latest_cut);
    assert_eq!(ctx.latest.len(), 40);
    assert!(ctx.latest.starts_with("Summarise this:x"), "{}", ctx.latest);
    assert!(ctx.latest.ends_with("xThanks!"), "{}", ctx.latest);
    assert!(ctx.latest.contains(CUT_MARK));
    assert_eq!((ctx.history.len(), ctx.dropped), (0, 1));
    // Exactly the budget is not cut.
    let ctx = build(&[turn("user", &"q".repeat(40))], 10).unwrap();
    assert!(!ctx.latest_cut && ctx.latest.len() == 40);
    // Multi-byte characters are never split.
    let ctx = build(&[turn("user", &"é".repeat(100))], 10).unwrap();
    assert!(ctx.latest.len() <= 40 && ctx.latest_cut);
}

#[test]
fn only_dialogue_turns_count_and_details_are_dropped() {
    let turns = [
        turn(
            "system",
            "you are a helpful assistant, a long system prompt",
        ),
        turn("user", "first"),
        turn(
            "assistant",
            "<details type=\"tool\">a very long tool result</details>answer",
        ),
        turn("tool", "tool output"),
        turn("assistant", ""),
        turn("user", "latest<details>folded</details>"),
        turn("assistant", "a prefill after the latest user turn"),
    ];
    let ctx = build(&turns, 1000).unwrap();
    assert_eq!(ctx.latest, "latest");
    let history: Vec<(&str, &str)> = ctx
        .history
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    assert_eq!(history, [("user", "first"), ("assistant", "answer")]);
    assert_eq!(
        render_history(&ctx.history),
        "user: first\n\nassistant: answer"
    );
    assert_eq!(render_history(&[]), "(none)");
    assert!(build(&[turn("system", "x"), turn("assistant", "y")], 10).is_none());
}

#[test]
fn random_conversations_stay_within_the_budget() {
    let mut rng = Rng::new(0xb0d6e7);
    let roles = ["user", "assistant", "system", "tool"];
    let pieces = ["a", "é", "🚀", "<details>", "</details>", " ", "\n"];
    for _ in 0..5000 {
        let turns: Vec<Turn> = (0..1 + rng.next(8))
            .map(|_| {
                let text: String = (0..rng.next(40))
                    .map(|_| pieces[rng.next(pieces.len() as u64) as usize])
                    .collect();
                turn(roles[rng.next(4) as usize], &text)
            })
            .collect();
        let budget = rng.next(30) as u32;
        let Some(ctx) = build(&turns, budget) else {
            assert!(!turns.iter().any(Turn::is_user));
            continue;
        };
        let limit = budget_bytes(budget);
        let kept: usize =
            ctx.latest.len() + ctx.history.iter().map(|(_, t)| t.len()).sum::<usize>();
        assert!(kept <= limit, "{kept} > {limit}");
        assert_eq!(kept, ctx.bytes);
        // The kept history is the newest prior dialogue turns, in order, and the next older
        // one (if any) would not have fit.
        let last_user = turns.iter().rposition(Turn::is_user).unwrap();
        let prior: Vec<String> = turns[..last_user]
            .iter()
            .filter(|t| t.is_dialogue())
            .map(|t| strip_details(&t.text).into_owned())
            .filter(|t| !t.trim().is_empty())
            .collect();
        assert_eq!(ctx.history.len() + ctx.dropped, prior.len());
        let newest: Vec<&String> = prior[ctx.dropped..].iter().collect();
        let kept_texts: Vec<&String> = ctx.history.iter().map(|(_, t)| t).collect();
        assert_eq!(kept_texts, newest);
        if ctx.dropped > 0 {
            assert!(ctx.bytes + prior[ctx.dropped - 1].len() > limit);
        }
        let latest = strip_details(&turns[last_user].text);
        assert_eq!(ctx.latest_cut, latest.len() > limit);
        if !ctx.latest_cut {
            assert_eq!(ctx.latest, latest);
        }
    }
}
