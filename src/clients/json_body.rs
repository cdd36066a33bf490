//! Reading a JSON answer within limits: a size cap, a cap on one string,
//! and a deadline over the whole body, for whole answers and for long
//! listings parsed one element at a time as they stream in.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use reqwest::blocking::Response;
use serde::de::DeserializeOwned;

use crate::clients::http::{is_html, is_json, TransportError};

/// Why a 2xx body could not be read as the JSON expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body broke off, took past the deadline, or passed a size cap.
    Transport(TransportError),
    /// An HTML page instead of JSON.
    Html,
    /// Not JSON, or JSON of another shape (`json_declared`: the server said
    /// it was JSON).
    Shape {
        /// Whether the `Content-Type` said JSON.
        json_declared: bool,
        /// What is wrong, never quoting the body (serde's error kind with
        /// its line and column, for one).
        detail: String,
    },
}

impl BodyError {
    /// The words for a `Shape` or `Html` error.
    pub(crate) fn describe_shape(&self) -> String {
        match self {
            BodyError::Html => "the answer is an HTML page, not JSON".to_owned(),
            BodyError::Shape { json_declared: true, detail } => {
                format!("the JSON answer has an unexpected shape ({detail})")
            }
            BodyError::Shape { json_declared: false, detail } => format!("the answer is not JSON ({detail})"),
            BodyError::Transport(e) => e.to_string(),
        }
    }
}

/// The longest JSON string accepted in an answer. The parser buffers each
/// string it keeps whole, so this bounds memory against a server that sends
/// one endless string.
const MAX_JSON_STRING: usize = 1024 * 1024;

/// A reader over a response body that stops, recording why in `stopped`,
/// when more than `limit` bytes arrive, when one JSON string runs longer
/// than [`MAX_JSON_STRING`], or when `deadline` passes (the HTTP client's
/// timeout applies to each read, not to the whole body).
struct Capped<R> {
    inner: R,
    remaining: u64,
    limit: u64,
    deadline: Option<Instant>,
    timeout: Duration,
    /// Whether to follow JSON strings (off when the caller scans them).
    track_strings: bool,
    in_string: bool,
    escaped: bool,
    string_len: usize,
    stopped: Rc<Cell<Option<TransportError>>>,
}

impl<R> Capped<R> {
    fn new(inner: R, limit: u64) -> Capped<R> {
        Capped {
            inner,
            remaining: limit,
            limit,
            deadline: None,
            timeout: Duration::ZERO,
            track_strings: true,
            in_string: false,
            escaped: false,
            string_len: 0,
            stopped: Rc::new(Cell::new(None)),
        }
    }

    fn with_deadline(mut self, timeout: Duration) -> Capped<R> {
        self.deadline = Some(Instant::now() + timeout);
        self.timeout = timeout;
        self
    }

    fn without_string_tracking(mut self) -> Capped<R> {
        self.track_strings = false;
        self
    }

    fn stop(&self, why: TransportError) -> io::Error {
        let message = why.to_string();
        self.stopped.set(Some(why));
        io::Error::other(message)
    }

    /// Follows string boundaries through `bytes`; false if one is too long.
    fn track_strings(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.in_string {
                self.string_len += 1;
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                if self.string_len > MAX_JSON_STRING {
                    return false;
                }
            } else if b == b'"' {
                self.in_string = true;
                self.string_len = 0;
            }
        }
        true
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(self.stop(TransportError::Timeout { after: self.timeout }));
        }
        if self.remaining == 0 {
            // One probe byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(self.stop(TransportError::TooLarge { limit: self.limit })),
            };
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..max]) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Err(self.stop(TransportError::Timeout { after: self.timeout })),
            Err(e) => return Err(e),
        };
        self.remaining -= n as u64;
        if self.track_strings && !self.track_strings(&buf[..n]) {
            return Err(self.stop(TransportError::TooLarge { limit: MAX_JSON_STRING as u64 }));
        }
        Ok(n)
    }
}

/// A read that timed out: the HTTP client wraps its own error in `io::Error`.
fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref().and_then(|inner| inner.downcast_ref::<reqwest::Error>()).is_some_and(reqwest::Error::is_timeout)
}

/// Parses a 2xx JSON answer as it streams, through the size cap, so that
/// memory holds only what `T` keeps.
pub fn read_json<T: DeserializeOwned>(response: Response, limit: u64, timeout: Duration) -> Result<T, BodyError> {
    let headers = response.headers().clone();
    if is_html(&headers) {
        return Err(BodyError::Html);
    }
    let json_declared = is_json(&headers);
    let capped = Capped::new(response, limit).with_deadline(timeout);
    let stopped = capped.stopped.clone();
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(64 * 1024, capped));
    let value = T::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match stopped.take() {
        Some(why) => BodyError::Transport(why),
        None if e.is_io() => BodyError::Transport(body_io_error(&e, timeout)),
        None => BodyError::Shape { json_declared, detail: describe_json_error(&e) },
    })
}

/// The largest single element of a streamed JSON list (a MAAS machine is
/// a few tens of KiB). Bounds memory against a server that never ends one.
const MAX_LIST_ELEMENT: usize = 16 * 1024 * 1024;

const LIST_CHUNK: usize = 256 * 1024;

/// Parses a 2xx answer that is a JSON list one element at a time, as the
/// body streams in, and hands each element to `each`. Elements are parsed
/// with serde_json's slice parser (much faster than its reader parser)
/// straight from a read buffer; an element cut by the end of the buffer is
/// parsed again once more bytes have arrived. Memory holds the buffer and
/// one element, whatever the length of the list.
pub fn read_json_list<T: DeserializeOwned>(
    response: Response,
    limit: u64,
    timeout: Duration,
    mut each: impl FnMut(T),
) -> Result<(), BodyError> {
    let headers = response.headers().clone();
    if is_html(&headers) {
        return Err(BodyError::Html);
    }
    let json_declared = is_json(&headers);
    let mut body = ListBody {
        reader: Capped::new(response, limit).with_deadline(timeout).without_string_tracking(),
        buf: Vec::with_capacity(LIST_CHUNK * 2),
        pos: 0,
        ended: false,
    };
    body.parse_list(json_declared, &mut each)
}

#[derive(Clone, Copy)]
enum Expect {
    Open,
    FirstOrClose,
    Element,
    CommaOrClose,
    End,
}

/// Why a list element could not be read.
enum ElementError {
    Transport(TransportError),
    Shape(String),
}

impl ElementError {
    fn into_body_error(self, json_declared: bool) -> BodyError {
        match self {
            ElementError::Transport(t) => BodyError::Transport(t),
            ElementError::Shape(detail) => BodyError::Shape { json_declared, detail },
        }
    }
}

/// The read buffer of a streamed list: `buf[pos..]` is not parsed yet.
struct ListBody<R> {
    reader: Capped<R>,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl<R: Read> ListBody<R> {
    /// Walks the list: `[`, elements separated by commas, `]`, nothing after.
    fn parse_list<T: DeserializeOwned>(
        &mut self,
        json_declared: bool,
        each: &mut dyn FnMut(T),
    ) -> Result<(), BodyError> {
        let shape = |detail: &str| BodyError::Shape { json_declared, detail: detail.to_owned() };
        let mut expect = Expect::Open;
        loop {
            let Some(byte) = self.next_non_space()? else {
                return match expect {
                    Expect::End => Ok(()),
                    Expect::Open => Err(shape("the answer is empty")),
                    _ => Err(shape("the list is truncated")),
                };
            };
            expect = match (expect, byte) {
                (Expect::Open, b'[') => Expect::FirstOrClose,
                (Expect::Open, _) => return Err(shape("the answer is not a list")),
                (Expect::FirstOrClose | Expect::CommaOrClose, b']') => Expect::End,
                (Expect::CommaOrClose, b',') => Expect::Element,
                (Expect::CommaOrClose, _) => return Err(shape("the list's elements are not separated by commas")),
                (Expect::FirstOrClose | Expect::Element, _) => {
                    each(self.parse_element().map_err(|e| e.into_body_error(json_declared))?);
                    // The element consumed its own bytes.
                    expect = Expect::CommaOrClose;
                    continue;
                }
                (Expect::End, _) => return Err(shape("unexpected characters after the list")),
            };
            self.pos += 1;
        }
    }

    /// Reads another chunk; false at the end of the body.
    fn fill(&mut self) -> Result<bool, ElementError> {
        if self.ended {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() > MAX_LIST_ELEMENT {
            return Err(ElementError::Transport(TransportError::TooLarge { limit: MAX_LIST_ELEMENT as u64 }));
        }
        let start = self.buf.len();
        self.buf.resize(start + LIST_CHUNK, 0);
        let read = self.reader.read(&mut self.buf[start..]);
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(start);
                let why = self
                    .reader
                    .stopped
                    .take()
                    .unwrap_or_else(|| TransportError::Protocol { detail: format!("the answer broke off ({e})") });
                return Err(ElementError::Transport(why));
            }
        };
        self.buf.truncate(start + n);
        self.ended = n == 0;
        Ok(n > 0)
    }

    /// The next byte that is not white space, without consuming it.
    fn next_non_space(&mut self) -> Result<Option<u8>, BodyError> {
        loop {
            if let Some(skip) = self.buf[self.pos..].iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += skip;
                return Ok(Some(self.buf[self.pos]));
            }
            self.pos = self.buf.len();
            if !self.fill().map_err(|e| e.into_body_error(true))? {
                return Ok(None);
            }
        }
    }

    fn parse_element<T: DeserializeOwned>(&mut self) -> Result<T, ElementError> {
        loop {
            let data = &self.buf[self.pos..];
            let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<T>();
            let parsed = stream.next();
            let used = stream.byte_offset();
            match parsed {
                // A value that ends exactly at the end of the buffer may be a
                // number cut short: only trust it once more bytes are seen.
                Some(Ok(value)) if self.ended || used < data.len() => {
                    self.pos += used;
                    return Ok(value);
                }
                None if self.ended => return Err(ElementError::Shape("the list is truncated".to_owned())),
                Some(Ok(_)) | None => {}
                // Cut off by the end of the buffer: read more and parse again.
                Some(Err(e)) if !self.ended && (e.is_eof() || error_at_end(&e, data)) => {}
                Some(Err(e)) => return Err(ElementError::Shape(describe_json_error(&e))),
            }
            // At the end of the body, what there is is parsed once more, for real.
            if !self.fill()? && self.buf.len() == self.pos {
                return Err(ElementError::Shape("the list is truncated".to_owned()));
            }
        }
    }
}

/// Whether a parse error points at the last bytes of `data` (a number or a
/// literal cut short, which serde_json reports as a syntax error).
fn error_at_end(e: &serde_json::Error, data: &[u8]) -> bool {
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in data.iter().enumerate() {
        if line == e.line() {
            break;
        }
        if *b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    line_start + e.column() + 8 >= data.len()
}

/// serde_json's error without any quoted input.
fn describe_json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Eof => "truncated",
        serde_json::error::Category::Io => "read error",
    };
    format!("{kind} at line {}, column {}", e.line(), e.column())
}

/// A failure of the connection while the body streamed in. serde_json
/// keeps only the I/O error's kind, which is enough to tell a timeout.
fn body_io_error(e: &serde_json::Error, timeout: Duration) -> TransportError {
    match e.io_error_kind() {
        Some(io::ErrorKind::TimedOut) => TransportError::Timeout { after: timeout },
        _ => TransportError::Protocol { detail: format!("the answer broke off ({})", describe_json_error(e)) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_stops_past_the_limit() {
        let mut ok = Capped::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        assert_eq!(ok.read_to_end(&mut out).unwrap(), 5);
        let mut over = Capped::new(&b"123456"[..], 5);
        assert!(over.read_to_end(&mut Vec::new()).is_err());
        assert_eq!(over.stopped.take(), Some(TransportError::TooLarge { limit: 5 }));
    }

    #[test]
    fn capped_reader_refuses_an_endless_string() {
        let mut long = b"[\"ok\", \"esc\\\" still in\", \"".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_JSON_STRING + 10));
        let mut reader = Capped::new(&long[..], u64::MAX);
        assert!(reader.read_to_end(&mut Vec::new()).is_err());
        assert_eq!(reader.stopped.take(), Some(TransportError::TooLarge { limit: MAX_JSON_STRING as u64 }));
        // Many short strings are fine, however long the whole.
        let many = "\"abc\",".repeat(400_000);
        let mut reader = Capped::new(many.as_bytes(), u64::MAX);
        assert_eq!(reader.read_to_end(&mut Vec::new()).unwrap(), many.len());
    }

    /// Parses `chunks` (as successive reads) with the list parser.
    fn split(chunks: &[&str]) -> Result<Vec<serde_json::Value>, String> {
        let mut body = ListBody {
            // An empty read means the end of the body, so empty chunks are left out.
            reader: Capped::new(
                Chunks(chunks.iter().filter(|c| !c.is_empty()).map(|c| c.as_bytes().to_vec()).collect()),
                u64::MAX,
            )
            .without_string_tracking(),
            buf: Vec::new(),
            pos: 0,
            ended: false,
        };
        let mut out = Vec::new();
        body.parse_list(true, &mut |v: serde_json::Value| out.push(v)).map_err(|e| e.describe_shape())?;
        Ok(out)
    }

    /// A reader that returns one chunk per read.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    impl Read for Chunks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some(mut chunk) = self.0.pop_front() else { return Ok(0) };
            let n = chunk.len().min(buf.len());
            buf[..n].copy_from_slice(&chunk[..n]);
            if n < chunk.len() {
                self.0.push_front(chunk.split_off(n));
            }
            Ok(n)
        }
    }

    #[test]
    fn lists_parse_across_any_cut() {
        let text = r#" [ {"a": "x,]}\"y", "b": [1, {"c": 2}]}, -12.5e3 , "s]" ,[4,5], true, null ] "#;
        let want: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
        for at in 0..text.len() {
            assert_eq!(split(&[&text[..at], &text[at..]]).unwrap(), want, "cut at {at}");
        }
        assert_eq!(split(&["[]"]).unwrap(), Vec::<serde_json::Value>::new());
        assert!(split(&["[1,]"]).is_err());
        assert!(split(&["[1, 2"]).is_err());
        assert!(split(&["[1 2]"]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn lists_parse_like_serde_json(values in proptest::collection::vec(any_json(), 0..8), a in 0usize..400, b in 0usize..400) {
            let text = serde_json::to_string(&values).unwrap();
            let (a, b) = (a.min(text.len()), b.min(text.len()));
            let (first, second) = (a.min(b), a.max(b));
            let got = split(&[&text[..first], &text[first..second], &text[second..]]).unwrap();
            proptest::prop_assert_eq!(got, values);
        }

        #[test]
        fn any_bytes_are_refused_without_panic(text in "(?s).{0,300}") {
            let _ = split(&[&text]);
        }
    }

    fn any_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            "[ -~]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z\\]\"]{1,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn capped_reader_enforces_the_deadline() {
        let mut reader = Capped::new(&b"[1, 2, 3]"[..], 100).with_deadline(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert!(reader.read(&mut [0u8; 4]).is_err());
        assert_eq!(reader.stopped.take(), Some(TransportError::Timeout { after: Duration::ZERO }));
    }
}
