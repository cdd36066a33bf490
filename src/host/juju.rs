//! Juju hook tools (`config-get`, `secret-get`, ...) behind a trait, so the
//! code that uses them can be tested with recording fakes.
//!
//! Nothing secret is ever passed on a hook tool's command line: secrets are
//! only read from their standard output.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use crate::secret::{mask_api_key_shapes, SecretString};

/// A hook tool that could not run or exited non-zero: the tool's name and
/// what went wrong (the first line of its stderr, or why it did not start).
#[derive(Debug, thiserror::Error)]
#[error("{tool}: {message}")]
pub struct HookToolError {
    tool: String,
    message: String,
}

impl HookToolError {
    /// One line telling the user where to look next.
    pub(crate) fn hint(&self) -> String {
        if self.message.contains("not found") {
            "hook tools exist only inside a Juju hook or action; outside Juju pass --config FILE".to_owned()
        } else {
            "check `juju debug-log` for the hook tool's own message".to_owned()
        }
    }
}

/// True when this process runs inside a Juju hook or action.
pub fn in_hook_context() -> bool {
    std::env::var_os("JUJU_CONTEXT_ID").is_some_and(|v| !v.is_empty())
}

/// The application's name in a hook or action: `JUJU_UNIT_NAME`
/// (`watcher-maas/0`) without the unit number.
pub fn application_name() -> Option<String> {
    let unit = std::env::var("JUJU_UNIT_NAME").ok()?;
    let (app, _) = unit.split_once('/')?;
    (!app.is_empty()).then(|| app.to_owned())
}

/// The hook tools this program uses.
pub trait HookTools {
    /// `config-get --all --format=json`: the raw JSON text.
    fn config_get_all(&self) -> Result<String, HookToolError>;
    /// `secret-get URI --format=json` (with `--refresh` when asked): the raw
    /// JSON text, which holds the secret.
    fn secret_get(&self, uri: &str, refresh: bool) -> Result<SecretString, HookToolError>;
    /// `status-set STATUS MESSAGE`.
    fn status_set(&self, status: Status, message: &str) -> Result<(), HookToolError>;
    /// `application-version-set VERSION`: the workload version `juju status` shows.
    fn application_version_set(&self, version: &str) -> Result<(), HookToolError>;
    /// `juju-log --log-level LEVEL MESSAGE`.
    fn log(&self, level: LogLevel, message: &str) -> Result<(), HookToolError>;
    /// `action-get --format=json`: the action's parameters as raw JSON.
    fn action_get(&self) -> Result<String, HookToolError>;
    /// `action-set KEY=VALUE ...`. Keys must be valid for Juju
    /// ([`valid_action_key`]); values are never secret.
    fn action_set(&self, results: &[(String, String)]) -> Result<(), HookToolError>;
    /// `action-fail MESSAGE`.
    fn action_fail(&self, message: &str) -> Result<(), HookToolError>;
}

/// The workload statuses a unit may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The charm is doing work on the unit (installing, restarting).
    Maintenance,
    /// The operator must act (bad or missing config, a secret not granted).
    Blocked,
    /// Something outside the charm must happen first (MAAS to answer,
    /// Watcher to be installed).
    Waiting,
    /// Ready.
    Active,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Maintenance => "maintenance",
            Status::Blocked => "blocked",
            Status::Waiting => "waiting",
            Status::Active => "active",
        }
    }
}

/// The level of a `juju-log` line, as `juju debug-log` filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

/// Juju's rule for action result keys: dot-separated segments, each
/// `^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`, and not a reserved key.
pub fn valid_action_key(key: &str) -> bool {
    const RESERVED: [&str; 5] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding", "return-code"];
    let segment_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    !RESERVED.contains(&key) && key.split('.').all(segment_ok)
}

/// The hook tools Juju puts on `PATH`.
#[derive(Debug, Default, Clone, Copy)]
pub struct JujuHookTools;

/// Runs a hook tool and returns its standard output.
fn run(tool: &str, args: &[&OsStr]) -> Result<Vec<u8>, HookToolError> {
    let output = Command::new(tool).args(args).stdin(Stdio::null()).output().map_err(|e| HookToolError {
        tool: tool.to_owned(),
        message: if e.kind() == std::io::ErrorKind::NotFound {
            "command not found".to_owned()
        } else {
            format!("cannot run: {e}")
        },
    })?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first_line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
    Err(HookToolError { tool: tool.to_owned(), message: format!("failed ({}): {first_line}", output.status) })
}

fn run_quiet(tool: &str, args: &[&str]) -> Result<(), HookToolError> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run(tool, &args).map(drop)
}

/// What the charm says through Juju (statuses, log lines, action results
/// and failures) goes through [`mask_api_key_shapes`] as a last guard: a
/// key no option names (pasted as a node's name, say) is never repeated.
impl HookTools for JujuHookTools {
    fn status_set(&self, status: Status, message: &str) -> Result<(), HookToolError> {
        run_quiet("status-set", &[status.as_str(), &mask_api_key_shapes(message)])
    }

    fn application_version_set(&self, version: &str) -> Result<(), HookToolError> {
        run_quiet("application-version-set", &[version])
    }

    fn log(&self, level: LogLevel, message: &str) -> Result<(), HookToolError> {
        run_quiet("juju-log", &["--log-level", level.as_str(), "--", &mask_api_key_shapes(message)])
    }

    fn action_get(&self) -> Result<String, HookToolError> {
        let out = run("action-get", &["--format=json".as_ref()])?;
        String::from_utf8(out)
            .map_err(|_| HookToolError { tool: "action-get".to_owned(), message: "output is not UTF-8".to_owned() })
    }

    fn action_set(&self, results: &[(String, String)]) -> Result<(), HookToolError> {
        if let Some((bad, _)) = results.iter().find(|(k, _)| !valid_action_key(k)) {
            return Err(HookToolError { tool: "action-set".to_owned(), message: format!("invalid key `{bad}`") });
        }
        let pairs: Vec<String> = results.iter().map(|(k, v)| format!("{k}={}", mask_api_key_shapes(v))).collect();
        let args: Vec<&str> = pairs.iter().map(String::as_str).collect();
        run_quiet("action-set", &args)
    }

    fn action_fail(&self, message: &str) -> Result<(), HookToolError> {
        run_quiet("action-fail", &[&mask_api_key_shapes(message)])
    }

    fn config_get_all(&self) -> Result<String, HookToolError> {
        let out = run("config-get", &["--all".as_ref(), "--format=json".as_ref()])?;
        String::from_utf8(out)
            .map_err(|_| HookToolError { tool: "config-get".to_owned(), message: "output is not UTF-8".to_owned() })
    }

    fn secret_get(&self, uri: &str, refresh: bool) -> Result<SecretString, HookToolError> {
        let mut args: Vec<&OsStr> = vec![uri.as_ref(), "--format=json".as_ref()];
        if refresh {
            args.push("--refresh".as_ref());
        }
        let out = run("secret-get", &args)?;
        String::from_utf8(out)
            .map(SecretString::new)
            .map_err(|_| HookToolError { tool: "secret-get".to_owned(), message: "output is not UTF-8".to_owned() })
    }
}

/// The content of the Juju secret `uri`, read with `secret-get` (with
/// `--refresh` when `refresh`), as its keys and values.
pub(crate) fn secret_content(
    tools: &dyn HookTools,
    uri: &str,
    refresh: bool,
) -> Result<Vec<(String, SecretString)>, String> {
    let raw = tools.secret_get(uri, refresh).map_err(|e| e.to_string())?;
    parse_secret_content(raw.expose())
}

/// `secret-get --format=json` prints the content as a JSON object of strings.
fn parse_secret_content(text: &str) -> Result<Vec<(String, SecretString)>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "secret-get printed something that is not JSON".to_owned())?;
    let serde_json::Value::Object(map) = value else {
        return Err("secret-get did not print a JSON object".to_owned());
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, SecretString::new(s))),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_content_parses_without_echoing() {
        let content = parse_secret_content(r#"{"api-key": "a:b:c", "n": 1}"#).unwrap();
        assert_eq!(content.len(), 1);
        assert_eq!(content[0].0, "api-key");
        assert_eq!(content[0].1.expose(), "a:b:c");
        let err = parse_secret_content("api-key: a:b:c").unwrap_err();
        assert!(!err.contains("a:b:c"));
    }

    #[test]
    fn action_keys_follow_juju_rules() {
        for ok in ["result", "maas-version", "is-superuser", "latency-ms", "counts.on", "a1", "x.y-2"] {
            assert!(valid_action_key(ok), "{ok}");
        }
        for bad in ["Result", "maas_version", "-a", "a-", "", "a..b", "stdout", "return-code", "é"] {
            assert!(!valid_action_key(bad), "{bad}");
        }
    }

    #[test]
    fn missing_tool_is_reported_with_a_hint() {
        let err = run("watcher-metal-no-such-tool", &[]).unwrap_err();
        assert_eq!(err.to_string(), "watcher-metal-no-such-tool: command not found");
        assert!(err.hint().contains("--config"));
    }
}
