//! The charm's convergence of its unit, as an operation: read the options,
//! write the managed sections where Watcher reads them, install the CA
//! certificate, make sure Watcher's MAAS path can run (its version,
//! python-libmaas), restart the Watcher services when (and only when) what
//! they read changed, and decide the unit's status.
//!
//! The policy lives here: the restart rule (ARCHITECTURE's invariant), the
//! wait for watcher.conf, what is `blocked` (the operator must act) and what
//! is `waiting` (it may pass by itself), and the status wording. The charm
//! face only maps what this returns onto hook tools: each [`Note`] as it
//! comes (so a long restart shows `maintenance` while it runs), then the
//! [`Converged::target`] status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::render::Renderer;
use crate::config::{CharmConfig, ConfMode, ConfigError, Warning};
use crate::host::atomic_file::{self, FileError};
use crate::host::juju::{HookTools, LogLevel, Status};
use crate::host::system::{self, System};
use crate::ops::apply::{self, Plan, Role};
use crate::ops::clock::Clock;
use crate::ops::doctor::{self, Depth, Verdict};
use crate::ops::source::{self, Source};
use crate::ops::unit::{self, Libmaas, StateFiles};
use crate::ops::Error;
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
}

impl Unit<'_> {
    /// The unit's state files (restart owed, waiting since).
    pub(crate) fn state_files(&self, conf: &Path) -> StateFiles {
        StateFiles::new(self.charm_dir.as_deref(), conf)
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

/// `blocked`, said in the log too.
fn blocked(notes: &mut Notes<'_>, message: String) -> Result<Target, Error> {
    log(notes, LogLevel::Warning, format!("blocked: {message}"))?;
    Ok(Target { status: Status::Blocked, message })
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

/// Reads and resolves the config, or says why the unit is blocked. The key
/// is read with `secret-get --refresh` every time, so a new revision of the
/// secret, or another secret, is never missed.
pub fn read_config(tools: &dyn HookTools, notes: &mut Notes<'_>) -> Result<Result<CharmConfig, String>, Error> {
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
            Ok(Err(format!("{e}; {}", e.hint())))
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
/// (whose rewrite of a file is a repair) and [`Depth::Hook`] for the other
/// hooks. `Err` is a real fault (a hook tool, systemd or a write failing):
/// the hook fails and Juju retries it; a restart that failed is then still
/// owed.
pub fn converge(unit: &Unit<'_>, depth: Depth, notes: &mut Notes<'_>) -> Result<Converged, Error> {
    let config = match read_config(unit.tools, notes)? {
        Ok(config) => config,
        Err(problem) => return Ok(Converged::without_restart(blocked(notes, problem)?)),
    };
    let path = config.watcher_conf_path.clone();
    let version = watcher_version(unit.system, notes)?;
    let state = unit.state_files(&path);
    match atomic_file::read_existing(&path) {
        Ok(Some(_)) => state.done_waiting(),
        Ok(None) => return Ok(Converged::without_restart(wait_for_watcher(unit, notes, &path, &state, version)?)),
        Err(e) if blocked_file_problem(&e) => {
            return Ok(Converged::without_restart(blocked(notes, format!("{e}; {}", e.hint()))?))
        }
        Err(e) => return Err(e.into()),
    }
    let renderer = Renderer::new(unit.templates_dir().as_deref())?;
    let plan = match apply::plan(&config, &renderer) {
        Ok(plan) => plan,
        Err(apply::PlanError::File(e)) if blocked_file_problem(&e) => {
            return Ok(Converged::without_restart(blocked(notes, format!("{e}; {}", e.hint()))?))
        }
        Err(e @ apply::PlanError::ForeignDropIn { .. }) => {
            let e = Error::from(e);
            return Ok(Converged::without_restart(blocked(notes, format!("{e}; {}", e.hint()))?));
        }
        Err(e) => return Err(e.into()),
    };
    let applied = write(notes, &plan)?;
    for (path, role, outcome) in applied.outcomes.iter().filter(|(_, _, o)| o.changed()) {
        let why = match role {
            Role::Managed => "",
            Role::Migration => " (removed the sections an earlier merge wrote, which would override the drop-in)",
            Role::Cleanup => " (the sections are merged into watcher.conf now)",
        };
        log(notes, LogLevel::Info, format!("{} {}{why}", outcome.as_str(), path.display()))?;
    }
    let pem = config.maas.as_ref().and_then(|m| m.ca_cert.as_deref());
    let ca_changed = unit::install_ca(unit.system, &unit.ca_dir, pem)?;
    if ca_changed {
        log_ca_change(unit, notes, pem.is_some())?;
    }

    let ready = match &config.maas {
        Some(_) => check_maas_ready(unit.system, notes, version)?,
        None => Readiness::default(),
    };

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
        for service in &config.services {
            unit::restart(unit.system, service)?;
            log(notes, LogLevel::Info, format!("restarted {service}"))?;
            restarted.push(service.clone());
        }
        state.restarted();
    }
    let done = |target| Ok(Converged { target, triggers, restarted });

    if let Some(problem) = ready.blocked {
        return done(blocked(notes, problem)?);
    }

    // The status comes from the doctor's checks: the first failure leads.
    let inputs = doctor::Inputs {
        config: Ok(&config),
        layout: &plan.layout_after,
        clashes: &plan.clashes,
        system: unit.system,
        depth,
    };
    let (report, found) = doctor::run(&inputs);
    for c in report.checks.iter().filter(|c| matches!(c.status, Verdict::Warn | Verdict::Fail)) {
        log(notes, LogLevel::Warning, format!("{} {}: {}; {}", c.name, c.status.as_str(), c.message, c.hint))?;
    }
    if let Some(failed) = report.first(Verdict::Fail) {
        if failed.transient {
            let message = format!("MAAS (re-checked by update-status): {}", failed.message);
            return done(Target { status: Status::Waiting, message });
        }
        return done(blocked(notes, format!("{}; {}", failed.message, failed.hint))?);
    }

    let managed_changed = applied.outcomes.iter().any(|(_, role, o)| *role == Role::Managed && o.changed());
    let file_note = match (depth, managed_changed) {
        (Depth::Cheap, true) => format!("; repaired {}", file_label(&plan)),
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
    let message = match report.first(Verdict::Warn).filter(|_| config.maas.is_some()) {
        Some(warning) => format!("{}; {base}{file_note}", warning.message),
        None => format!("{base}{file_note}"),
    };
    done(Target { status: Status::Active, message })
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
            format!(
                "no Watcher here after {} min ({} not installed, no {}): relate to the Watcher charm",
                waited.as_secs() / 60,
                system::WATCHER_PACKAGE,
                path.display()
            ),
        );
    }
    let message = format!("waiting for {} (deploy the Watcher charm on this machine)", path.display());
    Ok(Target { status: Status::Waiting, message })
}

/// Watcher's installed version, also shown by `juju status` as the
/// application's version.
fn watcher_version(system: &dyn System, notes: &mut Notes<'_>) -> Result<Option<WatcherVersion>, Error> {
    let version = match system.package_version(system::WATCHER_PACKAGE) {
        Ok(Some(text)) => {
            let version = WatcherVersion::parse_deb(&text);
            if version.is_none() {
                log(notes, LogLevel::Warning, format!("cannot read Watcher's version from `{text}`"))?;
            }
            version
        }
        Ok(None) => None,
        Err(e) => {
            log(notes, LogLevel::Warning, format!("cannot read Watcher's version: {e}"))?;
            None
        }
    };
    if let Some(v) = version {
        notes(Note::Version(v.to_string()))?;
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
fn check_maas_ready(
    system: &dyn System,
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
                ready.blocked = Some(format!(
                    "Watcher {version} has no MAAS support (2024.1, {}, or later needed)",
                    version::FIRST_WITH_MAAS
                ));
                return Ok(ready);
            }
            // Power actions would fail: the operator must choose a way out.
            MaasSupport::Defective { why } => {
                log(notes, LogLevel::Warning, format!("Watcher {version}: {}", doctor::defective_maas_hint(why)))?;
                ready.blocked = Some(doctor::defective_maas(version));
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
    match unit::ensure_libmaas(system, &mut installing)? {
        Libmaas::Present => {}
        Libmaas::Installed => {
            log(notes, LogLevel::Info, format!("installed {package}"))?;
            ready.installed_libmaas = true;
        }
        Libmaas::StillMissing => {
            ready.blocked = Some(format!(
                "{package} is installed but Watcher's Python still cannot import {}",
                system::LIBMAAS_MODULE
            ));
        }
        Libmaas::InstallFailed(line) => {
            log(notes, LogLevel::Error, format!("cannot install {package}: {line}"))?;
            ready.blocked = Some(format!("cannot install {package}: {line}"));
        }
    }
    Ok(ready)
}

/// Writes the plan; a failure is logged and leaves the unit `blocked`
/// before the hook fails.
fn write(notes: &mut Notes<'_>, plan: &Plan) -> Result<apply::Applied, Error> {
    match apply::apply(plan) {
        Ok(applied) => Ok(applied),
        Err(e) => {
            let message = format!("{e}; {}", e.hint());
            log(notes, LogLevel::Error, message.clone())?;
            if blocked_file_problem(&e) {
                log(notes, LogLevel::Warning, format!("blocked: {message}"))?;
            }
            notes(Note::Status(Status::Blocked, message))?;
            Err(e.into())
        }
    }
}

/// Says that the CA certificate was installed or removed.
pub(crate) fn log_ca_change(unit: &Unit<'_>, notes: &mut Notes<'_>, installed: bool) -> Result<(), Error> {
    let verb = if installed { "installed" } else { "removed" };
    let path = unit.ca_dir.join(unit::CA_FILE_NAME);
    log(notes, LogLevel::Info, format!("{verb} {} and rebuilt the CA bundle", path.display()))
}

/// Stand-ins for the hook tools and the machine, for in-process tests of
/// the charm's operations.
#[cfg(test)]
pub(crate) mod fakes {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use crate::host::juju::{HookToolError, HookTools, Status};
    use crate::host::system::System;
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

    /// A machine with Watcher installed and python-libmaas importable
    /// unless told otherwise; restarts and installs are recorded.
    #[derive(Default)]
    pub(crate) struct FakeSystem {
        pub(crate) watcher: Mutex<Option<String>>,
        pub(crate) libmaas: Mutex<bool>,
        pub(crate) failing_restarts: Mutex<usize>,
        pub(crate) restarts: Mutex<Vec<String>>,
        pub(crate) installs: Mutex<Vec<String>>,
        pub(crate) ca_refreshes: Mutex<usize>,
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
        fn refresh_ca_bundle(&self) -> Result<(), String> {
            *self.ca_refreshes.lock().unwrap() += 1;
            Ok(())
        }
        fn service_environment(&self, _: &str) -> Result<Option<Vec<(String, String)>>, String> {
            Ok(None)
        }
        fn package_version(&self, package: &str) -> Result<Option<String>, String> {
            Ok(if package == crate::host::system::WATCHER_PACKAGE {
                self.watcher.lock().unwrap().clone()
            } else {
                None
            })
        }
        fn python_imports(&self, _: &str) -> Result<bool, String> {
            Ok(*self.libmaas.lock().unwrap())
        }
        fn install_package(&self, package: &str) -> Result<(), String> {
            self.installs.lock().unwrap().push(package.to_owned());
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
            }
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
                "no Watcher here after 30 min (python3-watcher not installed, no {}): relate to the Watcher charm",
                unit.conf().display()
            )
        );
        // watcher.conf arrives: the wait is over, and counts again from zero.
        std::fs::write(unit.conf(), "[DEFAULT]\n").unwrap();
        assert_eq!(converged(&unit).target.status, Status::Waiting, "MAAS is down");
        std::fs::remove_file(unit.conf()).unwrap();
        assert_eq!(converged(&unit).target.status, Status::Waiting);
    }
}
