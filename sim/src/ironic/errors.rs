//! Ironic's error answers: the double-encoded `error_message` body and the
//! refusals the node endpoints share.

use crate::http::Response;
use crate::util::json_str;

pub(super) const JSON: &str = "application/json";

/// Ironic's error body: a JSON object whose `error_message` is itself JSON
/// text, written as Python's `json.dumps` writes it.
pub(super) fn ironic_error(status: u16, faultstring: &str) -> Response {
    let code = if status >= 500 { "Server" } else { "Client" };
    let inner = format!(
        "{{\"faultcode\": {}, \"faultstring\": {}, \"debuginfo\": null}}",
        json_str(code),
        json_str(faultstring)
    );
    Response::new(status, JSON, format!("{{\"error_message\": {}}}", json_str(&inner)))
}

pub(super) fn not_found(ident: &str) -> Response {
    ironic_error(404, &format!("Node {ident} could not be found."))
}

pub(super) fn not_acceptable() -> Response {
    ironic_error(406, "Request not acceptable.")
}

pub(super) fn method_not_allowed(allow: &str) -> Response {
    ironic_error(405, "The method specified is not allowed for this resource.").with_header("Allow", allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_double_encoded() {
        let r = ironic_error(404, "Node x could not be found.");
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node x could not be found.\", \"debuginfo\": null}"}"#
        );
    }
}
