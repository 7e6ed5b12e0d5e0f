//! The content blocks of a streamed answer, written strictly one after another with rising
//! `index` however the chat stream interleaves text, reasoning and tool calls.
//!
//! Text and reasoning stream as they come: a change from one to the other closes the open
//! block and opens the next. The first tool call streams too, but once a tool block is open,
//! no later delta can prove it complete (OpenAI may interleave parallel calls by `index`), so
//! it stays open until the choice finishes, and whatever else arrives meanwhile (other tool
//! calls, text, reasoning) is held, in the order it began, then written whole, one block each,
//! after the open one closes. Held bytes (with the open tool call's arguments, kept to be
//! checked) are bounded by [`MAX_HELD_BYTES`]; past it the stream ends with an error (see
//! [`Blocks::overflowed`]).
//!
//! A tool call's arguments must make a JSON object (or be empty, `{}`), as a `tool_use`
//! block's input is one: when the blocks close, one that does not is reported
//! ([`Blocks::malformed_tool`]) and the stream ends with an error rather than hand the client
//! an input its SDK would parse partly.

use super::events::{Block, Delta, EmptyObject, Event};

/// Most bytes held back while a tool block is open: as much as one event the router passes.
pub(super) const MAX_HELD_BYTES: usize = crate::sse::MAX_EVENT_BYTES;

/// What the open block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    /// A tool call, by its key (its OpenAI `index`).
    Tool(u32),
}

/// A block held back while a tool block is open.
#[derive(Debug)]
enum Held {
    Text(String),
    Thinking(String),
    Tool {
        key: u32,
        id: String,
        name: String,
        args: String,
    },
}

/// The blocks of one answer: the open one, those held back, and the next index.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    next: u32,
    open: Option<(Kind, u32)>,
    held: Vec<Held>,
    held_bytes: usize,
    overflowed: bool,
    /// The open tool call's name and arguments so far.
    live_name: String,
    live_args: String,
    /// The name of a tool call whose arguments were no JSON object.
    malformed: Option<String>,
}

impl Blocks {
    /// Text from the answer.
    pub fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.prose(Kind::Text, text, out);
    }

    /// Reasoning from the answer.
    pub fn thinking(&mut self, text: &str, out: &mut Vec<u8>) {
        self.prose(Kind::Thinking, text, out);
    }

    fn prose(&mut self, kind: Kind, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        match self.open {
            Some((open, index)) if open == kind => delta(index, kind, text, out),
            Some((Kind::Tool(_), _)) => {
                if !self.count(text.len()) {
                    return;
                }
                match (self.held.last_mut(), kind) {
                    (Some(Held::Text(t)), Kind::Text)
                    | (Some(Held::Thinking(t)), Kind::Thinking) => t.push_str(text),
                    (_, Kind::Thinking) => self.held.push(Held::Thinking(text.to_string())),
                    _ => self.held.push(Held::Text(text.to_string())),
                }
            }
            _ => {
                self.close_open(out);
                let index = self.start(kind, "", "", out);
                delta(index, kind, text, out);
            }
        }
    }

    /// A piece of the tool call `key`: its id and name (on its first piece) and argument text.
    pub fn tool(
        &mut self,
        key: u32,
        id: Option<&str>,
        name: Option<&str>,
        args: &str,
        out: &mut Vec<u8>,
    ) {
        let kind = Kind::Tool(key);
        match self.open {
            Some((open, index)) if open == kind => {
                if !args.is_empty() && self.count(args.len()) {
                    self.live_args.push_str(args);
                    delta(index, kind, args, out);
                }
            }
            Some((Kind::Tool(_), _)) => self.hold_tool(key, id, name, args),
            _ => {
                self.close_open(out);
                let id = tool_id(key, id);
                let name = name.unwrap_or("");
                let index = self.start(kind, &id, name, out);
                name.clone_into(&mut self.live_name);
                self.live_args.clear();
                if !args.is_empty() && self.count(args.len()) {
                    self.live_args.push_str(args);
                    delta(index, kind, args, out);
                }
            }
        }
    }

    fn hold_tool(&mut self, key: u32, id: Option<&str>, name: Option<&str>, args: &str) {
        if !self.count(args.len() + id.map_or(0, str::len) + name.map_or(0, str::len)) {
            return;
        }
        let held = self.held.iter_mut().find_map(|h| match h {
            Held::Tool {
                key: k,
                id,
                name,
                args,
            } if *k == key => Some((id, name, args)),
            _ => None,
        });
        match held {
            Some((held_id, held_name, held_args)) => {
                if held_name.is_empty() {
                    name.unwrap_or("").clone_into(held_name);
                }
                if let Some(id) = id.filter(|_| held_id.is_empty()) {
                    id.clone_into(held_id);
                }
                held_args.push_str(args);
            }
            None => self.held.push(Held::Tool {
                key,
                id: id.unwrap_or("").to_string(),
                name: name.unwrap_or("").to_string(),
                args: args.to_string(),
            }),
        }
    }

    /// Counts `bytes` more held; whether they may be held (past the bound, nothing is).
    fn count(&mut self, bytes: usize) -> bool {
        self.held_bytes = self.held_bytes.saturating_add(bytes);
        if self.held_bytes > MAX_HELD_BYTES {
            self.overflowed = true;
            self.held = Vec::new();
        }
        !self.overflowed
    }

    /// More was held back than [`MAX_HELD_BYTES`] (and dropped): the answer cannot be written
    /// whole.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Closes the open block and writes the held ones: the choice is complete.
    pub fn close_all(&mut self, out: &mut Vec<u8>) {
        if let Some((Kind::Tool(_), _)) = self.open {
            let args = std::mem::take(&mut self.live_args);
            self.check_args(&args, &self.live_name.clone());
        }
        self.close_open(out);
        for held in std::mem::take(&mut self.held) {
            let (kind, id, name, text) = match &held {
                Held::Text(t) => (Kind::Text, String::new(), "", t.as_str()),
                Held::Thinking(t) => (Kind::Thinking, String::new(), "", t.as_str()),
                Held::Tool {
                    key,
                    id,
                    name,
                    args,
                } => (
                    Kind::Tool(*key),
                    tool_id(*key, Some(id.as_str())),
                    name.as_str(),
                    args.as_str(),
                ),
            };
            if let Kind::Tool(_) = kind {
                self.check_args(text, name);
            }
            let index = self.start(kind, &id, name, out);
            if !text.is_empty() {
                delta(index, kind, text, out);
            }
            self.close_open(out);
        }
        self.held_bytes = 0;
    }

    /// Notes the tool call `name` when `args` make no JSON object.
    fn check_args(&mut self, args: &str, name: &str) {
        if self.malformed.is_none() && !super::message::is_object_or_empty(args) {
            self.malformed = Some(name.to_string());
        }
    }

    /// The name of a tool call whose arguments made no JSON object, once the blocks closed.
    pub fn malformed_tool(&self) -> Option<&str> {
        self.malformed.as_deref()
    }

    /// Closes the open block, if any; what is held is dropped (the answer failed).
    pub fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            Event::ContentBlockStop { index }.write(out);
        }
    }

    /// Drops what is held (the answer failed) and closes the open block.
    pub fn abandon(&mut self, out: &mut Vec<u8>) {
        self.held = Vec::new();
        self.live_args = String::new();
        self.held_bytes = 0;
        self.close_open(out);
    }

    /// Opens the next block; returns its index.
    fn start(&mut self, kind: Kind, id: &str, name: &str, out: &mut Vec<u8>) -> u32 {
        let index = self.next;
        self.next = self.next.saturating_add(1);
        let content_block = match kind {
            Kind::Text => Block::Text { text: "" },
            Kind::Thinking => Block::Thinking {
                thinking: "",
                signature: "",
            },
            Kind::Tool(_) => Block::ToolUse {
                id,
                name,
                input: EmptyObject,
            },
        };
        Event::ContentBlockStart {
            index,
            content_block,
        }
        .write(out);
        self.open = Some((kind, index));
        index
    }
}

/// A tool call's id, or `toolu_<key>` when the backend gave none.
fn tool_id(key: u32, id: Option<&str>) -> String {
    match id.filter(|i| !i.is_empty()) {
        Some(id) => id.to_string(),
        None => crate::text::concat(&["toolu_", &key.to_string()]),
    }
}

fn delta(index: u32, kind: Kind, text: &str, out: &mut Vec<u8>) {
    let delta = match kind {
        Kind::Text => Delta::Text { text },
        Kind::Thinking => Delta::Thinking { thinking: text },
        Kind::Tool(_) => Delta::InputJson { partial_json: text },
    };
    Event::ContentBlockDelta { index, delta }.write(out);
}

#[cfg(test)]
mod tests;
