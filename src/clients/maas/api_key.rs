//! MAAS API keys: `consumer_key:token_key:token_secret`.
//!
//! MAAS hands out keys of three colon-separated parts; the OAuth consumer
//! secret is always empty. Only the token secret is secret, but the whole
//! key is treated as one, since together the parts authenticate a user.

use std::fmt;

use crate::secret::SecretString;

/// A parsed MAAS API key. `Debug` shows the consumer and token keys'
/// lengths only.
#[derive(Clone, PartialEq, Eq)]
pub struct MaasApiKey {
    whole: SecretString,
    consumer_key: SecretString,
    token_key: SecretString,
    token_secret: SecretString,
}

/// Why a string is not a MAAS API key. Messages never include the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// Nothing but whitespace.
    #[error("is empty")]
    Empty,
    /// Not three `:`-separated parts.
    #[error("has {parts} colon-separated part(s); a MAAS API key has 3 (consumer_key:token_key:token_secret)")]
    WrongPartCount {
        /// How many parts the key has.
        parts: usize,
    },
    /// One of the three parts is empty.
    #[error("has an empty {which} part; a MAAS API key is consumer_key:token_key:token_secret")]
    EmptyPart {
        /// `"consumer key"`, `"token key"` or `"token secret"`.
        which: &'static str,
    },
    /// Whitespace or a control character inside the trimmed key.
    #[error("contains whitespace or control characters inside the key")]
    BadCharacter,
    /// A byte outside ASCII letters, digits and `-._~`.
    #[error("contains characters a MAAS key never has (MAAS keys are letters and digits)")]
    Unusual,
}

/// The outcome of [`MaasApiKey::parse`]: the key, and whether surrounding
/// whitespace had to be trimmed (worth a warning: it often means a
/// copy-paste picked up a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The key, without the surrounding whitespace.
    pub key: MaasApiKey,
    pub(crate) trimmed: bool,
}

impl MaasApiKey {
    /// Parses `raw` after trimming surrounding whitespace.
    pub fn parse(raw: &str) -> Result<ParsedKey, ApiKeyError> {
        let key = raw.trim();
        let trimmed = key.len() != raw.len();
        if key.is_empty() {
            return Err(ApiKeyError::Empty);
        }
        let parts: Vec<&str> = key.split(':').collect();
        if parts.len() != 3 {
            return Err(ApiKeyError::WrongPartCount { parts: parts.len() });
        }
        for (part, which) in parts.iter().zip(["consumer key", "token key", "token secret"]) {
            if part.is_empty() {
                return Err(ApiKeyError::EmptyPart { which });
            }
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiKeyError::BadCharacter);
        }
        // MAAS generates keys from letters and digits. Allowing only URL-safe
        // characters also keeps the PLAINTEXT signature exact, since
        // percent-encoding leaves them unchanged.
        let url_safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if !parts.iter().all(|p| p.bytes().all(url_safe)) {
            return Err(ApiKeyError::Unusual);
        }
        Ok(ParsedKey {
            key: MaasApiKey {
                whole: SecretString::new(key),
                consumer_key: SecretString::new(parts[0]),
                token_key: SecretString::new(parts[1]),
                token_secret: SecretString::new(parts[2]),
            },
            trimmed,
        })
    }

    /// The key as MAAS printed it, for the rendered `api_key` option.
    pub(crate) fn whole(&self) -> &SecretString {
        &self.whole
    }

    /// The first part: the OAuth consumer key.
    pub(crate) fn consumer_key(&self) -> &SecretString {
        &self.consumer_key
    }

    /// The second part: the OAuth token key.
    pub(crate) fn token_key(&self) -> &SecretString {
        &self.token_key
    }

    /// The third part: the OAuth token secret, the one secret part.
    pub(crate) fn token_secret(&self) -> &SecretString {
        &self.token_secret
    }

    /// Every string that must be masked wherever output could show it.
    pub(crate) fn secrets(&self) -> [&str; 2] {
        [self.whole.expose(), self.token_secret.expose()]
    }
}

impl fmt::Debug for MaasApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaasApiKey")
            .field("consumer_key_len", &self.consumer_key.expose().len())
            .field("token_key_len", &self.token_key.expose().len())
            .field("token_secret", &self.token_secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "SkTvsyHhzkREvvdtNk:Ywn5FvXVupVPvNUhrN:cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM";

    #[test]
    fn parses_a_real_looking_key() {
        let parsed = MaasApiKey::parse(KEY).unwrap();
        assert!(!parsed.trimmed);
        assert_eq!(parsed.key.consumer_key().expose(), "SkTvsyHhzkREvvdtNk");
        assert_eq!(parsed.key.token_key().expose(), "Ywn5FvXVupVPvNUhrN");
        assert_eq!(parsed.key.token_secret().expose(), "cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM");
        assert_eq!(parsed.key.whole().expose(), KEY);
    }

    #[test]
    fn trims_surrounding_whitespace_and_says_so() {
        let parsed = MaasApiKey::parse(&format!("  {KEY}\n")).unwrap();
        assert!(parsed.trimmed);
        assert_eq!(parsed.key.whole().expose(), KEY);
    }

    #[test]
    fn rejects_malformed_keys_with_specific_reasons() {
        assert_eq!(MaasApiKey::parse(" \n").unwrap_err(), ApiKeyError::Empty);
        assert_eq!(MaasApiKey::parse("a:b").unwrap_err(), ApiKeyError::WrongPartCount { parts: 2 });
        assert_eq!(MaasApiKey::parse("a:b:c:d").unwrap_err(), ApiKeyError::WrongPartCount { parts: 4 });
        assert_eq!(MaasApiKey::parse(":b:c").unwrap_err(), ApiKeyError::EmptyPart { which: "consumer key" });
        assert_eq!(MaasApiKey::parse("a::c").unwrap_err(), ApiKeyError::EmptyPart { which: "token key" });
        assert_eq!(MaasApiKey::parse("a:b:").unwrap_err(), ApiKeyError::EmptyPart { which: "token secret" });
        assert_eq!(MaasApiKey::parse("a:b c:d").unwrap_err(), ApiKeyError::BadCharacter);
        assert_eq!(MaasApiKey::parse("\"a:b:c\"").unwrap_err(), ApiKeyError::Unusual);
        assert_eq!(MaasApiKey::parse("a$:b:c").unwrap_err(), ApiKeyError::Unusual);
        assert_eq!(MaasApiKey::parse("a-1:b_2:c.3~").unwrap().key.token_secret().expose(), "c.3~");
    }

    #[test]
    fn debug_never_shows_key_material() {
        let parsed = MaasApiKey::parse(KEY).unwrap();
        let shown = format!("{:?}", parsed);
        for part in KEY.split(':') {
            assert!(!shown.contains(part), "{shown}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_three_parts(raw in ".{0,80}") {
            if let Ok(parsed) = MaasApiKey::parse(&raw) {
                let whole = parsed.key.whole().expose();
                prop_assert_eq!(whole.split(':').count(), 3);
                prop_assert_eq!(whole, raw.trim());
                prop_assert!(!parsed.key.token_secret().expose().is_empty());
            }
        }

        #[test]
        fn error_messages_never_contain_the_input(raw in "[a-zA-Z0-9:]{8,40}") {
            if let Err(e) = MaasApiKey::parse(&raw) {
                prop_assert!(!e.to_string().contains(&raw));
            }
        }
    }
}
