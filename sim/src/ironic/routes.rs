//! Where a request to the Ironic simulator goes: Keystone under
//! `/identity`, Ironic under one prefix per catalog interface, and the
//! endpoint names the statistics count.

use crate::util::percent_decode;

/// The catalog interfaces and the path prefix each is served under.
pub(super) const INTERFACES: [(&str, &str); 3] =
    [("public", "/baremetal"), ("internal", "/baremetal-internal"), ("admin", "/baremetal-admin")];

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Neither under `/identity` nor under an Ironic prefix.
    Outside,
    KeystoneV3,
    Tokens,
    KeystoneOther,
    /// An Ironic route, and the interface (index into [`INTERFACES`]).
    Ironic(usize, IronicRoute),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IronicRoute {
    Root,
    V1,
    Nodes,
    NodesDetail,
    Node(String),
    States(String),
    Power(String),
    Other,
}

pub(super) fn route(raw_path: &str) -> Route {
    if let Some(rest) = strip_segment_prefix(raw_path, "/identity") {
        return match rest.trim_end_matches('/') {
            "/v3" => Route::KeystoneV3,
            "/v3/auth/tokens" => Route::Tokens,
            _ => Route::KeystoneOther,
        };
    }
    for (i, (_, prefix)) in INTERFACES.iter().enumerate() {
        if let Some(rest) = strip_segment_prefix(raw_path, prefix) {
            return Route::Ironic(i, ironic_route(rest));
        }
    }
    Route::Outside
}

/// `path` without `prefix`, if `prefix` is a whole leading segment of it.
fn strip_segment_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn ironic_route(rest: &str) -> IronicRoute {
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<String> =
        if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').map(percent_decode).collect() };
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        [] => IronicRoute::Root,
        ["v1"] => IronicRoute::V1,
        ["v1", "nodes"] => IronicRoute::Nodes,
        ["v1", "nodes", "detail"] => IronicRoute::NodesDetail,
        ["v1", "nodes", id] if !id.is_empty() => IronicRoute::Node(id.to_string()),
        ["v1", "nodes", id, "states"] if !id.is_empty() => IronicRoute::States(id.to_string()),
        ["v1", "nodes", id, "states", "power"] if !id.is_empty() => IronicRoute::Power(id.to_string()),
        _ => IronicRoute::Other,
    }
}

pub(super) fn endpoint_key(method: &str, route: &Route, path: &str) -> String {
    let key = match route {
        Route::Tokens => "/v3/auth/tokens",
        Route::KeystoneV3 => "/v3",
        Route::Ironic(_, r) => match r {
            IronicRoute::Root => "/",
            IronicRoute::V1 => "/v1",
            IronicRoute::Nodes => "/v1/nodes",
            IronicRoute::NodesDetail => "/v1/nodes/detail",
            IronicRoute::Node(_) => "/v1/nodes/{id}",
            IronicRoute::States(_) => "/v1/nodes/{id}/states",
            IronicRoute::Power(_) => "/v1/nodes/{id}/states/power",
            IronicRoute::Other => return format!("{method} {path}"),
        },
        _ => return format!("{method} {path}"),
    };
    format!("{method} {key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/identity/v3/auth/tokens"), Route::Tokens);
        assert_eq!(route("/identity/v3/"), Route::KeystoneV3);
        assert_eq!(route("/identity/v2.0"), Route::KeystoneOther);
        assert_eq!(route("/identityx"), Route::Outside);
        assert_eq!(route("/baremetal"), Route::Ironic(0, IronicRoute::Root));
        assert_eq!(route("/baremetal/v1/"), Route::Ironic(0, IronicRoute::V1));
        assert_eq!(route("/baremetal-internal/v1/nodes"), Route::Ironic(1, IronicRoute::Nodes));
        assert_eq!(route("/baremetal-admin/v1/nodes/detail"), Route::Ironic(2, IronicRoute::NodesDetail));
        assert_eq!(route("/baremetal/v1/nodes/bm%2D1"), Route::Ironic(0, IronicRoute::Node("bm-1".into())));
        assert_eq!(route("/baremetal/v1/nodes/x/states"), Route::Ironic(0, IronicRoute::States("x".into())));
        assert_eq!(route("/baremetal/v1/nodes/x/states/power"), Route::Ironic(0, IronicRoute::Power("x".into())));
        assert_eq!(route("/baremetal/v1/nodes//states"), Route::Ironic(0, IronicRoute::Other));
        assert_eq!(route("/baremetal/v1/ports"), Route::Ironic(0, IronicRoute::Other));
        assert_eq!(route("/baremetalx/v1"), Route::Outside);
    }

    #[test]
    fn endpoint_keys() {
        let k = |m, p: &str| endpoint_key(m, &route(p), p);
        assert_eq!(k("POST", "/identity/v3/auth/tokens"), "POST /v3/auth/tokens");
        assert_eq!(k("GET", "/baremetal-internal/v1/nodes/abc"), "GET /v1/nodes/{id}");
        assert_eq!(k("PUT", "/baremetal/v1/nodes/abc/states/power"), "PUT /v1/nodes/{id}/states/power");
        assert_eq!(k("GET", "/elsewhere"), "GET /elsewhere");
    }
}
