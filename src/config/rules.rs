//! The rules of each option and between options, and resolving the API
//! key (from a Juju secret when one is named).

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::clients::maas::api_key::{ApiKeyError, MaasApiKey};
use crate::secret::{looks_like_api_key, SecretString};

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

/// "a number" or "a boolean" for the scalars Juju refuses for a string
/// option, `None` for any other value.
pub(super) fn scalar_kind(v: &Value) -> Option<&'static str> {
    match v {
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        _ => None,
    }
}

/// A string option given a number or boolean: named, with its quoted form
/// as the hint. `read_as` is the value YAML made of `written`, shown when
/// it differs (`1.10` read as 1.1). Never used for the API key.
pub(super) fn not_a_string(option: &str, kind: &str, written: &str, read_as: Option<&str>) -> Problem {
    let written = printable(written);
    let read_as = match read_as {
        Some(read) if read != written => format!(", which YAML reads as {}", printable(read)),
        _ => String::new(),
    };
    Problem {
        option: option.to_owned(),
        message: format!("must be a string, got {kind} ({written}{read_as})"),
        hint: format!("quote it, as Juju requires for a string option: {option}: \"{written}\""),
    }
}

/// A value shaped like a MAAS API key given to `option`, which is not the
/// key's: named, never shown, whole or in part.
pub(super) fn key_in_wrong_option(option: &str) -> Problem {
    Problem {
        option: option.to_owned(),
        message: "holds what looks like a MAAS API key (not shown)".to_owned(),
        hint: format!(
            "the key belongs in {MAAS_API_KEY_SECRET} (a Juju secret) or {MAAS_API_KEY}; give {option} its own value, and rotate the key if this value was shared"
        ),
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
    /// A value shaped like a MAAS API key in any option but the key's own
    /// is refused without a word of it ([`key_in_wrong_option`]).
    fn string(&mut self, value: Option<&Value>, option: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if option != MAAS_API_KEY && looks_like_api_key(s) => {
                self.problems.push(key_in_wrong_option(option));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other @ (Value::Number(_) | Value::Bool(_))) if option != MAAS_API_KEY => {
                let kind = scalar_kind(other).unwrap_or("a number");
                self.problems.push(not_a_string(option, kind, &other.to_string(), None));
                None
            }
            Some(other) => {
                self.problem(option, format!("must be a string, got {}", json_kind(other)), "quote the value");
                None
            }
        }
    }
}

/// One `-----BEGIN LABEL-----` ... `-----END LABEL-----` block of a PEM text.
struct PemBlock<'a> {
    label: &'a str,
    body: Vec<&'a str>,
    /// Its END line was found.
    ended: bool,
}

/// The PEM blocks of `text`, and whether an END line came without its
/// BEGIN. Text outside the blocks (what `openssl x509 -text` prints before
/// one) is left alone, as OpenSSL does.
fn pem_blocks(text: &str) -> (Vec<PemBlock<'_>>, bool) {
    let mut blocks: Vec<PemBlock<'_>> = Vec::new();
    let mut stray_end = false;
    for line in text.lines().map(str::trim) {
        let begin = line.strip_prefix("-----BEGIN ").and_then(|rest| rest.strip_suffix("-----"));
        let end = line.strip_prefix("-----END ").and_then(|rest| rest.strip_suffix("-----"));
        let open = blocks.last_mut().filter(|b| !b.ended);
        match (open, begin, end) {
            // A BEGIN inside a block leaves that block without its END.
            (_, Some(label), _) => blocks.push(PemBlock { label, body: Vec::new(), ended: false }),
            (Some(block), _, Some(label)) if label == block.label => block.ended = true,
            (Some(block), _, _) => block.body.push(line),
            (None, _, Some(_)) => stray_end = true,
            (None, _, None) => {}
        }
    }
    (blocks, stray_end)
}

/// A block's label as a status may show it: a PEM label of capitals (the
/// text of anything else is not repeated).
fn shown_label(label: &str) -> Option<&str> {
    let plain = !label.is_empty()
        && label.len() <= 40
        && label.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == ' ');
    plain.then_some(label)
}

/// What is wrong with `maas-ca-cert`, if anything: it must hold only
/// CERTIFICATE blocks, each an X.509 certificate that rustls takes as a
/// trust anchor (as the MAAS client and Watcher's Python will). A private
/// key is refused by its label alone: nothing of its text is repeated.
fn ca_cert_problem(pem: &str) -> Option<(String, &'static str)> {
    let (blocks, stray_end) = pem_blocks(pem);
    if blocks.is_empty() {
        let hint = "paste the CA certificate in PEM form, including the BEGIN/END CERTIFICATE lines";
        return Some(("is not a PEM certificate".to_owned(), hint));
    }
    if let Some((i, block)) = blocks.iter().enumerate().find(|(_, b)| b.label.ends_with("PRIVATE KEY")) {
        return Some((
            format!("block {} is a private key{}, which must not be installed", i + 1, in_parens(block.label)),
            "paste only the CA certificate (its BEGIN/END CERTIFICATE block); the key stays with the CA",
        ));
    }
    for (i, block) in blocks.iter().enumerate() {
        let n = i + 1;
        if !block.ended {
            let hint = "paste each certificate whole, from its BEGIN line to its END line";
            return Some((format!("block {n}{} has no END line", in_parens(block.label)), hint));
        }
        if block.label != "CERTIFICATE" {
            let hint = "paste only the CA certificate: BEGIN/END CERTIFICATE blocks";
            let message = match shown_label(block.label) {
                Some(label) => format!("block {n} is a {label} block, not a CERTIFICATE"),
                None => format!("block {n} is not a CERTIFICATE block"),
            };
            return Some((message, hint));
        }
        if let Err(why) = parse_certificate(&block.body) {
            let hint = "paste the CA certificate as `openssl x509 -in ca.crt` prints it";
            return Some((format!("block {n} is not an X.509 certificate ({why})"), hint));
        }
    }
    if stray_end {
        let hint = "paste each certificate whole, from its BEGIN line to its END line";
        return Some(("has an END line without its BEGIN line".to_owned(), hint));
    }
    None
}

/// ` (LABEL)` for a label [`shown_label`] shows, else nothing.
fn in_parens(label: &str) -> String {
    shown_label(label).map(|l| format!(" ({l})")).unwrap_or_default()
}

/// Decodes a CERTIFICATE block's body and parses it as rustls parses a
/// root certificate (webpki's trust anchor: the whole DER structure).
fn parse_certificate(body: &[&str]) -> Result<(), &'static str> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let text = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", body.join("\n"));
    let der = CertificateDer::from_pem_slice(text.as_bytes()).map_err(|_| "its base64 does not decode")?;
    rustls::RootCertStore::empty().add(der).map_err(|_| "its DER does not parse")
}

impl CharmOptions {
    /// Type-checks `entries` and the rules between options. Every problem
    /// found is reported; warnings go back beside the options.
    pub(crate) fn from_map(entries: &OptionMap) -> Result<(CharmOptions, Vec<Warning>), ConfigError> {
        let mut c = Checker { problems: Vec::new(), warnings: Vec::new() };
        let get = |name: &str| crate::clients::last_setting(entries, name);

        let mut seen = BTreeSet::new();
        for (name, _) in entries {
            if looks_like_api_key(name) {
                c.problem(
                    "an option named like a MAAS API key",
                    "unknown option (its name is not shown)",
                    format!("remove it: the key belongs in {MAAS_API_KEY_SECRET} (or {MAAS_API_KEY}); rotate it if this file was shared"),
                );
            } else if !KNOWN_OPTIONS.contains(&name.as_str()) {
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
        if let Some((message, hint)) = maas_ca_cert.as_deref().and_then(ca_cert_problem) {
            c.problem(MAAS_CA_CERT, message, hint);
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
                format!("set {MAAS_API_KEY_SECRET} (or {MAAS_API_KEY}); get a key with `{NEW_KEY_COMMAND}` on the MAAS region controller"),
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
                format!("`{}` is not an Ironic API version", printable(&api_version)),
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
                    "use drop-in (a file in <drop-in-root>/<program>.conf.d/ for each Watcher program, the default) or merge (into watcher.conf)",
                );
                ConfMode::DropIn
            }
        };
        let drop_in_root = c.string(get(DROP_IN_ROOT), DROP_IN_ROOT).unwrap_or_else(|| DEFAULT_DROP_IN_ROOT.to_owned());
        if !Path::new(&drop_in_root).is_absolute() || drop_in_root.chars().any(char::is_control) {
            c.problem(
                DROP_IN_ROOT,
                format!("`{}` is not an absolute path", printable(&drop_in_root)),
                "use /etc (the default), or the home directory of the user Watcher's services run as",
            );
        }
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
        if let Some((bad, why)) = services.iter().find_map(|s| service_name_problem(s).map(|why| (s, why))) {
            c.problem(
                WATCHER_SERVICES,
                format!("`{}` is not a systemd service name: {why}", printable(bad)),
                "list the services' unit names separated by spaces, e.g. watcher-decision-engine watcher-applier",
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
                drop_in_root: PathBuf::from(drop_in_root),
                drop_in_name,
                services,
            },
            c.warnings,
        ))
    }

    /// Fetches the API key (from the option or the Juju secret) and parses it.
    pub(crate) fn resolve(self, secrets: &dyn SecretSource) -> Result<(CharmConfig, Vec<Warning>), ConfigError> {
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
                    let (message, hint) = api_key_problem(raw.expose(), &e);
                    ConfigError::Invalid(vec![Problem { option: option.to_owned(), message, hint }])
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
            drop_in_root: self.drop_in_root,
            drop_in_name: self.drop_in_name,
            services: self.services,
        };
        Ok((config, warnings))
    }
}

fn missing_key() -> ConfigError {
    ConfigError::Invalid(vec![Problem {
        option: MAAS_URL.to_owned(),
        message: "is set but no API key is".to_owned(),
        hint: format!("set {MAAS_API_KEY_SECRET} (or {MAAS_API_KEY})"),
    }])
}

/// The command that prints exactly one new key of a MAAS user, run on the
/// region controller (`maas apikey --username USER` alone prints every key
/// the user has, one a line).
const NEW_KEY_COMMAND: &str = "sudo maas apikey --generate --username USER";

/// Why `raw` is not one API key, and what to do: several keys, one a line,
/// are said so (a copy of `maas apikey --username USER`'s whole output);
/// no key is ever quoted.
fn api_key_problem(raw: &str, error: &ApiKeyError) -> (String, String) {
    let lines: Vec<&str> = raw.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.len() > 1 && lines.iter().all(|l| MaasApiKey::parse(l).is_ok()) {
        return (
            format!("holds {} API keys, one a line, where MAAS takes one", lines.len()),
            format!(
                "`maas apikey --username USER` prints every key of the user: set one of them, or a new one from `{NEW_KEY_COMMAND}`, which prints exactly one"
            ),
        );
    }
    (
        format!("the API key {error}"),
        format!(
            "copy the whole key printed by `{NEW_KEY_COMMAND}` on the MAAS region controller (consumer_key:token_key:token_secret)"
        ),
    )
}

fn check_api_key(c: &mut Checker, key: &SecretString, option: &str) {
    if let Err(e) = MaasApiKey::parse(key.expose()) {
        let (message, hint) = api_key_problem(key.expose(), &e);
        c.problem(option, message, hint);
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

/// The largest `maas-timeout`: 68 years, the most a 32-bit signed number
/// of seconds holds.
const MAX_MAAS_TIMEOUT: i64 = i32::MAX as i64;

fn timeout(c: &mut Checker, value: Option<&Value>) -> u32 {
    let hint = "set a whole number of seconds greater than 0, e.g. 60";
    let n = match value {
        None | Some(Value::Null) => return DEFAULT_MAAS_TIMEOUT,
        Some(Value::String(s)) if s.trim().is_empty() => return DEFAULT_MAAS_TIMEOUT,
        Some(Value::String(s)) if looks_like_api_key(s) => {
            c.problems.push(key_in_wrong_option(MAAS_TIMEOUT));
            return DEFAULT_MAAS_TIMEOUT;
        }
        // Whole numbers past i64 are still whole numbers, too large.
        Some(Value::Number(n)) => n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from)),
        Some(Value::String(s)) => s.trim().parse::<i128>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n > 0 && n <= i128::from(MAX_MAAS_TIMEOUT) => n as u32,
        Some(n) if n > 0 => {
            c.problem(
                MAAS_TIMEOUT,
                format!("must be at most {MAX_MAAS_TIMEOUT} seconds, got {}", printable(&n.to_string())),
                hint,
            );
            DEFAULT_MAAS_TIMEOUT
        }
        Some(n) => {
            c.problem(MAAS_TIMEOUT, format!("must be greater than 0, got {}", printable(&n.to_string())), hint);
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
pub(super) fn is_secret_uri(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("secret:") else { return false };
    let id = rest.strip_prefix("//").map_or(Some(rest), |r| r.split_once('/').map(|(_, id)| id));
    id.is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

pub(super) fn split_services(text: &str) -> Vec<String> {
    text.split([' ', ',', '\n', '\t']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// A file name oslo.config reads from a config directory: `*.conf`, not
/// hidden, no directory part, printable.
fn is_drop_in_name(name: &str) -> bool {
    crate::watcher::effective::is_read_as_drop_in(name)
        && name.len() > ".conf".len()
        && name.len() <= 200
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The unit types systemd knows besides `service`: a name with one of
/// these suffixes is another kind of unit, not a program's service.
const OTHER_UNIT_TYPES: [&str; 10] =
    ["socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"];

/// Why `name` is not the name of a systemd service Watcher runs as, as
/// systemd's `unit_name_is_valid` judges it after `systemctl` adds
/// `.service` to a name without a unit type: at most 255 bytes, the
/// characters `[A-Za-z0-9:_.\-]` with one `@` between a template and a
/// non-empty instance, a service and not another kind of unit. Stricter
/// than systemd in one way: the name starts with a letter or digit, so it
/// is never taken for an option (`-`) or a hidden or parent directory
/// (`.`) where its drop-in directory goes. A value shaped like a MAAS API
/// key is refused whatever it is. The reason never quotes the name.
pub(super) fn service_name_problem(name: &str) -> Option<&'static str> {
    if looks_like_api_key(name) {
        return Some("it looks like a MAAS API key (not shown)");
    }
    let unit = if name.ends_with(".service") { name.to_owned() } else { format!("{name}.service") };
    let stem = unit.strip_suffix(".service").unwrap_or(&unit);
    let (template, instance) = match stem.split_once('@') {
        Some((template, instance)) => (template, Some(instance)),
        None => (stem, None),
    };
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("it must start with a letter or a digit");
    }
    if unit.len() > 255 {
        return Some("it is longer than systemd's 255 bytes");
    }
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'-' | b'_' | b'.' | b'\\');
    if !template.bytes().all(plain) || !instance.unwrap_or("").bytes().all(|b| b == b'@' || plain(b)) {
        return Some("systemd allows only letters, digits and :-_.\\@ in a unit name");
    }
    if instance == Some("") {
        return Some("it is a template with no instance after its @");
    }
    if stem.rsplit_once('.').is_some_and(|(_, kind)| OTHER_UNIT_TYPES.contains(&kind)) {
        return Some("it names another kind of unit than a service");
    }
    None
}

/// Whether `name` is a service's unit name (see [`service_name_problem`]).
pub(super) fn is_unit_name(name: &str) -> bool {
    service_name_problem(name).is_none()
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

/// A value shortened and stripped of control characters for messages; one
/// shaped like a MAAS API key is not shown at all.
fn printable(s: &str) -> String {
    if looks_like_api_key(s) {
        return "(not shown: it looks like a MAAS API key)".to_owned();
    }
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

/// What to do about a `maas-url` the client cannot use: the form of URL
/// to give instead, in the charm options' names.
impl crate::clients::maas::url::UrlError {
    pub(crate) fn hint(&self) -> String {
        match self {
            crate::clients::maas::url::UrlError::ApiVersion { .. } => {
                "use http://HOST:5240/MAAS (the client adds /api/2.0/)".into()
            }
            crate::clients::maas::url::UrlError::Credentials => {
                "remove user:password@ from the URL and set maas-api-key".into()
            }
            _ => "use the form http://HOST:5240/MAAS, or https://HOST:5443/MAAS when MAAS has TLS enabled".into(),
        }
    }
}
