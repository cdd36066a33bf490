//! What the charm changes on its unit besides Watcher's configuration: the
//! MAAS CA certificate in the system's store, the services' restarts, and
//! the charm's state files (among them the record of what it wrote); and
//! taking all of it (and the configuration) out again when the unit goes
//! away.

use std::path::{Path, PathBuf};

use crate::config::render;
use crate::host::atomic_file::{self, FileError};
use crate::host::system::{self, AptFailure, System};
use crate::ops::apply::{self, Applied, NotOurs, Removal};
use crate::ops::record::{self, Kind, Record};
use crate::ops::Error;

/// The system's directory of extra CA certificates.
pub const DEFAULT_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// The certificate's file name before it was named per application.
const LEGACY_CA_FILE_NAME: &str = "watcher-maas.crt";

/// The certificate's file name in the CA directory: one per Juju
/// application, so that two applications of this charm on one machine
/// never touch each other's.
pub(crate) fn ca_file_name(application: Option<&str>) -> String {
    match application {
        Some(app) => format!("watcher-metal-{app}.crt"),
        None => LEGACY_CA_FILE_NAME.to_owned(),
    }
}

/// The certificate's file as written: our marker (a comment, which
/// OpenSSL, rustls and `update-ca-certificates` skip), then the PEM.
fn ca_text(application: Option<&str>, pem: &str) -> String {
    let mut text = render::marker_line(application, "from maas-ca-cert; removed with the application.\n");
    text.push_str(pem);
    if !pem.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// What [`install_ca`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaChange {
    /// The certificate's file.
    pub(crate) path: PathBuf,
    /// It (or one of an earlier name) was written or removed, and the
    /// system's bundle rebuilt: the services must restart to read it.
    pub(crate) changed: bool,
}

/// Removes the certificate at `path` if it is ours (its marker names this
/// application or none). Returns whether it was removed.
fn remove_our_ca(path: &Path, application: Option<&str>) -> Result<bool, FileError> {
    match atomic_file::read_existing(path) {
        Ok(Some(text)) if apply::is_ours(&text, application) => atomic_file::remove(path),
        Ok(_) | Err(FileError::Symlink { .. } | FileError::Directory { .. } | FileError::NotRegular { .. }) => {
            Ok(false)
        }
        Err(FileError::NotText { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the certificate an earlier version wrote under the name it used
/// for every application, when the unit has no record of its own yet: it
/// carries no marker, so it counts as that version's only when it holds
/// exactly what that version wrote for `pem`.
fn remove_legacy_ca(
    ca_dir: &Path,
    application: Option<&str>,
    record: &Record,
    pem: Option<&str>,
) -> Result<bool, FileError> {
    let legacy = ca_dir.join(LEGACY_CA_FILE_NAME);
    let (Some(pem), false, Some(_)) = (pem, record.found(), application) else { return Ok(false) };
    let written = if pem.ends_with('\n') { pem.to_owned() } else { format!("{pem}\n") };
    match atomic_file::read_existing(&legacy) {
        Ok(Some(text)) if text == written => atomic_file::remove(&legacy),
        _ => Ok(false),
    }
}

/// Installs `pem` (or, for `None`, removes the certificate) in `ca_dir`
/// under `application`'s name, takes out certificates the record holds
/// under another path, and rebuilds the system's bundle when that changed.
/// The record is saved before the certificate is written and after.
pub(crate) fn install_ca(
    system: &dyn System,
    ca_dir: &Path,
    application: Option<&str>,
    pem: Option<&str>,
    record: &mut Record,
) -> Result<CaChange, Error> {
    let path = ca_dir.join(ca_file_name(application));
    let mut changed = false;
    for earlier in record.paths(Kind::CaCert).into_iter().filter(|p| *p != path) {
        changed |= remove_our_ca(&earlier, application)?;
    }
    changed |= remove_legacy_ca(ca_dir, application, record, pem)?;
    record.retain(Kind::CaCert, |p| p == path);
    match pem {
        Some(pem) => {
            match atomic_file::read_existing(&path)? {
                Some(text) if !apply::is_ours(&text, application) => {
                    return Err(NotOurs::ForeignCaCert { path }.into());
                }
                _ => {}
            }
            record.add(&path, Kind::CaCert);
            record.save()?;
            changed |= atomic_file::write_if_changed_with_mode(&path, &ca_text(application, pem), 0o644)?.changed();
        }
        None => {
            changed |= remove_our_ca(&path, application)?;
            record.retain(Kind::CaCert, |_| false);
            record.save()?;
        }
    }
    if changed {
        refresh_ca_bundle(system)?;
    }
    Ok(CaChange { path, changed })
}

fn refresh_ca_bundle(system: &dyn System) -> Result<(), Error> {
    system.refresh_ca_bundle().map_err(|message| Error::System {
        message,
        hint: "check that the ca-certificates package is installed".to_owned(),
    })
}

/// Restarts one service.
pub(crate) fn restart(system: &dyn System, service: &str) -> Result<(), Error> {
    system.restart(service).map_err(|message| Error::System {
        message,
        hint: "check `systemctl status` and `journalctl -u` for the service".to_owned(),
    })
}

/// Whether Watcher's Python imports python-libmaas.
fn libmaas_importable(system: &dyn System) -> Result<bool, Error> {
    system.python_imports(system::LIBMAAS_MODULE).map_err(|e| Error::System {
        message: format!("cannot check python-libmaas: {e}"),
        hint: format!("Watcher's services run on {}; check that it is installed", system::WATCHER_PYTHON),
    })
}

/// The packages whose state decides whether Watcher's Python imports
/// python-libmaas, asked of dpkg in one query: Watcher, python-libmaas, the
/// interpreter.
pub(crate) const PACKAGES: [&str; 3] = [system::WATCHER_PACKAGE, system::LIBMAAS_PACKAGE, system::WATCHER_PYTHON];

/// The installed versions of [`PACKAGES`], from one `dpkg-query`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Packages(Vec<Option<String>>);

impl Packages {
    /// Asks dpkg.
    pub(crate) fn query(system: &dyn System) -> Result<Packages, String> {
        system.package_versions(&PACKAGES).map(Packages)
    }

    /// Whether dpkg answered (`false`: the state is unknown).
    pub(crate) fn known(&self) -> bool {
        !self.0.is_empty()
    }

    /// The installed version of one of [`PACKAGES`].
    pub(crate) fn version(&self, package: &str) -> Option<&str> {
        let i = PACKAGES.iter().position(|p| *p == package)?;
        self.0.get(i)?.as_deref()
    }

    /// One line naming each package's state, as the unit's state file keeps it.
    fn fingerprint(&self) -> String {
        PACKAGES
            .iter()
            .zip(&self.0)
            .map(|(p, v)| format!("{p}={}", v.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The unit's memory of the package state in which Watcher's Python last
/// imported python-libmaas: while dpkg reports the same state, the import
/// is not tried again (it costs a Python start on every update-status). A
/// file of its own in the state directory, written atomically.
#[derive(Debug, Clone)]
pub(crate) struct LibmaasRecord {
    path: PathBuf,
}

impl LibmaasRecord {
    /// The record kept in `state_dir` (the charm directory).
    pub(crate) fn new(state_dir: &Path) -> LibmaasRecord {
        LibmaasRecord { path: state_dir.join(".watcher-metal-packages") }
    }

    /// Whether the import was seen to work with exactly `packages`.
    fn imported_with(&self, packages: &Packages) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|text| text.trim_end() == packages.fingerprint())
    }

    /// Remembers that the import works with `packages` (best effort: a
    /// record that cannot be written costs one import on the next hook).
    fn remember(&self, packages: &Packages) {
        let _ = atomic_file::write_if_changed_with_mode(&self.path, &format!("{}\n", packages.fingerprint()), 0o600);
    }

    /// Forgets it (and its lock), on removal.
    pub(crate) fn forget(&self) {
        let _ = atomic_file::remove(&self.path);
    }
}

/// Where python-libmaas, which Watcher's MAAS helper imports, stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Libmaas {
    /// Watcher's Python imports it (or did, with the packages as they are).
    Present,
    /// It was missing and is installed now: the services must restart.
    Installed,
    /// The package installed, but Watcher's Python still cannot import it.
    StillMissing,
    /// apt could not install it.
    InstallFailed(AptFailure),
}

/// Makes sure Watcher's Python can import python-libmaas, installing the
/// package when it cannot. The import is tried only when `packages` differ
/// from those it last worked with (`record`); `installing` is called just
/// before an install.
pub(crate) fn ensure_libmaas(
    system: &dyn System,
    packages: &Packages,
    record: &LibmaasRecord,
    installing: &mut dyn FnMut() -> Result<(), Error>,
) -> Result<Libmaas, Error> {
    if packages.known() && record.imported_with(packages) {
        return Ok(Libmaas::Present);
    }
    if libmaas_importable(system)? {
        if packages.known() {
            record.remember(packages);
        }
        return Ok(Libmaas::Present);
    }
    installing()?;
    match system.install_package(system::LIBMAAS_PACKAGE) {
        Ok(()) if libmaas_importable(system)? => {
            if let Ok(now) = Packages::query(system) {
                record.remember(&now);
            }
            Ok(Libmaas::Installed)
        }
        Ok(()) => Ok(Libmaas::StillMissing),
        Err(failure) => Ok(Libmaas::InstallFailed(failure)),
    }
}

impl StateFiles {
    /// The record of the packages python-libmaas last imported with.
    pub(crate) fn libmaas_record(&self) -> LibmaasRecord {
        LibmaasRecord::new(&self.dir)
    }
}

/// The charm's state files, kept in the charm directory (or beside
/// watcher.conf when there is none).
#[derive(Debug, Clone)]
pub(crate) struct StateFiles {
    dir: PathBuf,
}

impl StateFiles {
    /// The state files for a unit whose charm is in `charm_dir`.
    pub(crate) fn new(charm_dir: Option<&Path>, watcher_conf: &Path) -> StateFiles {
        let dir = charm_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| watcher_conf.parent().map(Path::to_path_buf).unwrap_or_default());
        StateFiles { dir }
    }

    fn restart_marker(&self) -> PathBuf {
        self.dir.join(".watcher-metal-restart-pending")
    }

    fn waiting_marker(&self) -> PathBuf {
        self.dir.join(".watcher-metal-waiting-since")
    }

    /// Where the record of what the unit wrote is kept.
    pub(crate) fn record_path(&self) -> PathBuf {
        self.dir.join(record::RECORD_FILE_NAME)
    }

    /// Writes a marker atomically (0600). A marker that cannot be written
    /// is left out: it only saves work a later hook would redo.
    fn mark(path: &Path, text: &str) {
        let _ = atomic_file::write_if_changed_with_mode(path, text, 0o600);
    }

    /// Removes a marker and its lock.
    fn unmark(path: &Path) {
        let _ = atomic_file::remove(path);
    }

    /// Whether a restart that failed is still owed.
    pub(crate) fn restart_owed(&self) -> bool {
        self.restart_marker().exists()
    }

    /// Marks a restart as owed until [`StateFiles::restarted`], so a hook
    /// retried after a failed restart restarts again.
    pub(crate) fn owe_restart(&self) {
        StateFiles::mark(&self.restart_marker(), "");
    }

    /// The owed restart is done.
    pub(crate) fn restarted(&self) {
        StateFiles::unmark(&self.restart_marker());
    }

    /// Since when (seconds since the epoch) the unit has waited for
    /// watcher.conf, counting from `now` on the first call.
    pub(crate) fn waiting_since(&self, now: u64) -> u64 {
        let marker = self.waiting_marker();
        match std::fs::read_to_string(&marker).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
            Some(since) => since,
            None => {
                StateFiles::mark(&marker, &now.to_string());
                now
            }
        }
    }

    /// watcher.conf is there: the wait is over.
    pub(crate) fn done_waiting(&self) {
        StateFiles::unmark(&self.waiting_marker());
    }
}

/// What removal took out.
#[derive(Debug)]
pub(crate) struct Removed {
    /// The configuration files changed or removed.
    pub(crate) applied: Applied,
    /// The CA certificate, and whether it (or one of an earlier name) was
    /// removed.
    pub(crate) ca: CaChange,
}

/// Takes out what the charm wrote: the drop-ins and managed sections
/// `removal` names (the options', the record's, where earlier versions put
/// them), every CA certificate of ours, the lock and state files, the
/// record, and drop-in directories left empty. A file that is not ours
/// stays.
pub(crate) fn remove(
    system: &dyn System,
    removal: &Removal<'_>,
    ca_dir: &Path,
    pem: Option<&str>,
    record: &mut Record,
    state: &StateFiles,
) -> Result<Removed, Error> {
    let files = apply::plan_removal(removal)?;
    let applied = apply::apply_removal(&files, removal)?;
    let app = removal.application;
    let ca = ca_dir.join(ca_file_name(app));
    let mut ca_changed = remove_legacy_ca(ca_dir, app, record, pem)?;
    for path in std::iter::once(ca.clone()).chain(record.paths(Kind::CaCert)) {
        ca_changed |= remove_our_ca(&path, app)?;
    }
    if ca_changed {
        refresh_ca_bundle(system)?;
    }
    for drop_in in &removal.drop_ins {
        atomic_file::remove_lock(drop_in);
        if let Some(dir) = drop_in.parent() {
            apply::remove_empty_drop_in_dir(dir, removal.conf);
        }
    }
    for conf in std::iter::once(removal.conf.to_path_buf()).chain(removal.sections.iter().cloned()) {
        atomic_file::remove_lock(&conf);
    }
    atomic_file::remove_lock(&ca);
    record.delete()?;
    state.restarted();
    state.done_waiting();
    state.libmaas_record().forget();
    Ok(Removed { applied, ca: CaChange { path: ca, changed: ca_changed } })
}
