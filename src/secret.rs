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
}
