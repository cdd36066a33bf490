//! Charm configuration: the options a user sets with `juju config`, their
//! names and defaults, and the checked model, [`CharmConfig`].
//!
//! Reading happens in steps. `parse` turns a source's text (a YAML file,
//! `config-get`'s JSON, watcher.conf's sections) into an `OptionMap`.
//! `rules` holds `CharmOptions::from_map`, which type-checks each option
//! and the rules between options, collecting every problem at once so a
//! user can fix them in one go, and `CharmOptions::resolve`, which
//! fetches the API key from a Juju secret when one is named and parses it.

use std::fmt;
use std::path::{Path, PathBuf};

mod parse;
pub mod render;
mod rules;

pub(crate) use parse::{load_effective, parse_config_get, parse_yaml, watcher_conf_options};
#[cfg(test)]
use rules::is_secret_uri;

use serde_json::Value;

use crate::clients::maas::api_key::MaasApiKey;
use crate::clients::maas::url::MaasUrl;
use crate::clients::openstack::ironic::IronicSettings;
use crate::metal::Backend;
use crate::secret::SecretString;

const MAAS_URL: &str = "maas-url";
const MAAS_API_KEY: &str = "maas-api-key";
const MAAS_API_KEY_SECRET: &str = "maas-api-key-secret";
const MAAS_TIMEOUT: &str = "maas-timeout";
pub(crate) const MAAS_CA_CERT: &str = "maas-ca-cert";
const IRONIC_API_VERSION: &str = "ironic-api-version";
const IRONIC_ENDPOINT_TYPE: &str = "ironic-endpoint-type";
const IRONIC_REGION_NAME: &str = "ironic-region-name";
pub(crate) const WATCHER_CONF_PATH: &str = "watcher-conf-path";
const WATCHER_SERVICES: &str = "watcher-services";
const WATCHER_CONF_MODE: &str = "watcher-conf-mode";
const DROP_IN_NAME: &str = "drop-in-name";
pub(crate) const DROP_IN_ROOT: &str = "drop-in-root";

/// Every option the charm knows, in the order the docs list them.
pub const KNOWN_OPTIONS: [&str; 13] = [
    MAAS_URL,
    MAAS_API_KEY,
    MAAS_API_KEY_SECRET,
    MAAS_TIMEOUT,
    MAAS_CA_CERT,
    IRONIC_API_VERSION,
    IRONIC_ENDPOINT_TYPE,
    IRONIC_REGION_NAME,
    WATCHER_CONF_PATH,
    WATCHER_CONF_MODE,
    DROP_IN_ROOT,
    DROP_IN_NAME,
    WATCHER_SERVICES,
];

/// The content key of the Juju secret named by `maas-api-key-secret`.
const SECRET_CONTENT_KEY: &str = "api-key";

/// MAAS waits up to 60 s for a BMC and Watcher never retries a call, so
/// the default leaves room for one slow BMC query and the round trip.
const DEFAULT_MAAS_TIMEOUT: u32 = 120;
const DEFAULT_IRONIC_API_VERSION: &str = crate::clients::openstack::ironic::DEFAULT_API_VERSION;
const DEFAULT_IRONIC_ENDPOINT_TYPE: &str = crate::clients::openstack::ironic::DEFAULT_ENDPOINT_TYPE;
/// `watcher-conf-path`'s default: where the Watcher packages install it.
pub const DEFAULT_WATCHER_CONF_PATH: &str = "/etc/watcher/watcher.conf";
/// `drop-in-root`'s default: oslo.config reads `/etc/<program>.conf.d`
/// whatever the services' HOME.
pub const DEFAULT_DROP_IN_ROOT: &str = "/etc";
/// The drop-in's name: it sorts after the usual `00-`..`49-` site files.
const DEFAULT_DROP_IN_NAME: &str = "50-watcher-metal.conf";
/// The services that read `[maas_client]` / `[ironic_client]`.
const DEFAULT_WATCHER_SERVICES: &str = "watcher-decision-engine watcher-applier";
/// The program whose view of the configuration matters most: it lists the
/// nodes and plans the power actions.
pub(crate) const DEFAULT_PROGRAM: &str = "watcher-decision-engine";

/// The values Watcher's `[ironic_client] endpoint_type` accepts.
const IRONIC_ENDPOINT_TYPES: [&str; 6] = ["public", "internal", "admin", "publicURL", "internalURL", "adminURL"];

/// Where the managed sections are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfMode {
    /// One drop-in per program, in `<drop-in-root>/<program>.conf.d/`,
    /// which Watcher's services read by themselves; watcher.conf is left to
    /// its owner.
    #[default]
    DropIn,
    /// Merged into watcher.conf itself.
    Merge,
}

/// One thing wrong with the configuration: which option, what is wrong,
/// and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    option: String,
    message: String,
    pub(crate) hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

/// A note worth showing the user that does not stop the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the charm configuration cannot be used; each variant has its own
/// exit code (3, 4, 5).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration was read but breaks one or more rules.
    #[error("{}", display_problems(.0))]
    Invalid(Vec<Problem>),
    /// The configuration source could not be read or parsed.
    #[error("{source_name}: {message}")]
    Unreadable {
        /// The source: the `--config` file's or watcher.conf's path, or
        /// `config-get`.
        source_name: String,
        /// What is wrong with it.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The Juju secret holding the API key could not be read.
    #[error("cannot read the API key from Juju secret {uri}: {message}")]
    Secret {
        /// The secret's URI, as `maas-api-key-secret` gives it.
        uri: String,
        /// Why it could not be read, or that it lacks the `api-key` key.
        message: String,
        /// What to do about it.
        hint: String,
    },
}

fn display_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let lines: Vec<String> = many.iter().map(|p| format!("  {p}\n    hint: {}", p.hint)).collect();
            format!("{} configuration problems:\n{}", many.len(), lines.join("\n"))
        }
    }
}

impl ConfigError {
    pub(crate) fn hint(&self) -> String {
        match self {
            // With several problems, each carries its own hint in the message.
            ConfigError::Invalid(problems) => match problems.as_slice() {
                [one] => one.hint.clone(),
                _ => String::new(),
            },
            ConfigError::Unreadable { hint, .. } | ConfigError::Secret { hint, .. } => hint.clone(),
        }
    }
}

/// The options as read, type-checked, before any secret is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CharmOptions {
    maas_url: Option<MaasUrl>,
    maas_api_key: Option<SecretString>,
    maas_api_key_secret: Option<String>,
    maas_timeout: u32,
    maas_ca_cert: Option<String>,
    ironic: IronicSettings,
    pub(crate) watcher_conf_path: PathBuf,
    pub(crate) mode: ConfMode,
    pub(crate) drop_in_root: PathBuf,
    pub(crate) drop_in_name: String,
    pub(crate) services: Vec<String>,
}

/// Everything Watcher needs to reach MAAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaasSettings {
    pub(crate) url: MaasUrl,
    pub(crate) api_key: MaasApiKey,
    pub(crate) timeout: u32,
    pub(crate) ca_cert: Option<String>,
}

/// The checked configuration. `maas` is `None` when MAAS is not configured,
/// in which case Watcher uses Ironic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmConfig {
    /// How to reach MAAS; `None` when `maas-url` is unset.
    pub maas: Option<MaasSettings>,
    pub(crate) ironic: IronicSettings,
    /// The watcher.conf the services read (`watcher-conf-path`).
    pub watcher_conf_path: PathBuf,
    /// Drop-in or merge.
    pub mode: ConfMode,
    /// The directory holding each program's `<program>.conf.d/`
    /// (`drop-in-root`): `/etc`, or the services' HOME.
    pub drop_in_root: PathBuf,
    /// The drop-in's file name inside each program's `<program>.conf.d/`.
    drop_in_name: String,
    /// systemd units restarted when the managed settings change.
    pub(crate) services: Vec<String>,
}

impl CharmConfig {
    /// The Watcher programs that read the managed options: those the
    /// services run.
    pub(crate) fn programs(&self) -> Vec<&str> {
        programs_of(&self.services)
    }

    /// The program whose view of the configuration commands report: the
    /// first service (the decision engine by default).
    pub(crate) fn main_program(&self) -> &str {
        self.programs()[0]
    }

    /// The drop-in of each program:
    /// `<drop-in-root>/<program>.conf.d/<drop-in-name>`.
    pub(crate) fn drop_in_paths(&self) -> Vec<PathBuf> {
        drop_in_paths_of(&self.drop_in_root, &self.services, &self.drop_in_name)
    }

    /// Where an earlier version put each program's drop-in, from
    /// watcher-conf-path (`<parent of its directory>/<program>.conf.d/`),
    /// when that is not where they go now.
    pub(crate) fn derived_drop_in_paths(&self) -> Vec<PathBuf> {
        let derived = crate::watcher::effective::derived_drop_in_root(&self.watcher_conf_path);
        if derived == self.drop_in_root {
            return Vec::new();
        }
        drop_in_paths_of(&derived, &self.services, &self.drop_in_name)
    }

    /// Where an earlier version wrote the drop-in (`watcher.conf.d/`, which
    /// Watcher 12.0.0-16.0.0 forget): removed when found.
    pub(crate) fn project_drop_in_path(&self) -> PathBuf {
        crate::watcher::effective::drop_in_dir(&self.watcher_conf_path).join(&self.drop_in_name)
    }

    /// The files the managed sections go to in this mode.
    pub(crate) fn target_paths(&self) -> Vec<PathBuf> {
        match self.mode {
            ConfMode::DropIn => self.drop_in_paths(),
            ConfMode::Merge => vec![self.watcher_conf_path.clone()],
        }
    }

    /// Every secret value this configuration holds, for masking output.
    pub fn secrets(&self) -> Vec<&str> {
        self.maas.as_ref().map(|m| m.api_key.secrets().to_vec()).unwrap_or_default()
    }

    /// The metal backend Watcher will pick for this configuration.
    pub fn backend(&self) -> Backend {
        if self.maas.is_some() {
            Backend::Maas
        } else {
            Backend::Ironic
        }
    }
}

/// The Watcher programs the services run (the decision engine when none).
fn programs_of(services: &[String]) -> Vec<&str> {
    let programs: Vec<&str> = services.iter().map(|s| crate::watcher::effective::program_name(s)).collect();
    if programs.is_empty() {
        vec![DEFAULT_PROGRAM]
    } else {
        programs
    }
}

/// Each program's drop-in under `root`.
pub(crate) fn drop_in_paths_of(root: &Path, services: &[String], name: &str) -> Vec<PathBuf> {
    programs_of(services)
        .into_iter()
        .map(|p| crate::watcher::effective::program_drop_in_dir(root, p).join(name))
        .collect()
}

/// Where the API key of a `maas-api-key-secret` comes from.
pub(crate) trait SecretSource {
    /// The content of the Juju secret `uri`, as key/value pairs.
    fn secret_content(&self, uri: &str) -> Result<Vec<(String, SecretString)>, String>;
}

/// A secret source for runs outside a Juju hook, where secrets cannot be read.
pub(crate) struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret_content(&self, _uri: &str) -> Result<Vec<(String, SecretString)>, String> {
        Err("Juju secrets can only be read inside a Juju hook or action".to_owned())
    }
}

/// The options as a list of (name, value) pairs, in source order.
pub(crate) type OptionMap = Vec<(String, Value)>;

/// Reads, checks and resolves a configuration in one call.
pub(crate) fn load(
    entries: &OptionMap,
    secrets: &dyn SecretSource,
) -> Result<(CharmConfig, Vec<Warning>), ConfigError> {
    let (options, mut warnings) = CharmOptions::from_map(entries)?;
    let (config, more) = options.resolve(secrets)?;
    warnings.extend(more);
    Ok((config, warnings))
}

/// The services named by the options, for hooks that cannot load the
/// whole configuration (such as `remove`).
pub(crate) fn services_from_options(entries: &OptionMap) -> Vec<String> {
    let text = crate::clients::last_setting(entries, WATCHER_SERVICES).and_then(|v| v.as_str());
    rules::split_services(text.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_WATCHER_SERVICES))
        .into_iter()
        .filter(|s| rules::is_unit_name(s))
        .collect()
}

/// A real CA certificate (EC P-256, self-signed, `openssl req -x509`), for tests.
#[cfg(test)]
pub(crate) const TEST_CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----
MIIBlzCCAT2gAwIBAgIUQ4Z2+Sgkw+pyOYAF1gY1dt0wXa0wCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVd2F0Y2hlci1tZXRhbCB0ZXN0IENBMCAXDTI2MTIwNDIxMjkz
NloYDzIxMjYxMTEwMjEyOTM2WjAgMR4wHAYDVQQDDBV3YXRjaGVyLW1ldGFsIHRl
c3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASKqC90qId0/uJ/OOURNhWa
yoBksBjNRf2oasrlP9AgSKpsTv2uJPWL/EMoSlq3FVuseV/qWnTeCGIZ9q51sVxF
o1MwUTAdBgNVHQ4EFgQUN5uz4nmCFwTnuTrn2zeeu2dwL6QwHwYDVR0jBBgwFoAU
N5uz4nmCFwTnuTrn2zeeu2dwL6QwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQD
AgNIADBFAiA6vVKPkh138y4FwRXxmYGIZhZwGXK9VHmSrGb6yfE/4wIhAPbDDbTI
m7lnUUp6hF/WD8lGFt02hiAutrcvykgtdZ7D
-----END CERTIFICATE-----
";

/// The private key of [`TEST_CA_PEM`], for tests that paste it by mistake.
#[cfg(test)]
pub(crate) const TEST_CA_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUuQfDGDOyHp1qFa/
VQ71jnESZlKTH14qE6dCN9mh7tChRANCAASKqC90qId0/uJ/OOURNhWayoBksBjN
Rf2oasrlP9AgSKpsTv2uJPWL/EMoSlq3FVuseV/qWnTeCGIZ9q51sVxF
-----END PRIVATE KEY-----
";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const KEY: &str = "SkTvsyHhzkREvvdtNk:Ywn5FvXVupVPvNUhrN:cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM";

    fn entries(v: Value) -> OptionMap {
        v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn problems(v: Value) -> Vec<Problem> {
        match load(&entries(v), &NoSecrets) {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn only_problem(v: Value) -> Problem {
        let mut p = problems(v);
        assert_eq!(p.len(), 1, "{p:?}");
        p.remove(0)
    }

    struct FakeSecrets(Vec<(String, SecretString)>);
    impl SecretSource for FakeSecrets {
        fn secret_content(&self, uri: &str) -> Result<Vec<(String, SecretString)>, String> {
            assert_eq!(uri, "secret:cs3v8m6a8r9s7b6qvcq0");
            Ok(self.0.clone())
        }
    }

    #[test]
    fn empty_config_means_ironic_with_defaults() {
        let (config, warnings) = load(&Vec::new(), &NoSecrets).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(config.maas, None);
        assert_eq!(config.backend(), Backend::Ironic);
        assert_eq!(config.ironic, IronicSettings::default());
        assert_eq!(config.watcher_conf_path, PathBuf::from(DEFAULT_WATCHER_CONF_PATH));
        assert_eq!(config.drop_in_root, PathBuf::from(DEFAULT_DROP_IN_ROOT));
        assert_eq!(
            config.drop_in_paths(),
            [
                PathBuf::from("/etc/watcher-decision-engine.conf.d/50-watcher-metal.conf"),
                PathBuf::from("/etc/watcher-applier.conf.d/50-watcher-metal.conf")
            ]
        );
    }

    #[test]
    fn the_drop_in_root_is_its_own_option_not_watcher_confs_grandparent() {
        let (config, _) = load(
            &entries(json!({"watcher-conf-path": "/srv/watcher/etc/watcher.conf", "drop-in-root": "/var/lib/watcher",
                "watcher-services": "watcher-applier.service"})),
            &NoSecrets,
        )
        .unwrap();
        assert_eq!(
            config.drop_in_paths(),
            [PathBuf::from("/var/lib/watcher/watcher-applier.conf.d/50-watcher-metal.conf")]
        );
        assert_eq!(
            config.derived_drop_in_paths(),
            [PathBuf::from("/srv/watcher/watcher-applier.conf.d/50-watcher-metal.conf")],
            "where an earlier version wrote them"
        );
        for bad in ["etc", "", "/etc\n"] {
            let entries = entries(json!({ "drop-in-root": bad }));
            match (bad, load(&entries, &NoSecrets)) {
                ("", Ok((config, _))) => assert_eq!(config.drop_in_root, PathBuf::from("/etc"), "unset: the default"),
                (_, Err(ConfigError::Invalid(p))) => {
                    assert_eq!(
                        p[0].to_string(),
                        format!("drop-in-root: `{}` is not an absolute path", bad.replace('\n', "?"))
                    );
                    assert_eq!(
                        p[0].hint,
                        "use /etc (the default), or the home directory of the user Watcher's services run as"
                    );
                }
                (_, other) => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn full_maas_config_resolves() {
        let (config, warnings) = load(
            &entries(json!({"maas-url": "http://10.0.0.2:5240/MAAS", "maas-api-key": KEY, "maas-timeout": 90,
                "ironic-endpoint-type": "internalURL", "ironic-region-name": "RegionOne", "ironic-api-version": "1.78"})),
            &NoSecrets,
        )
        .unwrap();
        assert!(warnings.is_empty());
        let maas = config.maas.as_ref().unwrap();
        assert_eq!(maas.url.as_configured(), "http://10.0.0.2:5240/MAAS");
        assert_eq!(maas.api_key.whole().expose(), KEY);
        assert_eq!(maas.timeout, 90);
        assert_eq!(config.ironic.endpoint_type, "internalURL");
        assert_eq!(config.ironic.api_version, "1.78");
        assert_eq!(config.ironic.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(config.backend(), Backend::Maas);
        assert!(!format!("{config:?}").contains("cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM"));
    }

    #[test]
    fn null_and_empty_mean_unset() {
        let (config, _) = load(
            &entries(json!({"maas-url": "", "maas-api-key": null, "maas-timeout": null, "ironic-region-name": ""})),
            &NoSecrets,
        )
        .unwrap();
        assert_eq!(config.maas, None);
        assert_eq!(config.ironic.region_name, None);
    }

    #[test]
    fn url_without_key_is_refused() {
        let p = only_problem(json!({"maas-url": "http://maas:5240/MAAS"}));
        assert_eq!(p.option, MAAS_URL);
        assert_eq!(p.message, "is set but no API key is");
        assert!(p.hint.contains("maas apikey"));
    }

    #[test]
    fn key_without_url_is_refused() {
        let p = only_problem(json!({"maas-api-key": KEY}));
        assert_eq!(p.option, MAAS_API_KEY);
        assert_eq!(p.message, "is set but maas-url is not");
        let p = only_problem(json!({"maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"}));
        assert_eq!(p.option, MAAS_API_KEY_SECRET);
        assert_eq!(p.message, "is set but maas-url is not");
    }

    #[test]
    fn key_and_secret_together_are_refused() {
        let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key": KEY,
            "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"}));
        assert_eq!(p.message, "is set together with maas-api-key-secret");
    }

    #[test]
    fn each_url_rule_has_its_message() {
        for (url, message) in [
            ("ftp://m/MAAS", "uses scheme `ftp`; MAAS is reached over http or https"),
            (
                "http://u:p@m/MAAS",
                "contains a user name or password; MAAS authenticates with the API key, not URL credentials",
            ),
            ("http://m/MAAS?a=b", "has a query string or fragment; give the MAAS base URL only"),
            ("http://m/MAAS/api/1.0/", "points at MAAS API version 1.0; only API 2.0 is supported"),
            ("http://m/MA AS", "contains whitespace or control characters"),
            ("m:5240", "uses scheme `m`; MAAS is reached over http or https"),
        ] {
            let p = only_problem(json!({"maas-url": url, "maas-api-key": KEY}));
            assert_eq!((p.option.as_str(), p.message.as_str()), (MAAS_URL, message), "{url}");
        }
        let p = only_problem(json!({"maas-url": "maas.example.com", "maas-api-key": KEY}));
        assert!(p.message.starts_with("is not a URL ("), "{}", p.message);
    }

    #[test]
    fn url_without_path_warns() {
        let (_, warnings) =
            load(&entries(json!({"maas-url": "http://m:5240", "maas-api-key": KEY})), &NoSecrets).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].0.contains("/MAAS"));
    }

    #[test]
    fn each_key_rule_has_its_message() {
        for (key, message) in [
            (
                "a:b",
                "the API key has 2 colon-separated part(s); a MAAS API key has 3 (consumer_key:token_key:token_secret)",
            ),
            (
                "a:b:",
                "the API key has an empty token secret part; a MAAS API key is consumer_key:token_key:token_secret",
            ),
            ("a :b:c", "the API key contains whitespace or control characters inside the key"),
            ("'a:b:c'", "the API key contains characters a MAAS key never has (MAAS keys are letters and digits)"),
        ] {
            let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key": key}));
            assert_eq!((p.option.as_str(), p.message.as_str()), (MAAS_API_KEY, message));
            assert!(!p.to_string().contains(key));
        }
        let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key": 12345}));
        assert_eq!(p.message, "must be a string, got a number");
    }

    #[test]
    fn several_keys_one_a_line_are_said_so() {
        // What `maas apikey --username USER` prints for a user with two keys.
        let two = format!("{KEY}\nAbCdEfGhIjKlMnOpQr:StUvWxYzAbCdEfGhIj:kLmNoPqRsTuVwXyZaBcDeFgHiJkLmNoP\n");
        let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key": two}));
        assert_eq!(
            (p.option.as_str(), p.message.as_str()),
            (MAAS_API_KEY, "holds 2 API keys, one a line, where MAAS takes one")
        );
        assert!(p.hint.contains("sudo maas apikey --generate --username USER"), "{}", p.hint);
        assert!(!p.to_string().contains("cm3Q2f5naXYPYsrPDPfQy9Q9cUFaEgbM"));
        let secrets = FakeSecrets(vec![("api-key".into(), SecretString::new(two.clone()))]);
        let err = load(
            &entries(json!({"maas-url": "http://m/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"})),
            &secrets,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "maas-api-key-secret: holds 2 API keys, one a line, where MAAS takes one");
        // Two lines that are not both keys: the key's own rule.
        let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key": format!("{KEY}\nnot a key")}));
        assert!(p.message.starts_with("the API key "), "{}", p.message);
    }

    #[test]
    fn key_with_newline_is_trimmed_with_a_warning() {
        let (config, warnings) =
            load(&entries(json!({"maas-url": "http://m/MAAS", "maas-api-key": format!("{KEY}\n")})), &NoSecrets)
                .unwrap();
        assert_eq!(config.maas.unwrap().api_key.whole().expose(), KEY);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].0.contains("trimmed"));
        assert!(!warnings[0].0.contains(KEY));
    }

    #[test]
    fn timeout_rules() {
        let p = only_problem(json!({"maas-timeout": 0}));
        assert_eq!(p.message, "must be greater than 0, got 0");
        let p = only_problem(json!({"maas-timeout": -5}));
        assert_eq!(p.message, "must be greater than 0, got -5");
        let p = only_problem(json!({"maas-timeout": "soon"}));
        assert_eq!(p.message, "must be a whole number of seconds, got `soon`");
        let p = only_problem(json!({"maas-timeout": 1.5}));
        assert_eq!(p.message, "must be a whole number of seconds, got a number");
        let (config, _) = load(&entries(json!({"maas-timeout": "30"})), &NoSecrets).unwrap();
        assert!(config.maas.is_none());
    }

    #[test]
    fn ironic_rules() {
        let p = only_problem(json!({"ironic-endpoint-type": "private"}));
        assert_eq!(p.message, "`private` is not one of Watcher's endpoint types");
        assert!(p.hint.contains("publicURL"));
        let p = only_problem(json!({"ironic-api-version": "2"}));
        assert_eq!(p.message, "`2` is not an Ironic API version");
        let p = only_problem(json!({"ironic-region-name": "Region\nOne"}));
        assert_eq!(p.message, "contains control characters or surrounding spaces");
        for ok in ["1", "1.46", "latest"] {
            load(&entries(json!({ "ironic-api-version": ok })), &NoSecrets).unwrap();
        }
    }

    #[test]
    fn watcher_conf_path_must_be_absolute() {
        let p = only_problem(json!({"watcher-conf-path": "watcher.conf"}));
        assert_eq!(p.message, "`watcher.conf` is not an absolute path");
    }

    #[test]
    fn services_are_unit_names() {
        let (config, _) = load(&Vec::new(), &NoSecrets).unwrap();
        assert_eq!(config.services, ["watcher-decision-engine", "watcher-applier"]);
        let (config, _) = load(&entries(json!({"watcher-services": "a.service, b@1"})), &NoSecrets).unwrap();
        assert_eq!(config.services, ["a.service", "b@1"]);
        let p = only_problem(json!({"watcher-services": "ok --now"}));
        assert_eq!(p.message, "`--now` is not a systemd service name: it must start with a letter or a digit");
        let refused = |services: &str| only_problem(json!({ "watcher-services": services })).message;
        assert!(refused("watcher-applier.socket").ends_with("it names another kind of unit than a service"));
        assert!(refused("watcher-applier@").ends_with("it is a template with no instance after its @"));
        assert!(refused("watcher-applier@.service").ends_with("it is a template with no instance after its @"));
        assert!(refused("../watcher").ends_with("it must start with a letter or a digit"));
        assert!(refused("watcher/applier").ends_with("systemd allows only letters, digits and :-_.\\@ in a unit name"));
        assert!(refused(&"w".repeat(250)).ends_with("it is longer than systemd's 255 bytes"));
        for ok in ["watcher-applier.service", "watcher-applier", "w@1:2", "watcher.applier", "x\\x2d"] {
            load(&entries(json!({ "watcher-services": ok })), &NoSecrets).unwrap();
        }
    }

    /// A MAAS key pasted into any option but its own is refused and never
    /// repeated, whole or in part, in the message or the hint.
    #[test]
    fn a_key_in_the_wrong_option_is_never_echoed() {
        let parts: Vec<&str> = KEY.split(':').collect();
        let assert_hidden = |problems: &[Problem]| {
            for p in problems {
                let shown = format!("{p} {}", p.hint);
                for part in &parts {
                    assert!(!shown.contains(&part[..8]), "{shown}");
                    assert!(!shown.to_lowercase().contains(&part[..8].to_lowercase()), "{shown}");
                }
            }
        };
        let options = KNOWN_OPTIONS.iter().filter(|o| **o != MAAS_API_KEY);
        for option in options {
            for value in [
                KEY.to_owned(),
                format!(" {KEY}\n"),
                format!("\"{KEY}\""),
                KEY[..60].to_owned(),
                format!("watcher-applier {KEY}"),
            ] {
                let mut map = json!({ "maas-url": "http://m/MAAS", "maas-api-key": KEY });
                map[*option] = json!(value);
                let found = problems(map);
                assert_hidden(&found);
                assert!(found.iter().any(|p| p.option == *option), "{option}: {found:?}");
            }
        }
        // As an option's name, in a YAML file.
        let found = problems(json!({ KEY: "x" }));
        assert_hidden(&found);
        assert_eq!(found[0].to_string(), "an option named like a MAAS API key: unknown option (its name is not shown)");
        // The systemd names the remove hook falls back to leave it out too.
        assert_eq!(services_from_options(&entries(json!({ "watcher-services": format!("a {KEY}") }))), ["a"]);
    }

    #[test]
    fn a_timeout_too_large_says_so() {
        for (value, got) in [
            (json!(99_999_999_999u64), "99999999999"),
            (json!("99999999999999999999999"), "99999999999999999999999"),
            (json!(u64::MAX), "18446744073709551615"),
        ] {
            let p = only_problem(json!({ "maas-timeout": value }));
            assert_eq!(p.message, format!("must be at most 2147483647 seconds, got {got}"));
        }
        let (config, _) = load(
            &entries(json!({"maas-url": "http://m/MAAS", "maas-api-key": KEY, "maas-timeout": 2147483647})),
            &NoSecrets,
        )
        .unwrap();
        assert_eq!(config.maas.unwrap().timeout, 2_147_483_647);
    }

    #[test]
    fn ca_cert_must_be_pem() {
        let p = only_problem(json!({"maas-ca-cert": "MIIB..."}));
        assert_eq!(p.message, "is not a PEM certificate");
    }

    fn ca_problem(pem: &str) -> Problem {
        let p = only_problem(json!({ "maas-ca-cert": pem }));
        assert_eq!(p.option, MAAS_CA_CERT);
        p
    }

    #[test]
    fn ca_cert_is_parsed_as_x509() {
        // A real certificate, alone, in a bundle, or after openssl's text.
        for ok in [
            TEST_CA_PEM.to_owned(),
            format!("{TEST_CA_PEM}{TEST_CA_PEM}"),
            format!("subject=CN = watcher-metal test CA\n{}", TEST_CA_PEM.replace('\n', "\r\n")),
        ] {
            load(&entries(json!({ "maas-ca-cert": ok })), &NoSecrets).unwrap();
        }
        // Garbage between the markers: base64 that does not decode, then
        // base64 of something that is not a certificate.
        let garbage = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        let p = ca_problem(garbage);
        assert_eq!(p.message, "block 1 is not an X.509 certificate (its base64 does not decode)");
        let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let p = ca_problem(&format!("{TEST_CA_PEM}{not_der}"));
        assert_eq!(p.message, "block 2 is not an X.509 certificate (its DER does not parse)");
        assert!(p.hint.contains("openssl x509"), "{}", p.hint);
        // A certificate cut short, a block of another kind, a stray END.
        let cut = TEST_CA_PEM.replace("-----END CERTIFICATE-----\n", "");
        assert_eq!(ca_problem(&cut).message, "block 1 (CERTIFICATE) has no END line");
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\naGVsbG8=\n-----END CERTIFICATE REQUEST-----\n";
        let p = ca_problem(&format!("{TEST_CA_PEM}{csr}"));
        assert_eq!(p.message, "block 2 is a CERTIFICATE REQUEST block, not a CERTIFICATE");
        let p = ca_problem(&format!("{TEST_CA_PEM}-----END CERTIFICATE-----\n"));
        assert_eq!(p.message, "has an END line without its BEGIN line");
    }

    #[test]
    fn a_private_key_in_the_ca_option_is_refused_by_name_and_never_shown() {
        let key_body: Vec<&str> = TEST_CA_KEY_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let labels = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"];
        for label in labels {
            let key = TEST_CA_KEY_PEM.replace("PRIVATE KEY", label);
            // After the certificate, before it, or with the key's text as a label.
            for (pem, block) in [(format!("{TEST_CA_PEM}{key}"), 2), (format!("{key}{TEST_CA_PEM}"), 1)] {
                let p = ca_problem(&pem);
                assert_eq!(p.message, format!("block {block} is a private key ({label}), which must not be installed"));
                assert!(p.hint.starts_with("paste only the CA certificate"), "{}", p.hint);
                for line in &key_body {
                    assert!(!p.to_string().contains(line) && !p.hint.contains(line));
                }
            }
        }
        // The key pasted alone, cut short: still a key, not an unended block.
        let cut = TEST_CA_KEY_PEM.replace("-----END PRIVATE KEY-----\n", "");
        assert_eq!(ca_problem(&cut).message, "block 1 is a private key (PRIVATE KEY), which must not be installed");
        // A label that is not PEM's is not repeated.
        let odd = format!("-----BEGIN {}-----\nAAAA\n-----END {}-----\n", key_body[0], key_body[0]);
        let p = ca_problem(&odd);
        assert_eq!(p.message, "block 1 is not a CERTIFICATE block");
    }

    #[test]
    fn secret_uri_must_look_like_one() {
        let p = only_problem(json!({"maas-url": "http://m/MAAS", "maas-api-key-secret": "my-key"}));
        assert_eq!(p.message, "is not a Juju secret URI");
        assert!(is_secret_uri("secret:cs3v8m6a8r9s7b6qvcq0"));
        assert!(is_secret_uri("secret://8a1d1b3e-6c4f-4d2b-9a7e-0e6c7f1a2b3c/cs3v8m6a8r9s7b6qvcq0"));
        assert!(!is_secret_uri("secret:"));
        assert!(!is_secret_uri("secret://uuid-only"));
    }

    #[test]
    fn unknown_options_are_reported_with_suggestions() {
        let p = problems(json!({"maas_url": "x", "colour": "blue"}));
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].option.as_str(), p[0].message.as_str()), ("maas_url", "unknown option"));
        assert_eq!(p[0].hint, "did you mean `maas-url`?");
        assert_eq!(p[1].option, "colour");
        assert!(p[1].hint.starts_with("known options: maas-url"));
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let p = problems(
            json!({"maas-url": "ftp://x", "maas-api-key": KEY, "maas-timeout": 0, "ironic-endpoint-type": "x"}),
        );
        let options: Vec<&str> = p.iter().map(|p| p.option.as_str()).collect();
        assert_eq!(options, [MAAS_URL, MAAS_TIMEOUT, IRONIC_ENDPOINT_TYPE]);
        let err = ConfigError::Invalid(p);
        assert!(err.to_string().starts_with("3 configuration problems:\n"));
    }

    #[test]
    fn key_comes_from_the_juju_secret() {
        let secrets = FakeSecrets(vec![("api-key".into(), SecretString::new(format!(" {KEY} ")))]);
        let (config, warnings) = load(
            &entries(json!({"maas-url": "http://m/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"})),
            &secrets,
        )
        .unwrap();
        assert_eq!(config.maas.unwrap().api_key.whole().expose(), KEY);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn secret_without_api_key_entry_is_explained() {
        let secrets = FakeSecrets(vec![("key".into(), SecretString::new(KEY))]);
        let err = load(
            &entries(json!({"maas-url": "http://m/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"})),
            &secrets,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read the API key from Juju secret secret:cs3v8m6a8r9s7b6qvcq0: it has no `api-key` key (it has: key)"
        );
        let err = load(
            &entries(json!({"maas-url": "http://m/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0"})),
            &NoSecrets,
        )
        .unwrap_err();
        assert!(err.to_string().contains("only be read inside a Juju hook"));
    }

    #[test]
    fn string_options_refuse_yaml_numbers_and_booleans_with_the_quoted_form() {
        let problems = |text: &str| match parse_yaml(text, "f", None) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("{other:?}"),
        };
        // Every problem at once, in the options' order, this one with the rest.
        let found = problems(
            "watcher-conf-path: relative\nironic-region-name: true\nironic-api-version: 1.10\nmaas-timeout: 30\n",
        );
        let shown: Vec<(String, String)> = found.iter().map(|p| (p.to_string(), p.hint.clone())).collect();
        assert_eq!(
            shown,
            [
                (
                    "ironic-api-version: must be a string, got a number (1.10, which YAML reads as 1.1)".to_owned(),
                    "quote it, as Juju requires for a string option: ironic-api-version: \"1.10\"".to_owned()
                ),
                (
                    "ironic-region-name: must be a string, got a boolean (true)".to_owned(),
                    "quote it, as Juju requires for a string option: ironic-region-name: \"true\"".to_owned()
                ),
                (
                    "watcher-conf-path: `relative` is not an absolute path".to_owned(),
                    "use an absolute path such as /etc/watcher/watcher.conf".to_owned()
                ),
            ]
        );
        // The `juju deploy --config` form too; a number is never echoed for the key.
        let found = problems("app:\n  drop-in-name: 0x1F\n  maas-url: http://m/MAAS\n  maas-api-key: 123456789\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].to_string(), "maas-api-key: must be a string, got a number");
        assert_eq!(found[1].hint, "quote it, as Juju requires for a string option: drop-in-name: \"0x1F\"");
        assert!(found.iter().all(|p| !p.to_string().contains("123456789") && !p.hint.contains("123456789")));
        // Quoted, the text is kept.
        let entries = parse_yaml("ironic-api-version: \"1.10\"\n", "f", None).unwrap();
        let (config, _) = load(&entries, &NoSecrets).unwrap();
        assert_eq!(config.ironic.api_version, "1.10");
        // config-get's JSON is typed by Juju: strings stay strings, and a
        // number for a string option is refused there too.
        let (config, _) =
            load(&parse_config_get(r#"{"ironic-api-version": "1.10", "maas-timeout": 30}"#).unwrap(), &NoSecrets)
                .unwrap();
        assert_eq!(config.ironic.api_version, "1.10");
        let err = load(&parse_config_get(r#"{"ironic-api-version": 1.5}"#).unwrap(), &NoSecrets).unwrap_err();
        assert_eq!(err.hint(), "quote it, as Juju requires for a string option: ironic-api-version: \"1.5\"");
    }

    #[test]
    fn yaml_flat_and_juju_deploy_forms() {
        let flat = parse_yaml("maas-url: http://m/MAAS\nmaas-timeout: 30\n", "f", None).unwrap();
        assert_eq!(flat[0].0, "maas-url");
        let deploy = parse_yaml("watcher-maas:\n  maas-url: http://m/MAAS\n", "f", None).unwrap();
        assert_eq!(deploy, vec![("maas-url".to_owned(), json!("http://m/MAAS"))]);
        let two = "a:\n  maas-url: x\nb:\n  maas-url: y\n";
        let err = parse_yaml(two, "f", None).unwrap_err();
        assert_eq!(err.to_string(), "f: has options for several applications (a, b)");
        assert_eq!(parse_yaml(two, "f", Some("b")).unwrap(), vec![("maas-url".to_owned(), json!("y"))]);
        let err = parse_yaml(two, "f", Some("c")).unwrap_err();
        assert_eq!(err.to_string(), "f: has no application `c` (it has: a, b)");
        assert!(parse_yaml("", "f", None).unwrap().is_empty());
    }

    #[test]
    fn yaml_errors_do_not_echo_the_input() {
        let err = parse_yaml("maas-api-key: [SECRETVALUE\n", "f", None).unwrap_err();
        assert!(err.to_string().starts_with("f: not valid YAML: syntax error"), "{err}");
        assert!(!err.to_string().contains("SECRETVALUE"));
        let err = parse_yaml("- a\n- b\n", "f", None).unwrap_err();
        assert_eq!(err.to_string(), "f: is not a map of options");
        let err = parse_yaml("? [a]\n: b\n", "f", None).unwrap_err();
        assert_eq!(err.to_string(), "f: has a key that is not a string (a list)");
    }

    #[test]
    fn duplicate_keys_in_config_get_are_refused() {
        let err =
            load(&vec![("maas-timeout".into(), json!(1)), ("maas-timeout".into(), json!(2))], &NoSecrets).unwrap_err();
        assert_eq!(err.to_string(), "maas-timeout: is set more than once");
    }

    #[test]
    fn watcher_conf_values_become_options() {
        let text = format!("[maas_client]\nurl = http://m:5240/MAAS\napi_key = {KEY}\ntimeout = 5\ntimeout = 30\n[ironic_client]\nendpoint_type = internal\n");
        let conf = Path::new("/etc/watcher/watcher.conf");
        let drop_in = "[maas_client]\ntimeout = 99\nurl = http://earlier/MAAS\n[ironic_client]\nregion_name = r1\n";
        let layout = crate::watcher::effective::Layout::from_files(vec![
            crate::watcher::effective::ConfFile {
                path: "/etc/watcher-decision-engine.conf.d/50-x.conf".into(),
                text: drop_in.into(),
            },
            crate::watcher::effective::ConfFile { path: conf.into(), text },
        ]);
        let (config, warnings) = load_effective(&layout, conf, Path::new("/etc"), None).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let maas = config.maas.unwrap();
        assert_eq!(maas.timeout, 30);
        assert_eq!(maas.api_key.whole().expose(), KEY);
        assert_eq!(maas.url.as_configured(), "http://m:5240/MAAS", "watcher.conf wins over the drop-in");
        assert_eq!(config.ironic.endpoint_type, "internal");
        assert_eq!(config.ironic.region_name.as_deref(), Some("r1"), "the drop-in's own setting applies");
        assert_eq!(config.watcher_conf_path, PathBuf::from("/etc/watcher/watcher.conf"));
    }

    fn layout_of(files: &[(&str, &str)]) -> crate::watcher::effective::Layout {
        crate::watcher::effective::Layout::from_files(
            files
                .iter()
                .map(|(p, t)| crate::watcher::effective::ConfFile { path: (*p).into(), text: (*t).into() })
                .collect(),
        )
    }

    #[test]
    fn watcher_conf_problems_are_named_as_in_watcher_conf() {
        let conf = Path::new("/etc/watcher/watcher.conf");
        let drop_in = "/etc/watcher-decision-engine.conf.d/50-x.conf";
        let problems = |files: &[(&str, &str)]| match load_effective(&layout_of(files), conf, Path::new("/etc"), None) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("{other:?}"),
        };
        let charm_names = |text: &str| KNOWN_OPTIONS.iter().any(|o| text.contains(o));
        // A URL without a key, the URL from the drop-in, the rest from watcher.conf.
        let found = problems(&[
            (drop_in, "[maas_client]\nurl = http://u:p@m/MAAS\n"),
            (
                "/etc/watcher/watcher.conf",
                "[maas_client]\napi_key =\ntimeout = 0\n[ironic_client]\napi_version = 2\nendpoint_type = x\n",
            ),
        ]);
        let shown: Vec<String> = found.iter().map(|p| format!("{p} / {}", p.hint)).collect();
        assert_eq!(
            shown[0],
            format!("[maas_client] url in {drop_in}: contains a user name or password; MAAS authenticates with the API key, not URL credentials / remove user:password@ from the URL and set [maas_client] api_key")
        );
        assert!(
            shown[1].starts_with("[maas_client] timeout in /etc/watcher/watcher.conf: must be greater than 0"),
            "{shown:?}"
        );
        assert!(
            shown.iter().any(|s| s.starts_with("[ironic_client] api_version in /etc/watcher/watcher.conf: `2`")),
            "{shown:?}"
        );
        assert!(found.iter().all(|p| !charm_names(&p.to_string()) && !charm_names(&p.hint)), "{shown:?}");
        let found = problems(&[("/etc/watcher/watcher.conf", "[maas_client]\nurl = http://m/MAAS\n")]);
        assert_eq!(found[0].to_string(), "[maas_client] url in /etc/watcher/watcher.conf: is set but no API key is");
        assert_eq!(
            found[0].hint,
            "set [maas_client] api_key; get a key with `sudo maas apikey --generate --username USER` on the MAAS region controller"
        );
        // A key pasted into another option is not shown, in watcher.conf's words too.
        let found = problems(&[("/etc/watcher/watcher.conf", &format!("[ironic_client]\nregion_name = {KEY}\n"))]);
        assert_eq!(found[0].to_string(), "[ironic_client] region_name in /etc/watcher/watcher.conf: holds what looks like a MAAS API key (not shown)");
        assert!(!charm_names(&found[0].hint), "{}", found[0].hint);
    }

    #[test]
    fn an_empty_url_is_ironic_as_watcher_reads_it() {
        // Watcher picks MAAS only when [maas_client] url is set: an empty one
        // with a key is Ironic, and the key is not read (a warning says so).
        let conf = Path::new("/etc/watcher/watcher.conf");
        let layout = layout_of(&[(
            "/etc/watcher/watcher.conf",
            &format!("[maas_client]\nurl =\napi_key = {KEY}\ntimeout = soon\n"),
        )]);
        let (config, warnings) = load_effective(&layout, conf, Path::new("/etc"), None).unwrap();
        assert_eq!(config.backend(), Backend::Ironic);
        assert_eq!(warnings.len(), 1);
        assert_eq!(
            warnings[0].to_string(),
            "[maas_client] api_key in /etc/watcher/watcher.conf is set, but [maas_client] url is not: Watcher uses Ironic and does not read the key"
        );
    }

    #[test]
    fn watcher_conf_path_keeps_its_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let conf = Path::new(std::ffi::OsStr::from_bytes(b"/srv/\xff/watcher.conf"));
        let (config, _) = load_effective(&layout_of(&[]), conf, Path::new("/etc"), None).unwrap();
        assert_eq!(config.watcher_conf_path, conf);
    }

    #[test]
    fn config_get_output() {
        let map = parse_config_get(r#"{"maas-url": null, "maas-timeout": 60}"#).unwrap();
        assert_eq!(map.len(), 2);
        assert!(parse_config_get("nope").unwrap_err().to_string().starts_with("config-get: output is not JSON"));
    }

    proptest! {
        #[test]
        fn yaml_parsing_never_panics(text in "(?s).{0,200}") {
            if let Ok(map) = parse_yaml(&text, "f", None) {
                let _ = load(&map, &NoSecrets);
            }
        }

        /// Whatever YAML makes of a number-like or boolean-like scalar, the
        /// value is the text as written: a string when YAML reads one, and
        /// otherwise refused with a hint whose quoted form reads back as
        /// that text.
        #[test]
        fn scalars_are_read_as_written_or_refused_with_a_hint_that_works(
            scalar in r"[-+]?[0-9]{1,4}(\.[0-9]{0,4})?([eE][-+]?[0-9]{1,2})?|true|false|True|FALSE|yes|0x[0-9A-F]{1,3}|0o[0-7]{1,3}|[-+]?\.inf|\.nan|~|null",
        ) {
            let text = format!("ironic-region-name: {scalar}\n");
            match parse_yaml(&text, "f", None) {
                Ok(entries) => {
                    let (config, _) = load(&entries, &NoSecrets).unwrap();
                    match config.ironic.region_name {
                        Some(name) => prop_assert_eq!(name, scalar),
                        None => prop_assert!(scalar == "~" || scalar == "null"),
                    }
                }
                Err(ConfigError::Invalid(problems)) => {
                    prop_assert_eq!(problems.len(), 1);
                    let quoted = problems[0].hint.split_once("string option: ").unwrap().1.to_owned();
                    prop_assert_eq!(&quoted, &format!("ironic-region-name: \"{scalar}\""));
                    let (config, _) = load(&parse_yaml(&quoted, "f", None).unwrap(), &NoSecrets).unwrap();
                    prop_assert_eq!(config.ironic.region_name.as_deref(), Some(scalar.as_str()));
                }
                Err(other) => prop_assert!(false, "{}", other),
            }
        }

        #[test]
        fn arbitrary_option_values_never_panic(
            name in proptest::sample::select(KNOWN_OPTIONS.to_vec()),
            value in prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                ".{0,40}".prop_map(Value::from),
            ],
        ) {
            let _ = load(&vec![(name.to_owned(), value)], &NoSecrets);
        }
    }
}
