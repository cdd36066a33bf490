//! The actions: each reads its parameters, calls its operation and maps
//! its outcome onto `action-set` (or the failure onto `action-fail`).
//! `result` (`success` or `failure`) is set for all of them alike, by
//! [`super::run`].

use std::time::Duration;

use crate::clients::maas::MaasError;
use crate::config::CharmConfig;
use crate::ops::backend::{self, Elsewhere, Reach};
use crate::ops::clock::SystemClock;
use crate::ops::converge::{self, Unit};
use crate::ops::doctor;
use crate::ops::listing;
use crate::ops::power;
use crate::ops::validate::{self, Stage};
use crate::ops::Error;
use crate::watcher::pairing;

use super::status;

/// The most text one action result value carries (Juju passes results on
/// the command line; about 100 KB is the practical limit).
const MAX_RESULT_VALUE: usize = 60_000;

/// A MAAS failure for a person: the stage in words, the diagnosis, the hint.
fn maas_problem(stage: Stage, error: &MaasError) -> String {
    format!("{}{error}; {}", stage.failure_prefix(), error.hint())
}

/// An action's failure message (already a diagnosis with its hint).
pub(super) struct ActionFailure(pub(super) String);

impl From<Error> for ActionFailure {
    fn from(e: Error) -> Self {
        let hint = e.hint();
        ActionFailure(if hint.is_empty() { e.to_string() } else { format!("{e}; {hint}") })
    }
}

impl From<crate::host::juju::HookToolError> for ActionFailure {
    fn from(e: crate::host::juju::HookToolError) -> Self {
        ActionFailure(e.to_string())
    }
}

/// The action's config (warnings and problems go to `juju-log`).
fn read_config(unit: &Unit<'_>) -> Result<Result<CharmConfig, String>, Error> {
    converge::read_config(unit, &mut |note| status::tell(unit.tools, note))
}

fn action_config(ctx: &Unit<'_>) -> Result<CharmConfig, ActionFailure> {
    match read_config(ctx)? {
        Ok(config) => Ok(config),
        Err(problem) => Err(ActionFailure(format!("invalid configuration: {problem}"))),
    }
}

/// The `list-nodes` action's parameters, as `charm/actions.yaml` declares them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ListNodesParams {
    live: bool,
    hypervisors: String,
}

/// The `power-status` action's parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PowerStatusParams {
    node: String,
}

/// The action's parameters from `action-get --format=json` (`null`: none given).
fn params<T: serde::de::DeserializeOwned + Default>(ctx: &Unit<'_>) -> Result<T, ActionFailure> {
    let text = ctx.tools.action_get()?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Null) => Ok(T::default()),
        Ok(value @ serde_json::Value::Object(_)) => serde_json::from_value(value)
            .map_err(|e| ActionFailure(format!("action-get printed parameters of the wrong type: {e}"))),
        _ => Err(ActionFailure("action-get did not print a JSON object".to_owned())),
    }
}

fn pair(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

pub(super) fn validate(ctx: &Unit<'_>) -> Result<(), ActionFailure> {
    let config = action_config(ctx)?;
    let Some(maas) = &config.maas else {
        // Nothing to validate: a failure, said the same way in results and message.
        let (error, hint) = (Error::MaasNotConfigured.to_string(), Error::MaasNotConfigured.hint());
        ctx.tools.action_set(&[
            pair("backend", "ironic"),
            pair("stage", "config"),
            pair("error", &error),
            pair("hint", &hint),
        ])?;
        return Err(ActionFailure(format!("{error}; {hint}")));
    };
    let client = backend::maas_client(maas, backend::maas_options(maas)).map_err(Error::from)?;
    match validate::validate(&client, true) {
        Ok(report) => {
            let mut results = vec![pair("backend", "maas"), pair("api-url", &report.api_url)];
            if let Some(v) = &report.maas_version {
                results.push(pair("maas-version", v));
            }
            if let Some(u) = &report.user {
                results.push(pair("user", &u.username));
                results.push(pair("is-superuser", u.is_superuser));
            }
            if let Some(m) = &report.machines {
                results.push(pair("machines", m.total));
            }
            results.push(pair("latency-ms", report.latency_ms));
            ctx.tools.action_set(&results)?;
            Ok(())
        }
        Err(failure) => {
            ctx.tools.action_set(&[
                pair("backend", "maas"),
                pair("stage", failure.stage.as_str()),
                pair("error", failure.error.to_string()),
                pair("hint", failure.error.hint()),
            ])?;
            Err(ActionFailure(maas_problem(failure.stage, &failure.error)))
        }
    }
}

pub(super) fn list_nodes(ctx: &Unit<'_>) -> Result<(), ActionFailure> {
    let ListNodesParams { live, hypervisors } = params(ctx)?;
    let config = action_config(ctx)?;
    let wanted = pairing::parse_hypervisor_list(&hypervisors.replace(',', "\n"));
    let reach = Reach::of_watcher(&config, false, ctx.system, Elsewhere::Direct);
    let hypervisors = (!wanted.is_empty()).then_some(wanted);
    let request = listing::Request { live, concurrency: 16, hypervisors, nova: false, reach };
    let listed = listing::list(&config, &request, &|_, _| {})?;
    let rows = &listed.rows;
    let mut results = vec![pair("backend", listed.backend.as_str()), pair("total", rows.len())];
    for (state, n) in listing::count_by_power_state(rows) {
        results.push(pair(&format!("counts.{state}"), n));
    }
    let listing: Vec<String> = rows
        .iter()
        .map(|r| {
            let name = r.node.display_name();
            let note = r.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
            format!("{} {} {}{note}", r.node.id, name, r.node.power_state)
        })
        .collect();
    results.push(pair("nodes", truncate(&listing.join("\n"))));
    if let Some(named) = &listed.named {
        let managed = named.iter().filter(|m| m.managed()).count();
        results.push(pair("hypervisors.managed", managed));
        results.push(pair("hypervisors.skipped", named.len() - managed));
        let report: Vec<String> = named
            .iter()
            .map(|m| match &m.node_id {
                Some(id) => format!("{} managed by node {id}", m.hypervisor),
                None => format!("{} skipped: {}", m.hypervisor, m.reason.as_deref().unwrap_or("")),
            })
            .collect();
        results.push(pair("hypervisors.report", truncate(&report.join("\n"))));
    }
    ctx.tools.action_set(&results)?;
    Ok(())
}

pub(super) fn power_status(ctx: &Unit<'_>) -> Result<(), ActionFailure> {
    let PowerStatusParams { node } = params(ctx)?;
    if node.is_empty() {
        return Err(ActionFailure("the `node` parameter is required (a node id or hostname)".to_owned()));
    }
    let wanted = node.as_str();
    let config = action_config(ctx)?;
    let reach = Reach::of_watcher(&config, false, ctx.system, Elsewhere::Direct);
    let client = backend::connect(&config, &reach, 1)?;
    // Only a reading: nothing to wait for, force or refuse.
    let request = power::Request {
        target: None,
        wait: false,
        force: false,
        timeout: Duration::ZERO,
        switches: power::Switches::default(),
    };
    let done = power::run(client.as_ref(), wanted, &request, &SystemClock).map_err(Error::from)?;
    let mut results = vec![
        pair("backend", client.backend().as_str()),
        pair("node.id", &done.node.id),
        pair("node.hostname", &done.node.hostname),
        pair("power-state", done.reading.state),
    ];
    // As `watcher-metal power status` says `(changing to off)`.
    if let Some(to) = done.reading.changing_to {
        results.push(pair("changing-to", to));
    }
    ctx.tools.action_set(&results)?;
    Ok(())
}

/// The `doctor` action: every check, each as `checks.NAME.status`,
/// `.message` and `.hint`; the action fails when a check failed.
pub(super) fn doctor(ctx: &Unit<'_>) -> Result<(), ActionFailure> {
    let loaded = read_config(ctx)?;
    let (conf, root) = match &loaded {
        Ok(config) => (config.watcher_conf_path.clone(), config.drop_in_root.clone()),
        Err(_) => (doctor::default_watcher_conf(), std::path::PathBuf::from(crate::config::DEFAULT_DROP_IN_ROOT)),
    };
    let config = loaded.as_ref().map_err(|p| (p.clone(), "fix the charm configuration".to_owned()));
    let report = doctor::diagnose(Some(config), &conf, &root, ctx.system, Elsewhere::Direct);
    let mut results =
        vec![pair("failed", report.count(doctor::Verdict::Fail)), pair("warned", report.count(doctor::Verdict::Warn))];
    for c in &report.checks {
        results.push(pair(&format!("checks.{}.status", c.name), c.status.as_str()));
        results.push(pair(&format!("checks.{}.message", c.name), truncate(&c.message)));
        if !c.hint.is_empty() {
            results.push(pair(&format!("checks.{}.hint", c.name), truncate(&c.hint)));
        }
    }
    ctx.tools.action_set(&results)?;
    match report.first(doctor::Verdict::Fail) {
        Some(c) => Err(ActionFailure(format!("{}: {}; {}", c.name, c.message, c.hint))),
        None => Ok(()),
    }
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_RESULT_VALUE {
        return text.to_owned();
    }
    let mut end = MAX_RESULT_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind('\n').unwrap_or(end);
    format!("{}\n... (truncated; use `watcher-metal nodes` on the unit for the full list)", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_are_truncated_at_a_line() {
        let text = "x".repeat(100) + "\n" + &"y".repeat(MAX_RESULT_VALUE);
        let out = truncate(&text);
        assert!(out.starts_with(&"x".repeat(100)));
        assert!(out.ends_with("full list)"));
        assert!(out.len() < MAX_RESULT_VALUE + 100);
    }
}
