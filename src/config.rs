//! Charm configuration: the options a user sets with `juju config`, read
//! from a YAML file or from `config-get`, checked, and resolved into
//! [`CharmConfig`].
//!
//! Reading happens in two steps. [`CharmOptions::from_map`] type-checks each
//! option and checks the rules between options, collecting every problem
//! at once so a user can fix them in one go. [`CharmOptions::resolve`] then
//! fetches the API key from a Juju secret when one is named and parses it.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::api_key::MaasApiKey;
use crate::ironic::IronicSettings;
use crate::maas_url::MaasUrl;
use crate::secret::SecretString;

pub const MAAS_URL: &str = "maas-url";
pub const MAAS_API_KEY: &str = "maas-api-key";
pub const MAAS_API_KEY_SECRET: &str = "maas-api-key-secret";
pub const MAAS_TIMEOUT: &str = "maas-timeout";
pub const MAAS_CA_CERT: &str = "maas-ca-cert";
pub const IRONIC_API_VERSION: &str = "ironic-api-version";
pub const IRONIC_ENDPOINT_TYPE: &str = "ironic-endpoint-type";
pub const IRONIC_REGION_NAME: &str = "ironic-region-name";
pub const WATCHER_CONF_PATH: &str = "watcher-conf-path";
pub const WATCHER_SERVICES: &str = "watcher-services";
pub const WATCHER_CONF_MODE: &str = "watcher-conf-mode";
pub const DROP_IN_NAME: &str = "drop-in-name";

/// Every option the charm knows, in the order the docs list them.
pub const KNOWN_OPTIONS: [&str; 12] = [
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
    DROP_IN_NAME,
    WATCHER_SERVICES,
];

/// The content key of the Juju secret named by `maas-api-key-secret`.
pub const SECRET_CONTENT_KEY: &str = "api-key";

/// MAAS waits up to 60 s for a BMC and Watcher never retries a call, so
/// the default leaves room for one slow BMC query and the round trip.
pub const DEFAULT_MAAS_TIMEOUT: u32 = 120;
pub const DEFAULT_IRONIC_API_VERSION: &str = crate::ironic::DEFAULT_API_VERSION;
pub const DEFAULT_IRONIC_ENDPOINT_TYPE: &str = crate::ironic::DEFAULT_ENDPOINT_TYPE;
pub const DEFAULT_WATCHER_CONF_PATH: &str = "/etc/watcher/watcher.conf";
/// The drop-in's name: it sorts after the usual `00-`..`49-` site files.
pub const DEFAULT_DROP_IN_NAME: &str = "50-watcher-metal.conf";
/// The services that read `[maas_client]` / `[ironic_client]`.
pub const DEFAULT_WATCHER_SERVICES: &str = "watcher-decision-engine watcher-applier";
/// The program whose view of the configuration matters most: it lists the
/// nodes and plans the power actions.
pub const DEFAULT_PROGRAM: &str = "watcher-decision-engine";

/// The values Watcher's `[ironic_client] endpoint_type` accepts.
pub const IRONIC_ENDPOINT_TYPES: [&str; 6] = ["public", "internal", "admin", "publicURL", "internalURL", "adminURL"];

/// Where the managed sections are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfMode {
    /// A drop-in in `watcher.conf.d/` beside watcher.conf, which Watcher's
    /// services read by themselves; watcher.conf is left to its owner.
    #[default]
    DropIn,
    /// Merged into watcher.conf itself.
    Merge,
}

impl ConfMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfMode::DropIn => "drop-in",
            ConfMode::Merge => "merge",
        }
    }
}

/// One thing wrong with the configuration: which option, what is wrong,
/// and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub option: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

/// A note worth showing the user that does not stop the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration was read but breaks one or more rules.
    #[error("{}", display_problems(.0))]
    Invalid(Vec<Problem>),
    /// The configuration source could not be read or parsed.
    #[error("{source_name}: {message}")]
    Unreadable { source_name: String, message: String, hint: String },
    /// The Juju secret holding the API key could not be read.
    #[error("cannot read the API key from Juju secret {uri}: {message}")]
    Secret { uri: String, message: String, hint: String },
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
    pub fn hint(&self) -> String {
        match self {
            // With several problems, each carries its own hint in the message.
            ConfigError::Invalid(problems) => match problems.as_slice() {
                [one] => one.hint.clone(),
                _ => String::new(),
            },
            ConfigError::Unreadable { hint, .. } | ConfigError::Secret { hint, .. } => hint.clone(),
        }
    }

    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(problems) => problems,
            _ => &[],
        }
    }
}

/// The options as read, type-checked, before any secret is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmOptions {
    pub maas_url: Option<MaasUrl>,
    pub maas_api_key: Option<SecretString>,
    pub maas_api_key_secret: Option<String>,
    pub maas_timeout: u32,
    pub maas_ca_cert: Option<String>,
    pub ironic: IronicSettings,
    pub watcher_conf_path: PathBuf,
    pub mode: ConfMode,
    pub drop_in_name: String,
    pub services: Vec<String>,
}

/// Everything Watcher needs to reach MAAS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaasSettings {
    pub url: MaasUrl,
    pub api_key: MaasApiKey,
    pub timeout: u32,
    pub ca_cert: Option<String>,
}

/// The checked configuration. `maas` is `None` when MAAS is not configured,
/// in which case Watcher uses Ironic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmConfig {
    pub maas: Option<MaasSettings>,
    pub ironic: IronicSettings,
    pub watcher_conf_path: PathBuf,
    /// Drop-in or merge.
    pub mode: ConfMode,
    /// The drop-in's file name inside `watcher.conf.d/`.
    pub drop_in_name: String,
    /// systemd units restarted when the managed settings change.
    pub services: Vec<String>,
}

impl CharmConfig {
    /// The Watcher programs that read the managed options: those the
    /// services run.
    pub fn programs(&self) -> Vec<&str> {
        programs_of(&self.services)
    }

    /// The program whose view of the configuration commands report: the
    /// first service (the decision engine by default).
    pub fn main_program(&self) -> &str {
        self.programs()[0]
    }

    /// The drop-in of each program:
    /// `<parent of watcher.conf's dir>/<program>.conf.d/<drop-in-name>`.
    pub fn drop_in_paths(&self) -> Vec<PathBuf> {
        drop_in_paths_of(&self.watcher_conf_path, &self.services, &self.drop_in_name)
    }

    /// Where an earlier version wrote the drop-in (`watcher.conf.d/`, which
    /// Watcher 12.0.0-16.0.0 forget): removed when found.
    pub fn project_drop_in_path(&self) -> PathBuf {
        crate::effective::drop_in_dir(&self.watcher_conf_path).join(&self.drop_in_name)
    }

    /// The files the managed sections go to in this mode.
    pub fn target_paths(&self) -> Vec<PathBuf> {
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
    pub fn backend(&self) -> &'static str {
        if self.maas.is_some() {
            "maas"
        } else {
            "ironic"
        }
    }
}

/// The Watcher programs the services run (the decision engine when none).
pub fn programs_of(services: &[String]) -> Vec<&str> {
    let programs: Vec<&str> = services.iter().map(|s| crate::effective::program_name(s)).collect();
    if programs.is_empty() {
        vec![DEFAULT_PROGRAM]
    } else {
        programs
    }
}

/// Each program's drop-in for a watcher.conf at `conf`.
pub fn drop_in_paths_of(conf: &Path, services: &[String], name: &str) -> Vec<PathBuf> {
    programs_of(services).into_iter().map(|p| crate::effective::program_drop_in_dir(conf, p).join(name)).collect()
}

/// Where the API key of a `maas-api-key-secret` comes from.
pub trait SecretSource {
    /// The content of the Juju secret `uri`, as key/value pairs.
    fn secret_content(&self, uri: &str) -> Result<Vec<(String, SecretString)>, String>;
}

/// A secret source for runs outside a Juju hook, where secrets cannot be read.
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret_content(&self, _uri: &str) -> Result<Vec<(String, SecretString)>, String> {
        Err("Juju secrets can only be read inside a Juju hook or action".to_owned())
    }
}

/// The options as a list of (name, value) pairs, in source order.
pub type OptionMap = Vec<(String, Value)>;

/// Reads a YAML (or JSON) configuration file's text: either a flat map of
/// options or `juju deploy --config`'s `{application: {option: value}}`.
/// `app` picks the application when the file names several.
pub fn parse_yaml(text: &str, source_name: &str, app: Option<&str>) -> Result<OptionMap, ConfigError> {
    let unreadable = |message: String, hint: &str| ConfigError::Unreadable {
        source_name: source_name.to_owned(),
        message,
        hint: hint.to_owned(),
    };
    let yaml_hint = "the file must be a YAML map of charm options, e.g. `maas-url: http://maas:5240/MAAS`";
    let value: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| unreadable(format!("not valid YAML: {}", mask_yaml_error(&e)), yaml_hint))?;
    let map = match value {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Mapping(map) => map,
        _ => return Err(unreadable("is not a map of options".to_owned(), yaml_hint)),
    };
    let mut entries = Vec::with_capacity(map.len());
    for (key, value) in map {
        let key = match key {
            serde_yaml::Value::String(s) => s,
            other => {
                return Err(unreadable(format!("has a key that is not a string ({})", yaml_kind(&other)), yaml_hint))
            }
        };
        let value = serde_json::to_value(&value)
            .map_err(|_| unreadable(format!("option `{key}` has a value that is not plain data"), yaml_hint))?;
        entries.push((key, value));
    }
    select_application(entries, source_name, app)
}

/// Reads `config-get --all --format=json` output.
pub fn parse_config_get(text: &str) -> Result<OptionMap, ConfigError> {
    let unreadable = |message: String| ConfigError::Unreadable {
        source_name: "config-get".to_owned(),
        message,
        hint: "this is a Juju fault; check `juju debug-log` and retry the hook".to_owned(),
    };
    let value: Value = serde_json::from_str(text).map_err(|e| unreadable(format!("output is not JSON ({e})")))?;
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        Value::Null => Ok(Vec::new()),
        _ => Err(unreadable("output is not a JSON object".to_owned())),
    }
}

/// The charm options an existing configuration implies: the effective
/// `[maas_client]` and `[ironic_client]` values of `layout` (watcher.conf at
/// `path` and its drop-ins, the last setting winning, as in oslo.config)
/// under the charm's option names.
pub fn options_from_layout(layout: &crate::effective::Layout, path: &Path) -> OptionMap {
    let mut entries: OptionMap = Vec::new();
    let sections = [
        ("maas_client", [("url", MAAS_URL), ("api_key", MAAS_API_KEY), ("timeout", MAAS_TIMEOUT)]),
        (
            "ironic_client",
            [
                ("api_version", IRONIC_API_VERSION),
                ("endpoint_type", IRONIC_ENDPOINT_TYPE),
                ("region_name", IRONIC_REGION_NAME),
            ],
        ),
    ];
    for (section, names) in sections {
        for (key, option) in names {
            if let Some(setting) = layout.setting(section, key) {
                entries.push((option.to_owned(), Value::String(setting.value)));
            }
        }
    }
    entries.push((WATCHER_CONF_PATH.to_owned(), Value::String(path.display().to_string())));
    entries
}

/// `juju deploy --config` files put the options under the application name.
fn select_application(entries: OptionMap, source_name: &str, app: Option<&str>) -> Result<OptionMap, ConfigError> {
    let is_flat = entries.is_empty()
        || entries.iter().any(|(k, _)| KNOWN_OPTIONS.contains(&k.as_str()))
        || !entries.iter().all(|(_, v)| v.is_object());
    if is_flat {
        if let Some(app) = app {
            return Err(ConfigError::Unreadable {
                source_name: source_name.to_owned(),
                message: format!("--app {app} was given but the file is a flat map of options"),
                hint: "drop --app, or use the `juju deploy --config` form {application: {option: value}}".to_owned(),
            });
        }
        return Ok(entries);
    }
    let names: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let chosen = match app {
        Some(app) => entries.iter().find(|(k, _)| k == app).ok_or_else(|| ConfigError::Unreadable {
            source_name: source_name.to_owned(),
            message: format!("has no application `{app}` (it has: {})", names.join(", ")),
            hint: "pass --app with one of the application names in the file".to_owned(),
        })?,
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(ConfigError::Unreadable {
                source_name: source_name.to_owned(),
                message: format!("has options for several applications ({})", names.join(", ")),
                hint: "pass --app NAME to pick one".to_owned(),
            })
        }
    };
    // Not flat means every value is a map.
    let options = chosen.1.as_object().map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    Ok(options.unwrap_or_default())
}

/// serde_yaml errors can quote the offending input; keep only the position.
fn mask_yaml_error(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(loc) => format!("syntax error at line {}, column {}", loc.line(), loc.column()),
        None => "syntax error".to_owned(),
    }
}

fn yaml_kind(v: &serde_yaml::Value) -> &'static str {
    match v {
        serde_yaml::Value::Null => "null",
        serde_yaml::Value::Bool(_) => "a boolean",
        serde_yaml::Value::Number(_) => "a number",
        serde_yaml::Value::String(_) => "a string",
        serde_yaml::Value::Sequence(_) => "a list",
        serde_yaml::Value::Mapping(_) => "a map",
        serde_yaml::Value::Tagged(_) => "a tagged value",
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Collects problems while options are read.
struct Checker {
    problems: Vec<Problem>,
    warnings: Vec<Warning>,
}

impl Checker {
    fn problem(&mut self, option: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem { option: option.to_owned(), message: message.into(), hint: hint.into() });
    }

    /// A string option: `None` when absent, null or "" (Juju's "unset").
    fn string(&mut self, value: Option<&Value>, option: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) if option != MAAS_API_KEY => Some(n.to_string()),
            Some(other) => {
                self.problem(option, format!("must be a string, got {}", json_kind(other)), "quote the value");
                None
            }
        }
    }
}

impl CharmOptions {
    /// Type-checks `entries` and the rules between options. Every problem
    /// found is reported; warnings go back beside the options.
    pub fn from_map(entries: &OptionMap) -> Result<(CharmOptions, Vec<Warning>), ConfigError> {
        let mut c = Checker { problems: Vec::new(), warnings: Vec::new() };
        let get = |name: &str| entries.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);

        let mut seen = BTreeSet::new();
        for (name, _) in entries {
            if !KNOWN_OPTIONS.contains(&name.as_str()) {
                let hint = match closest_option(name) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("known options: {}", KNOWN_OPTIONS.join(", ")),
                };
                c.problem(name, "unknown option", hint);
            } else if !seen.insert(name.as_str()) {
                c.problem(name, "is set more than once", "keep one setting of each option");
            }
        }

        let maas_url = c.string(get(MAAS_URL), MAAS_URL).and_then(|raw| match MaasUrl::parse(&raw) {
            Ok(url) => {
                if url.lacks_base_path() {
                    c.warnings.push(Warning(format!(
                        "{MAAS_URL} has no path; MAAS normally serves its API under /MAAS (e.g. http://HOST:5240/MAAS)"
                    )));
                }
                Some(url)
            }
            Err(e) => {
                c.problem(MAAS_URL, e.to_string(), e.hint());
                None
            }
        });
        let url_given = maas_url.is_some() || get(MAAS_URL).is_some_and(|v| !is_unset(v));

        let maas_api_key = c.string(get(MAAS_API_KEY), MAAS_API_KEY).map(SecretString::new);
        if let Some(key) = &maas_api_key {
            check_api_key(&mut c, key, MAAS_API_KEY);
        }

        let maas_api_key_secret = c.string(get(MAAS_API_KEY_SECRET), MAAS_API_KEY_SECRET);
        if let Some(uri) = &maas_api_key_secret {
            if !is_secret_uri(uri) {
                c.problem(
                    MAAS_API_KEY_SECRET,
                    "is not a Juju secret URI",
                    "create one with `juju add-secret maas-api-key api-key=...`, `juju grant-secret` it to the application, and set its URI (secret:...)",
                );
            }
        }

        let maas_timeout = timeout(&mut c, get(MAAS_TIMEOUT));

        let maas_ca_cert = c.string(get(MAAS_CA_CERT), MAAS_CA_CERT);
        if let Some(pem) = &maas_ca_cert {
            if !(pem.contains("-----BEGIN CERTIFICATE-----") && pem.contains("-----END CERTIFICATE-----")) {
                c.problem(
                    MAAS_CA_CERT,
                    "is not a PEM certificate",
                    "paste the CA certificate in PEM form, including the BEGIN/END CERTIFICATE lines",
                );
            }
        }

        let key_given = [MAAS_API_KEY, MAAS_API_KEY_SECRET].iter().any(|k| get(k).is_some_and(|v| !is_unset(v)));
        if maas_api_key.is_some() && maas_api_key_secret.is_some() {
            c.problem(
                MAAS_API_KEY,
                format!("is set together with {MAAS_API_KEY_SECRET}"),
                format!("set only one; {MAAS_API_KEY_SECRET} keeps the key out of the charm config"),
            );
        }
        if url_given && !key_given {
            c.problem(
                MAAS_URL,
                "is set but no API key is",
                format!("set {MAAS_API_KEY_SECRET} (or {MAAS_API_KEY}); get a key with `maas apikey --username USER`"),
            );
        }
        if key_given && !url_given {
            let which = if maas_api_key.is_some() { MAAS_API_KEY } else { MAAS_API_KEY_SECRET };
            c.problem(
                which,
                format!("is set but {MAAS_URL} is not"),
                format!("set {MAAS_URL} (e.g. http://HOST:5240/MAAS), or unset the key to use Ironic"),
            );
        }

        let api_version = c
            .string(get(IRONIC_API_VERSION), IRONIC_API_VERSION)
            .unwrap_or_else(|| DEFAULT_IRONIC_API_VERSION.to_owned());
        if !is_ironic_api_version(&api_version) {
            c.problem(
                IRONIC_API_VERSION,
                format!("`{api_version}` is not an Ironic API version"),
                "use 1, a microversion such as 1.78, or latest",
            );
        }
        let endpoint_type = c
            .string(get(IRONIC_ENDPOINT_TYPE), IRONIC_ENDPOINT_TYPE)
            .unwrap_or_else(|| DEFAULT_IRONIC_ENDPOINT_TYPE.to_owned());
        if !IRONIC_ENDPOINT_TYPES.contains(&endpoint_type.as_str()) {
            c.problem(
                IRONIC_ENDPOINT_TYPE,
                format!("`{}` is not one of Watcher's endpoint types", printable(&endpoint_type)),
                format!("use one of: {}", IRONIC_ENDPOINT_TYPES.join(", ")),
            );
        }
        let region_name = c.string(get(IRONIC_REGION_NAME), IRONIC_REGION_NAME);
        if region_name.as_deref().is_some_and(has_control_or_edge_space) {
            c.problem(
                IRONIC_REGION_NAME,
                "contains control characters or surrounding spaces",
                "use the region name as `openstack region list` shows it",
            );
        }

        let watcher_conf_path =
            c.string(get(WATCHER_CONF_PATH), WATCHER_CONF_PATH).unwrap_or_else(|| DEFAULT_WATCHER_CONF_PATH.to_owned());
        if !Path::new(&watcher_conf_path).is_absolute() || watcher_conf_path.chars().any(char::is_control) {
            c.problem(
                WATCHER_CONF_PATH,
                format!("`{}` is not an absolute path", printable(&watcher_conf_path)),
                format!("use an absolute path such as {DEFAULT_WATCHER_CONF_PATH}"),
            );
        }

        let mode = match c.string(get(WATCHER_CONF_MODE), WATCHER_CONF_MODE).as_deref() {
            None | Some("drop-in") => ConfMode::DropIn,
            Some("merge") => ConfMode::Merge,
            Some(other) => {
                c.problem(
                    WATCHER_CONF_MODE,
                    format!("`{}` is not a mode", printable(other)),
                    "use drop-in (a file in watcher.conf.d/, the default) or merge (into watcher.conf)",
                );
                ConfMode::DropIn
            }
        };
        let drop_in_name = c.string(get(DROP_IN_NAME), DROP_IN_NAME).unwrap_or_else(|| DEFAULT_DROP_IN_NAME.to_owned());
        if !is_drop_in_name(&drop_in_name) {
            c.problem(
                DROP_IN_NAME,
                format!("`{}` is not a drop-in file name", printable(&drop_in_name)),
                format!("use a plain file name ending in .conf, such as {DEFAULT_DROP_IN_NAME} (Watcher reads only *.conf, in sorted order)"),
            );
        }

        let services_text = c.string(get(WATCHER_SERVICES), WATCHER_SERVICES);
        let services = split_services(services_text.as_deref().unwrap_or(DEFAULT_WATCHER_SERVICES));
        if let Some(bad) = services.iter().find(|s| !is_unit_name(s)) {
            c.problem(
                WATCHER_SERVICES,
                format!("`{}` is not a systemd unit name", printable(bad)),
                "list unit names separated by spaces, e.g. watcher-decision-engine watcher-applier",
            );
        }

        if !c.problems.is_empty() {
            return Err(ConfigError::Invalid(c.problems));
        }
        Ok((
            CharmOptions {
                maas_url,
                maas_api_key,
                maas_api_key_secret,
                maas_timeout,
                maas_ca_cert,
                ironic: IronicSettings { api_version, endpoint_type, region_name },
                watcher_conf_path: PathBuf::from(watcher_conf_path),
                mode,
                drop_in_name,
                services,
            },
            c.warnings,
        ))
    }

    /// Fetches the API key (from the option or the Juju secret) and parses it.
    pub fn resolve(self, secrets: &dyn SecretSource) -> Result<(CharmConfig, Vec<Warning>), ConfigError> {
        let mut warnings = Vec::new();
        let maas = match self.maas_url {
            None => None,
            Some(url) => {
                let (raw, option) = match (&self.maas_api_key, &self.maas_api_key_secret) {
                    (Some(key), _) => (key.clone(), MAAS_API_KEY),
                    (None, Some(uri)) => (read_secret_key(secrets, uri)?, MAAS_API_KEY_SECRET),
                    // from_map refuses a URL without a key.
                    (None, None) => return Err(missing_key()),
                };
                let parsed = MaasApiKey::parse(raw.expose()).map_err(|e| {
                    ConfigError::Invalid(vec![Problem {
                        option: option.to_owned(),
                        message: format!("the API key {e}"),
                        hint: api_key_hint().to_owned(),
                    }])
                })?;
                if parsed.trimmed {
                    warnings.push(Warning(format!(
                        "{option}: the API key had surrounding whitespace or a newline; it was trimmed"
                    )));
                }
                Some(MaasSettings { url, api_key: parsed.key, timeout: self.maas_timeout, ca_cert: self.maas_ca_cert })
            }
        };
        let config = CharmConfig {
            maas,
            ironic: self.ironic,
            watcher_conf_path: self.watcher_conf_path,
            mode: self.mode,
            drop_in_name: self.drop_in_name,
            services: self.services,
        };
        Ok((config, warnings))
    }
}

/// Reads, checks and resolves a configuration in one call.
pub fn load(entries: &OptionMap, secrets: &dyn SecretSource) -> Result<(CharmConfig, Vec<Warning>), ConfigError> {
    let (options, mut warnings) = CharmOptions::from_map(entries)?;
    let (config, more) = options.resolve(secrets)?;
    warnings.extend(more);
    Ok((config, warnings))
}

fn missing_key() -> ConfigError {
    ConfigError::Invalid(vec![Problem {
        option: MAAS_URL.to_owned(),
        message: "is set but no API key is".to_owned(),
        hint: format!("set {MAAS_API_KEY_SECRET} (or {MAAS_API_KEY})"),
    }])
}

fn api_key_hint() -> &'static str {
    "copy the whole key printed by `maas apikey --username USER` (consumer_key:token_key:token_secret)"
}

fn check_api_key(c: &mut Checker, key: &SecretString, option: &str) {
    if let Err(e) = MaasApiKey::parse(key.expose()) {
        c.problem(option, format!("the API key {e}"), api_key_hint());
    }
}

fn read_secret_key(secrets: &dyn SecretSource, uri: &str) -> Result<SecretString, ConfigError> {
    let content = secrets.secret_content(uri).map_err(|message| ConfigError::Secret {
        uri: uri.to_owned(),
        message,
        hint: "check the URI and that the secret is granted: `juju grant-secret SECRET APP`".to_owned(),
    })?;
    let keys: Vec<&str> = content.iter().map(|(k, _)| k.as_str()).collect();
    match content.iter().find(|(k, _)| k == SECRET_CONTENT_KEY) {
        Some((_, value)) => Ok(value.clone()),
        None => Err(ConfigError::Secret {
            uri: uri.to_owned(),
            message: format!("it has no `{SECRET_CONTENT_KEY}` key (it has: {})", keys.join(", ")),
            hint: format!("store the key as `juju update-secret {uri} {SECRET_CONTENT_KEY}=...`"),
        }),
    }
}

fn timeout(c: &mut Checker, value: Option<&Value>) -> u32 {
    let hint = "set a whole number of seconds greater than 0, e.g. 60";
    let n = match value {
        None | Some(Value::Null) => return DEFAULT_MAAS_TIMEOUT,
        Some(Value::String(s)) if s.trim().is_empty() => return DEFAULT_MAAS_TIMEOUT,
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n > 0 && n <= i64::from(i32::MAX) => n as u32,
        Some(n) => {
            c.problem(MAAS_TIMEOUT, format!("must be greater than 0, got {n}"), hint);
            DEFAULT_MAAS_TIMEOUT
        }
        None => {
            let shown = match value {
                Some(Value::String(s)) => format!("`{}`", printable(s)),
                Some(other) => json_kind(other).to_owned(),
                None => String::new(),
            };
            c.problem(MAAS_TIMEOUT, format!("must be a whole number of seconds, got {shown}"), hint);
            DEFAULT_MAAS_TIMEOUT
        }
    }
}

fn is_unset(v: &Value) -> bool {
    matches!(v, Value::Null) || matches!(v, Value::String(s) if s.is_empty())
}

/// Juju secret URIs: `secret:ID` or `secret://MODEL-UUID/ID`.
pub fn is_secret_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("secret:") else { return false };
    let id = rest.strip_prefix("//").map_or(Some(rest), |r| r.split_once('/').map(|(_, id)| id));
    id.is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn split_services(text: &str) -> Vec<String> {
    text.split([' ', ',', '\n', '\t']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The services named by the options, for hooks that cannot load the
/// whole configuration (such as `remove`).
pub fn services_from_options(entries: &OptionMap) -> Vec<String> {
    let text = entries.iter().rev().find(|(k, _)| k == WATCHER_SERVICES).and_then(|(_, v)| v.as_str());
    split_services(text.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_WATCHER_SERVICES))
        .into_iter()
        .filter(|s| is_unit_name(s))
        .collect()
}

/// A file name oslo.config reads from a config directory: `*.conf`, not
/// hidden, no directory part, printable.
fn is_drop_in_name(name: &str) -> bool {
    crate::effective::is_read_as_drop_in(name)
        && name.len() > ".conf".len()
        && name.len() <= 200
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// systemd unit names: letters, digits, `:-_.\@`, not starting with `-`.
fn is_unit_name(name: &str) -> bool {
    !name.starts_with('-')
        && name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'@' | b'\\'))
}

fn is_ironic_api_version(v: &str) -> bool {
    if v == "1" || v == "latest" {
        return true;
    }
    match v.split_once('.') {
        Some(("1", minor)) => !minor.is_empty() && minor.len() <= 4 && minor.bytes().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

fn has_control_or_edge_space(s: &str) -> bool {
    s.chars().any(char::is_control) || s.trim() != s
}

/// A value shortened and stripped of control characters for messages.
fn printable(s: &str) -> String {
    let cleaned: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).take(60).collect();
    if s.chars().count() > 60 {
        format!("{cleaned}...")
    } else {
        cleaned
    }
}

/// The known option nearest to a misspelt one, when it is near enough.
fn closest_option(name: &str) -> Option<&'static str> {
    let normalised = name.replace('_', "-").to_ascii_lowercase();
    KNOWN_OPTIONS
        .iter()
        .map(|known| (strsim::levenshtein(&normalised, known), *known))
        .filter(|(distance, _)| *distance <= 3)
        .min()
        .map(|(_, known)| known)
}

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
        assert_eq!(config.backend(), "ironic");
        assert_eq!(config.ironic, IronicSettings::default());
        assert_eq!(config.watcher_conf_path, PathBuf::from(DEFAULT_WATCHER_CONF_PATH));
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
        assert_eq!(config.backend(), "maas");
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
        assert_eq!(p.message, "`--now` is not a systemd unit name");
    }

    #[test]
    fn ca_cert_must_be_pem() {
        let p = only_problem(json!({"maas-ca-cert": "MIIB..."}));
        assert_eq!(p.message, "is not a PEM certificate");
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
        let layout = crate::effective::Layout::from_files(vec![
            crate::effective::ConfFile {
                path: "/etc/watcher-decision-engine.conf.d/50-x.conf".into(),
                text: drop_in.into(),
            },
            crate::effective::ConfFile { path: conf.into(), text },
        ]);
        let entries = options_from_layout(&layout, conf);
        let (config, _) = load(&entries, &NoSecrets).unwrap();
        let maas = config.maas.unwrap();
        assert_eq!(maas.timeout, 30);
        assert_eq!(maas.api_key.whole().expose(), KEY);
        assert_eq!(maas.url.as_configured(), "http://m:5240/MAAS", "watcher.conf wins over the drop-in");
        assert_eq!(config.ironic.endpoint_type, "internal");
        assert_eq!(config.ironic.region_name.as_deref(), Some("r1"), "the drop-in's own setting applies");
        assert_eq!(config.watcher_conf_path, PathBuf::from("/etc/watcher/watcher.conf"));
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
