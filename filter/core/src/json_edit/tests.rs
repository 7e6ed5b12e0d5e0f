//! Edits on random objects: whatever members are removed or added, the text stays valid JSON
//! whose members are exactly the expected ones, each value byte for byte as written.

use super::*;
use crate::test_json::{Rng, TRICKY};

/// (decoded key, value as written) of every member, in order.
fn entries(text: &str) -> Vec<(String, String)> {
    let Entries(list) = serde_json::from_str(text).unwrap();
    list.into_iter()
        .map(|(k, v)| (k.into_owned(), v.get().to_string()))
        .collect()
}

/// A random object with random whitespace around every token.
fn document(rng: &mut Rng) -> String {
    let ws = |rng: &mut Rng| [" ", "", "\n\t", "", "  "][rng.next(5) as usize];
    let n = rng.next(6);
    let mut out = format!("{}{{", ws(rng));
    for i in 0..n {
        if i > 0 {
            out.push_str(&format!("{},{}", ws(rng), ws(rng)));
        } else {
            out.push_str(ws(rng));
        }
        let key = format!(
            "\"k{}{}\"",
            rng.next(4),
            ["", "\\u0041", "\\\""][rng.next(3) as usize]
        );
        out.push_str(&format!(
            "{key}{}:{}{}",
            ws(rng),
            ws(rng),
            rng.value(&TRICKY, 1)
        ));
    }
    out.push_str(&format!("{}}}{}", ws(rng), ws(rng)));
    out
}

#[test]
fn removing_any_members_keeps_the_rest_verbatim() {
    let mut rng = Rng::new(0x5eed_0001);
    for _ in 0..3000 {
        let text = document(&mut rng);
        let obj = object(&text, 0).unwrap();
        let mask = rng.next(64);
        let removed = |i: usize| mask & (1 << i) != 0;
        let mut edits = Edits::default();
        let index = |m: &Member| obj.members.iter().position(|x| std::ptr::eq(x, m)).unwrap();
        obj.remove_where(text.as_bytes(), &mut edits, |m| removed(index(m)));
        let out = String::from_utf8(edits.apply(text.as_bytes())).unwrap();
        let want: Vec<(String, String)> = entries(&text)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !removed(*i))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(entries(&out), want, "{text:?} mask {mask:b} -> {out:?}");
    }
}

#[test]
fn appending_and_replacing_keep_the_rest_verbatim() {
    let mut rng = Rng::new(0x5eed_0002);
    for _ in 0..2000 {
        let text = document(&mut rng);
        let obj = object(&text, 0).unwrap();
        let mut edits = Edits::default();
        let mut want = entries(&text);
        if let Some(first) = obj.members.first() {
            edits.replace(first.value.clone(), "42".into());
            want[0].1 = "42".into();
        }
        obj.append(
            &mut edits,
            &[("added", "{\"x\":[1]}"), ("more \"quoted\"", "null")],
        );
        want.push(("added".into(), "{\"x\":[1]}".into()));
        want.push(("more \"quoted\"".into(), "null".into()));
        let out = String::from_utf8(edits.apply(text.as_bytes())).unwrap();
        assert_eq!(entries(&out), want, "{text:?} -> {out:?}");
    }
}

#[test]
fn arrays_and_nested_objects_are_located_in_the_whole_text() {
    let body = r#"{"messages" : [ {"role":"user","content":"hi"} , {"role":"x"}],"n":1}"#;
    let top = object(body, 0).unwrap();
    let messages = top.read_as("messages").next().unwrap().value.clone();
    let arr = array(&body[messages.clone()], messages.start).unwrap();
    assert_eq!(arr.open, messages.start);
    let first = arr.elements[0].clone();
    assert_eq!(&body[first.clone()], r#"{"role":"user","content":"hi"}"#);
    let msg = object(&body[first.clone()], first.start).unwrap();
    assert_eq!(&body[msg.members[1].value.clone()], "\"hi\"");
    assert!(object("[1]", 0).is_none() && array("{}", 0).is_none());
    assert!(object("{\"a\":1,}", 0).is_none(), "strict JSON only");
}
