//! The charm: what each Juju hook and action does, driven through the
//! [`HookTools`] trait.
//!
//! Every hook converges the unit: read the config, write the managed
//! sections where Watcher reads them (a drop-in per Watcher program, or
//! merged into watcher.conf; see [`crate::ops::apply`]), make sure Watcher's MAAS path can
//! run (its version, python-libmaas), restart the Watcher services only
//! when what they read for the managed options changed, and set a status
//! that says exactly what is wrong. Bad configuration is `blocked` and a
//! clean exit; only real faults (a hook tool or systemd failing, a write
//! failing) make the hook fail, so Juju retries it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clients::maas::MaasError;
use crate::config::render::Renderer;
use crate::config::{self, CharmConfig, ConfMode, ConfigError, Warning};
use crate::host::atomic_file::{self, FileError};
use crate::host::juju::{HookTools, LogLevel, Status};
use crate::host::system::{self, one_line, System};
use crate::ops::apply::{self, Plan, Role};
use crate::ops::backend;
use crate::ops::doctor;
use crate::ops::listing;
use crate::ops::source::{self, Source};
use crate::ops::survey;
use crate::ops::unit::{self, Libmaas, StateFiles};
use crate::ops::validate::{self, Stage};
use crate::watcher::version::{self, MaasSupport, WatcherVersion};
use crate::Error;

/// The most text one action result value carries (Juju passes results on
/// the command line; about 100 KB is the practical limit).
const MAX_RESULT_VALUE: usize = 60_000;

/// What `JUJU_DISPATCH_PATH` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A hook, by name (`config-changed`).
    Hook(String),
    /// An action, by name (`validate-credentials`).
    Action(String),
}

impl Event {
    /// `hooks/config-changed` or `actions/validate-credentials`.
    pub fn from_dispatch_path(path: &str) -> Option<Event> {
        let (kind, name) = path.trim_start_matches("./").split_once('/')?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        match kind {
            "hooks" => Some(Event::Hook(name.to_owned())),
            "actions" => Some(Event::Action(name.to_owned())),
            _ => None,
        }
    }
}

/// Where the charm installs `maas-ca-cert` so that Watcher (python-libmaas
/// uses the system's CA bundle) trusts MAAS too.
pub use crate::ops::unit::DEFAULT_CA_DIR;

/// Everything a hook or action needs from its surroundings.
pub struct Context<'a> {
    /// The Juju hook tools (config-get, secret-get, status-set, action-set, ...).
    pub tools: &'a dyn HookTools,
    /// The machine: service restarts, the CA bundle, packages, Watcher's Python.
    pub system: &'a dyn System,
    /// The charm's directory; `templates/` there overrides built-in templates.
    pub charm_dir: Option<PathBuf>,
    /// The system's directory of extra CA certificates ([`DEFAULT_CA_DIR`]).
    pub ca_dir: PathBuf,
}

/// Runs one event. `Err` means a real fault: the caller exits non-zero.
pub fn run(ctx: &Context<'_>, event: &Event) -> Result<(), Error> {
    match event {
        Event::Hook(name) => match name.as_str() {
            "stop" => Ok(()),
            "remove" => remove(ctx),
            "update-status" => converge(ctx, Check::Quick),
            // secret-changed included: every hook reads the key with --refresh.
            _ => converge(ctx, Check::Full),
        },
        Event::Action(name) => {
            let outcome = match name.as_str() {
                "validate-credentials" => action_validate(ctx),
                "list-nodes" => action_list_nodes(ctx),
                "power-status" => action_power_status(ctx),
                "doctor" => action_doctor(ctx),
                other => Err(ActionFailure(format!("unknown action `{other}`"))),
            };
            if let Err(ActionFailure(message)) = outcome {
                ctx.tools.log(LogLevel::Warning, &message)?;
                ctx.tools.action_fail(&message)?;
            }
            Ok(())
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Version and key (update-status: cheap, short timeout).
    Quick,
    /// Version and key with the configured timeout.
    Full,
}

/// Reads and resolves the config, or says why the unit is blocked. The key
/// is read with `secret-get --refresh` every time, so a new revision of the
/// secret, or another secret, is never missed.
fn read_config(ctx: &Context<'_>) -> Result<Result<CharmConfig, String>, Error> {
    match source::load(Source::Hook { tools: ctx.tools, refresh: true }) {
        Ok((config, warnings)) => {
            log_warnings(ctx, &warnings)?;
            Ok(Ok(config))
        }
        Err(Error::Config(ConfigError::Invalid(problems))) => {
            for p in &problems {
                ctx.tools.log(LogLevel::Warning, &format!("config: {p} ({})", p.hint))?;
            }
            let first = problems.first().map(ToString::to_string).unwrap_or_else(|| "invalid configuration".into());
            let more = match problems.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more problem{})", n - 1, if n == 2 { "" } else { "s" }),
            };
            Ok(Err(format!("{first}{more}")))
        }
        Err(Error::Config(e @ ConfigError::Secret { .. })) => {
            ctx.tools.log(LogLevel::Warning, &format!("{e} ({})", e.hint()))?;
            Ok(Err(format!("{e}; {}", e.hint())))
        }
        Err(e) => Err(e),
    }
}

fn log_warnings(ctx: &Context<'_>, warnings: &[Warning]) -> Result<(), Error> {
    for w in warnings {
        ctx.tools.log(LogLevel::Warning, &format!("config: {w}"))?;
    }
    Ok(())
}

fn templates_dir(ctx: &Context<'_>) -> Option<PathBuf> {
    let dir = ctx.charm_dir.as_ref()?.join("templates");
    dir.is_dir().then_some(dir)
}

/// Faults in watcher.conf the operator must fix (not retryable).
fn blocked_file_problem(e: &FileError) -> bool {
    matches!(
        e,
        FileError::Symlink { .. }
            | FileError::Directory { .. }
            | FileError::NotRegular { .. }
            | FileError::NotText { .. }
    )
}

fn converge(ctx: &Context<'_>, check: Check) -> Result<(), Error> {
    let config = match read_config(ctx)? {
        Ok(config) => config,
        Err(problem) => return blocked(ctx, &problem),
    };
    let path = config.watcher_conf_path.clone();
    let version = watcher_version(ctx)?;
    let state = state_files(ctx, &path);
    match atomic_file::read_existing(&path) {
        Ok(Some(_)) => state.done_waiting(),
        Ok(None) => return wait_for_watcher(ctx, &path, &state, version),
        Err(e) if blocked_file_problem(&e) => return blocked(ctx, &format!("{e}; {}", e.hint())),
        Err(e) => return Err(e.into()),
    }
    let renderer = Renderer::new(templates_dir(ctx).as_deref())?;
    let plan = match apply::plan(&config, &renderer) {
        Ok(plan) => plan,
        Err(apply::PlanError::File(e)) if blocked_file_problem(&e) => {
            return blocked(ctx, &format!("{e}; {}", e.hint()))
        }
        Err(e) => return Err(e.into()),
    };
    let applied = write(ctx, &plan)?;
    for (path, role, outcome) in applied.outcomes.iter().filter(|(_, _, o)| o.changed()) {
        let why = match role {
            Role::Managed => "",
            Role::Migration => " (removed the sections an earlier merge wrote, which would override the drop-in)",
            Role::Cleanup => " (the sections are merged into watcher.conf now)",
        };
        ctx.tools.log(LogLevel::Info, &format!("{} {}{why}", outcome.as_str(), path.display()))?;
    }
    let ca_changed = install_ca(ctx, config.maas.as_ref().and_then(|m| m.ca_cert.as_deref()))?;

    let ready = match &config.maas {
        Some(_) => check_maas_ready(ctx, version)?,
        None => Readiness::default(),
    };

    // A restart that failed last time is owed even if nothing changed now.
    if applied.settings_changed() || ca_changed || ready.installed_libmaas || state.restart_owed() {
        state.owe_restart();
        set_status(ctx, Status::Maintenance, "restarting Watcher's services")?;
        restart_services(ctx, &config)?;
        state.restarted();
    }

    if let Some(problem) = ready.blocked {
        return blocked(ctx, &problem);
    }

    // The status comes from the doctor's checks: the first failure leads.
    let depth = match check {
        Check::Quick => doctor::Depth::Cheap,
        Check::Full => doctor::Depth::Hook,
    };
    let inputs = doctor::Inputs {
        config: Ok(&config),
        layout: &plan.layout_after,
        clashes: &plan.clashes,
        system: ctx.system,
        depth,
    };
    let (report, found) = doctor::run(&inputs);
    for c in report.checks.iter().filter(|c| matches!(c.status, doctor::Status::Warn | doctor::Status::Fail)) {
        ctx.tools.log(LogLevel::Warning, &format!("{} {}: {}; {}", c.name, c.status.as_str(), c.message, c.hint))?;
    }
    if let Some(failed) = report.first(doctor::Status::Fail) {
        if failed.transient {
            return set_status(
                ctx,
                Status::Waiting,
                &format!("MAAS (re-checked by update-status): {}", failed.message),
            );
        }
        return blocked(ctx, &format!("{}; {}", failed.message, failed.hint));
    }

    let managed_changed = applied.outcomes.iter().any(|(_, role, o)| *role == Role::Managed && o.changed());
    let file_note = match (check, managed_changed) {
        (Check::Quick, true) => format!("; repaired {}", file_label(&plan)),
        (_, true) => format!("; {} updated", file_label(&plan)),
        _ => String::new(),
    };
    let base = match &config.maas {
        None => "Ironic backend (maas-url unset)".to_owned(),
        Some(_) => format!(
            "MAAS {}, user {}",
            found.maas_version.as_deref().unwrap_or("?"),
            found.maas_user.as_deref().unwrap_or("?")
        ),
    };
    let status = match report.first(doctor::Status::Warn).filter(|_| config.maas.is_some()) {
        Some(warning) => format!("{}; {base}{file_note}", warning.message),
        None => format!("{base}{file_note}"),
    };
    set_status(ctx, Status::Active, &status)
}

/// How long the unit waits for the Watcher charm to write watcher.conf
/// before it says that something else is wrong.
const WATCHER_WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// watcher.conf does not exist (yet): waiting while the Watcher charm may
/// still be installing; `blocked` once that is no longer believable.
fn wait_for_watcher(
    ctx: &Context<'_>,
    path: &Path,
    state: &StateFiles,
    version: Option<WatcherVersion>,
) -> Result<(), Error> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let since = state.waiting_since(now);
    let waited = Duration::from_secs(now.saturating_sub(since));
    if version.is_none() && waited >= WATCHER_WAIT_LIMIT {
        return blocked(
            ctx,
            &format!(
                "no Watcher here after {} min ({} not installed, no {}): relate to the Watcher charm",
                waited.as_secs() / 60,
                system::WATCHER_PACKAGE,
                path.display()
            ),
        );
    }
    set_status(
        ctx,
        Status::Waiting,
        &format!("waiting for {} (deploy the Watcher charm on this machine)", path.display()),
    )
}

/// The unit's state files.
fn state_files(ctx: &Context<'_>, conf: &Path) -> StateFiles {
    StateFiles::new(ctx.charm_dir.as_deref(), conf)
}

/// Watcher's installed version, also shown by `juju status` as the
/// application's version.
fn watcher_version(ctx: &Context<'_>) -> Result<Option<WatcherVersion>, Error> {
    let version = match ctx.system.package_version(system::WATCHER_PACKAGE) {
        Ok(Some(text)) => {
            let version = WatcherVersion::parse_deb(&text);
            if version.is_none() {
                ctx.tools.log(LogLevel::Warning, &format!("cannot read Watcher's version from `{text}`"))?;
            }
            version
        }
        Ok(None) => None,
        Err(e) => {
            ctx.tools.log(LogLevel::Warning, &format!("cannot read Watcher's version: {e}"))?;
            None
        }
    };
    if let Some(v) = version {
        ctx.tools.application_version_set(&v.to_string())?;
    }
    Ok(version)
}

/// `drop-in` or `watcher.conf`, for status messages.
fn file_label(plan: &Plan) -> &'static str {
    match plan.mode {
        ConfMode::DropIn => "drop-in",
        ConfMode::Merge => "watcher.conf",
    }
}

/// What the unit's Watcher needs for its MAAS path, checked on every hook.
#[derive(Debug, Default)]
struct Readiness {
    /// python3-libmaas was installed now: the services must restart.
    installed_libmaas: bool,
    /// Why Watcher cannot use MAAS here, for a `blocked` status.
    blocked: Option<String>,
}

/// Watcher's version and python-libmaas. Cheap when all is well: one
/// Python import.
fn check_maas_ready(ctx: &Context<'_>, version: Option<WatcherVersion>) -> Result<Readiness, Error> {
    let mut ready = Readiness::default();
    match version {
        None => ctx.tools.log(
            LogLevel::Warning,
            &format!("{} is not installed; Watcher's version is unknown", system::WATCHER_PACKAGE),
        )?,
        Some(version) if version.maas_support() == MaasSupport::Missing => {
            ready.blocked = Some(format!(
                "Watcher {version} has no MAAS support (2024.1, {}, or later needed)",
                version::FIRST_WITH_MAAS
            ));
            return Ok(ready);
        }
        Some(_) => {}
    }
    let package = system::LIBMAAS_PACKAGE;
    let mut installing = || -> Result<(), Error> {
        set_status(ctx, Status::Maintenance, &format!("installing {package} (Watcher's MAAS helper needs it)"))?;
        ctx.tools.log(
            LogLevel::Info,
            &format!("Watcher's Python cannot import {}: installing {package}", system::LIBMAAS_MODULE),
        )?;
        Ok(())
    };
    match unit::ensure_libmaas(ctx.system, &mut installing)? {
        Libmaas::Present => {}
        Libmaas::Installed => {
            ctx.tools.log(LogLevel::Info, &format!("installed {package}"))?;
            ready.installed_libmaas = true;
        }
        Libmaas::StillMissing => {
            ready.blocked = Some(format!(
                "{package} is installed but Watcher's Python still cannot import {}",
                system::LIBMAAS_MODULE
            ));
        }
        Libmaas::InstallFailed(line) => {
            ctx.tools.log(LogLevel::Error, &format!("cannot install {package}: {line}"))?;
            ready.blocked = Some(format!("cannot install {package}: {line}"));
        }
    }
    Ok(ready)
}

/// A MAAS failure for a person: the stage in words, the diagnosis, the hint.
fn maas_problem(stage: Stage, error: &MaasError) -> String {
    format!("{}{error}; {}", stage.failure_prefix(), error.hint())
}

fn write(ctx: &Context<'_>, plan: &Plan) -> Result<apply::Applied, Error> {
    match apply::apply(plan) {
        Ok(applied) => Ok(applied),
        Err(e) => {
            let message = format!("{e}; {}", e.hint());
            ctx.tools.log(LogLevel::Error, &message)?;
            if blocked_file_problem(&e) {
                blocked(ctx, &message)?;
            } else {
                ctx.tools.status_set(Status::Blocked, &message)?;
            }
            Err(e.into())
        }
    }
}

/// Installs (or removes) `maas-ca-cert` in the system's CA directory and
/// rebuilds the bundle when that changed. Returns whether it changed, so
/// the services are restarted to pick the bundle up.
fn install_ca(ctx: &Context<'_>, pem: Option<&str>) -> Result<bool, Error> {
    let changed = unit::install_ca(ctx.system, &ctx.ca_dir, pem)?;
    if changed {
        log_ca_change(ctx, pem.is_some())?;
    }
    Ok(changed)
}

fn log_ca_change(ctx: &Context<'_>, installed: bool) -> Result<(), Error> {
    let verb = if installed { "installed" } else { "removed" };
    let path = ctx.ca_dir.join(unit::CA_FILE_NAME);
    Ok(ctx.tools.log(LogLevel::Info, &format!("{verb} {} and rebuilt the CA bundle", path.display()))?)
}

fn restart_services(ctx: &Context<'_>, config: &CharmConfig) -> Result<(), Error> {
    for service in &config.services {
        unit::restart(ctx.system, service)?;
        ctx.tools.log(LogLevel::Info, &format!("restarted {service}"))?;
    }
    Ok(())
}

/// The `remove` hook: take out what the charm wrote (the drop-in, the
/// managed sections, the CA certificate), then restart the services once.
/// Works from the raw options, since the config may be invalid by now.
fn remove(ctx: &Context<'_>) -> Result<(), Error> {
    let options = source::read_options(Source::Hook { tools: ctx.tools, refresh: false })?;
    let raw = |name: &str| {
        options.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.as_str().filter(|s| !s.is_empty()))
    };
    let mut config = match config::CharmOptions::from_map(&options) {
        Ok((options, _)) => options,
        Err(_) => config::CharmOptions::from_map(&Vec::new()).map(|(o, _)| o)?,
    };
    if let Some(path) = raw(config::WATCHER_CONF_PATH).filter(|p| Path::new(p).is_absolute()) {
        config.watcher_conf_path = PathBuf::from(path);
    }
    let conf = config.watcher_conf_path.clone();
    let mut drop_ins = config::drop_in_paths_of(&conf, &config.services, &config.drop_in_name);
    drop_ins.push(crate::watcher::effective::drop_in_dir(&conf).join(&config.drop_in_name));
    let state = state_files(ctx, &conf);
    let removed = unit::remove(ctx.system, &conf, &drop_ins, config.mode, &ctx.ca_dir, &state)?;
    for (path, _, outcome) in removed.applied.outcomes.iter().filter(|(_, _, o)| o.changed()) {
        ctx.tools.log(LogLevel::Info, &format!("{} {}", outcome.as_str(), path.display()))?;
    }
    if removed.ca_changed {
        log_ca_change(ctx, false)?;
    }
    if removed.applied.settings_changed() || removed.ca_changed {
        for service in &config::services_from_options(&options) {
            // Best effort: the unit is going away.
            if let Err(e) = ctx.system.restart(service) {
                ctx.tools.log(LogLevel::Warning, &e)?;
            }
        }
    }
    Ok(())
}

/// The longest status message: `juju status` shows about this much; the
/// whole message goes to `juju-log`.
const MAX_STATUS: usize = 120;

fn set_status(ctx: &Context<'_>, status: Status, message: &str) -> Result<(), Error> {
    let line = one_line(message);
    let short = shorten(&line, MAX_STATUS);
    if short.len() < line.len() {
        ctx.tools.log(LogLevel::Info, &format!("{} status, in full: {line}", status.as_str()))?;
    }
    ctx.tools.status_set(status, &short)?;
    Ok(())
}

/// `text` cut to at most `max` bytes at a word boundary, with `...` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text[..end].rfind(' ').filter(|&at| at > max / 2).unwrap_or(end);
    format!("{}...", text[..cut].trim_end_matches([' ', ';', ',', ':']))
}

fn blocked(ctx: &Context<'_>, message: &str) -> Result<(), Error> {
    ctx.tools.log(LogLevel::Warning, &format!("blocked: {message}"))?;
    set_status(ctx, Status::Blocked, message)
}

/// An action's failure message (already a diagnosis with its hint).
struct ActionFailure(String);

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

fn action_config(ctx: &Context<'_>) -> Result<CharmConfig, ActionFailure> {
    match read_config(ctx)? {
        Ok(config) => Ok(config),
        Err(problem) => Err(ActionFailure(format!("invalid configuration: {problem}"))),
    }
}

fn params(ctx: &Context<'_>) -> Result<serde_json::Map<String, serde_json::Value>, ActionFailure> {
    let text = ctx.tools.action_get()?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        _ => Err(ActionFailure("action-get did not print a JSON object".to_owned())),
    }
}

fn pair(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}

fn action_validate(ctx: &Context<'_>) -> Result<(), ActionFailure> {
    let config = action_config(ctx)?;
    let Some(maas) = &config.maas else {
        // Nothing to validate: a failure, said the same way in results and message.
        let (error, hint) = (Error::MaasNotConfigured.to_string(), Error::MaasNotConfigured.hint());
        ctx.tools.action_set(&[
            pair("result", "failure"),
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
            let mut results =
                vec![pair("result", "success"), pair("backend", "maas"), pair("api-url", &report.api_url)];
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
                pair("result", "failure"),
                pair("backend", "maas"),
                pair("stage", failure.stage.as_str()),
                pair("error", failure.error.to_string()),
                pair("hint", failure.error.hint()),
            ])?;
            Err(ActionFailure(maas_problem(failure.stage, &failure.error)))
        }
    }
}

fn action_list_nodes(ctx: &Context<'_>) -> Result<(), ActionFailure> {
    let params = params(ctx)?;
    let live = params.get("live").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let hypervisors = params.get("hypervisors").and_then(serde_json::Value::as_str).unwrap_or("");
    let config = action_config(ctx)?;
    let wanted = survey::parse_hypervisor_list(&hypervisors.replace(',', "\n"));
    let request =
        listing::Request { live, concurrency: 16, hypervisors: (!wanted.is_empty()).then_some(wanted), nova: false };
    let listed = listing::list(&config, &request, &|_, _| {})?;
    let rows = &listed.rows;
    let mut results =
        vec![pair("result", "success"), pair("backend", listed.backend.as_str()), pair("total", rows.len())];
    for (state, n) in survey::count_by_power_state(rows) {
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
    if let Some(matches) = &listed.matches {
        let managed = matches.iter().filter(|m| m.managed()).count();
        results.push(pair("hypervisors.managed", managed));
        results.push(pair("hypervisors.skipped", matches.len() - managed));
        let report: Vec<String> = matches
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

fn action_power_status(ctx: &Context<'_>) -> Result<(), ActionFailure> {
    let params = params(ctx)?;
    let Some(wanted) = params.get("node").and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()) else {
        return Err(ActionFailure("the `node` parameter is required (a node id or hostname)".to_owned()));
    };
    let config = action_config(ctx)?;
    let client = backend::connect(&config, 1)?;
    let node = crate::metal::resolve_node(client.as_ref(), wanted).map_err(Error::from)?;
    let state = client.query_power_state(&node.id).map_err(Error::from)?;
    ctx.tools.action_set(&[
        pair("result", "success"),
        pair("backend", client.backend().as_str()),
        pair("node.id", &node.id),
        pair("node.hostname", &node.hostname),
        pair("power-state", state),
    ])?;
    Ok(())
}

/// The `doctor` action: every check, each as `checks.NAME.status`,
/// `.message` and `.hint`; the action fails when a check failed.
fn action_doctor(ctx: &Context<'_>) -> Result<(), ActionFailure> {
    let loaded = read_config(ctx)?;
    let conf = match &loaded {
        Ok(config) => config.watcher_conf_path.clone(),
        Err(_) => PathBuf::from(config::DEFAULT_WATCHER_CONF_PATH),
    };
    let config = loaded.as_ref().map_err(|p| (p.clone(), "fix the charm configuration".to_owned()));
    let report = doctor::diagnose(config, &conf, ctx.system).map_err(Error::from)?;
    let mut results = vec![
        pair("result", if report.failed() { "failed" } else { "ok" }),
        pair("failed", report.count(doctor::Status::Fail)),
        pair("warned", report.count(doctor::Status::Warn)),
    ];
    for c in &report.checks {
        results.push(pair(&format!("checks.{}.status", c.name), c.status.as_str()));
        results.push(pair(&format!("checks.{}.message", c.name), truncate(&c.message)));
        if !c.hint.is_empty() {
            results.push(pair(&format!("checks.{}.hint", c.name), truncate(&c.hint)));
        }
    }
    ctx.tools.action_set(&results)?;
    match report.first(doctor::Status::Fail) {
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
    fn dispatch_paths() {
        assert_eq!(Event::from_dispatch_path("hooks/config-changed"), Some(Event::Hook("config-changed".into())));
        assert_eq!(Event::from_dispatch_path("./actions/list-nodes"), Some(Event::Action("list-nodes".into())));
        assert_eq!(Event::from_dispatch_path("dispatch"), None);
        assert_eq!(Event::from_dispatch_path("hooks/"), None);
        assert_eq!(Event::from_dispatch_path("other/x"), None);
    }

    #[test]
    fn long_statuses_are_cut_at_a_word() {
        let long = "cannot install python3-libmaas: E: Unable to locate package python3-libmaas because the mirror http://archive.example.com/ubuntu is down";
        let short = shorten(long, MAX_STATUS);
        assert!(short.len() <= MAX_STATUS, "{short}");
        assert!(short.ends_with("...") && long.starts_with(short.trim_end_matches("...")), "{short}");
        assert_eq!(shorten("short", MAX_STATUS), "short");
        let unicode = "é".repeat(100);
        assert!(shorten(&unicode, MAX_STATUS).len() <= MAX_STATUS);
    }

    #[test]
    fn status_messages_are_one_line() {
        assert_eq!(one_line("a\n  b\r\nc"), "a b c");
    }

    #[test]
    fn long_results_are_truncated_at_a_line() {
        let text = "x".repeat(100) + "\n" + &"y".repeat(MAX_RESULT_VALUE);
        let out = truncate(&text);
        assert!(out.starts_with(&"x".repeat(100)));
        assert!(out.ends_with("full list)"));
        assert!(out.len() < MAX_RESULT_VALUE + 100);
    }
}
