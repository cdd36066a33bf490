//! Keystone's refusals: the message it gives for every bad credential, and
//! its `{"error": {"code", "title", "message"}}` body.

use crate::http::reason;
use crate::util::json_str;

/// Keystone's message for every credential it refuses (it does not say
/// which part was wrong).
pub(crate) const UNAUTHORIZED: &str = "The request you have made requires authentication.";

/// A Keystone error: status and `{"error": {"code", "title", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeystoneError {
    pub status: u16,
    pub message: String,
}

impl KeystoneError {
    pub fn unauthorized() -> KeystoneError {
        KeystoneError { status: 401, message: UNAUTHORIZED.into() }
    }

    /// Keystone's `ValidationError`.
    pub fn expecting(attribute: &str, target: &str) -> KeystoneError {
        KeystoneError {
            status: 400,
            message: format!(
                "Expecting to find {attribute} in {target}. The server could not comply with the request since it is \
                 either malformed or otherwise incorrect. The client is assumed to be in error."
            ),
        }
    }

    pub fn schema(field: &str, detail: &str) -> KeystoneError {
        KeystoneError { status: 400, message: format!("Invalid input for field '{field}': {detail}") }
    }

    pub fn body(&self) -> String {
        keystone_error_body(self.status, &self.message)
    }
}

/// `{"error": {"code": 401, "title": "Unauthorized", "message": "..."}}`.
pub(crate) fn keystone_error_body(status: u16, message: &str) -> String {
    format!(
        "{{\"error\": {{\"code\": {status}, \"title\": {}, \"message\": {}}}}}",
        json_str(reason(status)),
        json_str(message)
    )
}
