//! Small helpers shared by the simulators: randomness, dates, URL and form
//! decoding, base64, query parameters, and Python's `repr()` of a string
//! (MAAS quotes some error messages that way).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};

/// A random 64-bit value. Good enough for keys and nonces of a test server;
/// not for cryptography.
pub(crate) fn random_u64() -> u64 {
    fastrand::u64(..)
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric).take(len).collect()
}

/// Seconds since the Unix epoch, shifted by `offset` seconds.
pub(crate) fn unix_now(offset: i64) -> i64 {
    let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    now.saturating_add(offset)
}

/// The last second an HTTP date can name (9999-12-31T23:59:59Z).
const LAST_HTTP_DATE: i64 = 253_402_300_799;

/// An HTTP date (RFC 1123, always GMT), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
/// Times before 1970 or after 9999 are clamped to those years.
pub(crate) fn http_date(unix: i64) -> String {
    let secs = unix.clamp(0, LAST_HTTP_DATE) as u64;
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Percent-decodes `s` (like Python's `urllib.parse.unquote`: invalid escapes
/// stay as they are, `+` stays a plus). Invalid UTF-8 is replaced.
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Decodes `application/x-www-form-urlencoded` data (a query string or a
/// form body) into name/value pairs, in order, repeats kept: `+` is a space,
/// empty pieces are skipped, a piece without `=` has an empty value.
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

/// The value of the last parameter named `key`.
pub(crate) fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Standard base64 as MIME bodies carry it: padding optional, bits after the
/// last whole byte ignored.
const MIME_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes standard base64, ignoring whitespace; `None` if malformed.
pub(crate) fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = s.iter().copied().filter(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n')).collect();
    MIME_BASE64.decode(compact).ok()
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a single
/// quote and no double quote.
pub(crate) fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// A JSON string literal for `s`.
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Blocks until standard input closes (how a parent says "stop"), or for
/// ever with `ignore_stdin` (for callers whose stdin is /dev/null).
pub fn wait_for_stdin_close(ignore_stdin: bool) {
    use std::io::Read;
    if ignore_stdin {
        loop {
            std::thread::park();
        }
    }
    let mut sink = [0u8; 1024];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_709_210_096), "Thu, 29 Feb 2024 12:34:56 GMT");
        assert_eq!(http_date(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%26abc%2"), "&abc%2");
        assert_eq!(percent_decode("a%zz%41+"), "a%zzA+");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%e2%82%ac%ff"), "\u{20ac}\u{fffd}");
        assert_eq!(percent_decode("/MAAS/api/2.0/machines/x%2Fy/"), "/MAAS/api/2.0/machines/x/y/");
    }

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("op=power_off&stop_mode=soft+x&&e"),
            vec![("op".into(), "power_off".into()), ("stop_mode".into(), "soft x".into()), ("e".into(), "".into())]
        );
        assert_eq!(parse_form("a+b=%2B%3D&a+b=2=3"), vec![("a b".into(), "+=".into()), ("a b".into(), "2=3".into())]);
        assert_eq!(parse_form("x=%zz"), vec![("x".into(), "%zz".into())]);
        assert!(parse_form("").is_empty());
        let params = parse_form("limit=1&limit=2");
        assert_eq!(last(&params, "limit"), Some("2"));
        assert_eq!(last(&params, "marker"), None);
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(base64_decode(b"aGFyZA==\r\n").unwrap(), b"hard");
        assert_eq!(base64_decode(b"aGFy\r\nZA").unwrap(), b"hard");
        assert_eq!(base64_decode(b"eCB5").unwrap(), b"x y");
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert!(base64_decode(b"a*b").is_none());
        assert!(base64_decode(b"aG==FyZA").is_none());
    }

    #[test]
    fn python_repr() {
        assert_eq!(py_repr("Invalid access token: abc"), "'Invalid access token: abc'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("'a' \"b\""), "'\\'a\\' \"b\"'");
    }

    #[test]
    fn random_keys() {
        let a = random_alnum(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_alnum(32));
        assert_ne!(random_u64(), random_u64());
    }
}
