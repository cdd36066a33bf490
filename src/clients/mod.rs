//! Protocol clients: each speaks one service's protocol (MAAS, Keystone,
//! Ironic, Nova) over the shared HTTP stack, takes plain settings, and
//! knows nothing of charms, templates or the CLI.

pub mod http;
pub mod json_body;
pub(crate) mod json_skim;
pub mod maas;
pub mod openstack;
pub mod proxy;

/// The value of `key` among settings given in the order they were read:
/// the last setting wins, as in oslo.config's sections and Juju's (and
/// YAML's) option maps. Every reader of such settings looks them up here.
pub fn last_setting<'a, V>(settings: &'a [(String, V)], key: &str) -> Option<&'a V> {
    settings.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_last_setting_wins() {
        let settings = [("a".to_owned(), 1), ("b".to_owned(), 2), ("a".to_owned(), 3)];
        assert_eq!(super::last_setting(&settings, "a"), Some(&3));
        assert_eq!(super::last_setting(&settings, "b"), Some(&2));
        assert_eq!(super::last_setting(&settings, "c"), None);
    }
}
