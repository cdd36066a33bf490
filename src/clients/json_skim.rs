//! Skimming JSON: where a value ends, checked exactly as serde_json checks
//! a value it skips, and, out of an object, the members a type reads.
//!
//! A MAAS machine is about 3 KiB of JSON of which the client keeps a dozen
//! short members (a Nova hypervisor or an Ironic node is much the same);
//! serde_json spends most of its time on the members it skips: each key is
//! copied, checked as UTF-8 and matched, each value walked token by token.
//! [`skim_object`] walks such an object once, checks every byte as serde_json
//! would, and copies only the members whose key the type reads into a small
//! object, which serde_json then parses. The result is the one serde_json
//! gives for the whole object, and an object it refuses is refused:
//!
//! - a member the type does not read is only skipped by serde_json
//!   (`IgnoredAny`): its value is checked for syntax alone (strings for
//!   control characters and escapes, not UTF-8; numbers by JSON's grammar;
//!   any depth), as [`skip_value`] checks it;
//! - its key is read as a string (checked as UTF-8, control characters
//!   refused), which [`skim_object`] does too; a key with an escape is
//!   kept, for serde_json to decode and judge;
//! - every member kept goes to serde_json as it was, in its order, so
//!   duplicates, types and missing fields are judged by serde_json itself.
//!
//! Running out of bytes is [`Stop::Incomplete`] (more may come), never an
//! error: the caller reads more and skims again.

use serde::de::{self, DeserializeOwned, Visitor};

/// Why a skim stopped before the end of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes ran out first: the value may go on in bytes not read yet.
    Incomplete,
    /// Not JSON serde_json would accept; what was wrong.
    Invalid(&'static str),
}

/// The names of the members a struct reads: what its `Deserialize` passes
/// to `deserialize_struct` (aliases included, skipped fields left out).
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    names: Vec<&'static [u8]>,
    /// Bit `n` set when a name is `n` bytes long (names of 64 bytes or more
    /// set bit 63): most keys are told apart by their length alone.
    lengths: u64,
}

impl Fields {
    /// The members `T` reads, when `T` is a struct whose `Deserialize`
    /// names them (derived, without `flatten`); `None` otherwise. `T` must
    /// ignore members it does not name (no `deny_unknown_fields`), as
    /// skimming drops them.
    pub(crate) fn of<T: DeserializeOwned>() -> Option<Fields> {
        let mut names = None;
        let _ = T::deserialize(Introspect(&mut names));
        let names: Vec<&'static [u8]> = names?.iter().map(|n| n.as_bytes()).collect();
        let lengths = names.iter().fold(0u64, |mask, n| mask | length_bit(n.len()));
        Some(Fields { names, lengths })
    }

    /// Whether a key, as written (no escape in it), is one of the names.
    fn wants(&self, key: &[u8]) -> bool {
        if self.lengths & length_bit(key.len()) == 0 {
            return false;
        }
        let first = key.first();
        self.names.iter().any(|n| n.first() == first && *n == key)
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// A deserializer that only records the field names a struct asks for.
struct Introspect<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for Introspect<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// The first byte at or after `i` that is not white space.
#[inline(always)]
pub(crate) fn skip_space(data: &[u8], i: usize) -> Result<usize, Stop> {
    // Most often none, or one space; every byte above a space is not one.
    match data.get(i) {
        Some(&b) if b > b' ' => Ok(i),
        Some(b' ') if data.get(i + 1).is_some_and(|&b| b > b' ') => Ok(i + 1),
        _ => skip_space_slow(data, i),
    }
}

fn skip_space_slow(data: &[u8], mut i: usize) -> Result<usize, Stop> {
    while let Some(&b) = data.get(i) {
        if !is_space(b) {
            return Ok(i);
        }
        i += 1;
    }
    Err(Stop::Incomplete)
}

/// The first byte at or after `i` that is a quote, a backslash or a
/// control character, eight bytes at a time; `data.len()` if none.
#[inline(always)]
fn find_special(data: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = data.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let chars = u64::from_le_bytes(word);
        let control = chars.wrapping_sub(ONES * 0x20) & !chars;
        let quote = chars ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = chars ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        // The lowest flagged byte is exact (borrows only run upwards).
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            return i + found.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while let Some(&b) = data.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    data.len()
}

/// The end (past the closing quote) of the string whose opening quote is
/// just before `i`, as serde_json skips one: no control character, only
/// JSON's escapes, `\u` with four hex digits. Also says whether it holds
/// an escape.
#[inline(always)]
fn skip_string(data: &[u8], i: usize) -> Result<(usize, bool), Stop> {
    let i = find_special(data, i);
    if data.get(i) == Some(&b'"') {
        return Ok((i + 1, false));
    }
    skip_string_rest(data, i)
}

/// [`skip_string`] from its first escape, control character or end.
fn skip_string_rest(data: &[u8], mut i: usize) -> Result<(usize, bool), Stop> {
    let mut escaped = false;
    loop {
        i = find_special(data, i);
        match data.get(i) {
            None => return Err(Stop::Incomplete),
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match data.get(i + 1) {
                    None => return Err(Stop::Incomplete),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => match data.get(i + 2..i + 6) {
                        None => return Err(Stop::Incomplete),
                        Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i += 6,
                        Some(_) => return Err(Stop::Invalid("invalid escape in a string")),
                    },
                    Some(_) => return Err(Stop::Invalid("invalid escape in a string")),
                }
            }
            Some(_) => return Err(Stop::Invalid("control character in a string")),
        }
    }
}

/// The end of the number starting at `i`, by JSON's grammar (serde_json's
/// `ignore_integer`): a number that reaches the end of `data` may go on.
fn skip_number(data: &[u8], mut i: usize) -> Result<usize, Stop> {
    let digits = |mut i: usize| {
        while data.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if data.get(i) == Some(&b'-') {
        i += 1;
    }
    match data.get(i) {
        None => return Err(Stop::Incomplete),
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i + 1),
        Some(_) => return Err(Stop::Invalid("invalid number")),
    }
    match data.get(i) {
        None => return Err(Stop::Incomplete),
        Some(b'0'..=b'9') => return Err(Stop::Invalid("invalid number")),
        Some(b'.') => {
            let end = digits(i + 1);
            if end == i + 1 {
                return Err(if end == data.len() { Stop::Incomplete } else { Stop::Invalid("invalid number") });
            }
            i = end;
        }
        Some(_) => {}
    }
    match data.get(i) {
        None => Err(Stop::Incomplete),
        Some(b'e' | b'E') => {
            i += 1;
            if matches!(data.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(i);
            match data.get(end) {
                None => Err(Stop::Incomplete),
                Some(_) if end == i => Err(Stop::Invalid("invalid number")),
                Some(_) => Ok(end),
            }
        }
        Some(_) => Ok(i),
    }
}

/// The end of `literal` (`true`, `false`, `null`) at `i`.
fn skip_literal(data: &[u8], i: usize, literal: &[u8]) -> Result<usize, Stop> {
    let available = &data[i..data.len().min(i + literal.len())];
    if available != &literal[..available.len()] {
        return Err(Stop::Invalid("expected a value"));
    }
    if available.len() < literal.len() {
        return Err(Stop::Incomplete);
    }
    Ok(i + literal.len())
}

/// The end of the key at `i` (a quote) and the colon after it: the start
/// of its value, white space not skipped.
fn skip_key(data: &[u8], i: usize) -> Result<usize, Stop> {
    if data[i] != b'"' {
        return Err(Stop::Invalid("a key is not a string"));
    }
    let (end, _) = skip_string(data, i + 1)?;
    colon(data, end)
}

#[inline(always)]
fn colon(data: &[u8], i: usize) -> Result<usize, Stop> {
    let i = skip_space(data, i)?;
    if data[i] != b':' {
        return Err(Stop::Invalid("expected a colon after a key"));
    }
    Ok(i + 1)
}

/// The end of the value at or after `i` (white space before it skipped),
/// checked as serde_json's `ignore_value` checks a value it skips. `stack`
/// is scratch space for the open arrays and objects (no depth limit, as
/// serde_json sets none when skipping).
pub(crate) fn skip_value(data: &[u8], mut i: usize, stack: &mut Vec<u8>) -> Result<usize, Stop> {
    stack.clear();
    loop {
        i = skip_space(data, i)?;
        // One value, or the opening of an array or object.
        match data[i] {
            b'"' => i = skip_string(data, i + 1)?.0,
            b'-' | b'0'..=b'9' => i = skip_number(data, i)?,
            b't' => i = skip_literal(data, i, b"true")?,
            b'f' => i = skip_literal(data, i, b"false")?,
            b'n' => i = skip_literal(data, i, b"null")?,
            open @ (b'[' | b'{') => {
                let close = if open == b'[' { b']' } else { b'}' };
                i = skip_space(data, i + 1)?;
                if data[i] == close {
                    i += 1;
                } else {
                    stack.push(open);
                    if open == b'{' {
                        i = skip_key(data, i)?;
                    }
                    continue;
                }
            }
            _ => return Err(Stop::Invalid("expected a value")),
        }
        // After a value: close what ends here, up to the next member.
        loop {
            let Some(&open) = stack.last() else { return Ok(i) };
            i = skip_space(data, i)?;
            match (data[i], open) {
                (b',', b'{') => {
                    i = skip_key(data, skip_space(data, i + 1)?)?;
                    break;
                }
                (b',', _) => {
                    i += 1;
                    break;
                }
                (b']', b'[') | (b'}', b'{') => {
                    i += 1;
                    stack.pop();
                }
                _ => return Err(Stop::Invalid("expected a comma or the end of an array or object")),
            }
        }
    }
}

/// Skims the object that starts at `data[0]` (`{`): checks it whole as
/// serde_json reads it into a struct whose members are `fields`, and
/// copies into `out` an object of only the members serde_json would read
/// (and those whose key has an escape). Returns the object's end.
pub(crate) fn skim_object(data: &[u8], fields: &Fields, out: &mut Vec<u8>, stack: &mut Vec<u8>) -> Result<usize, Stop> {
    out.clear();
    out.push(b'{');
    let mut i = skip_space(data, 1)?;
    if data[i] == b'}' {
        out.push(b'}');
        return Ok(i + 1);
    }
    loop {
        if data[i] != b'"' {
            return Err(Stop::Invalid("a key is not a string"));
        }
        let start = i;
        let (key_end, escaped) = skip_string(data, i + 1)?;
        let key = &data[i + 1..key_end - 1];
        // serde_json reads every key as a string: valid UTF-8 (an escaped
        // one is decoded and checked by serde_json itself).
        if !escaped && !key.is_ascii() && std::str::from_utf8(key).is_err() {
            return Err(Stop::Invalid("a key is not valid UTF-8"));
        }
        let keep = escaped || fields.wants(key);
        // The usual values here, then any other.
        let value = skip_space(data, colon(data, key_end)?)?;
        let end = match data[value] {
            b'"' => skip_string(data, value + 1)?.0,
            b'-' | b'0'..=b'9' => skip_number(data, value)?,
            b'n' => skip_literal(data, value, b"null")?,
            _ => skip_value(data, value, stack)?,
        };
        if keep {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(&data[start..end]);
        }
        i = skip_space(data, end)?;
        match data[i] {
            b',' => i = skip_space(data, i + 1)?,
            b'}' => {
                out.push(b'}');
                return Ok(i + 1);
            }
            _ => return Err(Stop::Invalid("expected a comma or the end of an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Picked {
        id: String,
        #[serde(default)]
        n: Option<i64>,
        #[serde(default, alias = "nested")]
        inner: Option<Value>,
        #[serde(skip)]
        _skipped: (),
    }

    /// What serde_json makes of `text` as a `Picked`, against what skimming
    /// then parsing makes of it: both a value (the same) or both an error.
    fn same_as_serde_json(text: &[u8]) -> Result<(), String> {
        let fields = Fields::of::<Picked>().unwrap();
        let whole = serde_json::from_slice::<Picked>(text);
        let (mut out, mut stack) = (Vec::new(), Vec::new());
        let start = text.iter().position(|b| !is_space(*b));
        let skimmed = match start {
            Some(s) if text[s] == b'{' => match skim_object(&text[s..], &fields, &mut out, &mut stack) {
                Ok(end) if text[s + end..].iter().all(|b| is_space(*b)) => {
                    serde_json::from_slice::<Picked>(&out).map_err(|e| e.to_string())
                }
                Ok(_) => Err("trailing characters".to_owned()),
                Err(stop) => Err(format!("{stop:?}")),
            },
            _ => return Ok(()),
        };
        match (&whole, &skimmed) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(_), Err(_)) => Ok(()),
            _ => Err(format!("serde_json: {whole:?}, skimmed: {skimmed:?} for {:?}", String::from_utf8_lossy(text))),
        }
    }

    #[test]
    fn fields_are_what_the_struct_reads() {
        let fields = Fields::of::<Picked>().unwrap();
        let mut names: Vec<_> = fields.names.iter().map(|n| std::str::from_utf8(n).unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["id", "inner", "n", "nested"]);
        assert!(fields.wants(b"n") && fields.wants(b"nested") && !fields.wants(b"nn") && !fields.wants(b"_skipped"));
        assert!(Fields::of::<Value>().is_none());
        assert!(Fields::of::<Vec<Picked>>().is_none());
        assert!(Fields::of::<Option<Picked>>().is_none());
    }

    #[test]
    fn values_end_where_serde_json_ends_them() {
        let mut stack = Vec::new();
        let ends = [
            (&b"\"a\\\"b\" ,"[..], 6),
            (b"-0.5e+7]", 7),
            (b"0,", 1),
            (b"true}", 4),
            (b"null ", 4),
            (b"[] ,", 2),
            (b"{ } ", 3),
            (b"[1, [2, {\"a\": [{}]}], \"]\"] tail", 26),
            (b"{\"k\\u00e9\": {\"x\": [true, false, null]}}!", 39),
        ];
        for (text, end) in ends {
            assert_eq!(skip_value(text, 0, &mut stack), Ok(end), "{}", String::from_utf8_lossy(text));
        }
        for text in [
            &b"01 "[..],
            b"-x",
            b"1.e5",
            b"1e+]",
            b"[1,]",
            b"[,1]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"{1:2}",
            b"tru ",
            b"\"\x01\"",
            b"\"\\x\"",
        ] {
            assert!(
                matches!(skip_value(text, 0, &mut stack), Err(Stop::Invalid(_))),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // Cut anywhere, a value that goes on is incomplete, never invalid.
        let whole = b"{\"a\": [1.5e-3, -0, \"x\\u00e9\\\\\", true, false, null, {\"b\": {}}], \"c\": 10}";
        for cut in 0..whole.len() {
            assert_eq!(skip_value(&whole[..cut], 0, &mut stack), Err(Stop::Incomplete), "cut at {cut}");
        }
        assert_eq!(skip_value(whole, 0, &mut stack), Ok(whole.len()));
    }

    #[test]
    fn nothing_is_too_deep_to_skip() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(skip_value(deep.as_bytes(), 0, &mut Vec::new()), Ok(deep.len()));
    }

    #[test]
    fn skimming_keeps_what_the_struct_reads() {
        let text =
            br#"{"zz": {"id": "no"}, "id": "a", "n\u0000": 1, "big": [1, 2, {"n": 3}], "n": 7, "nested": {"q": 1}}"#;
        let fields = Fields::of::<Picked>().unwrap();
        let (mut out, mut stack) = (Vec::new(), Vec::new());
        assert_eq!(skim_object(text, &fields, &mut out, &mut stack), Ok(text.len()));
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"id": "a","n\u0000": 1,"n": 7,"nested": {"q": 1}}"#);
        for text in [
            &br#"{"id": "a", "id": "b"}"#[..],
            br#"{"i\u0064": "a"}"#,
            b"{\"id\": \"a\", \"x\": \"\xff\"}",
            b"{\"id\": \"a\", \"\xff\": 1}",
            br#"{"id": "a", "\u00e9": 1}"#,
            br#"{"id": "a", "\ud800": 1}"#,
            br#"{"id": "\ud800"}"#,
            br#"{"n": 1}"#,
            br#"{"id": "a",}"#,
            br#"{"id": "a" "n": 1}"#,
            br#"{"id": 1}"#,
            br#"{"id": "a", "x": 01}"#,
        ] {
            same_as_serde_json(text).unwrap();
        }
    }

    /// A JSON object of the shape skimmed, with members `Picked` reads and
    /// others, nested values, escapes and non-ASCII text.
    fn any_object() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "[ -~é\u{1F600}\"\\\\\n]{0,8}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let key = prop_oneof![Just("id".to_owned()), Just("n".to_owned()), Just("inner".to_owned()), "[a-z]{1,6}"];
        (prop::collection::vec((key, value), 0..6), "[a-z]{0,4}", any::<i64>()).prop_map(|(members, id, n)| {
            let mut text = format!("{{\"id\": \"{id}\"");
            for (k, v) in members {
                let v = if k == "n" { Value::from(n) } else { v };
                text.push_str(&format!(", {}: {}", serde_json::to_string(&k).unwrap(), v));
            }
            text.push('}');
            text.into_bytes()
        })
    }

    /// A byte to put in: JSON's structure, or any byte.
    fn any_byte() -> impl Strategy<Value = u8> {
        prop_oneof![any::<u8>(), prop::sample::select(b"[]{},:\"\\ \t\n0123456789.eE-+ntfu\x01\xc3\xff".to_vec())]
    }

    proptest! {
        #[test]
        fn skimmed_objects_read_as_serde_json_reads_them(text in any_object()) {
            prop_assert_eq!(same_as_serde_json(&text), Ok(()));
        }

        #[test]
        fn damaged_objects_read_as_serde_json_reads_them(
            text in any_object(), at in any::<prop::sample::Index>(), byte in any_byte(), how in 0..3u8,
        ) {
            let mut text = text;
            let at = at.index(text.len());
            match how {
                0 => text[at] = byte,
                1 => text.insert(at, byte),
                _ => { text.remove(at); }
            }
            prop_assert_eq!(same_as_serde_json(&text), Ok(()));
        }

        #[test]
        fn values_skip_as_serde_json_skips_them(text in proptest::collection::vec(any_byte(), 0..40)) {
            // serde_json's own skipping: an unknown member's value.
            let wrapped = [&b"{\"id\": \"a\", \"unknown\": "[..], &text, b"}"].concat();
            prop_assert_eq!(same_as_serde_json(&wrapped), Ok(()));
        }

        #[test]
        fn a_cut_object_is_incomplete(text in any_object(), at in any::<prop::sample::Index>()) {
            let fields = Fields::of::<Picked>().unwrap();
            let cut = &text[..at.index(text.len())];
            prop_assert_eq!(skim_object(cut, &fields, &mut Vec::new(), &mut Vec::new()), Err(Stop::Incomplete));
        }
    }
}
