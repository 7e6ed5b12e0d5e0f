//! The chat template of a GGUF model file (llama.cpp's format, versions 2 and 3, little-endian;
//! ggml's `docs/gguf.md`): `tokenizer.chat_template`, and the `bos_token`/`eos_token` strings,
//! which are `tokenizer.ggml.tokens` at `tokenizer.ggml.bos_token_id`/`eos_token_id`.
//!
//! Only the header's key-value section is read, never the tensors. Every read is bounded by the
//! file's length and by the limits below, so a malformed or hostile file is an error naming what
//! is wrong, never a panic or a large allocation: the only buffers are the strings kept (the
//! template and two tokens), each under its limit.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// What a prompt needs from a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufChat {
    /// `tokenizer.chat_template`: a Hugging Face chat template (Jinja).
    pub chat_template: String,
    /// The BOS token's text, when the file names one.
    pub bos_token: Option<String>,
    /// The EOS token's text, when the file names one.
    pub eos_token: Option<String>,
}

/// More key-value pairs than any model file carries (llama.cpp's own files have under 50).
const MAX_KEYS: u64 = 1 << 16;
/// The spec's limit on a key's length.
const MAX_KEY_BYTES: u64 = 65_535;
/// The longest chat template accepted (real ones are a few KiB).
const MAX_TEMPLATE_BYTES: u64 = 1 << 20;
/// The longest token text accepted for `bos_token`/`eos_token`.
const MAX_TOKEN_BYTES: u64 = 1 << 12;

const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Reads the chat template and special tokens of the GGUF file at `path`; an error names the
/// file and what is wrong with it.
pub fn read(path: &Path) -> Result<GgufChat, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    read_from(file, len)
        .map_err(|e| format!("{}: not a usable GGUF model file: {e}", path.display()))
}

/// The same from any seekable source of `len` bytes.
pub fn read_from<R: Read + Seek>(source: R, len: u64) -> Result<GgufChat, String> {
    let mut r = Reader {
        inner: BufReader::new(source),
        pos: 0,
        len,
    };
    if &r.array::<4>()? != b"GGUF" {
        return Err("it does not start with `GGUF`".into());
    }
    match r.u32()? {
        2 | 3 => {}
        1 => return Err("GGUF version 1 is not supported (convert it again)".into()),
        v => {
            return Err(format!(
                "unsupported GGUF version {v} (big-endian files are not supported)"
            ))
        }
    }
    let _tensors = r.u64()?;
    let keys = r.u64()?;
    if keys > MAX_KEYS {
        return Err(format!("{keys} metadata keys (at most {MAX_KEYS})"));
    }
    let (mut template, mut bos_id, mut eos_id, mut tokens) = (None, None, None, None);
    for _ in 0..keys {
        let key = r.string(MAX_KEY_BYTES, "a metadata key")?;
        let ty = r.u32()?;
        match key.as_str() {
            "tokenizer.chat_template" if ty == STRING => {
                template = Some(r.string(MAX_TEMPLATE_BYTES, "tokenizer.chat_template")?);
            }
            "tokenizer.ggml.bos_token_id" => bos_id = Some(r.integer(ty, &key)?),
            "tokenizer.ggml.eos_token_id" => eos_id = Some(r.integer(ty, &key)?),
            "tokenizer.ggml.tokens" if ty == ARRAY => {
                let (item, count) = (r.u32()?, r.u64()?);
                if item != STRING {
                    return Err("tokenizer.ggml.tokens is not an array of strings".into());
                }
                tokens = Some((r.pos, count));
                r.skip_strings(count)?;
            }
            _ => r.skip_value(ty, &key)?,
        }
    }
    let chat_template = template.ok_or("it has no `tokenizer.chat_template`")?;
    let (bos_token, eos_token) = match tokens {
        Some((at, count)) => r.tokens_at(at, count, bos_id, eos_id)?,
        None => (None, None),
    };
    Ok(GgufChat {
        chat_template,
        bos_token,
        eos_token,
    })
}

/// A position in the source, every read checked against its length first.
struct Reader<R> {
    inner: BufReader<R>,
    pos: u64,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn need(&self, n: u64) -> Result<(), String> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(format!(
                "truncated: {n} bytes needed at offset {}, the file has {}",
                self.pos, self.len
            ));
        }
        Ok(())
    }

    /// `n` bytes (at most `limit`) read into a new buffer.
    fn bytes(&mut self, n: u64, limit: u64) -> Result<Vec<u8>, String> {
        if n > limit {
            return Err(format!(
                "{n} bytes at offset {} (at most {limit})",
                self.pos
            ));
        }
        self.need(n)?;
        let mut buf = vec![0; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format!("reading at offset {}: {e}", self.pos))?;
        self.pos += n;
        Ok(buf)
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        self.need(n)?;
        let step = i64::try_from(n).map_err(|_| format!("{n} bytes to skip"))?;
        self.inner
            .seek_relative(step)
            .map_err(|e| format!("seeking past offset {}: {e}", self.pos))?;
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        self.need(N as u64)?;
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| format!("reading at offset {}: {e}", self.pos))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    fn string(&mut self, limit: u64, what: &str) -> Result<String, String> {
        let n = self.u64()?;
        let bytes = self.bytes(n, limit).map_err(|e| format!("{what}: {e}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// Skips `count` length-prefixed strings (each at least its 8-byte length: a count the
    /// file cannot hold is refused before walking it).
    fn skip_strings(&mut self, count: u64) -> Result<(), String> {
        self.need(count.saturating_mul(8))?;
        for _ in 0..count {
            let n = self.u64()?;
            self.skip(n)?;
        }
        Ok(())
    }

    /// A value of type `ty` that is not used. Arrays of arrays are refused, as llama.cpp does.
    fn skip_value(&mut self, ty: u32, key: &str) -> Result<(), String> {
        match ty {
            STRING => {
                let n = self.u64()?;
                self.skip(n)
            }
            ARRAY => {
                let (item, count) = (self.u32()?, self.u64()?);
                match item {
                    STRING => self.skip_strings(count),
                    ARRAY => Err(format!("{key}: arrays of arrays are not supported")),
                    _ => self.skip(count.saturating_mul(scalar_size(item, key)?)),
                }
            }
            _ => self.skip(scalar_size(ty, key)?),
        }
    }

    /// A non-negative integer of any of GGUF's integer types.
    fn integer(&mut self, ty: u32, key: &str) -> Result<u64, String> {
        let value = match ty {
            0 => i128::from(self.array::<1>()?[0]),
            1 => i128::from(i8::from_le_bytes(self.array()?)),
            2 => i128::from(u16::from_le_bytes(self.array()?)),
            3 => i128::from(i16::from_le_bytes(self.array()?)),
            4 => i128::from(self.u32()?),
            5 => i128::from(i32::from_le_bytes(self.array()?)),
            10 => i128::from(self.u64()?),
            11 => i128::from(i64::from_le_bytes(self.array()?)),
            _ => return Err(format!("{key} is not an integer")),
        };
        u64::try_from(value).map_err(|_| format!("{key} is negative"))
    }

    /// The texts of the tokens `bos` and `eos` in the token array of `count` strings at `at`.
    fn tokens_at(
        &mut self,
        at: u64,
        count: u64,
        bos: Option<u64>,
        eos: Option<u64>,
    ) -> Result<(Option<String>, Option<String>), String> {
        for (name, id) in [("bos", bos), ("eos", eos)] {
            if let Some(id) = id.filter(|id| *id >= count) {
                return Err(format!(
                    "tokenizer.ggml.{name}_token_id {id} is outside the vocabulary of {count} tokens"
                ));
            }
        }
        let Some(last) = bos.max(eos) else {
            return Ok((None, None));
        };
        self.inner
            .seek(SeekFrom::Start(at))
            .map_err(|e| format!("seeking to offset {at}: {e}"))?;
        self.pos = at;
        let (mut bos_token, mut eos_token) = (None, None);
        for i in 0..=last {
            if Some(i) == bos || Some(i) == eos {
                let text = self.string(MAX_TOKEN_BYTES, "a special token")?;
                if Some(i) == bos {
                    bos_token = Some(text.clone());
                }
                if Some(i) == eos {
                    eos_token = Some(text);
                }
            } else {
                let n = self.u64()?;
                self.skip(n)?;
            }
        }
        Ok((bos_token, eos_token))
    }
}

/// The size of a scalar type; an unknown type is an error (its size, hence the rest of the
/// file, cannot be known).
fn scalar_size(ty: u32, key: &str) -> Result<u64, String> {
    Ok(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return Err(format!("{key}: unknown value type {ty}")),
    })
}

#[cfg(test)]
pub(crate) mod tests;
