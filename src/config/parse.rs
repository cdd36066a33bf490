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

/// The charm options an existing configuration implies: the effective
/// `[maas_client]` and `[ironic_client]` values of `layout` (watcher.conf at
/// `path` and its drop-ins, the last setting winning, as in oslo.config)
/// under the charm's option names.
pub(crate) fn options_from_layout(layout: &crate::watcher::effective::Layout, path: &Path) -> OptionMap {
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
