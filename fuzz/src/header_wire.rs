//! proxy-wasm's header-list wire form (`airouter_filter::header_snapshot::{decode_pairs, encode_pairs}`) and the
//! header snapshot built on it (`HeaderSnapshot`).
//!
//! Input: bytes read two ways. As a wire form: it decodes exactly when a snapshot can be built
//! from it, a decoded list encodes and decodes back to itself, and the snapshot's lookups agree
//! with the list. As a script (name/value pairs, then edits): the list round-trips through the
//! wire form exactly, and after each edit the snapshot answers `get` and `changes` as a plain
//! list of pairs with the same edits applied does.

use airouter_filter::header_snapshot::{decode_pairs, encode_pairs, HeaderSnapshot};
use arbitrary::Unstructured;

pub fn check(data: &[u8]) {
    check_wire(data);
    check_script(data);
}

fn pairs_ref(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn check_wire(data: &[u8]) {
    let decoded = decode_pairs(data);
    let snapshot = HeaderSnapshot::from_wire(data.to_vec());
    assert_eq!(
        decoded.is_some(),
        snapshot.is_some(),
        "decode_pairs and from_wire disagree on {data:?}"
    );
    let (Some(pairs), Some(snapshot)) = (decoded, snapshot) else {
        return;
    };
    let again = decode_pairs(&encode_pairs(&pairs_ref(&pairs)));
    assert_eq!(
        again.as_ref(),
        Some(&pairs),
        "a decoded list does not round-trip: {data:?}"
    );
    for (name, _) in &pairs {
        let first = pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        // Names that are not UTF-8 were decoded lossily and are not looked up by their bytes.
        if !name.contains('\u{fffd}') {
            assert_eq!(
                snapshot.get(name).as_deref(),
                first,
                "get({name:?}) on {data:?}"
            );
        }
    }
}

/// A short header name from a small alphabet, so that scripts repeat names.
fn name(u: &mut Unstructured) -> arbitrary::Result<String> {
    const NAMES: [&str; 6] = [":path", "authorization", "x-a", "X-A", "", "x-\u{e9}"];
    Ok(NAMES[u.choose_index(NAMES.len())?].to_string())
}

fn check_script(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut pairs: Vec<(String, String)> = Vec::new();
    let Ok(count) = u.int_in_range(0..=8u8) else {
        return;
    };
    for _ in 0..count {
        let (Ok(k), Ok(v)) = (name(&mut u), u.arbitrary::<String>()) else {
            return;
        };
        pairs.push((k, v));
    }
    let wire = encode_pairs(&pairs_ref(&pairs));
    assert_eq!(
        decode_pairs(&wire).as_ref(),
        Some(&pairs),
        "encode/decode of {pairs:?}"
    );
    let mut snap =
        HeaderSnapshot::from_wire(wire).unwrap_or_else(|| panic!("no snapshot of {pairs:?}"));
    // The model: the pairs as the host holds them after each edit.
    let mut model = pairs.clone();
    // Unstructured keeps answering once the data is used up: stop there, and after 32 edits.
    for _ in 0..32 {
        if u.is_empty() {
            break;
        }
        let (Ok(k), Ok(value)) = (name(&mut u), u.arbitrary::<Option<String>>()) else {
            break;
        };
        let values = |m: &[(String, String)]| {
            m.iter()
                .filter(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let expect_change = match &value {
            None => !values(&model).is_empty(),
            Some(v) => values(&model) != [v.clone()],
        };
        assert_eq!(
            snap.changes(&k, value.as_deref()),
            expect_change,
            "changes({k:?}, {value:?}) with {model:?}"
        );
        snap.apply(&k, value.as_deref());
        model.retain(|(n, _)| *n != k);
        if let Some(v) = &value {
            model.push((k.clone(), v.clone()));
        }
        for n in model.iter().map(|(n, _)| n.clone()).chain([k.clone()]) {
            let first = model.iter().find(|(m, _)| *m == n).map(|(_, v)| v.as_str());
            assert_eq!(
                snap.get(&n).as_deref(),
                first,
                "get({n:?}) after edits, expected {model:?}"
            );
        }
    }
}
