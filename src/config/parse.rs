//! The three sources' texts as charm options: a YAML file (flat, or
//! `juju deploy --config`'s form), `config-get`'s JSON, and the managed
//! sections of watcher.conf and its drop-ins.

use std::path::Path;

use serde_json::Value;

use super::*;

/// Reads a YAML (or JSON) configuration file's text: either a flat map of
/// options or `juju deploy --config`'s `{application: {option: value}}`.
/// `app` picks the application when the file names several.
pub(crate) fn parse_yaml(text: &str, source_name: &str, app: Option<&str>) -> Result<OptionMap, ConfigError> {
    let unreadable = |message: String, hint: &str| ConfigError::Unreadable {
        source_name: source_name.to_owned(),
        message,
        hint: hint.to_owned(),
    };
    let yaml_hint = "the file must be a YAML map of charm options, e.g. `maas-url: http://maas:5240/MAAS`";
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| match duplicate_key(text, &e) {
        Some(message) => unreadable(message, "keep one setting of each option"),
        None => unreadable(format!("not valid YAML: {}", mask_yaml_error(&e)), yaml_hint),
    })?;
    let written = with_source_texts(text, &value)
        .map_err(|e| unreadable(format!("not valid YAML: {}", mask_yaml_error(&e)), yaml_hint))?;
    let typed = select_application(yaml_entries(value, source_name)?, source_name, app)?;
    let written = select_application(yaml_entries(written, source_name)?, source_name, app)?;
    check_scalar_types(typed, &written)
}

/// The top-level entries of a YAML document as JSON values.
fn yaml_entries(value: serde_yaml::Value, source_name: &str) -> Result<OptionMap, ConfigError> {
    let unreadable = |message: String, hint: &str| ConfigError::Unreadable {
        source_name: source_name.to_owned(),
        message,
        hint: hint.to_owned(),
    };
    let yaml_hint = "the file must be a YAML map of charm options, e.g. `maas-url: http://maas:5240/MAAS`";
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
    Ok(entries)
}

/// Juju refuses a number or a boolean for a string option, and so do we:
/// YAML reads `ironic-api-version: 1.10` as the number 1.1. `written` is
/// `typed` with such scalars as their text, for the hint. Every problem in
/// the file is reported at once, these with the checker's.
fn check_scalar_types(typed: OptionMap, written: &OptionMap) -> Result<OptionMap, ConfigError> {
    let mut problems = Vec::new();
    let mut as_written = typed.clone();
    for ((name, value), (_, text)) in as_written.iter_mut().zip(written) {
        // Written as text but not read as a string: a number or boolean
        // (YAML's .inf and .nan are numbers that JSON holds as null).
        let Value::String(text) = text else { continue };
        if value.is_string() {
            continue;
        }
        let kind = rules::scalar_kind(value).unwrap_or("a number");
        // The checker refuses a key that is not a string without showing it.
        if !KNOWN_OPTIONS.contains(&name.as_str()) || name == MAAS_TIMEOUT || name == MAAS_API_KEY {
            continue;
        }
        let read_as = if value.is_null() { text.clone() } else { value.to_string() };
        problems.push(rules::not_a_string(name, kind, text, Some(&read_as)));
        *value = Value::String(text.clone());
    }
    if problems.is_empty() {
        return Ok(typed);
    }
    if let Err(ConfigError::Invalid(more)) = CharmOptions::from_map(&as_written) {
        let flagged: Vec<String> = problems.iter().map(|p: &Problem| p.option.clone()).collect();
        problems.extend(more.into_iter().filter(|p| !flagged.contains(&p.option)));
    }
    let position = |p: &Problem| KNOWN_OPTIONS.iter().position(|o| *o == p.option);
    problems.sort_by_key(position);
    Err(ConfigError::Invalid(problems))
}

/// Reads `config-get --all --format=json` output.
pub(crate) fn parse_config_get(text: &str) -> Result<OptionMap, ConfigError> {
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

/// The managed options of watcher.conf, and the charm option each stands
/// for.
const FROM_WATCHER_CONF: [(&str, &str, &str); 6] = [
    ("maas_client", "url", MAAS_URL),
    ("maas_client", "api_key", MAAS_API_KEY),
    ("maas_client", "timeout", MAAS_TIMEOUT),
    ("ironic_client", "api_version", IRONIC_API_VERSION),
    ("ironic_client", "endpoint_type", IRONIC_ENDPOINT_TYPE),
    ("ironic_client", "region_name", IRONIC_REGION_NAME),
];

/// The charm options `layout`'s managed values stand for, in the order of
/// [`FROM_WATCHER_CONF`] (watcher-conf-path is the caller's): what
/// [`load_effective`] checks.
pub(crate) fn watcher_conf_options(layout: &crate::watcher::effective::Layout) -> OptionMap {
    read_watcher_conf(layout).entries
}

/// The managed values of a layout as charm options.
struct Read {
    entries: OptionMap,
    /// Each charm option's name in watcher.conf's words, with its file.
    names: Vec<(&'static str, String)>,
    warnings: Vec<Warning>,
}

/// Reads the managed values as Watcher does: MAAS's only when
/// `[maas_client] url` is set and not empty.
fn read_watcher_conf(layout: &crate::watcher::effective::Layout) -> Read {
    let url_set = layout.setting("maas_client", "url").is_some_and(|s| !s.value.is_empty());
    let mut read = Read { entries: Vec::new(), names: Vec::new(), warnings: Vec::new() };
    for (section, key, option) in FROM_WATCHER_CONF {
        let Some(setting) = layout.setting(section, key) else { continue };
        let name = format!("[{section}] {key} in {}", setting.path.display());
        if section == "maas_client" && !url_set {
            if key == "api_key" && !setting.value.is_empty() {
                read.warnings.push(Warning(format!(
                    "{name} is set, but [maas_client] url is not: Watcher uses Ironic and does not read the key"
                )));
            }
            continue;
        }
        read.entries.push((option.to_owned(), Value::String(setting.value)));
        read.names.push((option, name));
    }
    read
}

/// The configuration Watcher's files imply: the effective `[maas_client]`
/// and `[ironic_client]` values of `layout` (watcher.conf at `conf` and its
/// drop-ins, the last setting winning, as in oslo.config), checked by the
/// charm options' rules but reported in watcher.conf's words: the option,
/// its section and the file that set it (`[maas_client] timeout in
/// /etc/watcher/watcher.conf: must be greater than 0, got 0`).
///
/// As in Watcher, MAAS is used only when `[maas_client] url` is set and not
/// empty: otherwise its `api_key` and `timeout` are not read (a key there
/// is a warning), and Watcher uses Ironic. watcher-conf-path is `conf`
/// itself, whatever bytes its name holds, and its drop-ins are under
/// `drop_in_root`. `like`, the charm's options when
/// known, gives what the files do not say: the services, the mode, the
/// drop-in's name and the CA (which goes to the system's store).
pub(crate) fn load_effective(
    layout: &crate::watcher::effective::Layout,
    conf: &Path,
    drop_in_root: &Path,
    like: Option<&CharmConfig>,
) -> Result<(CharmConfig, Vec<Warning>), ConfigError> {
    let Read { entries, names, mut warnings } = read_watcher_conf(layout);
    let in_file_terms = |e: ConfigError| match e {
        ConfigError::Invalid(problems) => {
            ConfigError::Invalid(problems.into_iter().map(|p| in_watcher_conf_terms(p, &names)).collect())
        }
        other => other,
    };
    let (options, more) = CharmOptions::from_map(&entries).map_err(in_file_terms)?;
    let (mut config, resolved) = options.resolve(&NoSecrets).map_err(in_file_terms)?;
    warnings.extend(more.into_iter().chain(resolved).map(|w| Warning(watcher_conf_words(&w.0))));
    config.watcher_conf_path = conf.to_owned();
    config.drop_in_root = drop_in_root.to_owned();
    if let Some(like) = like {
        config.services.clone_from(&like.services);
        config.mode = like.mode;
        config.drop_in_name.clone_from(&like.drop_in_name);
        if let (Some(maas), Some(charm)) = (&mut config.maas, &like.maas) {
            maas.ca_cert.clone_from(&charm.ca_cert);
        }
    }
    Ok((config, warnings))
}

/// A problem found in watcher.conf's values, named as there: the option,
/// its section and file (`names`), and the other options its message and
/// hint mention in watcher.conf's words.
fn in_watcher_conf_terms(problem: Problem, names: &[(&'static str, String)]) -> Problem {
    let option = match names.iter().find(|(charm, _)| *charm == problem.option) {
        Some((_, name)) => name.clone(),
        None => watcher_conf_words(&problem.option),
    };
    Problem { option, message: watcher_conf_words(&problem.message), hint: watcher_conf_words(&problem.hint) }
}

/// `text` with the charm options' names replaced by the watcher.conf
/// options they render to (`maas-url` by `[maas_client] url`).
fn watcher_conf_words(text: &str) -> String {
    let mut out = text.to_owned();
    for either in [
        format!("{MAAS_API_KEY_SECRET} (or {MAAS_API_KEY})"),
        format!("{MAAS_API_KEY_SECRET} (a Juju secret) or {MAAS_API_KEY}"),
        MAAS_API_KEY_SECRET.to_owned(),
    ] {
        out = out.replace(&either, "[maas_client] api_key");
    }
    for (section, key, option) in FROM_WATCHER_CONF {
        out = out.replace(option, &format!("[{section}] {key}"));
    }
    out
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

/// The message for a key set twice in one YAML map, with the lines of both
/// settings; `None` when `e` is about something else. serde_yaml places
/// this error at the start of the map, so the lines are found in `text`:
/// block-style keys, by indentation. A key shaped like a MAAS API key is
/// not shown.
fn duplicate_key(text: &str, e: &serde_yaml::Error) -> Option<String> {
    // serde_yaml puts the path of a nested map first: `app: duplicate entry ...`.
    if !e.to_string().contains("duplicate entry") {
        return None;
    }
    // The keys seen at each open indentation level, innermost last.
    let mut levels: Vec<(usize, Vec<(String, usize)>)> = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some(key) = block_key(content) else { continue };
        while levels.last().is_some_and(|(at, _)| *at > indent) {
            levels.pop();
        }
        if levels.last().is_none_or(|(at, _)| *at < indent) {
            levels.push((indent, Vec::new()));
        }
        let Some((_, keys)) = levels.last_mut() else { continue };
        if let Some((_, first)) = keys.iter().find(|(k, _)| *k == key) {
            let shown = if crate::secret::looks_like_api_key(&key) {
                "a key shaped like a MAAS API key (not shown)".to_owned()
            } else {
                format!("`{}`", key.chars().map(|c| if c.is_control() { '?' } else { c }).take(60).collect::<String>())
            };
            return Some(format!("line {number}: {shown} is set twice (first at line {first})"));
        }
        keys.push((key, number));
    }
    Some("a key is set twice in one map".to_owned())
}

/// The key of a block mapping entry (`key: value`, `"key": value`,
/// `key:` at the end of the line), or `None` for any other line.
fn block_key(content: &str) -> Option<String> {
    let ends_key = |rest: &str| rest.is_empty() || rest.starts_with([' ', '\t']);
    for quote in ['"', '\''] {
        if let Some(inner) = content.strip_prefix(quote) {
            let (key, rest) = inner.split_once(quote)?;
            let rest = rest.trim_start_matches([' ', '\t']).strip_prefix(':')?;
            return ends_key(rest).then(|| key.to_owned());
        }
    }
    if content.starts_with(['-', '?', '[', '{', '&', '*', '!', '|', '>']) {
        return None;
    }
    let mut search = 0;
    while let Some(at) = content[search..].find(':') {
        let colon = search + at;
        if ends_key(&content[colon + 1..]) {
            return Some(content[..colon].trim_end().to_owned());
        }
        search = colon + 1;
    }
    None
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

/// `typed` (the document `text` parses to) with each number and boolean
/// replaced by its text as written: `1.10` stays `"1.10"`, where
/// serde_yaml's number would print as `1.1`. The document is read a second
/// time with `typed` as the map of which scalars to keep as text.
pub(super) fn with_source_texts(text: &str, typed: &serde_yaml::Value) -> Result<serde_yaml::Value, serde_yaml::Error> {
    use serde::de::DeserializeSeed as _;
    SourceText(typed).deserialize(serde_yaml::Deserializer::from_str(text))
}

/// Reads the node `typed` describes, keeping number and boolean scalars as
/// the text they were written as.
struct SourceText<'a>(&'a serde_yaml::Value);

impl<'de> serde::de::DeserializeSeed<'de> for SourceText<'_> {
    type Value = serde_yaml::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.0 {
            serde_yaml::Value::Number(_) | serde_yaml::Value::Bool(_) => {
                <String as serde::Deserialize>::deserialize(deserializer).map(serde_yaml::Value::String)
            }
            serde_yaml::Value::Mapping(map) => deserializer.deserialize_map(SourceTextVisitor(self.0, map.len())),
            serde_yaml::Value::Sequence(items) => deserializer.deserialize_seq(SourceTextVisitor(self.0, items.len())),
            other => <serde::de::IgnoredAny as serde::Deserialize>::deserialize(deserializer).map(|_| other.clone()),
        }
    }
}

struct SourceTextVisitor<'a>(&'a serde_yaml::Value, usize);

impl<'de> serde::de::Visitor<'de> for SourceTextVisitor<'_> {
    type Value = serde_yaml::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the same document again")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let serde_yaml::Value::Mapping(map) = self.0 else {
            return Err(serde::de::Error::custom("the document changed between two readings"));
        };
        let mut out = serde_yaml::Mapping::with_capacity(self.1);
        for (key, value) in map {
            if access.next_key::<serde::de::IgnoredAny>()?.is_none() {
                return Err(serde::de::Error::custom("the document changed between two readings"));
            }
            out.insert(key.clone(), access.next_value_seed(SourceText(value))?);
        }
        if access.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::custom("the document changed between two readings"));
        }
        Ok(serde_yaml::Value::Mapping(out))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let serde_yaml::Value::Sequence(items) = self.0 else {
            return Err(serde::de::Error::custom("the document changed between two readings"));
        };
        let mut out = Vec::with_capacity(self.1);
        for item in items {
            match access.next_element_seed(SourceText(item))? {
                Some(value) => out.push(value),
                None => return Err(serde::de::Error::custom("the document changed between two readings")),
            }
        }
        if access.next_element::<serde::de::IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::custom("the document changed between two readings"));
        }
        Ok(serde_yaml::Value::Sequence(out))
    }
}
