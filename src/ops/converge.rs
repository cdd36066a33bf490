//! The charm's convergence of its unit, as an operation: read the options,
//! make sure Watcher's MAAS path can run (its services, its version,
//! python-libmaas), try a new MAAS URL or key, write the managed sections
//! where Watcher reads them, install the CA certificate, restart the running
//! Watcher services when (and only when) what they read changed, and decide
//! the unit's status.
//!
//! The policy lives here: what must hold before anything is written (the
//! services exist, python-libmaas imports, MAAS does not refuse the new
//! settings), the restart rule (ARCHITECTURE's invariant), the wait for
//! watcher.conf, what is `blocked` (the operator must act) and what is
//! `waiting` (it may pass by itself), and the status wording: the fix
//! first, within the 120 characters `juju status` shows. The charm
//! face only maps what this returns onto hook tools: each [`Note`] as it
//! comes (so a long restart shows `maintenance` while it runs), then the
//! [`Converged::target`] status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::render::{Renderer, MAAS_SECTION};
use crate::config::{CharmConfig, ConfMode, ConfigError, Warning};
use crate::host::accounts::Accounts;
use crate::host::atomic_file::{self, FileError};
use crate::host::juju::{HookTools, LogLevel, Status};
use crate::host::system::{self, AptFailure, ServiceState, System};
use crate::ops::apply::{self, Plan, Role};
use crate::ops::clock::Clock;
use crate::ops::doctor::{self, Depth, Verdict};
use crate::ops::record::Record;
use crate::ops::source::{self, Source};
use crate::ops::unit::{self, Libmaas, Packages, StateFiles};
use crate::ops::Error;
use crate::secret::SecretString;
use crate::watcher::effective;
use crate::watcher::version::{self, MaasSupport, WatcherVersion};

/// The unit an operation of the charm works on.
pub struct Unit<'a> {
    /// The Juju hook tools: the options (`config-get`) and the key (`secret-get`).
    pub tools: &'a dyn HookTools,
    /// The machine: service restarts, the CA bundle, packages, Watcher's Python.
    pub system: &'a dyn System,
    /// Time: how long the unit has waited for watcher.conf.
    pub clock: &'a dyn Clock,
    /// The charm's directory: its state files; `templates/` there overrides
    /// the built-in templates.
    pub charm_dir: Option<PathBuf>,
    /// The system's directory of extra CA certificates ([`unit::DEFAULT_CA_DIR`]).
    pub ca_dir: PathBuf,
    /// The Juju application of the unit (from `JUJU_UNIT_NAME`): its files
    /// carry its name, so that two applications of the charm on one machine
    /// never touch each other's.
    pub application: Option<String>,
    /// Watcher's user and group as the machine names them: the group new
    /// files get, the HOME whose drop-ins oslo.config reads.
    pub accounts: Accounts,
}

impl Unit<'_> {
    /// The unit's state files (restart owed, waiting since, the record).
    pub(crate) fn state_files(&self, conf: &Path) -> StateFiles {
        StateFiles::new(self.charm_dir.as_deref(), conf)
    }

    /// The record of what the unit wrote; a file there that is not one is
    /// said in the unit's log, as the markers on disk then decide alone.
    pub(crate) fn record(&self, state: &StateFiles, notes: &mut Notes<'_>) -> Result<Record, Error> {
        let record = Record::load(&state.record_path(), self.application.as_deref())?;
        if let Some(why) = record.damaged() {
            notes(Note::Log(
                LogLevel::Warning,
                format!(
                    "{} is not a record of the files this unit wrote ({why}): the markers on disk decide what is ours, \
                     and it is written anew",
                    record.path().display()
                ),
            ))?;
        }
        Ok(record)
    }

    fn templates_dir(&self) -> Option<PathBuf> {
        let dir = self.charm_dir.as_ref()?.join("templates");
        dir.is_dir().then_some(dir)
    }
}

/// What an operation of the charm tells as it goes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A line for the unit's log (`juju-log`).
    Log(LogLevel, String),
    /// A status while the operation runs (`maintenance` during a restart),
    /// or set just before it fails.
    Status(Status, String),
    /// Watcher's version, as `juju status` shows the application's.
    Version(String),
}

/// Where an operation sends its [`Note`]s; an `Err` (a hook tool failed)
/// stops the operation.
pub type Notes<'n> = dyn FnMut(Note) -> Result<(), Error> + 'n;

/// The status the unit converged to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `active`, `waiting` or `blocked`.
    pub status: Status,
    /// What `juju status` shows (the face keeps it to one line).
    pub message: String,
}

/// Why the services were restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A file of the plan changed (written, migrated or removed).
    Files,
    /// A drop-in directory was created: oslo.config looks for it only at start-up.
    DropInDir,
    /// The CA certificate was installed, changed or removed.
    CaCert,
    /// python-libmaas was installed now.
    Libmaas,
    /// A restart failed before, and is still owed.
    Owed,
}

/// What a converge did and where it left the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converged {
    /// The unit's status now.
    pub target: Target,
    /// Why the services were restarted; empty when they were not.
    pub triggers: Vec<Trigger>,
    /// The services restarted, in order.
    pub restarted: Vec<String>,
}

impl Converged {
    fn without_restart(target: Target) -> Converged {
        Converged { target, triggers: Vec::new(), restarted: Vec::new() }
    }
}

/// How long the unit waits for the Watcher charm to write watcher.conf
/// before it says that something else is wrong.
pub const WATCHER_WAIT_LIMIT: Duration = Duration::from_secs(30 * 60);

fn log(notes: &mut Notes<'_>, level: LogLevel, text: impl Into<String>) -> Result<(), Error> {
    notes(Note::Log(level, text.into()))
}

/// A status message: the fix first, then what is wrong, in one line meant
/// to fit in `juju status`'s 120 characters by itself.
fn fix_first(fix: &str, what: &str) -> String {
    format!("{fix}: {what}")
}

/// `blocked` with `message`; the log has `full` (the whole diagnosis and
/// hint).
fn blocked_because(notes: &mut Notes<'_>, message: String, full: &str) -> Result<Target, Error> {
    log(notes, LogLevel::Warning, format!("blocked: {full}"))?;
    Ok(Target { status: Status::Blocked, message })
}

/// `blocked`, said in the log too.
fn blocked(notes: &mut Notes<'_>, message: String) -> Result<Target, Error> {
    let full = message.clone();
    blocked_because(notes, message, &full)
}

/// Faults in watcher.conf the operator must fix (not retryable).
fn blocked_file_problem(e: &FileError) -> bool {
    matches!(
        e,
        FileError::Symlink { .. }
            | FileError::Directory { .. }
            | FileError::NotRegular { .. }
            | FileError::NotText { .. }
            | FileError::Substitution { .. }
    )
}

/// `blocked` for a file at one of our paths that is not ours, the fix first.
fn blocked_not_ours(notes: &mut Notes<'_>, e: &apply::NotOurs) -> Result<Target, Error> {
    let message = match e {
        apply::NotOurs::ForeignDropIn { path } | apply::NotOurs::Output { path } => {
            fix_first(&format!("rename or remove {}", path.display()), "it is not a drop-in of ours")
        }
        apply::NotOurs::OtherApplication { path, application } => {
            fix_first("set another drop-in-name", &format!("{application} wrote {}", path.display()))
        }
        apply::NotOurs::ForeignCaCert { path } => {
            fix_first(&format!("rename or remove {}", path.display()), "it is not a CA certificate of ours")
        }
    };
    blocked_because(notes, message, &format!("{e}; {}", e.hint()))
}

/// `blocked` for a file the operator must fix, the fix first.
fn blocked_file(notes: &mut Notes<'_>, e: &FileError) -> Result<Target, Error> {
    blocked_because(notes, fix_first(&e.hint(), &e.to_string()), &format!("{e}; {}", e.hint()))
}

/// The application's name, for commands the operator runs (`juju
/// grant-secret SECRET APP`).
fn application_name<'u>(unit: &'u Unit<'_>) -> &'u str {
    unit.application.as_deref().unwrap_or("APP")
}

/// What to say of a secret that cannot be read, the fix first.
fn secret_status(unit: &Unit<'_>, e: &ConfigError) -> String {
    match e {
        ConfigError::Secret { uri, message, .. } if message.starts_with("it has no ") => {
            fix_first(&format!("run juju update-secret {uri} api-key=KEY"), "the secret has no api-key")
        }
        ConfigError::Secret { uri, .. } => fix_first(
            &format!("run juju grant-secret {uri} {}", application_name(unit)),
            "this unit cannot read maas-api-key-secret",
        ),
        other => other.to_string(),
    }
}

/// Reads and resolves the config, or says why the unit is blocked. The key
/// is read with `secret-get --refresh` every time, so a new revision of the
/// secret, or another secret, is never missed.
pub fn read_config(unit: &Unit<'_>, notes: &mut Notes<'_>) -> Result<Result<CharmConfig, String>, Error> {
    let tools = unit.tools;
    match source::load(Source::Hook { tools, refresh: true }) {
        Ok((config, warnings)) => {
            log_warnings(notes, &warnings)?;
            Ok(Ok(config))
        }
        Err(Error::Config(ConfigError::Invalid(problems))) => {
            for p in &problems {
                log(notes, LogLevel::Warning, format!("config: {p} ({})", p.hint))?;
            }
            let first = problems.first().map(ToString::to_string).unwrap_or_else(|| "invalid configuration".into());
            let more = match problems.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more problem{})", n - 1, if n == 2 { "" } else { "s" }),
            };
            Ok(Err(format!("{first}{more}")))
        }
        Err(Error::Config(e @ ConfigError::Secret { .. })) => {
            log(notes, LogLevel::Warning, format!("{e} ({})", e.hint()))?;
            Ok(Err(secret_status(unit, &e)))
        }
        Err(e) => Err(e),
    }
}

fn log_warnings(notes: &mut Notes<'_>, warnings: &[Warning]) -> Result<(), Error> {
    for w in warnings {
        log(notes, LogLevel::Warning, format!("config: {w}"))?;
    }
    Ok(())
}

/// Converges the unit. `depth` is [`Depth::Cheap`] for update-status
/// (whose rewrite of a file of ours is a repair) and [`Depth::Hook`] for
/// the other hooks; both spend at most [`crate::ops::validate::HOOK_MAAS_TIME`] on
/// MAAS. `Err` is a real fault (a hook tool, systemd or a write failing):
/// the hook fails and Juju retries it; a restart that failed is then still
/// owed.
pub fn converge(unit: &Unit<'_>, depth: Depth, notes: &mut Notes<'_>) -> Result<Converged, Error> {
    let config = match read_config(unit, notes)? {
        Ok(config) => config,
        Err(problem) => return Ok(Converged::without_restart(blocked(notes, problem)?)),
    };
    let path = config.watcher_conf_path.clone();
    let packages = query_packages(unit.system, notes)?;
    let version = watcher_version(&packages, notes)?;
    let state = unit.state_files(&path);
    match atomic_file::read_existing(&path) {
        Ok(Some(_)) => state.done_waiting(),
        Ok(None) => return Ok(Converged::without_restart(wait_for_watcher(unit, notes, &path, &state, version)?)),
        Err(e) if blocked_file_problem(&e) => return Ok(Converged::without_restart(blocked_file(notes, &e)?)),
        Err(e) => return Err(e.into()),
    }
    let running = match service_states(unit.system, &config.services, notes)? {
        Ok(running) => running,
        Err(target) => return Ok(Converged::without_restart(target)),
    };
    let renderer = Renderer::new(unit.templates_dir().as_deref())?;
    let mut record = unit.record(&state, notes)?;
    let writer =
        apply::Writer { application: unit.application.as_deref(), record: Some(&record), accounts: &unit.accounts };
    let plan = match apply::plan_for(&config, &renderer, writer) {
        Ok(plan) => plan,
        Err(apply::PlanError::File(e)) if blocked_file_problem(&e) => {
            return Ok(Converged::without_restart(blocked_file(notes, &e)?))
        }
        Err(apply::PlanError::NotOurs(e)) => return Ok(Converged::without_restart(blocked_not_ours(notes, &e)?)),
        Err(e) => return Err(e.into()),
    };

    // What Watcher's MAAS path needs comes before the MAAS settings: Watcher
    // never runs a MAAS configuration it cannot import.
    let ready = match &config.maas {
        Some(_) => check_maas_ready(unit, &packages, &state, notes, version)?,
        None => Readiness::default(),
    };
    if let Some(target) = ready.not_yet {
        return Ok(Converged::without_restart(target));
    }
    // A new key or URL is tried before it is written: one MAAS refuses is
    // never applied, and Watcher keeps the settings it has.
    let budget = depth.maas_budget();
    let tried = match &config.maas {
        Some(maas) if maas_settings_change(&plan, &config) => try_maas(maas, budget),
        _ => None,
    };
    match &tried {
        Some(Ok(report)) => {
            let user = report.user.as_ref().map_or("?", |u| u.username.as_str());
            log(notes, LogLevel::Info, format!("MAAS accepts the new URL and key (user {user}): writing them"))?;
        }
        Some(Err(failure)) if doctor::is_transient(&failure.error) => {
            let why = format!("{}{}", failure.stage.failure_prefix(), failure.error);
            log(notes, LogLevel::Warning, format!("MAAS cannot judge the new URL and key now ({why}): writing them"))?;
        }
        Some(Err(failure)) => {
            return Ok(Converged::without_restart(refuse_settings(notes, &plan, &config, failure)?));
        }
        None => {}
    }
    let paused = std::time::Instant::now();

    let applied = write(notes, &plan, &mut record)?;
    for (path, role, outcome) in applied.outcomes.iter().filter(|(_, _, o)| o.changed()) {
        let why = match role {
            Role::Managed => "",
            Role::Migration => " (removed the sections an earlier merge wrote, which would override the drop-in)",
            Role::Cleanup => " (the sections are merged into watcher.conf now)",
            Role::Stale => " (the options no longer name it)",
        };
        log(notes, LogLevel::Info, format!("{} {}{why}", outcome.as_str(), path.display()))?;
    }
    for (path, mode) in &applied.tightened {
        log(notes, LogLevel::Warning, apply::tightened_line(path, *mode))?;
    }
    let pem = config.maas.as_ref().and_then(|m| m.ca_cert.as_deref());
    let ca = match unit::install_ca(unit.system, &unit.ca_dir, unit.application.as_deref(), pem, &mut record) {
        Ok(ca) => ca,
        Err(Error::NotOurs(e)) => return Ok(Converged::without_restart(blocked_not_ours(notes, &e)?)),
        Err(e) => return Err(e),
    };
    let ca_changed = ca.changed;
    if ca_changed {
        log_ca_change(notes, &ca.path, pem.is_some())?;
    }

    // A restart that failed last time is owed even if nothing changed now.
    let triggers: Vec<Trigger> = [
        (applied.outcomes.iter().any(|(_, _, o)| o.changed()), Trigger::Files),
        (applied.created_dir(), Trigger::DropInDir),
        (ca_changed, Trigger::CaCert),
        (ready.installed_libmaas, Trigger::Libmaas),
        (state.restart_owed(), Trigger::Owed),
    ]
    .into_iter()
    .filter_map(|(fired, trigger)| fired.then_some(trigger))
    .collect();
    let mut restarted = Vec::new();
    if !triggers.is_empty() {
        state.owe_restart();
        notes(Note::Status(Status::Maintenance, "restarting Watcher's services".to_owned()))?;
        for (service, runs) in config.services.iter().zip(&running) {
            if let Some(why) = runs {
                log(
                    notes,
                    LogLevel::Info,
                    format!("{service} is {why}: not restarted; it reads the settings when it starts"),
                )?;
                continue;
            }
            unit::restart(unit.system, service)?;
            log(notes, LogLevel::Info, format!("restarted {service}"))?;
            restarted.push(service.clone());
        }
        // A service watcher-services no longer names, whose drop-in was
        // taken out now, still runs with the settings it read: once more.
        for service in dropped_services(&config, &applied) {
            if let Ok([ServiceState::Running]) = unit.system.service_states(std::slice::from_ref(&service)).as_deref() {
                unit::restart(unit.system, &service)?;
                log(notes, LogLevel::Info, format!("restarted {service} (watcher-services no longer names it)"))?;
                restarted.push(service);
            }
        }
        state.restarted();
    }
    let done = |target| Ok(Converged { target, triggers, restarted });

    if let Some((message, full)) = ready.blocked {
        return done(blocked_because(notes, message, &full)?);
    }

    // The status comes from the doctor's checks: the first failure leads.
    let inputs = doctor::Inputs {
        config: Ok(&config),
        layout: &plan.layout_after,
        clashes: &plan.clashes,
        system: unit.system,
        accounts: &unit.accounts,
        depth,
    };
    let known = doctor::Known {
        watcher_package: packages.known().then(|| packages.version(system::WATCHER_PACKAGE).map(str::to_owned)),
        libmaas: ready.libmaas,
        maas: tried,
        budget: Some(budget.resumed(paused)),
        // A hook asks no OpenStack service; MAAS is reached directly.
        reach: crate::ops::backend::Reach::direct(),
    };
    let (report, found) = doctor::run_with(&inputs, known);
    for c in report.checks.iter().filter(|c| matches!(c.status, Verdict::Warn | Verdict::Fail)) {
        log(notes, LogLevel::Warning, format!("{} {}: {}; {}", c.name, c.status.as_str(), c.message, c.hint))?;
    }
    if let Some(failed) = report.first(Verdict::Fail) {
        if failed.transient {
            let message = format!("MAAS (re-checked by update-status): {}", failed.message);
            return done(Target { status: Status::Waiting, message });
        }
        let full = format!("{}; {}", failed.message, failed.hint);
        let message = match (plan.clashes.first(), failed.fix.as_str()) {
            (Some(clash), _) if failed.name == "config" => clash_status(clash),
            (_, "") => full.clone(),
            (_, fix) => fix_first(fix, &failed.message),
        };
        return done(blocked_because(notes, message, &full)?);
    }

    let file_note = match written(&plan, &config, &applied) {
        Written::No => String::new(),
        Written::First => format!("; {} written", file_label(&plan)),
        Written::Again if depth == Depth::Cheap => format!("; repaired {}", file_label(&plan)),
        Written::Again => format!("; {} updated", file_label(&plan)),
    };
    let base = match &config.maas {
        None => "Ironic backend (maas-url unset)".to_owned(),
        Some(_) => format!(
            "MAAS {}, user {}",
            found.maas_version.as_deref().unwrap_or("?"),
            found.maas_user.as_deref().unwrap_or("?")
        ),
    };
    let message = match report.first(Verdict::Warn).filter(|_| config.maas.is_some()) {
        Some(warning) => format!("{}; {base}{file_note}", warning.message),
        None => format!("{base}{file_note}"),
    };
    done(Target { status: Status::Active, message })
}

/// A clash, the fix first.
fn clash_status(clash: &effective::Clash) -> String {
    match clash {
        effective::Clash::Option { section, option, path } => fix_first(
            &format!("remove {option} from [{section}] in {}", path.display()),
            "it overrides the charm's setting",
        ),
        effective::Clash::Shadowed { dir, ours } => fix_first(
            &format!("move {}'s files to {} and remove it", dir.display(), ours.parent().unwrap_or(ours).display()),
            "Watcher reads it instead",
        ),
    }
}

/// Whether the managed files were written now, and whether for the first
/// time as far as they show (none of them held our settings before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    No,
    First,
    Again,
}

/// The files of the plan that hold the managed sections (the drop-ins, or
/// watcher.conf in merge mode).
fn managed<'p>(plan: &'p Plan, config: &CharmConfig) -> Vec<&'p apply::FileChange> {
    let targets = config.target_paths();
    plan.files.iter().filter(|f| f.new.is_some() && targets.contains(&f.path)).collect()
}

fn written(plan: &Plan, config: &CharmConfig, applied: &apply::Applied) -> Written {
    if !applied.outcomes.iter().any(|(_, role, o)| *role == Role::Managed && o.changed()) {
        return Written::No;
    }
    let ours_before = managed(plan, config).into_iter().any(|f| {
        f.old
            .as_deref()
            .is_some_and(|old| apply::without_our_sections(old) != old || crate::config::render::is_our_drop_in(old))
    });
    if ours_before {
        Written::Again
    } else {
        Written::First
    }
}

/// `[maas_client] url` and `api_key` in a file's text.
fn maas_settings(text: Option<&str>) -> (Option<String>, Option<SecretString>) {
    let Some(text) = text else { return (None, None) };
    let section = crate::watcher::ini::read_section(text, MAAS_SECTION);
    let url = crate::clients::last_setting(&section, "url").cloned();
    let key = crate::clients::last_setting(&section, "api_key").map(|k| SecretString::new(k.clone()));
    (url, key)
}

/// Whether the plan changes the MAAS URL or key Watcher's services read
/// from our files, compared with what those files hold now (the key is
/// kept nowhere else).
fn maas_settings_change(plan: &Plan, config: &CharmConfig) -> bool {
    managed(plan, config).into_iter().any(|f| {
        let (old_url, old_key) = maas_settings(f.old.as_deref());
        let (new_url, new_key) = maas_settings(f.new.as_deref());
        old_url != new_url || old_key.as_ref().map(SecretString::expose) != new_key.as_ref().map(SecretString::expose)
    })
}

/// MAAS's version and key check with the new settings, within `budget`;
/// `None` when no client can be built (the doctor says why).
fn try_maas(
    maas: &crate::config::MaasSettings,
    budget: crate::ops::validate::Budget,
) -> Option<Result<crate::ops::validate::Report, Box<crate::ops::validate::Failure>>> {
    let client = crate::ops::backend::maas_client(maas, crate::ops::backend::maas_options(maas)).ok()?;
    Some(crate::ops::validate::validate_within(&client, false, budget))
}

/// MAAS refused the new settings: nothing is written, and the status says
/// what Watcher keeps.
fn refuse_settings(
    notes: &mut Notes<'_>,
    plan: &Plan,
    config: &CharmConfig,
    failure: &crate::ops::validate::Failure,
) -> Result<Target, Error> {
    let managed = managed(plan, config);
    let had_url = managed.iter().any(|f| maas_settings(f.old.as_deref()).0.is_some());
    let same_url = managed.iter().all(|f| maas_settings(f.old.as_deref()).0 == maas_settings(f.new.as_deref()).0);
    let kept = match (had_url, same_url) {
        (false, _) => "nothing written",
        (true, true) => "Watcher keeps the previous key",
        (true, false) => "Watcher keeps the previous MAAS settings",
    };
    let what = format!("{}{}", failure.stage.failure_prefix(), failure.error);
    let message = fix_first(&failure.error.fix(), &format!("{what}; {kept}"));
    let full = format!("the new MAAS settings were not written: {what}; {}", failure.error.hint());
    blocked_because(notes, message, &full)
}

/// watcher.conf does not exist (yet): waiting while the Watcher charm may
/// still be installing; `blocked` once that is no longer believable.
fn wait_for_watcher(
    unit: &Unit<'_>,
    notes: &mut Notes<'_>,
    path: &Path,
    state: &StateFiles,
    version: Option<WatcherVersion>,
) -> Result<Target, Error> {
    let now = unit.clock.unix_secs();
    let since = state.waiting_since(now);
    let waited = Duration::from_secs(now.saturating_sub(since));
    if version.is_none() && waited >= WATCHER_WAIT_LIMIT {
        return blocked(
            notes,
            fix_first(
                "relate to the Watcher charm",
                &format!(
                    "no {} and no {} here after {} min",
                    system::WATCHER_PACKAGE,
                    path.display(),
                    waited.as_secs() / 60
                ),
            ),
        );
    }
    let message = format!("waiting for {} (deploy the Watcher charm on this machine)", path.display());
    Ok(Target { status: Status::Waiting, message })
}

/// The unit's packages, from one `dpkg-query`; unknown (all `None`, with a
/// warning) when dpkg cannot be asked.
fn query_packages(system: &dyn System, notes: &mut Notes<'_>) -> Result<Packages, Error> {
    match Packages::query(system) {
        Ok(packages) => Ok(packages),
        Err(e) => {
            log(notes, LogLevel::Warning, format!("cannot read the installed packages: {e}"))?;
            Ok(Packages::default())
        }
    }
}

/// Watcher's installed version, also shown by `juju status` as the
/// application's version.
fn watcher_version(packages: &Packages, notes: &mut Notes<'_>) -> Result<Option<WatcherVersion>, Error> {
    let Some(text) = packages.version(system::WATCHER_PACKAGE) else { return Ok(None) };
    let version = WatcherVersion::parse_deb(text);
    match version {
        Some(v) => notes(Note::Version(v.to_string()))?,
        None => log(notes, LogLevel::Warning, format!("cannot read Watcher's version from `{text}`"))?,
    }
    Ok(version)
}

/// Each of `services`' reason not to be restarted (`None`: it runs), or
/// `blocked` naming those that have no systemd unit here. When systemd
/// cannot be asked, every service is taken as running (and `try-restart`
/// says the rest).
fn service_states(
    system: &dyn System,
    services: &[String],
    notes: &mut Notes<'_>,
) -> Result<Result<Vec<Option<String>>, Target>, Error> {
    let states = match system.service_states(services) {
        Ok(states) => states,
        Err(e) => {
            log(notes, LogLevel::Warning, format!("cannot ask systemd about watcher-services: {e}"))?;
            return Ok(Ok(vec![None; services.len()]));
        }
    };
    let missing: Vec<&str> = services
        .iter()
        .zip(&states)
        .filter(|(_, s)| **s == ServiceState::Missing)
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        let names = missing.join(", ");
        let (units, them) = if missing.len() == 1 { ("unit", "it") } else { ("units", "them") };
        let message = fix_first(
            &format!("remove {names} from watcher-services, or install {them}"),
            &format!("no systemd {units} of that name here"),
        );
        return Ok(Err(blocked(notes, message)?));
    }
    Ok(Ok(states
        .into_iter()
        .map(|s| match s {
            ServiceState::Running => None,
            ServiceState::NotRunning(why) => Some(why),
            ServiceState::Missing => Some("missing".to_owned()),
        })
        .collect()))
}

/// The programs whose drop-in `applied` removed as stale (of a service
/// `config` no longer names), by their `<program>.conf.d` directory.
fn dropped_services(config: &CharmConfig, applied: &apply::Applied) -> Vec<String> {
    let mut dropped: Vec<String> = Vec::new();
    for (path, role, outcome) in &applied.outcomes {
        if *role != Role::Stale || *outcome != apply::Outcome::Removed {
            continue;
        }
        let program = path.parent().and_then(Path::file_name).and_then(|n| n.to_str()?.strip_suffix(".conf.d"));
        if let Some(program) = program.filter(|p| !p.is_empty() && *p != "watcher") {
            if !config.programs().contains(&program) && !dropped.iter().any(|d| d == program) {
                dropped.push(program.to_owned());
            }
        }
    }
    dropped
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
    /// Whether Watcher's Python imports python-libmaas (`None`: not checked).
    libmaas: Option<bool>,
    /// Why Watcher cannot use MAAS here (its version), for a `blocked`
    /// status once the settings are written: the status, the whole reason.
    blocked: Option<(String, String)>,
    /// Why nothing may be written yet (python-libmaas missing): the unit's
    /// status now.
    not_yet: Option<Target>,
}

/// Watcher's version and python-libmaas. Cheap when all is well: nothing
/// runs while the packages are as they were when the import last worked.
fn check_maas_ready(
    unit: &Unit<'_>,
    packages: &Packages,
    state: &StateFiles,
    notes: &mut Notes<'_>,
    version: Option<WatcherVersion>,
) -> Result<Readiness, Error> {
    let mut ready = Readiness::default();
    match version {
        None => log(
            notes,
            LogLevel::Warning,
            format!("{} is not installed; Watcher's version is unknown", system::WATCHER_PACKAGE),
        )?,
        Some(version) => match version.maas_support() {
            MaasSupport::Missing => {
                let what = format!(
                    "Watcher {version} has no MAAS support (2024.1, {}, or later needed)",
                    version::FIRST_WITH_MAAS
                );
                let message = fix_first(
                    &format!("upgrade Watcher to {} (2024.1) or later, or unset maas-url", version::FIRST_WITH_MAAS),
                    &format!("Watcher {version} has no MAAS support"),
                );
                ready.blocked = Some((message, what));
                return Ok(ready);
            }
            // Power actions would fail: the operator must choose a way out.
            MaasSupport::Defective { why } => {
                let full = format!("Watcher {version}: {}", doctor::defective_maas_hint(why));
                ready.blocked = Some((doctor::defective_maas(version), full));
                return Ok(ready);
            }
            MaasSupport::Works => {}
        },
    }
    let package = system::LIBMAAS_PACKAGE;
    let mut installing = || -> Result<(), Error> {
        let status = format!("installing {package} (Watcher's MAAS helper needs it)");
        notes(Note::Status(Status::Maintenance, status))?;
        let why = format!("Watcher's Python cannot import {}: installing {package}", system::LIBMAAS_MODULE);
        log(notes, LogLevel::Info, why)
    };
    let later = "MAAS settings wait for it";
    match unit::ensure_libmaas(unit.system, packages, &state.libmaas_record(), &mut installing)? {
        Libmaas::Present => ready.libmaas = Some(true),
        Libmaas::Installed => {
            log(notes, LogLevel::Info, format!("installed {package}"))?;
            ready.installed_libmaas = true;
            ready.libmaas = Some(true);
        }
        Libmaas::StillMissing => {
            let what = format!(
                "{package} is installed but Watcher's {} cannot import {}",
                system::WATCHER_PYTHON,
                system::LIBMAAS_MODULE
            );
            let message = fix_first(
                &format!("repair {package} for Watcher's {} ({later})", system::WATCHER_PYTHON),
                &format!("it does not import {}", system::LIBMAAS_MODULE),
            );
            ready.not_yet = Some(blocked_because(notes, message, &format!("{what}; {later}"))?);
        }
        Libmaas::InstallFailed(failure) => {
            let line = failure.line().to_owned();
            log(notes, LogLevel::Warning, format!("cannot install {package}: {line}"))?;
            ready.not_yet = Some(match failure {
                AptFailure::Locked(_) => Target {
                    status: Status::Waiting,
                    message: format!(
                        "waiting for apt's lock (another install runs) to install {package}; then the MAAS settings"
                    ),
                },
                AptFailure::Unreachable(_) => Target {
                    status: Status::Waiting,
                    message: format!("waiting to download {package}, then the MAAS settings: {line}"),
                },
                AptFailure::Refused(_) => {
                    let message = fix_first(&format!("make {package} installable ({later})"), &line);
                    blocked_because(notes, message, &format!("cannot install {package}: {line}; {later}"))?
                }
            });
        }
    }
    Ok(ready)
}

/// Writes the plan, remembering in `record` every file it may write before
/// and what it wrote after; a failure is logged and leaves the unit
/// `blocked` before the hook fails.
fn write(notes: &mut Notes<'_>, plan: &Plan, record: &mut Record) -> Result<apply::Applied, Error> {
    match apply::apply_recorded(plan, record) {
        Ok(applied) => Ok(applied),
        Err(e) => {
            let message = format!("{e}; {}", e.hint());
            log(notes, LogLevel::Error, message.clone())?;
            if blocked_file_problem(&e) {
                log(notes, LogLevel::Warning, format!("blocked: {message}"))?;
            }
            notes(Note::Status(Status::Blocked, fix_first(&e.hint(), &e.to_string())))?;
            Err(e.into())
        }
    }
}

/// Says that the CA certificate at `path` was installed or removed.
pub(crate) fn log_ca_change(notes: &mut Notes<'_>, path: &Path, installed: bool) -> Result<(), Error> {
    let verb = if installed { "installed" } else { "removed" };
    log(notes, LogLevel::Info, format!("{verb} {} and rebuilt the CA bundle", path.display()))
}

#[cfg(test)]
pub(crate) mod fakes {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use crate::host::juju::{HookToolError, HookTools, Status};
    use crate::host::system::{AptFailure, ServiceState, System};
    use crate::ops::clock::FakeClock;
    use crate::secret::SecretString;

    use super::{Note, Unit};

    /// A MAAS API key of the right shape.
    pub(crate) const KEY: &str = "TestConsumerKey123:TestTokenKey456789:TestTokenSecretAbcdefghijklmnop12";

    /// Hook tools that answer `config-get` with [`FakeTools::config`];
    /// the operations report through [`Note`]s, so nothing else is called.
    pub(crate) struct FakeTools {
        pub(crate) config: Mutex<serde_json::Value>,
    }

    impl HookTools for FakeTools {
        fn config_get_all(&self) -> Result<String, HookToolError> {
            Ok(self.config.lock().unwrap().to_string())
        }
        fn secret_get(&self, _: &str, _: bool) -> Result<SecretString, HookToolError> {
            unreachable!("the tests configure maas-api-key")
        }
        fn status_set(&self, _: Status, _: &str) -> Result<(), HookToolError> {
            unreachable!("statuses are notes")
        }
        fn application_version_set(&self, _: &str) -> Result<(), HookToolError> {
            unreachable!("the version is a note")
        }
        fn log(&self, _: crate::host::juju::LogLevel, _: &str) -> Result<(), HookToolError> {
            unreachable!("log lines are notes")
        }
        fn action_get(&self) -> Result<String, HookToolError> {
            Ok("{}".into())
        }
        fn action_set(&self, _: &[(String, String)]) -> Result<(), HookToolError> {
            Ok(())
        }
        fn action_fail(&self, _: &str) -> Result<(), HookToolError> {
            Ok(())
        }
    }

    /// A machine with Watcher installed, python-libmaas importable and
    /// every service running unless told otherwise; restarts, installs,
    /// package queries and imports are recorded.
    #[derive(Default)]
    pub(crate) struct FakeSystem {
        pub(crate) watcher: Mutex<Option<String>>,
        pub(crate) libmaas: Mutex<bool>,
        pub(crate) failing_restarts: Mutex<usize>,
        pub(crate) restarts: Mutex<Vec<String>>,
        pub(crate) installs: Mutex<Vec<String>>,
        pub(crate) ca_refreshes: Mutex<usize>,
        /// What each apt-get install does, in turn; it installs once these
        /// are used up.
        pub(crate) apt: Mutex<std::collections::VecDeque<AptFailure>>,
        /// Services that are not running, by name.
        pub(crate) services: Mutex<Vec<(String, ServiceState)>>,
        pub(crate) dpkg_queries: Mutex<usize>,
        pub(crate) imports: Mutex<usize>,
    }

    impl FakeSystem {
        pub(crate) fn new() -> FakeSystem {
            let system = FakeSystem::default();
            *system.watcher.lock().unwrap() = Some("2:14.0.0-0ubuntu1".into());
            *system.libmaas.lock().unwrap() = true;
            system
        }
        /// The restarts since the last call.
        pub(crate) fn take_restarts(&self) -> Vec<String> {
            std::mem::take(&mut *self.restarts.lock().unwrap())
        }
    }

    impl System for FakeSystem {
        fn restart(&self, service: &str) -> Result<(), String> {
            let mut failing = self.failing_restarts.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(format!("systemctl try-restart {service}: Job failed"));
            }
            self.restarts.lock().unwrap().push(service.to_owned());
            Ok(())
        }
        fn service_states(&self, services: &[String]) -> Result<Vec<ServiceState>, String> {
            let states = self.services.lock().unwrap();
            Ok(services
                .iter()
                .map(|s| states.iter().find(|(n, _)| n == s).map_or(ServiceState::Running, |(_, st)| st.clone()))
                .collect())
        }
        fn refresh_ca_bundle(&self) -> Result<(), String> {
            *self.ca_refreshes.lock().unwrap() += 1;
            Ok(())
        }
        fn service_environment(&self, _: &str) -> Result<Option<Vec<(String, String)>>, String> {
            Ok(None)
        }
        fn package_versions(&self, packages: &[&str]) -> Result<Vec<Option<String>>, String> {
            *self.dpkg_queries.lock().unwrap() += 1;
            let libmaas = *self.libmaas.lock().unwrap();
            Ok(packages
                .iter()
                .map(|p| match *p {
                    crate::host::system::WATCHER_PACKAGE => self.watcher.lock().unwrap().clone(),
                    crate::host::system::LIBMAAS_PACKAGE => libmaas.then(|| "0.6.8-3".to_owned()),
                    _ => Some("3.12.3-0ubuntu2".to_owned()),
                })
                .collect())
        }
        fn python_imports(&self, _: &str) -> Result<bool, String> {
            *self.imports.lock().unwrap() += 1;
            Ok(*self.libmaas.lock().unwrap())
        }
        fn install_package(&self, package: &str) -> Result<(), AptFailure> {
            self.installs.lock().unwrap().push(package.to_owned());
            if let Some(failure) = self.apt.lock().unwrap().pop_front() {
                return Err(failure);
            }
            *self.libmaas.lock().unwrap() = true;
            Ok(())
        }
    }

    /// A unit in a temporary directory: watcher.conf as the principal left
    /// it under `etc-watcher/`, the charm directory, the CA directory.
    pub(crate) struct FakeUnit {
        pub(crate) dir: tempfile::TempDir,
        pub(crate) tools: FakeTools,
        pub(crate) system: FakeSystem,
        pub(crate) clock: FakeClock,
    }

    impl FakeUnit {
        /// With MAAS at a loopback port nothing listens on (refused at once).
        pub(crate) fn new() -> FakeUnit {
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("etc-watcher").join("watcher.conf");
            std::fs::create_dir(conf.parent().unwrap()).unwrap();
            std::fs::write(&conf, "[DEFAULT]\ndebug = False\n").unwrap();
            std::fs::create_dir(dir.path().join("charm")).unwrap();
            std::fs::create_dir(dir.path().join("ca")).unwrap();
            let config = serde_json::json!({
                "maas-url": format!("http://127.0.0.1:{}/MAAS", closed_port()), "maas-api-key": KEY,
                "maas-timeout": 5, "watcher-conf-path": conf.display().to_string(),
                "watcher-conf-mode": "drop-in", "drop-in-name": "50-watcher-metal.conf",
                "drop-in-root": dir.path().display().to_string(),
                "watcher-services": "watcher-decision-engine watcher-applier",
            });
            FakeUnit {
                dir,
                tools: FakeTools { config: Mutex::new(config) },
                system: FakeSystem::new(),
                clock: FakeClock::new(1_700_000_000),
            }
        }

        pub(crate) fn unit(&self) -> Unit<'_> {
            Unit {
                tools: &self.tools,
                system: &self.system,
                clock: &self.clock,
                charm_dir: Some(self.dir.path().join("charm")),
                ca_dir: self.dir.path().join("ca"),
                application: Some("watcher-maas".to_owned()),
                accounts: self.accounts(),
            }
        }

        /// A machine whose `watcher` user has the unit's directory, the
        /// drop-in root, as its HOME.
        pub(crate) fn accounts(&self) -> crate::host::accounts::Accounts {
            let etc = self.dir.path().join("accounts");
            if !etc.exists() {
                std::fs::create_dir(&etc).unwrap();
                let home = self.dir.path().display();
                std::fs::write(etc.join("passwd"), format!("watcher:x:64061:64061::{home}:/usr/sbin/nologin\n"))
                    .unwrap();
                std::fs::write(etc.join("group"), "").unwrap();
            }
            crate::host::accounts::Accounts::in_dir(&etc)
        }

        pub(crate) fn set(&self, option: &str, value: serde_json::Value) {
            self.tools.config.lock().unwrap()[option] = value;
        }

        pub(crate) fn conf(&self) -> PathBuf {
            self.dir.path().join("etc-watcher").join("watcher.conf")
        }

        pub(crate) fn drop_in(&self, program: &str) -> PathBuf {
            self.dir.path().join(format!("{program}.conf.d")).join("50-watcher-metal.conf")
        }
    }

    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// Runs `op`, collecting its notes.
    pub(crate) fn noted<T>(
        op: impl FnOnce(&mut dyn FnMut(Note) -> Result<(), crate::ops::Error>) -> T,
    ) -> (T, Vec<Note>) {
        let mut notes = Vec::new();
        let out = op(&mut |note| {
            notes.push(note);
            Ok(())
        });
        (out, notes)
    }

    /// Whether `path` exists (a dangling symlink counts).
    pub(crate) fn present(path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::fakes::{noted, FakeUnit, KEY};
    use super::*;

    const SERVICES: [&str; 2] = ["watcher-decision-engine", "watcher-applier"];

    fn run(unit: &FakeUnit, depth: Depth) -> (Result<Converged, Error>, Vec<Note>) {
        noted(|notes| converge(&unit.unit(), depth, notes))
    }

    fn converged(unit: &FakeUnit) -> Converged {
        let (done, notes) = run(unit, Depth::Hook);
        done.unwrap_or_else(|e| panic!("{e}: {notes:?}"))
    }

    /// A unit converged once, so that nothing is left to change.
    fn settled() -> FakeUnit {
        let unit = FakeUnit::new();
        let first = converged(&unit);
        assert_eq!(first.triggers, [Trigger::Files, Trigger::DropInDir]);
        assert_eq!(unit.system.take_restarts(), SERVICES);
        unit
    }

    #[test]
    fn nothing_changed_restarts_nothing() {
        let unit = settled();
        let again = converged(&unit);
        assert_eq!((again.triggers, again.restarted), (vec![], vec![]));
        assert!(unit.system.take_restarts().is_empty());
        // The principal rewriting watcher.conf does not touch what Watcher
        // reads for the managed options.
        std::fs::write(unit.conf(), "[DEFAULT]\ndebug = True\n").unwrap();
        assert!(converged(&unit).triggers.is_empty());
    }

    #[test]
    fn a_changed_file_restarts() {
        let unit = settled();
        unit.set("maas-timeout", 7.into());
        let done = converged(&unit);
        assert_eq!(done.triggers, [Trigger::Files]);
        assert_eq!(done.restarted, SERVICES);
        assert_eq!(unit.system.take_restarts(), SERVICES);
    }

    #[test]
    fn a_drop_in_removed_by_hand_is_put_back_with_a_restart() {
        let unit = settled();
        std::fs::remove_file(unit.drop_in("watcher-applier")).unwrap();
        let (done, notes) = run(&unit, Depth::Cheap);
        let done = done.unwrap();
        assert_eq!(done.triggers, [Trigger::Files]);
        let put_back = format!("created {}", unit.drop_in("watcher-applier").display());
        assert!(notes.contains(&Note::Log(LogLevel::Info, put_back)), "{notes:?}");
    }

    #[test]
    fn a_created_drop_in_directory_restarts() {
        let unit = settled();
        // The directory gone with the file in it: both come back, and
        // oslo.config looks for a directory only at start-up.
        std::fs::remove_dir_all(unit.drop_in("watcher-decision-engine").parent().unwrap()).unwrap();
        assert_eq!(converged(&unit).triggers, [Trigger::Files, Trigger::DropInDir]);
    }

    #[test]
    fn a_changed_ca_restarts() {
        let unit = settled();
        unit.set("maas-ca-cert", crate::config::TEST_CA_PEM.into());
        let done = converged(&unit);
        assert!(done.triggers.contains(&Trigger::CaCert), "{:?}", done.triggers);
        assert_eq!(*unit.system.ca_refreshes.lock().unwrap(), 1);
        assert_eq!(unit.system.take_restarts(), SERVICES);
        assert!(converged(&unit).triggers.is_empty(), "the same CA again changes nothing");
    }

    #[test]
    fn installing_python_libmaas_restarts() {
        let unit = settled();
        *unit.system.libmaas.lock().unwrap() = false;
        let (done, notes) = run(&unit, Depth::Hook);
        let done = done.unwrap();
        assert_eq!(done.triggers, [Trigger::Libmaas]);
        assert_eq!(*unit.system.installs.lock().unwrap(), ["python3-libmaas"]);
        let installing = "installing python3-libmaas (Watcher's MAAS helper needs it)".to_owned();
        let restarting = "restarting Watcher's services".to_owned();
        let statuses: Vec<&Note> = notes.iter().filter(|n| matches!(n, Note::Status(..))).collect();
        assert_eq!(
            statuses,
            [&Note::Status(Status::Maintenance, installing), &Note::Status(Status::Maintenance, restarting)]
        );
    }

    #[test]
    fn a_failed_restart_fails_and_is_owed_until_done() {
        let unit = settled();
        unit.set("maas-timeout", 9.into());
        *unit.system.failing_restarts.lock().unwrap() = 1;
        let (done, _) = run(&unit, Depth::Hook);
        assert_eq!(done.unwrap_err().to_string(), "systemctl try-restart watcher-decision-engine: Job failed");
        // Juju retries: the files are right now, the restart is still owed.
        let retried = converged(&unit);
        assert_eq!(retried.triggers, [Trigger::Owed]);
        assert_eq!(unit.system.take_restarts(), SERVICES);
        assert!(converged(&unit).triggers.is_empty(), "paid once");
    }

    #[test]
    fn an_unreachable_maas_is_waiting() {
        let unit = settled();
        let target = converged(&unit).target;
        assert_eq!(target.status, Status::Waiting);
        assert!(target
            .message
            .starts_with("MAAS (re-checked by update-status): cannot use maas-url: connection refused"));
    }

    #[test]
    fn a_bad_option_is_blocked_and_writes_nothing() {
        let unit = FakeUnit::new();
        unit.set("maas-timeout", (-1).into());
        let (done, notes) = run(&unit, Depth::Hook);
        let done = done.unwrap();
        assert_eq!(done.target.status, Status::Blocked);
        assert!(done.target.message.contains("maas-timeout"), "{}", done.target.message);
        let said = format!("blocked: {}", done.target.message);
        assert!(notes.contains(&Note::Log(LogLevel::Warning, said)), "{notes:?}");
        assert!(!unit.drop_in("watcher-applier").exists());
        assert!(unit.system.take_restarts().is_empty());
        let _ = KEY;
    }

    #[test]
    fn a_ca_option_with_a_private_key_is_blocked_before_anything_is_written() {
        use crate::config::{TEST_CA_KEY_PEM, TEST_CA_PEM};
        for unit in [FakeUnit::new(), settled()] {
            let drop_in = std::fs::read(unit.drop_in("watcher-applier")).ok();
            unit.set("maas-ca-cert", format!("{TEST_CA_PEM}{TEST_CA_KEY_PEM}").into());
            let (done, notes) = run(&unit, Depth::Hook);
            let done = done.unwrap();
            assert_eq!(done.target.status, Status::Blocked);
            assert_eq!(
                done.target.message,
                "maas-ca-cert: block 2 is a private key (PRIVATE KEY), which must not be installed"
            );
            assert_eq!(std::fs::read_dir(unit.dir.path().join("ca")).unwrap().count(), 0, "no CA file");
            assert_eq!(*unit.system.ca_refreshes.lock().unwrap(), 0);
            assert!(unit.system.take_restarts().is_empty());
            assert_eq!(std::fs::read(unit.drop_in("watcher-applier")).ok(), drop_in, "the drop-in untouched");
            let said = format!("{notes:?}");
            for line in TEST_CA_KEY_PEM.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!said.contains(line), "the key is shown: {said}");
            }
        }
    }

    #[test]
    fn watcher_with_a_broken_maas_path_is_blocked_with_the_ways_out() {
        for package in ["2:16.0.0-0ubuntu1", "2:17.0.0-0ubuntu1~cloud0"] {
            let unit = FakeUnit::new();
            *unit.system.watcher.lock().unwrap() = Some(package.into());
            let (done, notes) = run(&unit, Depth::Hook);
            let target = done.unwrap().target;
            let version = WatcherVersion::parse_deb(package).unwrap();
            assert_eq!(target.status, Status::Blocked, "{package}");
            assert_eq!(
                target.message,
                format!(
                    "use Watcher 12.0.0-15.0.0, or unset maas-url to use Ironic: Watcher {version}'s MAAS power actions fail upstream"
                )
            );
            assert!(target.message.len() <= 120, "{}", target.message);
            let why = notes.iter().any(|n| matches!(n, Note::Log(LogLevel::Warning, l) if l.contains("get_node")));
            assert!(why, "the whole reason is logged: {notes:?}");
            // Without MAAS Watcher uses Ironic, which works.
            unit.set("maas-url", serde_json::Value::Null);
            unit.set("maas-api-key", serde_json::Value::Null);
            assert_eq!(converged(&unit).target.status, Status::Active);
        }
        // 15.0.0 works: not blocked for its version (MAAS is down here).
        let unit = FakeUnit::new();
        *unit.system.watcher.lock().unwrap() = Some("2:15.0.0-0ubuntu1".into());
        assert_eq!(converged(&unit).target.status, Status::Waiting);
    }

    #[test]
    fn a_symlinked_watcher_conf_is_blocked() {
        let unit = FakeUnit::new();
        let real = unit.dir.path().join("real.conf");
        std::fs::rename(unit.conf(), &real).unwrap();
        std::os::unix::fs::symlink(&real, unit.conf()).unwrap();
        let done = converged(&unit);
        assert_eq!(done.target.status, Status::Blocked);
        assert!(done.target.message.contains("is a symbolic link"), "{}", done.target.message);
        assert!(!super::fakes::present(&unit.drop_in("watcher-applier")));
        assert!(done.restarted.is_empty());
    }

    #[test]
    fn watcher_conf_missing_is_waiting_then_blocked_after_30_minutes_without_watcher() {
        let unit = FakeUnit::new();
        std::fs::remove_file(unit.conf()).unwrap();
        let waiting = format!("waiting for {} (deploy the Watcher charm on this machine)", unit.conf().display());
        // Watcher installed: waiting, however long it takes.
        assert_eq!(converged(&unit).target, Target { status: Status::Waiting, message: waiting.clone() });
        unit.clock.advance(Duration::from_secs(3600));
        assert_eq!(converged(&unit).target.status, Status::Waiting);

        // Not installed: waiting until 30 minutes after the first hook that waited.
        let unit = FakeUnit::new();
        std::fs::remove_file(unit.conf()).unwrap();
        *unit.system.watcher.lock().unwrap() = None;
        assert_eq!(converged(&unit).target.status, Status::Waiting);
        unit.clock.advance(WATCHER_WAIT_LIMIT - Duration::from_secs(1));
        assert_eq!(converged(&unit).target.status, Status::Waiting);
        unit.clock.advance(Duration::from_secs(1));
        let target = converged(&unit).target;
        assert_eq!(target.status, Status::Blocked);
        assert_eq!(
            target.message,
            format!(
                "relate to the Watcher charm: no python3-watcher and no {} here after 30 min",
                unit.conf().display()
            )
        );
        // watcher.conf arrives: the wait is over, and counts again from zero.
        std::fs::write(unit.conf(), "[DEFAULT]\n").unwrap();
        assert_eq!(converged(&unit).target.status, Status::Waiting, "MAAS is down");
        std::fs::remove_file(unit.conf()).unwrap();
        assert_eq!(converged(&unit).target.status, Status::Waiting);
    }

    /// A unit converged against the MAAS simulator with `key`: active.
    fn with_maas(sim: &metal_sim::MaasSim, key: &str) -> FakeUnit {
        let unit = FakeUnit::new();
        unit.set("maas-url", sim.base_url().into());
        unit.set("maas-api-key", key.into());
        unit
    }

    #[test]
    fn a_key_maas_rejects_is_never_written_and_watcher_keeps_the_one_that_works() {
        let admin = metal_sim::SimUser::admin();
        let other = metal_sim::SimUser::new("watcher");
        let config = metal_sim::MaasSimConfig { users: vec![admin.clone(), other.clone()], ..Default::default() };
        let sim = metal_sim::MaasSim::start(config).unwrap();
        let unit = with_maas(&sim, &admin.api_key());
        let first = converged(&unit);
        assert_eq!(first.target.status, Status::Active, "{:?}", first.target);
        let working = std::fs::read_to_string(unit.drop_in("watcher-applier")).unwrap();
        unit.system.take_restarts();

        // A new revision with a wrong secret: tried, refused, not written.
        let wrong = format!("{}:{}:{}", admin.consumer_key, admin.token_key, "X".repeat(32));
        unit.set("maas-api-key", wrong.clone().into());
        let (done, notes) = run(&unit, Depth::Hook);
        let done = done.unwrap();
        assert_eq!(
            done.target,
            Target {
                status: Status::Blocked,
                message: "set a key MAAS accepts: MAAS rejected the API key: wrong token secret (401); Watcher keeps the previous key"
                    .into()
            }
        );
        for program in SERVICES {
            assert_eq!(std::fs::read_to_string(unit.drop_in(program)).unwrap(), working, "{program}");
        }
        assert!(done.restarted.is_empty() && unit.system.take_restarts().is_empty());
        assert!(!format!("{notes:?}").contains(&wrong[40..]), "the key is not logged");
        // update-status tries it again, and still writes nothing.
        assert_eq!(run(&unit, Depth::Cheap).0.unwrap().target.status, Status::Blocked);
        assert_eq!(std::fs::read_to_string(unit.drop_in("watcher-applier")).unwrap(), working);

        // A key MAAS accepts is written, and the services restart onto it.
        unit.set("maas-api-key", other.api_key().into());
        let done = converged(&unit);
        assert_eq!(done.target.message, "MAAS 3.5.4, user watcher; drop-in updated");
        assert_eq!(done.restarted, SERVICES);
        assert!(std::fs::read_to_string(unit.drop_in("watcher-applier")).unwrap().contains(&other.api_key()));
        // Tried once, not checked again: version and whoami, twice in all.
        let before = sim.stats().requests;
        assert_eq!(converged(&unit).target.status, Status::Active);
        assert_eq!(sim.stats().requests - before, 2, "unchanged settings are checked once a hook");

        // MAAS gone: whether a new key works cannot be known; it is written.
        drop(sim);
        let rotated = admin.api_key();
        unit.set("maas-api-key", rotated.clone().into());
        let done = converged(&unit);
        assert_eq!(done.target.status, Status::Waiting, "{:?}", done.target);
        assert!(std::fs::read_to_string(unit.drop_in("watcher-applier")).unwrap().contains(&rotated));
        assert_eq!(done.restarted, SERVICES);
    }

    #[test]
    fn a_first_key_maas_rejects_writes_nothing() {
        let sim = metal_sim::MaasSim::start(metal_sim::MaasSimConfig::default()).unwrap();
        let admin = metal_sim::SimUser::admin();
        let unit = with_maas(&sim, &format!("{}:{}:{}", admin.consumer_key, "Y".repeat(18), admin.token_secret));
        let target = converged(&unit).target;
        assert_eq!(target.status, Status::Blocked);
        assert_eq!(
            target.message,
            "set a key MAAS accepts: MAAS rejected the API key: unknown or revoked token (401); nothing written"
        );
        assert!(!super::fakes::present(&unit.drop_in("watcher-applier")));
        assert!(unit.system.take_restarts().is_empty());
    }

    #[test]
    fn python_libmaas_comes_before_the_maas_settings_and_apt_s_lock_only_waits() {
        let unit = FakeUnit::new();
        *unit.system.libmaas.lock().unwrap() = false;
        let lock = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)";
        unit.system.apt.lock().unwrap().push_back(AptFailure::Locked(lock.into()));
        let (done, notes) = run(&unit, Depth::Hook);
        let done = done.unwrap();
        assert_eq!(
            done.target,
            Target {
                status: Status::Waiting,
                message:
                    "waiting for apt's lock (another install runs) to install python3-libmaas; then the MAAS settings"
                        .into()
            }
        );
        assert!(!super::fakes::present(&unit.drop_in("watcher-applier")), "no MAAS setting Watcher cannot import");
        assert!(done.restarted.is_empty() && unit.system.take_restarts().is_empty());
        let said = notes.iter().any(|n| matches!(n, Note::Log(LogLevel::Warning, l) if l.contains("unattended-upgr")));
        assert!(said, "apt's line is logged: {notes:?}");

        // The next hook finds the lock free: installed, written, restarted once.
        let done = converged(&unit);
        assert_eq!(done.triggers, [Trigger::Files, Trigger::DropInDir, Trigger::Libmaas]);
        assert_eq!(unit.system.take_restarts(), SERVICES);
        assert!(unit.drop_in("watcher-applier").exists());
        assert_eq!(*unit.system.installs.lock().unwrap(), ["python3-libmaas", "python3-libmaas"]);
    }

    #[test]
    fn a_python_libmaas_apt_cannot_install_blocks_before_anything_is_written() {
        let unit = FakeUnit::new();
        *unit.system.libmaas.lock().unwrap() = false;
        let line = "E: Unable to locate package python3-libmaas";
        unit.system.apt.lock().unwrap().push_back(AptFailure::Refused(line.into()));
        let target = converged(&unit).target;
        assert_eq!(target.status, Status::Blocked);
        assert_eq!(
            target.message,
            "make python3-libmaas installable (MAAS settings wait for it): E: Unable to locate package python3-libmaas"
        );
        assert!(target.message.len() <= 120, "{}", target.message);
        assert!(!super::fakes::present(&unit.drop_in("watcher-applier")));
        assert!(unit.system.take_restarts().is_empty());
        // A download that fails may pass by itself: waiting.
        let fetch =
            "E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/python3-libmaas.deb  Temporary failure resolving";
        unit.system.apt.lock().unwrap().push_back(AptFailure::Unreachable(fetch.into()));
        assert_eq!(converged(&unit).target.status, Status::Waiting);
    }

    #[test]
    fn one_package_query_a_hook_and_the_import_only_when_the_packages_change() {
        let unit = settled();
        let counts = || {
            let q = std::mem::take(&mut *unit.system.dpkg_queries.lock().unwrap());
            let i = std::mem::take(&mut *unit.system.imports.lock().unwrap());
            (q, i)
        };
        counts();
        run(&unit, Depth::Cheap).0.unwrap();
        assert_eq!(counts(), (1, 0), "nothing changed: one dpkg-query, no Python");
        run(&unit, Depth::Cheap).0.unwrap();
        assert_eq!(counts(), (1, 0));
        // Watcher upgraded: the import is checked again, once.
        *unit.system.watcher.lock().unwrap() = Some("2:15.0.0-0ubuntu1".into());
        run(&unit, Depth::Cheap).0.unwrap();
        assert_eq!(counts(), (1, 1));
        run(&unit, Depth::Cheap).0.unwrap();
        assert_eq!(counts(), (1, 0));
    }

    #[test]
    fn an_unknown_service_is_blocked_by_name_and_a_stopped_one_is_not_restarted() {
        let unit = FakeUnit::new();
        unit.set("watcher-services", "watcher-decision-engine watcher-aplier watcher-applier".into());
        unit.system.services.lock().unwrap().push(("watcher-aplier".into(), ServiceState::Missing));
        let (done, _) = run(&unit, Depth::Hook);
        let target = done.unwrap().target;
        assert_eq!(
            target,
            Target {
                status: Status::Blocked,
                message:
                    "remove watcher-aplier from watcher-services, or install it: no systemd unit of that name here"
                        .into()
            }
        );
        assert!(!super::fakes::present(&unit.drop_in("watcher-applier")));

        // Fixed; the applier is masked, so it counts as not running.
        unit.set("watcher-services", "watcher-decision-engine watcher-applier".into());
        unit.system
            .services
            .lock()
            .unwrap()
            .push(("watcher-applier".into(), ServiceState::NotRunning("masked".into())));
        let (done, notes) = run(&unit, Depth::Hook);
        let done = done.unwrap();
        assert_eq!(done.restarted, ["watcher-decision-engine"]);
        let said = "watcher-applier is masked: not restarted; it reads the settings when it starts".to_owned();
        assert!(notes.contains(&Note::Log(LogLevel::Info, said)), "{notes:?}");
        assert!(converged(&unit).triggers.is_empty(), "no restart owed");
    }

    #[test]
    fn the_first_write_is_said_as_written_a_put_back_one_as_repaired() {
        let unit = FakeUnit::new();
        unit.set("maas-url", serde_json::Value::Null);
        unit.set("maas-api-key", serde_json::Value::Null);
        // The principal has just rendered watcher.conf; update-status comes first.
        let first = run(&unit, Depth::Cheap).0.unwrap().target;
        assert_eq!(first.message, "Ironic backend (maas-url unset); drop-in written");
        std::fs::remove_file(unit.drop_in("watcher-applier")).unwrap();
        let again = run(&unit, Depth::Cheap).0.unwrap().target;
        assert_eq!(again.message, "Ironic backend (maas-url unset); repaired drop-in");
    }
}
