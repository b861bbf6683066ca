//! A strict, allocation-light JSON reader for signed payloads.
//!
//! Why not `serde_json::Value`: the verifier must reject duplicate object keys at any depth,
//! compared after unescaping (`"nonce"` and `"\u006eonce"` are one key, `docs/design-decisions.md` 4),
//! and in `body_match = "json"` mode compare numbers by their exact text (`1` ≠ `1.0`).
//! This reader keeps every number as the text it was written with, unescapes strings only
//! when they contain escapes, limits nesting depth, and accepts exactly RFC 8259 JSON.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Maximum nesting depth of arrays and objects. Deeper documents are rejected, so a
/// 100,000-level payload costs one linear scan and no stack.
pub const MAX_DEPTH: usize = 128;

/// A parsed JSON value borrowing from the input.
#[derive(Debug, Clone)]
pub enum JsonValue<'a> {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, exactly as written (`-1.50e3` stays `-1.50e3`).
    Number(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<JsonValue<'a>>),
    /// An object whose keys are known to be unique.
    Object(JsonObject<'a>),
}

/// An object's members in document order; keys are unique (after unescaping).
#[derive(Debug, Clone, Default)]
pub struct JsonObject<'a> {
    entries: Vec<(Cow<'a, str>, JsonValue<'a>)>,
}

impl<'a> JsonObject<'a> {
    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&JsonValue<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    /// Members in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &JsonValue<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// "Same JSON value" for objects: the same keys, each with the same value
    /// ([`JsonValue::same_value`]), in any order.
    #[must_use]
    pub fn same_members(&self, other: &JsonObject<'_>) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|w| v.same_value(w)))
    }
}

impl JsonValue<'_> {
    /// "Same JSON value": objects compare as unordered maps, arrays in order, strings after
    /// unescaping, numbers by their exact text.
    #[must_use]
    pub fn same_value(&self, other: &JsonValue<'_>) -> bool {
        match (self, other) {
            (JsonValue::Null, JsonValue::Null) => true,
            (JsonValue::Bool(a), JsonValue::Bool(b)) => a == b,
            (JsonValue::Number(a), JsonValue::Number(b)) => a == b,
            (JsonValue::String(a), JsonValue::String(b)) => a == b,
            (JsonValue::Array(a), JsonValue::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (JsonValue::Object(a), JsonValue::Object(b)) => a.same_members(b),
            _ => false,
        }
    }

    /// Writes the value as compact JSON (numbers verbatim, strings minimally escaped).
    pub fn write_compact(&self, out: &mut String) {
        match self {
            JsonValue::Null => out.push_str("null"),
            JsonValue::Bool(true) => out.push_str("true"),
            JsonValue::Bool(false) => out.push_str("false"),
            JsonValue::Number(text) => out.push_str(text),
            JsonValue::String(s) => write_string(s, out),
            JsonValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            JsonValue::Object(obj) => {
                out.push('{');
                for (i, (k, v)) in obj.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    v.write_compact(out);
                }
                out.push('}');
            }
        }
    }

    /// A short name of the value's type, for messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "boolean",
            JsonValue::Number(_) => "number",
            JsonValue::String(_) => "string",
            JsonValue::Array(_) => "array",
            JsonValue::Object(_) => "object",
        }
    }
}

/// Writes `s` as a JSON string literal, escaping exactly as JavaScript's `JSON.stringify`
/// and `serde_json` do (`\"`, `\\`, `\b \f \n \r \t`, other controls as `\u00XX`).
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Why a document is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonErrorKind {
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// The document ended early.
    UnexpectedEnd,
    /// A character that JSON does not allow here.
    UnexpectedCharacter(char),
    /// A string escape that JSON does not define, or a lone surrogate.
    InvalidEscape,
    /// A raw control character inside a string.
    ControlCharacter,
    /// A malformed number (leading zero, missing digits, ...).
    InvalidNumber,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The same key twice in one object (compared after unescaping).
    DuplicateKey(String),
    /// Something after the top-level value.
    TrailingCharacters,
}

/// A JSON error with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What went wrong.
    pub kind: JsonErrorKind,
    /// Byte offset in the input.
    pub offset: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            JsonErrorKind::InvalidUtf8 => write!(f, "not valid UTF-8 at byte {}", self.offset),
            JsonErrorKind::UnexpectedEnd => {
                write!(f, "unexpected end of JSON at byte {}", self.offset)
            }
            JsonErrorKind::UnexpectedCharacter(c) => {
                write!(f, "unexpected character {c:?} at byte {}", self.offset)
            }
            JsonErrorKind::InvalidEscape => {
                write!(f, "invalid string escape at byte {}", self.offset)
            }
            JsonErrorKind::ControlCharacter => {
                write!(
                    f,
                    "raw control character in a string at byte {}",
                    self.offset
                )
            }
            JsonErrorKind::InvalidNumber => write!(f, "malformed number at byte {}", self.offset),
            JsonErrorKind::TooDeep => {
                write!(
                    f,
                    "nesting deeper than {MAX_DEPTH} levels at byte {}",
                    self.offset
                )
            }
            JsonErrorKind::DuplicateKey(k) => {
                write!(f, "duplicate key {k:?} at byte {}", self.offset)
            }
            JsonErrorKind::TrailingCharacters => {
                write!(f, "characters after the JSON value at byte {}", self.offset)
            }
        }
    }
}

impl std::error::Error for JsonError {}

/// Why a document is not one JSON object.
#[derive(Debug, Clone)]
pub enum ObjectError<'a> {
    /// The document is not acceptable JSON (a repeated key and excessive depth included).
    Json(JsonError),
    /// The document is JSON, but not an object.
    NotObject(JsonValue<'a>),
}

/// Parses one JSON document that must be an object: what a signed payload must be (row 6 of
/// `docs/errors.md`).
pub fn parse_object(input: &[u8]) -> Result<JsonObject<'_>, ObjectError<'_>> {
    match parse(input) {
        Ok(JsonValue::Object(object)) => Ok(object),
        Ok(other) => Err(ObjectError::NotObject(other)),
        Err(e) => Err(ObjectError::Json(e)),
    }
}

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(input: &[u8]) -> Result<JsonValue<'_>, JsonError> {
    let text = match std::str::from_utf8(input) {
        Ok(text) => text,
        Err(e) => {
            return Err(JsonError {
                kind: JsonErrorKind::InvalidUtf8,
                offset: e.valid_up_to(),
            });
        }
    };
    let mut parser = Parser {
        text,
        bytes: input,
        pos: 0,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != input.len() {
        return Err(parser.error(JsonErrorKind::TrailingCharacters));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

/// Objects with more members than this check duplicates through a hash set.
const LINEAR_DUP_CHECK: usize = 16;

impl<'a> Parser<'a> {
    fn error(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            kind,
            offset: self.pos,
        }
    }

    fn unexpected(&self) -> JsonError {
        match self.text[self.pos.min(self.text.len())..].chars().next() {
            Some(c) => self.error(JsonErrorKind::UnexpectedCharacter(c)),
            None => self.error(JsonErrorKind::UnexpectedEnd),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_literal(&mut self, literal: &[u8]) -> Result<(), JsonError> {
        for &expected in literal {
            if self.peek() != Some(expected) {
                return Err(self.unexpected());
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<JsonValue<'a>, JsonError> {
        match self.peek() {
            None => Err(self.error(JsonErrorKind::UnexpectedEnd)),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(JsonValue::String(self.string()?)),
            Some(b't') => self.expect_literal(b"true").map(|()| JsonValue::Bool(true)),
            Some(b'f') => self
                .expect_literal(b"false")
                .map(|()| JsonValue::Bool(false)),
            Some(b'n') => self.expect_literal(b"null").map(|()| JsonValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.unexpected()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsonValue<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error(JsonErrorKind::TooDeep));
        }
        self.pos += 1; // '{'
        let mut entries: Vec<(Cow<'a, str>, JsonValue<'a>)> = Vec::new();
        let mut seen: Option<HashSet<Cow<'a, str>>> = None;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsonValue::Object(JsonObject { entries }));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected());
            }
            let key_offset = self.pos;
            let key = self.string()?;
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = entries.iter().any(|(k, _)| *k == key);
                    if !dup && entries.len() >= LINEAR_DUP_CHECK {
                        let mut set: HashSet<Cow<'a, str>> =
                            entries.iter().map(|(k, _)| k.clone()).collect();
                        set.insert(key.clone());
                        seen = Some(set);
                    }
                    dup
                }
            };
            if duplicate {
                return Err(JsonError {
                    kind: JsonErrorKind::DuplicateKey(key.into_owned()),
                    offset: key_offset,
                });
            }
            self.skip_ws();
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.value(depth)?;
            entries.push((key, value));
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(JsonValue::Object(JsonObject { entries }));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsonValue<'a>, JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.error(JsonErrorKind::TooDeep));
        }
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsonValue::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsonValue::Array(items));
                }
                _ => return Err(self.unexpected()),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<JsonValue<'a>, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error(JsonErrorKind::InvalidNumber));
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error(JsonErrorKind::InvalidNumber)),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error(JsonErrorKind::InvalidNumber));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error(JsonErrorKind::InvalidNumber));
            }
        }
        Ok(JsonValue::Number(&self.text[start..self.pos]))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.error(JsonErrorKind::InvalidEscape)),
            };
            value = (value << 4) | u32::from(digit);
            self.pos += 1;
        }
        Ok(value)
    }

    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.pos += 1; // opening quote
        let start = self.pos;
        // Fast path: no escapes.
        loop {
            match self.peek() {
                None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
                Some(b'"') => {
                    let s = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(Cow::Borrowed(s));
                }
                Some(b'\\') => break,
                Some(c) if c < 0x20 => return Err(self.error(JsonErrorKind::ControlCharacter)),
                Some(_) => self.pos += 1,
            }
        }
        let mut out = String::with_capacity(self.pos - start + 16);
        out.push_str(&self.text[start..self.pos]);
        loop {
            match self.peek() {
                None => return Err(self.error(JsonErrorKind::UnexpectedEnd)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            continue;
                        }
                        _ => return Err(self.error(JsonErrorKind::InvalidEscape)),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                Some(c) if c < 0x20 => return Err(self.error(JsonErrorKind::ControlCharacter)),
                Some(_) => {
                    // Copy a run of plain characters at once (UTF-8 stays intact: we only
                    // stop on ASCII bytes).
                    let run_start = self.pos;
                    while let Some(c) = self.peek() {
                        if c == b'"' || c == b'\\' || c < 0x20 {
                            break;
                        }
                        self.pos += 1;
                    }
                    out.push_str(&self.text[run_start..self.pos]);
                }
            }
        }
    }

    /// After `\u`: four hex digits, and for a high surrogate a following `\uDC00..DFFF`.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error(JsonErrorKind::InvalidEscape));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error(JsonErrorKind::InvalidEscape));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error(JsonErrorKind::InvalidEscape)),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error(JsonErrorKind::InvalidEscape))
    }
}

#[cfg(test)]
mod tests;
