//! A string that holds a secret: API keys, token secrets, passwords.
//!
//! `SecretString` cannot reach logs by accident: its `Debug` and `Display`
//! print a fixed placeholder, and its memory is zeroed when it is dropped.
//! The only way to read the value is `SecretString::expose`, which makes
//! every use greppable.

use std::fmt;

use zeroize::Zeroize;

/// What `Debug` and `Display` print instead of a secret.
pub(crate) const REDACTED: &str = "<redacted>";

/// A secret value. See the module documentation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The secret itself. Call only where the value must go on the wire or
    /// into the rendered file.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Replaces every occurrence of each secret in `text` with `REDACTED` (`<redacted>`), in
/// one pass over the original text. Empty secrets are ignored; where two
/// secrets start at the same place the longer one is masked whole.
pub fn mask(text: &str, secrets: &[&str]) -> String {
    let mut secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return text.to_owned();
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match secrets.iter().find(|s| rest.starts_with(**s)) {
            Some(secret) => {
                out.push_str(REDACTED);
                rest = &rest[secret.len()..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Whether a character can be part of a MAAS API key as MAAS generates
/// it: letters and digits, and the `:` between the parts.
fn in_key(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Whether one run of [`in_key`] characters is shaped like a MAAS API key
/// (`consumer_key:token_key:token_secret`, 18, 18 and 32 letters and
/// digits), or like two of its parts: three non-empty `:`-separated parts
/// in a row making 24 characters or more, or two parts of 16 or more
/// each. Host and port, IPv6 addresses, times, digests, Juju secret URIs
/// and policy names (whose `_` and `-` end a run) are not.
fn is_key_run(run: &str) -> bool {
    let parts: Vec<&str> = run.split(':').collect();
    let three =
        parts.windows(3).any(|w| w.iter().all(|p| !p.is_empty()) && w.iter().map(|p| p.len()).sum::<usize>() >= 24);
    three || parts.windows(2).any(|w| w.iter().all(|p| p.len() >= 16))
}

/// The runs of `text` that could be part of a key, with their byte offsets.
fn key_runs(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !in_key(c)).scan(0, move |offset, run| {
        let start = *offset;
        *offset += run.len() + text[start + run.len()..].chars().next().map_or(0, char::len_utf8);
        Some((start, run))
    })
}

/// Whether `text` holds something shaped like a MAAS API key, whole or in
/// part (see [`mask_api_key_shapes`]): such a value is never repeated in a
/// message, whatever option it was pasted into.
pub fn looks_like_api_key(text: &str) -> bool {
    key_runs(text).any(|(_, run)| is_key_run(run))
}

/// `text` with every run shaped like a MAAS API key (whole, or two of its
/// parts) replaced by `<redacted>`: the last guard on what an error prints,
/// for keys no configuration names (pasted into the wrong option, or on
/// the command line).
pub fn mask_api_key_shapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, run) in key_runs(text).filter(|(_, run)| is_key_run(run)) {
        out.push_str(&text[copied..start]);
        out.push_str(REDACTED);
        copied = start + run.len();
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("ck:tk:ts-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(s.expose(), "ck:tk:ts-very-secret");
    }

    #[test]
    fn mask_replaces_longest_first() {
        let masked = mask("key=a:b:c part=c other", &["c", "a:b:c", ""]);
        assert_eq!(masked, format!("key={REDACTED} part={REDACTED} other"));
    }

    #[test]
    fn key_shapes_are_found_whole_or_in_part_and_nothing_else() {
        let key = "SkTvsyHhzkREvvdtNk:Ywn5FvXVupVPvNUhrN:cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM";
        for shaped in [
            key.to_owned(),
            format!("`{key}` is not an Ironic API version"),
            format!("\"{key}\""),
            format!("http://{key}/MAAS"),
            key[..60].to_owned(),
            key.split_once(':').unwrap().1.to_owned(),
            key.rsplit_once(':').unwrap().0.to_owned(),
            format!("key-{key}.conf"),
        ] {
            assert!(looks_like_api_key(&shaped), "{shaped}");
            let masked = mask_api_key_shapes(&shaped);
            for part in key.split(':') {
                assert!(!masked.contains(&part[..16]), "{masked}");
            }
        }
        assert_eq!(mask_api_key_shapes(&format!("x `{key}` y {key}")), format!("x `{REDACTED}` y {REDACTED}"));
        for plain in [
            "http://10.0.0.2:5240/MAAS",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "12:30:45",
            "aa:bb:cc:dd:ee:ff",
            "watcher-decision-engine watcher-applier",
            "sha256:0123456789abcdef0123456789abcdef",
            "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed.",
            "secret://8a1d1b3e-6c4f-4d2b-9a7e-0e6c7f1a2b3c/cs3v8m6a8r9s7b6qvcq0",
            "rabbit://watcher:pa55w0rd@10.0.0.10:5672/openstack",
            "/etc/watcher-applier.conf.d/50-watcher-metal.conf",
            "a:b:c",
            "é:ü:ö",
            "",
        ] {
            assert!(!looks_like_api_key(plain), "{plain}");
            assert_eq!(mask_api_key_shapes(plain), plain);
        }
    }
}
