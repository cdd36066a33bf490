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
//!   duplicates, types and missing fields are judged by serde_json itself;
//!   a member the type reads as a struct of its own (a machine's zone and
//!   pool) is skimmed the same way when its value is an object, since
//!   serde_json reads that object exactly as it reads the outer one.
//!
//! Running out of bytes is [`Stop::Incomplete`] (more may come), never an
//! error: the caller reads more and skims again.
//!
//! Each object is first skimmed by a quick pass ([`quick`]) written for the
//! usual bytes: one walk, no error kept, eight bytes of a string at a time
//! (testing for the quote alone when the caller knows no byte is a control
//! character or a backslash, [`Plain`]). It gives up, and the exact skim
//! decides, at anything it does not accept: the end of the bytes, anything
//! invalid, a key with an escape, deep nesting. Property tests hold the
//! quick pass, the exact skim and serde_json to one outcome.

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
/// to `deserialize_struct` (aliases included, skipped fields left out),
/// and of those members that are themselves such structs (an `Option` of
/// one, or a newtype around one), their own members.
#[derive(Debug, Clone)]
pub(crate) struct Fields {
    /// The names, shortest first.
    names: Vec<&'static [u8]>,
    /// The members of each name's value, when it is read as a struct.
    inner: Vec<Option<Fields>>,
    /// Bit `n` set when a name is `n` bytes long (names of 64 bytes or more
    /// set bit 63): most keys are told apart by their length alone.
    lengths: u64,
    /// `names[starts[n]..starts[n + 1]]` are the names of bit `n`.
    starts: [u16; 65],
}

/// How deep members read as structs are followed.
const INNER_DEPTH: usize = 3;

impl Fields {
    /// The members `T` reads, when `T` is a struct whose `Deserialize`
    /// names them (derived, without `flatten`) and ignores the members it
    /// does not name (no `deny_unknown_fields`), as skimming drops them;
    /// `None` otherwise. Members that are such structs in turn get their
    /// own; others are kept whole.
    pub(crate) fn of<T: DeserializeOwned>() -> Option<Fields> {
        Fields::at::<T>(&mut Vec::new())
    }

    /// The members of the struct reached from `T` through the members at
    /// `path` (indices into each struct's names, as it gives them).
    fn at<T: DeserializeOwned>(path: &mut Vec<usize>) -> Option<Fields> {
        let mut given = None;
        let _ = T::deserialize(Probe { path, nested: false, unnamed: false, fields: &mut given });
        let given = given?;
        // Given a member it does not name, the struct must ask for its
        // value (to ignore it) rather than refuse it.
        let mut asked = None;
        let _ = T::deserialize(Probe { path, nested: false, unnamed: true, fields: &mut asked });
        asked?;
        let mut named: Vec<(&'static [u8], Option<Fields>)> = Vec::new();
        for (k, name) in given.iter().enumerate() {
            let inner = (path.len() < INNER_DEPTH).then(|| {
                path.push(k);
                let inner = Fields::at::<T>(path);
                path.pop();
                inner
            });
            named.push((name.as_bytes(), inner.flatten()));
        }
        named.sort_by_key(|(n, _)| n.len());
        let (names, inner): (Vec<_>, Vec<_>) = named.into_iter().unzip();
        let lengths = names.iter().fold(0u64, |mask, n| mask | length_bit(n.len()));
        let mut starts = [0u16; 65];
        for (bit, start) in starts.iter_mut().enumerate() {
            let first = names.iter().position(|n| n.len().min(63) >= bit).unwrap_or(names.len());
            *start = u16::try_from(first).unwrap_or(u16::MAX);
        }
        Some(Fields { names, inner, lengths, starts })
    }

    /// Whether a key, as written (no escape in it), is one of the names;
    /// and if so, the members of its value when that is read as a struct.
    #[inline(always)]
    fn wants(&self, key: &[u8]) -> Option<Option<&Fields>> {
        let bit = key.len().min(63);
        if self.lengths & (1 << bit) == 0 {
            return None;
        }
        let from = usize::from(self.starts[bit]);
        let to = usize::from(self.starts[bit + 1]);
        let at = from + self.names.get(from..to)?.iter().position(|n| *n == key)?;
        Some(self.inner.get(at).and_then(Option::as_ref))
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// A deserializer that only records the field names a struct asks for:
/// the struct's own, when `path` is empty; else, those of the struct its
/// member `path[0]` is read as, and so on down `path`. Below the top
/// (`nested`), an `Option` or a newtype is looked through, as serde_json
/// reads either as what it holds when the value is not `null`. With
/// `unnamed`, the struct at the end of `path` is given a member it does
/// not name instead, and `fields` set (to no names) if it asks for that
/// member's value.
struct Probe<'a> {
    path: &'a [usize],
    nested: bool,
    unnamed: bool,
    fields: &'a mut Option<&'static [&'static str]>,
}

/// A key no struct names.
const UNNAMED: &str = "\u{0}unnamed";

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let Some((&k, rest)) = self.path.split_first() else {
            if self.unnamed {
                return visitor.visit_map(ProbeMember { key: Some(UNNAMED), path: None, fields: self.fields });
            }
            *self.fields = Some(fields);
            return Err(de::Error::custom("fields recorded"));
        };
        let key = fields.get(k).ok_or_else(|| de::Error::custom("no such member"))?;
        let path = Some((rest, self.unnamed));
        visitor.visit_map(ProbeMember { key: Some(key), path, fields: self.fields })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if !self.nested {
            return Err(de::Error::custom("not a struct"));
        }
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if !self.nested {
            return Err(de::Error::custom("not a struct"));
        }
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// A map of one member, `key`, whose value is probed down `path` (and
/// with `unnamed`, see [`Probe`]); with no `path`, a member the struct does
/// not name, whose value is only noted as asked for.
struct ProbeMember<'a> {
    key: Option<&'static str>,
    path: Option<(&'a [usize], bool)>,
    fields: &'a mut Option<&'static [&'static str]>,
}

/// The value of a member a struct does not name: `fields` is set (to no
/// names) only if the struct ignores it, as skimming would; a struct that
/// keeps it in any way is never skimmed.
struct Ignored<'a> {
    fields: &'a mut Option<&'static [&'static str]>,
}

impl<'de> de::Deserializer<'de> for Ignored<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("value kept"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        *self.fields = Some(&[]);
        Err(de::Error::custom("value ignored"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit option
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
    }
}

impl<'de> de::MapAccess<'de> for ProbeMember<'_> {
    type Error = de::value::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        match self.key.take() {
            Some(key) => seed.deserialize(de::value::BorrowedStrDeserializer::new(key)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        let Some((path, unnamed)) = self.path else {
            return seed.deserialize(Ignored { fields: self.fields });
        };
        seed.deserialize(Probe { path, nested: true, unnamed, fields: self.fields })
    }
}

/// JSON's white space.
pub(crate) fn is_space(b: u8) -> bool {
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

/// What is known of every byte of the bytes skimmed, to skim them faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plain {
    /// No byte is a control character (so no white space but the space).
    no_control: bool,
    /// No byte is a backslash either (so no string has an escape).
    no_backslash: bool,
    /// Every byte is ASCII.
    ascii: bool,
}

impl Plain {
    /// Nothing known: what is right for any bytes.
    pub(crate) const UNKNOWN: Plain = Plain { no_control: false, no_backslash: false, ascii: false };

    /// What holds for every byte of `data`: one pass, many bytes at a time.
    pub(crate) fn of(data: &[u8]) -> Plain {
        // 32 lanes and no early exit, so that the loop is vectorised.
        let (mut low, mut high, mut backslashes) = ([u8::MAX; 32], [0u8; 32], [0u8; 32]);
        let chunks = data.chunks_exact(32);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (i, &b) in chunk.iter().enumerate() {
                low[i] = low[i].min(b);
                high[i] = high[i].max(b);
                backslashes[i] |= u8::from(b == b'\\');
            }
        }
        let lanes = low.iter().zip(&high).zip(&backslashes).map(|((&l, &h), &b)| (l, h, b));
        let (low, high, backslashes) = rest
            .iter()
            .map(|&b| (b, b, u8::from(b == b'\\')))
            .chain(lanes)
            .fold((u8::MAX, 0u8, 0u8), |(l, h, b), (l2, h2, b2)| (l.min(l2), h.max(h2), b | b2));
        Plain { no_control: low >= 0x20, no_backslash: low >= 0x20 && backslashes == 0, ascii: high < 0x80 }
    }
}

/// Skims the object that starts at `data[0]` (`{`): checks it whole as
/// serde_json reads it into a struct whose members are `fields`, and
/// copies into `out` an object of only the members serde_json would read
/// (and those whose key has an escape). Returns the object's end. `plain`
/// must hold for every byte of `data` ([`Plain::of`], or
/// [`Plain::UNKNOWN`]).
///
/// The object is first skimmed by [`quick`], which accepts what it can
/// check in one pass and gives up on anything else (the bytes running
/// out, anything invalid, a key with an escape, deep nesting); then
/// [`skim_object_exactly`] decides, so that what [`quick`] does not settle
/// is judged as before, to the byte.
pub(crate) fn skim_object(
    data: &[u8],
    plain: Plain,
    fields: &Fields,
    out: &mut Vec<u8>,
    stack: &mut Vec<u8>,
) -> Result<usize, Stop> {
    let quick = match plain {
        Plain { no_backslash: true, .. } => quick::skim_object::<{ quick::QUOTES }>(data, plain.ascii, fields, out),
        Plain { no_control: true, .. } => quick::skim_object::<{ quick::NO_CONTROL }>(data, plain.ascii, fields, out),
        _ => quick::skim_object::<{ quick::ANY }>(data, plain.ascii, fields, out),
    };
    match quick {
        Some(end) => Ok(end),
        None => skim_object_exactly(data, fields, out, stack),
    }
}

/// [`skim_object`] without its quick pass: every case told apart, running
/// out of bytes from any invalid byte.
fn skim_object_exactly(data: &[u8], fields: &Fields, out: &mut Vec<u8>, stack: &mut Vec<u8>) -> Result<usize, Stop> {
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
        let keep = escaped || fields.wants(key).is_some();
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

/// One pass over an object for the usual case: [`skim_object`]'s first
/// try. Each function gives up (`None`) wherever the exact skim might
/// judge otherwise than accept: at the end of the bytes, at anything
/// invalid, at a key with an escape, past 64 levels of nesting. What it
/// accepts, it checks as the exact skim does: the same white space, the
/// same strings (escapes checked by the exact skim's own code), numbers
/// by JSON's grammar, literals whole, every key of the object as UTF-8.
mod quick {
    use super::{find_special, is_space, skip_number, skip_string_rest, Fields};

    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;

    /// The first byte at or after `i` that is not white space (possibly
    /// the end).
    #[inline(always)]
    fn space(data: &[u8], i: usize) -> usize {
        match data.get(i) {
            Some(&b) if b > b' ' => i,
            Some(b' ') if data.get(i + 1).is_some_and(|&b| b > b' ') => i + 1,
            _ => {
                let mut i = i;
                while data.get(i).is_some_and(|&b| is_space(b)) {
                    i += 1;
                }
                i
            }
        }
    }

    /// What the bytes may hold, as the const parameter `BYTES`: anything
    /// ([`super::Plain::UNKNOWN`]).
    pub(super) const ANY: u8 = 0;
    /// No control character.
    pub(super) const NO_CONTROL: u8 = 1;
    /// No control character and no backslash: a string ends at a quote.
    pub(super) const QUOTES: u8 = 2;

    /// The first quote, backslash or control character at or after `i`,
    /// or the end, among `BYTES`.
    #[inline(always)]
    fn special<const BYTES: u8>(data: &[u8], mut i: usize) -> usize {
        if BYTES == ANY {
            return find_special(data, i);
        }
        while let Some(chunk) = data.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let chars = u64::from_le_bytes(word);
            let quote = chars ^ (ONES * u64::from(b'"'));
            let mut found = quote.wrapping_sub(ONES) & !quote;
            if BYTES == NO_CONTROL {
                let backslash = chars ^ (ONES * u64::from(b'\\'));
                found |= backslash.wrapping_sub(ONES) & !backslash;
            }
            // The lowest flagged byte is exact (borrows only run upwards).
            found &= HIGH;
            if found != 0 {
                return i + found.trailing_zeros() as usize / 8;
            }
            i += 8;
        }
        while let Some(&b) = data.get(i) {
            if b == b'"' || b == b'\\' {
                return i;
            }
            i += 1;
        }
        data.len()
    }

    /// The end of the string whose opening quote is just before `i`.
    #[inline(always)]
    fn string<const BYTES: u8>(data: &[u8], i: usize) -> Option<usize> {
        let i = special::<BYTES>(data, i);
        match data.get(i) {
            Some(b'"') => Some(i + 1),
            Some(b'\\') => skip_string_rest(data, i).ok().map(|(end, _)| end),
            _ => None,
        }
    }

    /// The end of the number at `i`: an integer here, anything longer by
    /// the exact skim's grammar.
    #[inline(always)]
    fn number(data: &[u8], i: usize) -> Option<usize> {
        let mut j = i + usize::from(data[i] == b'-');
        match *data.get(j)? {
            b'0' => j += 1,
            b'1'..=b'9' => {
                j += 1;
                while data.get(j)?.is_ascii_digit() {
                    j += 1;
                }
            }
            _ => return None,
        }
        match *data.get(j)? {
            b'.' | b'e' | b'E' => skip_number(data, i).ok(),
            b'0'..=b'9' => None,
            _ => Some(j),
        }
    }

    #[inline(always)]
    fn literal(data: &[u8], i: usize, literal: &[u8]) -> Option<usize> {
        (data.get(i..i + literal.len())? == literal).then_some(i + literal.len())
    }

    /// The end of the key at `i` and of the colon after it, and the white
    /// space after that: where its value begins.
    #[inline(always)]
    fn key<const BYTES: u8>(data: &[u8], i: usize) -> Option<usize> {
        if *data.get(i)? != b'"' {
            return None;
        }
        colon(data, string::<BYTES>(data, i + 1)?)
    }

    /// Past the colon after a key that ends at `i`, and the white space
    /// after it: where its value begins.
    #[inline(always)]
    fn colon(data: &[u8], i: usize) -> Option<usize> {
        // Most often `": "`.
        if data.get(i..i + 2) == Some(b": ") {
            return Some(space(data, i + 2));
        }
        let i = space(data, i);
        if *data.get(i)? != b':' {
            return None;
        }
        Some(space(data, i + 1))
    }

    /// The end of the value at `i` (not white space).
    #[inline(always)]
    fn value<const BYTES: u8>(data: &[u8], i: usize) -> Option<usize> {
        match *data.get(i)? {
            b'"' => string::<BYTES>(data, i + 1),
            b'-' | b'0'..=b'9' => number(data, i),
            b'n' => literal(data, i, b"null"),
            b't' => literal(data, i, b"true"),
            b'f' => literal(data, i, b"false"),
            b'[' | b'{' => nested::<BYTES>(data, i),
            _ => None,
        }
    }

    /// The end of the array or object at `i`, up to 64 levels deep.
    fn nested<const BYTES: u8>(data: &[u8], mut i: usize) -> Option<usize> {
        // Bit `n` set when the level `n` from the innermost is an object.
        let mut objects = 0u64;
        let mut depth = 0u32;
        loop {
            // A value at `i`.
            match *data.get(i)? {
                b'"' => i = string::<BYTES>(data, i + 1)?,
                b'-' | b'0'..=b'9' => i = number(data, i)?,
                b'n' => i = literal(data, i, b"null")?,
                b't' => i = literal(data, i, b"true")?,
                b'f' => i = literal(data, i, b"false")?,
                open @ (b'[' | b'{') => {
                    i = space(data, i + 1);
                    // `]` and `}` are two past `[` and `{`.
                    if *data.get(i)? == open + 2 {
                        i += 1;
                    } else {
                        if depth == 64 {
                            return None;
                        }
                        depth += 1;
                        objects = objects << 1 | u64::from(open == b'{');
                        if open == b'{' {
                            i = key::<BYTES>(data, i)?;
                        }
                        continue;
                    }
                }
                _ => return None,
            }
            // After a value: close what ends here, up to the next value.
            loop {
                if depth == 0 {
                    return Some(i);
                }
                i = space(data, i);
                let object = objects & 1 == 1;
                match *data.get(i)? {
                    b',' if object => {
                        i = key::<BYTES>(data, space(data, i + 1))?;
                        break;
                    }
                    b',' => {
                        i = space(data, i + 1);
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return None,
                }
                i += 1;
                depth -= 1;
                objects >>= 1;
            }
        }
    }

    /// [`super::skim_object`], for the usual case. With `ascii`, every
    /// byte of `data` is ASCII.
    pub(super) fn skim_object<const BYTES: u8>(
        data: &[u8],
        ascii: bool,
        fields: &Fields,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        out.clear();
        members::<BYTES>(data, 0, ascii, fields, out)
    }

    /// Skims the object at `i` (`{`) as a struct of `fields`, and appends
    /// to `out` an object of the members it reads: each as written, or, for
    /// a member read as a struct whose value is an object, skimmed the same
    /// way. Its end.
    fn members<const BYTES: u8>(
        data: &[u8],
        i: usize,
        ascii: bool,
        fields: &Fields,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        out.push(b'{');
        let first = out.len();
        let mut i = space(data, i + 1);
        if *data.get(i)? == b'}' {
            out.push(b'}');
            return Some(i + 1);
        }
        loop {
            if *data.get(i)? != b'"' {
                return None;
            }
            let start = i;
            let key_end = special::<BYTES>(data, i + 1);
            if *data.get(key_end)? != b'"' {
                return None;
            }
            // serde_json reads every key of a struct as a string: UTF-8.
            let key = &data[i + 1..key_end];
            if !ascii && !key.is_ascii() && std::str::from_utf8(key).is_err() {
                return None;
            }
            let at = colon(data, key_end + 1)?;
            let end = match fields.wants(key) {
                None => value::<BYTES>(data, at)?,
                Some(inner) => {
                    if out.len() > first {
                        out.push(b',');
                    }
                    match inner {
                        Some(inner) if data.get(at) == Some(&b'{') => {
                            out.extend_from_slice(&data[start..at]);
                            members::<BYTES>(data, at, ascii, inner, out)?
                        }
                        _ => {
                            let end = value::<BYTES>(data, at)?;
                            out.extend_from_slice(&data[start..end]);
                            end
                        }
                    }
                }
            };
            // Most often `, "`.
            if data.get(end..end + 3) == Some(b", \"") {
                i = end + 2;
                continue;
            }
            i = space(data, end);
            match *data.get(i)? {
                b',' => i = space(data, i + 1),
                b'}' => {
                    out.push(b'}');
                    return Some(i + 1);
                }
                _ => return None,
            }
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
        /// Read as a struct: skimmed in turn.
        #[serde(default)]
        named: Option<Named>,
        /// A newtype around one, with an alias.
        #[serde(default, alias = "w")]
        wrapped: Option<Wrapped>,
        /// Read through a function, as a string: kept as written.
        #[serde(default, deserialize_with = "text_or_null")]
        text: String,
        /// A struct that refuses members it does not name: kept as written.
        #[serde(default)]
        strict: Option<Strict>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        name: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Named {
        name: String,
        #[serde(default)]
        n: Option<i64>,
        /// Deeper: skimmed too.
        #[serde(default)]
        deeper: Option<Box<Named>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Wrapped(Named);

    fn text_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
    }

    /// What serde_json makes of `text` as a `Picked`, against what skimming
    /// then parsing makes of it: both a value (the same) or both an error;
    /// skimmed exactly, and skimmed with what is known of its bytes and
    /// without, which must end the object at the same byte.
    fn same_as_serde_json(text: &[u8]) -> Result<(), String> {
        let fields = Fields::of::<Picked>().unwrap();
        let whole = serde_json::from_slice::<Picked>(text);
        let (mut out, mut stack) = (Vec::new(), Vec::new());
        let Some(s) = text.iter().position(|b| !is_space(*b)).filter(|&s| text[s] == b'{') else {
            return Ok(());
        };
        let data = &text[s..];
        let mut ends = Vec::new();
        for how in ["exactly", "with nothing known", "with what is known"] {
            let skim = match how {
                "exactly" => skim_object_exactly(data, &fields, &mut out, &mut stack),
                "with nothing known" => skim_object(data, Plain::UNKNOWN, &fields, &mut out, &mut stack),
                _ => skim_object(data, Plain::of(data), &fields, &mut out, &mut stack),
            };
            ends.push(skim);
            let skimmed = match skim {
                Ok(end) if data[end..].iter().all(|b| is_space(*b)) => {
                    serde_json::from_slice::<Picked>(&out).map_err(|e| e.to_string())
                }
                Ok(_) => Err("trailing characters".to_owned()),
                Err(stop) => Err(format!("{stop:?}")),
            };
            match (&whole, &skimmed) {
                (Ok(a), Ok(b)) if a == b => {}
                (Err(_), Err(_)) => {}
                _ => {
                    return Err(format!(
                        "serde_json: {whole:?}, skimmed {how}: {skimmed:?} for {:?}",
                        String::from_utf8_lossy(text)
                    ))
                }
            }
        }
        if ends.iter().any(|end| *end != ends[0]) {
            return Err(format!("skims end apart: {ends:?} for {:?}", String::from_utf8_lossy(text)));
        }
        Ok(())
    }

    /// A struct read by hand that keeps the members it does not name:
    /// never skimmed, which would drop them.
    #[derive(Debug)]
    struct Keeper {
        _rest: Vec<(String, Value)>,
    }

    impl<'de> serde::Deserialize<'de> for Keeper {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Members;
            impl<'de> Visitor<'de> for Members {
                type Value = Keeper;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("members")
                }
                fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Keeper, A::Error> {
                    let mut rest = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        rest.push((key, map.next_value()?));
                    }
                    Ok(Keeper { _rest: rest })
                }
            }
            d.deserialize_struct("Keeper", &["id"], Members)
        }
    }

    #[test]
    fn fields_are_what_the_struct_reads() {
        fn names(fields: &Fields) -> Vec<&str> {
            let mut names: Vec<_> = fields.names.iter().map(|n| std::str::from_utf8(n).unwrap()).collect();
            names.sort_unstable();
            names
        }
        let fields = Fields::of::<Picked>().unwrap();
        assert_eq!(names(&fields), ["id", "inner", "n", "named", "nested", "strict", "text", "w", "wrapped"]);
        assert!(fields.wants(b"n").is_some() && fields.wants(b"nested").is_some());
        assert!(fields.wants(b"nn").is_none() && fields.wants(b"_skipped").is_none());
        // Members read as structs (through an Option, a newtype, a Box),
        // and no deeper than INNER_DEPTH.
        for key in [&b"named"[..], b"wrapped", b"w"] {
            let mut levels = 1;
            let mut named = fields.wants(key).unwrap().unwrap();
            while let Some(deeper) = named.wants(b"deeper").unwrap() {
                assert_eq!(names(named), ["deeper", "n", "name"]);
                (named, levels) = (deeper, levels + 1);
            }
            assert_eq!(levels, INNER_DEPTH, "{key:?}");
        }
        for key in [&b"id"[..], b"n", b"inner", b"text", b"strict"] {
            assert!(fields.wants(key).unwrap().is_none(), "{key:?}");
        }
        assert!(Fields::of::<Strict>().is_none());
        assert!(Fields::of::<Keeper>().is_none());
        // A MAAS machine is skimmed, its zone and pool too.
        let machine = Fields::of::<crate::clients::maas::Machine>().unwrap();
        for key in [&b"zone"[..], b"pool"] {
            assert_eq!(names(machine.wants(key).unwrap().unwrap()), ["name"]);
        }
        assert!(Fields::of::<Value>().is_none());
        assert!(Fields::of::<Vec<Picked>>().is_none());
        assert!(Fields::of::<Option<Picked>>().is_none());
    }

    #[test]
    fn what_is_known_of_the_bytes_holds_for_every_byte() {
        let plain = Plain { no_control: true, no_backslash: true, ascii: true };
        for len in [0, 1, 31, 32, 33, 100] {
            let text = vec![b'a'; len];
            assert_eq!(Plain::of(&text), plain);
            for at in 0..len {
                for (byte, want) in [
                    (b'\\', Plain { no_backslash: false, ..plain }),
                    (b'\n', Plain { no_control: false, no_backslash: false, ..plain }),
                    (0x1f, Plain { no_control: false, no_backslash: false, ..plain }),
                    (b' ', plain),
                    (0x7f, plain),
                    (0x80, Plain { ascii: false, ..plain }),
                    (0xff, Plain { ascii: false, ..plain }),
                ] {
                    let mut text = text.clone();
                    text[at] = byte;
                    assert_eq!(Plain::of(&text), want, "{byte:#x} at {at} of {len}");
                }
            }
        }
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
        assert_eq!(skim_object(text, Plain::of(text), &fields, &mut out, &mut stack), Ok(text.len()));
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#"{"id": "a","n\u0000": 1,"n": 7,"nested": {"q": 1}}"#);
        // Members read as structs keep only what those read; exactly, the
        // members are kept as written.
        let text = br#"{"zz": {"id": "no"}, "id": "a", "named": {"x": [1, {"name": "no"}], "name": "b", "deeper": {"name": "c", "y": null}}, "w": {"name": "d", "z": "\u00e9"}, "wrapped": null, "text": "t"}"#;
        let kept = r#"{"id": "a","named": {"name": "b","deeper": {"name": "c"}},"w": {"name": "d"},"wrapped": null,"text": "t"}"#;
        for plain in [Plain::of(text), Plain::UNKNOWN] {
            assert_eq!(skim_object(text, plain, &fields, &mut out, &mut stack), Ok(text.len()));
            assert_eq!(std::str::from_utf8(&out).unwrap(), kept);
        }
        assert_eq!(skim_object_exactly(text, &fields, &mut out, &mut stack), Ok(text.len()));
        assert!(std::str::from_utf8(&out).unwrap().starts_with(r#"{"id": "a","named": {"x": [1, {"name": "no"}], "#));
        same_as_serde_json(text).unwrap();
        for text in [
            &br#"{"id": "a", "named": ["b"]}"#[..],
            br#"{"id": "a", "named": {"name": "b", "name": "c"}}"#,
            br#"{"id": "a", "named": {"na\u006de": "b"}}"#,
            b"{\"id\": \"a\", \"named\": {\"\xff\": 1, \"name\": \"b\"}}",
            b"{\"id\": \"a\", \"named\": {\"x\": \"\xff\", \"name\": \"b\"}}",
            br#"{"id": "a", "named": {}}"#,
            br#"{"id": "a", "named": {"name": "b",}}"#,
            br#"{"id": "a", "named": {"name": "b"} }"#,
            br#"{"id": "a", "named": 5}"#,
            br#"{"id": "a", "w": {"name": "b", "deeper": {"name": 1}}}"#,
            br#"{"id": "a", "w": {"name": "b", "deeper": {"name": "c", "deeper": {"name": "d", "deeper": {"x": 1}}}}}"#,
            br#"{"id": "a", "text": null, "text": "t"}"#,
            br#"{"id": "a", "strict": {"name": "b"}}"#,
            br#"{"id": "a", "strict": {"name": "b", "x": 1}}"#,
            br#"{"id": "a", "text": 1}"#,
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
            // Keys in UTF-8 as written, valid and not, and white space
            // between every token.
            "{\"id\": \"a\", \"zoné\": 1, \"é\": {\"名\": [\"ü\"]}}".as_bytes(),
            b"{\"id\": \"a\", \"zon\xc3\": 1}",
            b"{\"id\": \"a\", \"named\": {\"\xe5\x90\": 1, \"name\": \"b\"}}",
            b"{\t\"id\"\r\n:\n\"a\" ,\r\"x\"\t: [ 1 ,\n{ } ] \n}",
            b"{\"id\": \"a\", \"x\":\x0c1}",
        ] {
            same_as_serde_json(text).unwrap();
        }
        // Nested past what the quick pass follows (64 levels), and past
        // serde_json's own limit (128).
        for depth in [63, 64, 65, 127, 128, 129, 200] {
            let text = format!(r#"{{"id": "a", "x": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
            same_as_serde_json(text.as_bytes()).unwrap();
            let text = format!(r#"{{"id": "a", "x": {}{}}}"#, r#"{"y": "#.repeat(depth), "}".repeat(depth));
            same_as_serde_json(text.as_bytes()).unwrap();
        }
    }

    #[test]
    fn every_structural_damage_reads_as_serde_json_reads_it() {
        // Every byte of an object with every kind of member replaced by,
        // or preceded by, each structural byte, or taken out.
        let text = br#"{"id": "a", "zz": {"q": [1, -2.5e3, true, null, "s"], "r": {}}, "n": 7, "named": {"x": [{"name": "no"}], "name": "b", "deeper": {"name": "c", "y": [[]]}}, "w": {"name": "d"}, "text": "t", "inner": [false]}"#;
        same_as_serde_json(text).unwrap();
        for at in 0..text.len() {
            for &byte in b"[]{},:\" \\0-e.tn\x01\xff" {
                for how in 0..3 {
                    let mut damaged = text.to_vec();
                    match how {
                        0 => damaged[at] = byte,
                        1 => damaged.insert(at, byte),
                        _ => {
                            damaged.remove(at);
                        }
                    }
                    same_as_serde_json(&damaged).unwrap();
                }
            }
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
            // Strings with no escape: quote to quote.
            "[ !#-\\[\\]-~é]{0,12}".prop_map(Value::from),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        // A `Named`, with members it does not read, up to four deep.
        let named = Just(Value::Null).prop_recursive(4, 8, 1, {
            let value = value.clone();
            move |deeper| {
                let extra = prop::collection::vec(("[a-z]{1,5}", value.clone()), 0..3);
                ("[ !#-\\[\\]-~é]{0,6}", prop::option::of(any::<i64>()), extra, deeper).prop_map(
                    |(name, n, extra, deeper)| {
                        let mut object = serde_json::Map::new();
                        for (k, v) in extra {
                            object.insert(k, v);
                        }
                        object.insert("name".into(), name.into());
                        if let Some(n) = n {
                            object.insert("n".into(), n.into());
                        }
                        object.insert("deeper".into(), deeper);
                        Value::Object(object)
                    },
                )
            }
        });
        let member = prop_oneof![
            3 => (prop_oneof![Just("id"), Just("n"), Just("inner"), Just("text")].prop_map(str::to_owned), value.clone()),
            3 => (prop_oneof![Just("named"), Just("wrapped"), Just("w")].prop_map(str::to_owned), named),
            2 => ("[a-z]{1,6}", value),
        ];
        (prop::collection::vec(member, 0..6), "[a-z]{0,4}", any::<i64>()).prop_map(|(members, id, n)| {
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
            for plain in [Plain::of(cut), Plain::UNKNOWN] {
                prop_assert_eq!(skim_object(cut, plain, &fields, &mut Vec::new(), &mut Vec::new()), Err(Stop::Incomplete));
            }
        }
    }
}
