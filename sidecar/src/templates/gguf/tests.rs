//! GGUF metadata from files written here: the keys a prompt needs are found among others of
//! every type; truncated, garbage and hostile files are errors, never panics or large buffers.

use std::io::Cursor;

use super::*;

/// A GGUF v3 file's header and key-value section, written value by value.
#[derive(Default)]
struct Gguf {
    kv: Vec<u8>,
    keys: u64,
}

impl Gguf {
    fn key(&mut self, key: &str, ty: u32) -> &mut Self {
        self.keys += 1;
        self.string_bytes(key.as_bytes());
        self.kv.extend(ty.to_le_bytes());
        self
    }
    fn string_bytes(&mut self, s: &[u8]) -> &mut Self {
        self.kv.extend((s.len() as u64).to_le_bytes());
        self.kv.extend(s);
        self
    }
    fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key, STRING).string_bytes(value.as_bytes())
    }
    fn u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.key(key, 4);
        self.kv.extend(value.to_le_bytes());
        self
    }
    fn strings(&mut self, key: &str, values: &[&str]) -> &mut Self {
        self.key(key, ARRAY);
        self.kv.extend(STRING.to_le_bytes());
        self.kv.extend((values.len() as u64).to_le_bytes());
        for v in values {
            self.string_bytes(v.as_bytes());
        }
        self
    }
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.kv.extend(bytes);
        self
    }
    fn file(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(2u64.to_le_bytes()); // tensors: never read
        out.extend(self.keys.to_le_bytes());
        out.extend(&self.kv);
        out
    }
}

const TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Keys of every type around the ones that matter, the token array before the ids.
fn model() -> Gguf {
    let mut g = Gguf::default();
    g.string("general.architecture", "llama")
        .u32("llama.context_length", 8192);
    g.key("llama.rope.freq_base", 6)
        .raw(&10000f32.to_le_bytes());
    g.key("general.flag", 7).raw(&[1]);
    g.key("general.big", 11).raw(&(-5i64).to_le_bytes());
    g.key("tokenizer.ggml.scores", ARRAY)
        .raw(&6u32.to_le_bytes())
        .raw(&3u64.to_le_bytes())
        .raw(&[0; 12]);
    g.strings(
        "tokenizer.ggml.tokens",
        &["<|endoftext|>", "<|im_start|>", "<|im_end|>", "hello"],
    )
    .strings("tokenizer.ggml.merges", &["h e", "he llo"])
    .string("tokenizer.chat_template", TEMPLATE)
    .u32("tokenizer.ggml.bos_token_id", 1);
    g.key("tokenizer.ggml.eos_token_id", 0).raw(&[2]);
    g
}

/// A small GGUF file with a ChatML template, `<|im_start|>` as BOS and `<|im_end|>` as EOS.
pub(crate) fn chatml_file() -> Vec<u8> {
    model().file()
}

fn parse(bytes: &[u8]) -> Result<GgufChat, String> {
    read_from(Cursor::new(bytes), bytes.len() as u64)
}

#[test]
fn the_template_and_special_tokens_are_found_among_other_keys() {
    let chat = parse(&model().file()).unwrap();
    assert_eq!(chat.chat_template, TEMPLATE);
    assert_eq!(chat.bos_token.as_deref(), Some("<|im_start|>"));
    assert_eq!(chat.eos_token.as_deref(), Some("<|im_end|>"));
}

#[test]
fn ids_before_the_tokens_and_a_shared_id_work_and_missing_ones_are_none() {
    let mut g = Gguf::default();
    g.u32("tokenizer.ggml.bos_token_id", 0)
        .u32("tokenizer.ggml.eos_token_id", 0)
        .strings("tokenizer.ggml.tokens", &["</s>", "x"])
        .string("tokenizer.chat_template", TEMPLATE);
    let chat = parse(&g.file()).unwrap();
    assert_eq!(
        (chat.bos_token.as_deref(), chat.eos_token.as_deref()),
        (Some("</s>"), Some("</s>"))
    );
    let mut g = Gguf::default();
    g.string("tokenizer.chat_template", TEMPLATE);
    let chat = parse(&g.file()).unwrap();
    assert_eq!((chat.bos_token, chat.eos_token), (None, None));
}

#[test]
fn a_file_without_a_template_is_refused() {
    let mut g = Gguf::default();
    g.string("general.architecture", "llama");
    assert!(parse(&g.file())
        .unwrap_err()
        .contains("no `tokenizer.chat_template`"));
}

#[test]
fn every_truncation_is_an_error() {
    let file = model().file();
    for len in 0..file.len() {
        let err = parse(&file[..len]).unwrap_err();
        assert!(
            err.contains("truncated") || err.contains("GGUF"),
            "cut at {len}: {err}"
        );
    }
}

#[test]
fn garbage_is_an_error_or_a_result_never_a_panic() {
    // A fixed pseudo-random sequence (xorshift), each input once plain and once behind a
    // valid header, and every single-byte corruption of a valid file.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let len = (next() % 300) as usize;
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = parse(&noise);
        let mut headed = b"GGUF\x03\0\0\0".to_vec();
        headed.extend(&noise);
        let _ = parse(&headed);
    }
    let file = model().file();
    for at in 0..file.len() {
        for value in [0x00, 0xff, 0x7f, 0x09] {
            let mut bad = file.clone();
            bad[at] = value;
            let _ = parse(&bad);
        }
    }
}

#[test]
fn hostile_sizes_are_refused_before_anything_is_allocated() {
    // Each claims far more than the file holds or than is accepted.
    let huge_string = Gguf::default()
        .key("k", STRING)
        .raw(&u64::MAX.to_le_bytes())
        .file();
    assert!(parse(&huge_string).unwrap_err().contains("truncated"));
    let huge_key = Gguf::default().raw(&(1u64 << 40).to_le_bytes()).file();
    let mut huge_key = huge_key;
    huge_key[16..24].copy_from_slice(&1u64.to_le_bytes());
    assert!(parse(&huge_key).unwrap_err().contains("a metadata key"));
    let mut many_keys = Gguf::default().file();
    many_keys[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(parse(&many_keys).unwrap_err().contains("metadata keys"));
    for item in [STRING, 4, 12] {
        let array = Gguf::default()
            .key("a", ARRAY)
            .raw(&item.to_le_bytes())
            .raw(&(u64::MAX / 2).to_le_bytes())
            .file();
        assert!(
            parse(&array).unwrap_err().contains("truncated"),
            "item type {item}"
        );
    }
    let nested = Gguf::default()
        .key("a", ARRAY)
        .raw(&ARRAY.to_le_bytes())
        .raw(&1u64.to_le_bytes())
        .file();
    assert!(parse(&nested).unwrap_err().contains("arrays of arrays"));
    let unknown = Gguf::default().key("a", 99).file();
    assert!(parse(&unknown)
        .unwrap_err()
        .contains("unknown value type 99"));
    let long = "x".repeat(MAX_TEMPLATE_BYTES as usize + 1);
    let too_long = Gguf::default()
        .string("tokenizer.chat_template", &long)
        .file();
    assert!(parse(&too_long).unwrap_err().contains("at most"));
}

#[test]
fn bad_headers_ids_and_text_are_refused_with_the_reason() {
    let mut file = model().file();
    file[0] = b'X';
    assert!(parse(&file)
        .unwrap_err()
        .contains("does not start with `GGUF`"));
    for (version, says) in [(1u32, "version 1"), (3u32.swap_bytes(), "big-endian")] {
        let mut file = model().file();
        file[4..8].copy_from_slice(&version.to_le_bytes());
        assert!(parse(&file).unwrap_err().contains(says), "{version}");
    }
    let mut g = model();
    g.u32("tokenizer.ggml.eos_token_id", 4);
    assert!(parse(&g.file())
        .unwrap_err()
        .contains("outside the vocabulary of 4 tokens"));
    let mut g = model();
    g.key("tokenizer.ggml.bos_token_id", 5)
        .raw(&(-1i32).to_le_bytes());
    assert!(parse(&g.file()).unwrap_err().contains("negative"));
    let mut g = Gguf::default();
    g.key("tokenizer.chat_template", STRING)
        .string_bytes(&[0xff, 0xfe]);
    assert!(parse(&g.file()).unwrap_err().contains("not UTF-8"));
}

#[test]
fn a_missing_file_names_its_path() {
    let err = read(Path::new("/no/such/model.gguf")).unwrap_err();
    assert!(err.starts_with("/no/such/model.gguf: "), "{err}");
}
