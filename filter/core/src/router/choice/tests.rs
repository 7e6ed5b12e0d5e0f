//! Route choice: the wanted route, its fallbacks in order, the default; random availability.

use super::*;
use crate::test_json::Rng;

fn with(down: &[(usize, Unavailable)]) -> impl FnMut(usize) -> Result<(), Unavailable> + '_ {
    move |r| match down.iter().find(|(d, _)| *d == r) {
        Some((_, why)) => Err(*why),
        None => Ok(()),
    }
}

#[test]
fn the_wanted_route_serves_when_it_can() {
    let c = choose(2, ChosenBy::Classifier, &[1], 0, &mut with(&[]));
    assert_eq!(
        c,
        Choice {
            route: 2,
            by: ChosenBy::Classifier,
            skipped: vec![],
            none_available: false
        }
    );
}

#[test]
fn fallbacks_in_order_then_the_default() {
    let down = [(2, Unavailable::Keyless), (3, Unavailable::Limited)];
    let c = choose(2, ChosenBy::Classifier, &[3, 1], 0, &mut with(&down));
    assert_eq!((c.route, c.by), (1, ChosenBy::Fallback));
    assert_eq!(
        c.skipped,
        vec![(2, Unavailable::Keyless), (3, Unavailable::Limited)]
    );
    let down = [(2, Unavailable::Unhealthy), (3, Unavailable::CoolingDown)];
    let c = choose(2, ChosenBy::Meta, &[3], 0, &mut with(&down));
    assert_eq!(
        (c.route, c.by, c.none_available),
        (0, ChosenBy::Fallback, false)
    );
}

#[test]
fn with_nothing_available_the_default_is_marked() {
    let down = [(0, Unavailable::Limited), (1, Unavailable::Keyless)];
    let c = choose(1, ChosenBy::Classifier, &[0], 0, &mut with(&down));
    assert_eq!(
        (c.route, c.by, c.none_available),
        (0, ChosenBy::Default, true)
    );
    assert_eq!(c.skipped.len(), 2, "the default is asked once");
}

#[test]
fn a_model_serves_when_any_target_can() {
    let ok = TargetState::default();
    let keyless = TargetState {
        keyless: true,
        ..ok
    };
    let cooling = TargetState {
        cooling_down: true,
        limited: true,
        ..ok
    };
    assert_eq!(model_availability(&[keyless, ok]), Ok(()));
    assert_eq!(
        model_availability(&[cooling, keyless]),
        Err(Unavailable::CoolingDown)
    );
    assert_eq!(model_availability(&[]), Err(Unavailable::Unconfigured));
}

#[test]
fn random_availability_never_chooses_an_unavailable_route() {
    let mut rng = Rng::new(0xc401ce);
    let reasons = [
        Unavailable::Unconfigured,
        Unavailable::Keyless,
        Unavailable::Limited,
        Unavailable::CoolingDown,
        Unavailable::Unhealthy,
    ];
    for _ in 0..5000 {
        let n = 1 + rng.next(6) as usize;
        let mut down: Vec<(usize, Unavailable)> = Vec::new();
        for r in 0..n {
            if rng.next(2) == 0 {
                down.push((r, reasons[rng.next(5) as usize]));
            }
        }
        let wanted = rng.next(n as u64) as usize;
        let default = rng.next(n as u64) as usize;
        let fallback: Vec<usize> = (0..rng.next(3))
            .map(|_| rng.next(n as u64) as usize)
            .collect();
        let mut asked = Vec::new();
        let mut can = |r: usize| {
            asked.push(r);
            with(&down)(r)
        };
        let c = choose(wanted, ChosenBy::Classifier, &fallback, default, &mut can);
        let is_down = |r: usize| down.iter().any(|(d, _)| *d == r);
        let mut sorted = asked.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), asked.len(), "a route asked twice: {asked:?}");
        if c.none_available {
            assert_eq!((c.route, c.by), (default, ChosenBy::Default));
            assert!(asked.iter().all(|r| is_down(*r)));
        } else {
            assert!(!is_down(c.route));
            let candidates: Vec<usize> = std::iter::once(wanted)
                .chain(fallback.iter().copied())
                .chain(std::iter::once(default))
                .collect();
            let first_up = candidates.iter().copied().find(|r| !is_down(*r));
            assert_eq!(Some(c.route), first_up);
            assert_eq!(c.by == ChosenBy::Classifier, c.route == wanted);
        }
        assert!(c.skipped.iter().all(|(r, _)| is_down(*r)));
    }
}
