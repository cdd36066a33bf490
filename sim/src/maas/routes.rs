//! Where a request to the MAAS simulator goes: the decoded path, its route
//! and `op`, the query and form parameters (urlencoded or multipart), and
//! the endpoint names the statistics count.

use crate::http::Request;
use crate::multipart::{multipart_boundary, parse_multipart};
use crate::util::{last, parse_form, percent_decode};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Not under `/MAAS/`: the front web server's 404.
    OutsideMaas,
    /// Under `/MAAS/` but no API: Django's 404 page.
    MaasOther,
    /// `/MAAS/api/version/`.
    ApiVersionText,
    /// `/MAAS/api/1.0/...`.
    Api10,
    Version,
    Describe,
    Users,
    Machines,
    Machine(String),
    /// Any other path under `/MAAS/api/2.0/`.
    UnknownApi,
}

fn route(path: &str) -> (Route, Option<String>) {
    let Some(rest) = path.strip_prefix("/MAAS/") else { return (Route::OutsideMaas, None) };
    if rest.starts_with("api/version/") {
        return (Route::ApiVersionText, None);
    }
    if rest.starts_with("api/1.0/") {
        return (Route::Api10, None);
    }
    let Some(api) = rest.strip_prefix("api/2.0/") else { return (Route::MaasOther, None) };
    let r = match api {
        "version/" => Route::Version,
        "describe/" => Route::Describe,
        "users/" => Route::Users,
        "machines/" => Route::Machines,
        _ => {
            let segments: Vec<&str> = api.split('/').collect();
            match segments.as_slice() {
                ["machines", id, ""] if !id.is_empty() => Route::Machine(id.to_string()),
                ["machines", id, op] if !id.is_empty() && op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Machine(id.to_string()), Some(op[3..].to_string()));
                }
                ["users", op] if op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Users, Some(op[3..].to_string()));
                }
                ["machines", op] if op.len() > 3 && op.starts_with("op-") => {
                    return (Route::Machines, Some(op[3..].to_string()));
                }
                _ => Route::UnknownApi,
            }
        }
    };
    (r, None)
}

pub(super) fn endpoint_key(method: &str, route: &Route, op: Option<&str>, path: &str) -> String {
    let base = match route {
        Route::Version => "version/",
        Route::Describe => "describe/",
        Route::Users => "users/",
        Route::Machines => "machines/",
        Route::Machine(_) => "machines/{id}/",
        _ => return format!("{method} {path}"),
    };
    match op {
        Some(op) => format!("{method} {base}?op={op}"),
        None => format!("{method} {base}"),
    }
}

/// What is derived from a request before answering it.
pub(super) struct RequestCtx {
    pub route: Route,
    /// The decoded path.
    pub path: String,
    pub op: Option<String>,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub urlencoded: bool,
}

impl RequestCtx {
    pub fn new(req: &Request) -> RequestCtx {
        let path = percent_decode(&req.path);
        let query = parse_form(&req.query);
        let content_type = req.header("content-type").unwrap_or("");
        let urlencoded = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        let form = if req.method != "POST" {
            Vec::new()
        } else if urlencoded {
            parse_form(&String::from_utf8_lossy(&req.body))
        } else if let Some(boundary) = multipart_boundary(content_type) {
            parse_multipart(&req.body, &boundary)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, String::from_utf8_lossy(&p.value).into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        let (route, path_op) = route(&path);
        let op = last(&query, "op").filter(|o| !o.is_empty()).or(last(&form, "op").filter(|o| !o.is_empty()));
        let op = op.map(str::to_string).or(path_op);
        RequestCtx { route, path, op, query, form, urlencoded }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/MAAS/api/2.0/machines/"), (Route::Machines, None));
        assert_eq!(route("/MAAS/api/2.0/machines/abc123/"), (Route::Machine("abc123".into()), None));
        assert_eq!(
            route("/MAAS/api/2.0/machines/abc123/op-power_on"),
            (Route::Machine("abc123".into()), Some("power_on".into()))
        );
        assert_eq!(route("/MAAS/api/2.0/machines").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/2.0/machines/abc123").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/2.0/").0, Route::UnknownApi);
        assert_eq!(route("/MAAS/api/1.0/nodes/").0, Route::Api10);
        assert_eq!(route("/MAAS/api/version/").0, Route::ApiVersionText);
        assert_eq!(route("/api/2.0/version/").0, Route::OutsideMaas);
        assert_eq!(route("/MAAS/").0, Route::MaasOther);
    }

    #[test]
    fn endpoint_keys() {
        let k = |m, p: &str, op| endpoint_key(m, &route(p).0, op, p);
        assert_eq!(k("GET", "/MAAS/api/2.0/users/", Some("whoami")), "GET users/?op=whoami");
        assert_eq!(
            k("GET", "/MAAS/api/2.0/machines/x/", Some("query_power_state")),
            "GET machines/{id}/?op=query_power_state"
        );
        assert_eq!(k("GET", "/other", None), "GET /other");
    }
}
