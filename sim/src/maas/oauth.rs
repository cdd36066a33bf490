//! MAAS's OAuth 1.0 (PLAINTEXT) request authentication, as MAAS's
//! `MAASAPIAuthentication` and its OAuth server check it: which requests are
//! OAuth requests at all, and each reason to refuse one, with MAAS's status
//! codes and messages.

use std::collections::HashMap;

use crate::util::{percent_decode, py_repr};

/// How long a timestamp stays acceptable (seconds behind the server clock).
pub(crate) const TIMESTAMP_THRESHOLD: i64 = 300;

const REQUIRED: [&str; 6] = [
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
];

/// The result of checking a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthResult {
    /// Not an OAuth request: handled as anonymous.
    Anonymous,
    /// Authenticated as the user at this index.
    User(usize),
    /// Refused: 401 with this message (sent with `WWW-Authenticate`).
    Unauthorized(String),
    /// Refused: 400 with this message.
    BadRequest(String),
}

/// Parses an `Authorization: OAuth ...` header the way MAAS's pre-check
/// does: `None` if it does not start with `OAuth`; values trimmed and
/// stripped of double quotes, not yet percent-decoded.
pub(crate) fn parse_auth_header(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim().strip_prefix("OAuth")?;
    let mut params = Vec::new();
    for part in rest.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        params.push((key.trim().to_string(), value.trim().trim_matches('"').to_string()));
    }
    Some(params)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Issue {
    Missing,
    UnexpectedType,
}

impl Issue {
    /// Python's repr of MAAS's `ParamIssue` enum member.
    fn repr(self) -> &'static str {
        match self {
            Issue::Missing => "<ParamIssue.MISSING: 'missing'>",
            Issue::UnexpectedType => "<ParamIssue.UNEXPECTED_TYPE: 'unexpected type'>",
        }
    }
}

fn last<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Python's `int(s)` for a timestamp: `None` if not an integer.
fn parse_int(s: &str) -> Option<i128> {
    let t = s.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || t.contains("__") || t.ends_with('_') {
        return None;
    }
    let v = digits.parse::<i128>().unwrap_or(i128::MAX);
    Some(if neg { -v } else { v })
}

fn problems(params: &[(String, String)]) -> Vec<(&'static str, Issue)> {
    let mut out = Vec::new();
    for key in REQUIRED {
        match last(params, key) {
            None => out.push((key, Issue::Missing)),
            Some(v) if key == "oauth_timestamp" && parse_int(v).is_none() => out.push((key, Issue::UnexpectedType)),
            Some(_) => {}
        }
    }
    out
}

fn describe(problems: &[(&'static str, Issue)]) -> String {
    problems.iter().map(|(k, issue)| format!("('{k}', {})", issue.repr())).collect::<Vec<_>>().join(", ")
}

/// One user's credentials, as the checker needs them.
pub(crate) struct Credentials<'a> {
    pub consumer_key: &'a str,
    pub token_key: &'a str,
    pub token_secret: &'a str,
}

/// Remembers used nonces per (consumer, token).
#[derive(Default)]
pub(crate) struct NonceStore {
    used: HashMap<(String, String, String), i64>,
    last_prune: i64,
}

impl NonceStore {
    /// Records a nonce; `false` if it was already used.
    fn check_and_record(&mut self, consumer: &str, token: &str, nonce: &str, now: i64) -> bool {
        if now - self.last_prune > 60 && self.used.len() > 10_000 {
            // A nonce older than the timestamp window can only come back with
            // an expired timestamp, which is refused before the nonce check.
            self.used.retain(|_, seen| now - *seen <= 2 * TIMESTAMP_THRESHOLD);
            self.last_prune = now;
        }
        let key = (consumer.to_string(), token.to_string(), nonce.to_string());
        if self.used.contains_key(&key) {
            return false;
        }
        self.used.insert(key, now);
        true
    }
}

/// The parts of a request the OAuth check looks at.
pub(crate) struct AuthInput<'a> {
    /// The `Authorization` header, if any.
    pub header: Option<&'a str>,
    /// Decoded query-string parameters.
    pub query: &'a [(String, String)],
    /// Decoded form parameters of a POST body.
    pub form: &'a [(String, String)],
    /// Whether the body is `application/x-www-form-urlencoded` (only then do
    /// its parameters join the OAuth parameters).
    pub form_urlencoded: bool,
}

/// Checks a request's OAuth credentials against `users` at server time `now`.
pub(crate) fn authenticate(
    input: &AuthInput<'_>,
    users: &[Credentials<'_>],
    nonces: &mut NonceStore,
    now: i64,
) -> AuthResult {
    let header_params = input.header.and_then(parse_auth_header);
    let header_problems = match &header_params {
        Some(p) => problems(p),
        None => vec![("OAuth", Issue::Missing)],
    };
    let query_problems = problems(input.query);
    let form_problems = problems(input.form);
    let valid = header_problems.is_empty() || query_problems.is_empty() || form_problems.is_empty();
    if !valid {
        let type_issue = [&header_problems, &query_problems, &form_problems]
            .iter()
            .any(|p| p.iter().any(|(_, i)| *i == Issue::UnexpectedType));
        if !type_issue {
            return AuthResult::Anonymous;
        }
        let auth_message = if header_params.is_none() {
            "missing starting 'OAuth' from 'Authentication' header".to_string()
        } else {
            format!("the following problems were found among the auth params: {}", describe(&header_problems))
        };
        let message = format!(
            "Bad Request: {auth_message}; the following problems were found among the query params: {}; the following problems were found among the query params: {}",
            describe(&query_problems),
            describe(&form_problems)
        );
        return AuthResult::BadRequest(py_repr(&message));
    }

    // The OAuth server's view: form parameters, then the header (realm
    // skipped, values percent-decoded), then the query string.
    let mut params: HashMap<&str, String> = HashMap::new();
    if input.form_urlencoded {
        for (k, v) in input.form {
            params.insert(k, v.clone());
        }
    }
    if let Some(header) = &header_params {
        for (k, v) in header {
            if !k.contains("realm") {
                params.insert(k, percent_decode(v));
            }
        }
    }
    for (k, v) in input.query {
        params.insert(k, v.clone());
    }
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");

    let unauthorized =
        |message: String| AuthResult::Unauthorized(format!("Authorization Error: {}", py_repr(&message)));
    if let Some(version) = params.get("oauth_version") {
        if !version.is_empty() && version != "1.0" {
            return unauthorized(format!("OAuth version {version} not supported."));
        }
    }
    let consumer_key = get("oauth_consumer_key");
    if !users.iter().any(|u| u.consumer_key == consumer_key) {
        return AuthResult::Unauthorized("Authorization Error: Invalid API key.".into());
    }
    let token_key = get("oauth_token");
    let Some(user) = users.iter().position(|u| u.token_key == token_key) else {
        return unauthorized(format!("Invalid access token: {token_key}"));
    };
    let Some(timestamp) = parse_int(get("oauth_timestamp")) else {
        return AuthResult::BadRequest(py_repr("Bad Request: oauth_timestamp has an unexpected type"));
    };
    if i128::from(now) - timestamp > i128::from(TIMESTAMP_THRESHOLD) {
        return unauthorized(format!(
            "Expired timestamp: given {timestamp} and now {now} has a greater difference than threshold {TIMESTAMP_THRESHOLD}"
        ));
    }
    let nonce = get("oauth_nonce");
    if !nonces.check_and_record(consumer_key, token_key, nonce, now) {
        return unauthorized(format!("Nonce already used: {nonce}"));
    }
    let method = get("oauth_signature_method");
    if method != "PLAINTEXT" {
        return unauthorized(format!("Signature method {method} not supported try one of the following: PLAINTEXT"));
    }
    let expected = format!("&{}", users[user].token_secret);
    if get("oauth_signature") != expected {
        return unauthorized("Invalid signature. Expected signature base string: (not shown)".into());
    }
    AuthResult::User(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Vec<Credentials<'static>> {
        vec![Credentials { consumer_key: "CK", token_key: "TK", token_secret: "TS" }]
    }

    fn check(header: &str, nonces: &mut NonceStore, now: i64) -> AuthResult {
        let input = AuthInput { header: Some(header), query: &[], form: &[], form_urlencoded: false };
        authenticate(&input, &creds(), nonces, now)
    }

    #[test]
    fn header_forms() {
        let mut n = NonceStore::default();
        let now = 1_700_000_000;
        for (i, h) in [
            format!("OAuth realm=\"OAuth\", oauth_nonce=\"1\", oauth_timestamp=\"{now}\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"CK\", oauth_token=\"TK\", oauth_signature=\"%26TS\""),
            format!("OAuth oauth_signature=\"%26TS\", realm=\"MAAS+API\", oauth_token=\"TK\", oauth_nonce=\"2\", oauth_consumer_key=\"CK\", oauth_signature_method=\"PLAINTEXT\", oauth_version=\"1.0\", oauth_timestamp=\"{now}\""),
            format!("OAuth oauth_version=1.0, oauth_signature_method=PLAINTEXT, oauth_consumer_key=CK, oauth_token=TK, oauth_signature=&TS, oauth_nonce=3, oauth_timestamp={now}"),
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(check(h, &mut n, now), AuthResult::User(0), "form {i}");
        }
    }

    #[test]
    fn refusals() {
        let mut n = NonceStore::default();
        let now = 1_700_000_000;
        let h = |ck: &str, tk: &str, sig: &str, nonce: &str, ts: &str| {
            format!("OAuth oauth_consumer_key=\"{ck}\", oauth_token=\"{tk}\", oauth_signature=\"{sig}\", oauth_signature_method=\"PLAINTEXT\", oauth_timestamp=\"{ts}\", oauth_nonce=\"{nonce}\"")
        };
        let ts = now.to_string();
        assert_eq!(
            check(&h("XX", "TK", "%26TS", "a", &ts), &mut n, now),
            AuthResult::Unauthorized("Authorization Error: Invalid API key.".into())
        );
        assert_eq!(
            check(&h("CK", "XX", "%26TS", "b", &ts), &mut n, now),
            AuthResult::Unauthorized("Authorization Error: 'Invalid access token: XX'".into())
        );
        let AuthResult::Unauthorized(m) = check(&h("CK", "TK", "%26no", "c", &ts), &mut n, now) else { panic!() };
        assert!(m.starts_with("Authorization Error: 'Invalid signature.") && !m.contains("TS"), "{m}");
        let old = (now - 301).to_string();
        assert_eq!(
            check(&h("CK", "TK", "%26TS", "d", &old), &mut n, now),
            AuthResult::Unauthorized(format!("Authorization Error: 'Expired timestamp: given {old} and now {now} has a greater difference than threshold 300'"))
        );
        let future = (now + 3600).to_string();
        assert_eq!(check(&h("CK", "TK", "%26TS", "e", &future), &mut n, now), AuthResult::User(0));
        assert_eq!(
            check(&h("CK", "TK", "%26TS", "e", &ts), &mut n, now),
            AuthResult::Unauthorized("Authorization Error: 'Nonce already used: e'".into())
        );
        let AuthResult::BadRequest(m) = check(&h("CK", "TK", "%26TS", "f", "soon"), &mut n, now) else { panic!() };
        assert!(m.starts_with("\"Bad Request: the following problems were found among the auth params: ('oauth_timestamp', <ParamIssue.UNEXPECTED_TYPE: 'unexpected type'>); the following problems were found among the query params: ('oauth_consumer_key', <ParamIssue.MISSING: 'missing'>)"), "{m}");
        // Incomplete: anonymous.
        assert_eq!(check("OAuth oauth_consumer_key=\"CK\"", &mut n, now), AuthResult::Anonymous);
        assert_eq!(check("Bearer xyz", &mut n, now), AuthResult::Anonymous);
    }

    proptest::proptest! {
        #[test]
        fn any_header_is_answered_without_panicking(header in "(?s).{0,300}", now in 0i64..4_000_000_000) {
            let mut n = NonceStore::default();
            let _ = check(&header, &mut n, now);
            let _ = parse_auth_header(&header);
        }

        #[test]
        fn every_form_real_clients_send_is_accepted(
            order in proptest::collection::vec(0usize..1000, 7),
            quote in proptest::collection::vec(proptest::bool::ANY, 7),
            encoded_ampersand in proptest::bool::ANY,
            realm in proptest::option::of(proptest::sample::select(vec!["OAuth", "MAAS+API"])),
            nonce in "[0-9a-f]{8,32}",
        ) {
            let now = 1_700_000_000i64;
            let signature = if encoded_ampersand { "%26TS" } else { "&TS" };
            let mut params = vec![
                ("oauth_version", "1.0".to_owned()),
                ("oauth_signature_method", "PLAINTEXT".to_owned()),
                ("oauth_consumer_key", "CK".to_owned()),
                ("oauth_token", "TK".to_owned()),
                ("oauth_signature", signature.to_owned()),
                ("oauth_nonce", nonce),
                ("oauth_timestamp", now.to_string()),
            ];
            // Shuffle by the generated keys (any order must do).
            let mut keyed: Vec<_> = params.drain(..).zip(order).collect();
            keyed.sort_by_key(|(_, k)| *k);
            let mut parts: Vec<String> = keyed
                .into_iter()
                .zip(quote)
                .map(|(((k, v), _), q)| if q { format!("{k}=\"{v}\"") } else { format!("{k}={v}") })
                .collect();
            if let Some(realm) = realm {
                parts.insert(0, format!("realm=\"{realm}\""));
            }
            let header = format!("OAuth {}", parts.join(", "));
            let mut n = NonceStore::default();
            let accepted = matches!(check(&header, &mut n, now), AuthResult::User(_));
            proptest::prop_assert!(accepted, "{}", header);
        }
    }
}
