//! The service catalog a scoped Keystone token carries: which services are
//! listed, and their endpoints per interface, region and ids.

use serde_json::{json, Value};

use crate::openstack::hex_id;

/// The catalog interfaces, in the order every service lists them.
pub(crate) const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

/// A catalog service: (type, name, [(interface, URL or `/path`)]); a
/// `/path` is below the simulator's own `http://127.0.0.1:PORT`.
pub(crate) type CatalogService = (String, String, Vec<(String, String)>);

/// A service with one endpoint per interface, each at its `/path`.
pub(crate) fn service(kind: &str, name: &str, paths: impl IntoIterator<Item = (String, String)>) -> CatalogService {
    (kind.to_owned(), name.to_owned(), paths.into_iter().collect())
}

/// Keystone itself: `/identity` on every interface.
pub(crate) fn identity() -> CatalogService {
    service("identity", "keystone", INTERFACES.iter().map(|i| ((*i).to_owned(), "/identity".to_owned())))
}

/// The catalog's JSON for `services`; `base` is `http://127.0.0.1:PORT`.
pub(crate) fn render(services: &[CatalogService], region: &str, base: &str) -> Value {
    let endpoint = |kind: &str, interface: &str, url: String| {
        json!({
            "id": hex_id(&format!("endpoint:{kind}:{interface}")),
            "interface": interface,
            "region": region,
            "region_id": region,
            "url": url,
        })
    };
    let services = services
        .iter()
        .map(|(kind, name, endpoints)| {
            let endpoints: Vec<Value> = endpoints
                .iter()
                .map(|(interface, url)| {
                    let url = if url.starts_with('/') { format!("{base}{url}") } else { url.clone() };
                    endpoint(kind, interface, url)
                })
                .collect();
            json!({ "type": kind, "name": name, "id": hex_id(&format!("service:{name}")), "endpoints": endpoints })
        })
        .collect();
    Value::Array(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_in_order_with_absolute_urls() {
        let compute = service("compute", "nova", [("public".to_owned(), "https://nova.example/v2.1".to_owned())]);
        let catalog = render(&[identity(), compute], "RegionOne", "http://127.0.0.1:9");
        assert_eq!(catalog[0]["name"], "keystone");
        assert_eq!(catalog[0]["endpoints"][2]["interface"], "admin");
        assert_eq!(catalog[0]["endpoints"][1]["url"], "http://127.0.0.1:9/identity");
        assert_eq!(catalog[0]["id"], hex_id("service:keystone"));
        assert_eq!(catalog[1]["endpoints"][0]["url"], "https://nova.example/v2.1");
        assert_eq!(catalog[1]["endpoints"][0]["region_id"], "RegionOne");
    }
}
