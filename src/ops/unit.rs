//! What the charm changes on its unit besides Watcher's configuration: the
//! MAAS CA certificate in the system's store, the services' restarts, and
//! the charm's state files; and taking all of it (and the configuration)
//! out again when the unit goes away.

use std::path::{Path, PathBuf};

use crate::config::ConfMode;
use crate::host::atomic_file::{self, FileError};
use crate::host::system::{self, AptFailure, System};
use crate::ops::apply::{self, Applied};
use crate::ops::Error;

/// The system's directory of extra CA certificates.
pub const DEFAULT_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// The certificate's file name there.
pub(crate) const CA_FILE_NAME: &str = "watcher-maas.crt";

/// Installs `pem` (or, for `None`, removes the certificate) in `ca_dir` and
/// rebuilds the system's bundle when that changed. Returns whether it
/// changed: the services must restart to read the new bundle.
pub(crate) fn install_ca(system: &dyn System, ca_dir: &Path, pem: Option<&str>) -> Result<bool, Error> {
    let path = ca_dir.join(CA_FILE_NAME);
    let changed = match pem {
        Some(pem) => {
            let text = if pem.ends_with('\n') { pem.to_owned() } else { format!("{pem}\n") };
            atomic_file::write_if_changed_with_mode(&path, &text, 0o644)?.changed()
        }
        None => match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(source) => return Err(FileError::Write { path, step: "remove", source }.into()),
        },
    };
    if changed {
        system.refresh_ca_bundle().map_err(|message| Error::System {
            message,
            hint: "check that the ca-certificates package is installed".to_owned(),
        })?;
    }
    Ok(changed)
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

    /// Forgets it, on removal.
    pub(crate) fn forget(&self) {
        let _ = atomic_file::remove(&self.path);
        atomic_file::remove_lock(&self.path);
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

    /// Whether a restart that failed is still owed.
    pub(crate) fn restart_owed(&self) -> bool {
        self.restart_marker().exists()
    }

    /// Marks a restart as owed until [`StateFiles::restarted`], so a hook
    /// retried after a failed restart restarts again.
    pub(crate) fn owe_restart(&self) {
        let _ = std::fs::write(self.restart_marker(), b"");
    }

    /// The owed restart is done.
    pub(crate) fn restarted(&self) {
        let _ = std::fs::remove_file(self.restart_marker());
    }

    /// Since when (seconds since the epoch) the unit has waited for
    /// watcher.conf, counting from `now` on the first call.
    pub(crate) fn waiting_since(&self, now: u64) -> u64 {
        let marker = self.waiting_marker();
        match std::fs::read_to_string(&marker).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
            Some(since) => since,
            None => {
                let _ = std::fs::write(&marker, now.to_string());
                now
            }
        }
    }

    /// watcher.conf is there: the wait is over.
    pub(crate) fn done_waiting(&self) {
        let _ = std::fs::remove_file(self.waiting_marker());
    }
}

/// What removal took out.
#[derive(Debug)]
pub(crate) struct Removed {
    /// The configuration files changed or removed.
    pub(crate) applied: Applied,
    /// Whether the CA certificate was removed.
    pub(crate) ca_changed: bool,
}

/// Takes out what the charm wrote: the managed sections or drop-ins (also
/// `watcher.conf.d`'s, where an earlier version wrote it), the CA
/// certificate, the lock and state files, and drop-in directories left
/// empty.
pub(crate) fn remove(
    system: &dyn System,
    conf: &Path,
    drop_ins: &[PathBuf],
    mode: ConfMode,
    ca_dir: &Path,
    state: &StateFiles,
) -> Result<Removed, Error> {
    let files = apply::plan_removal(conf, drop_ins, mode)?;
    let applied = apply::apply_removal(&files, conf)?;
    let ca_changed = install_ca(system, ca_dir, None)?;
    for drop_in in drop_ins {
        atomic_file::remove_lock(drop_in);
        if let Some(dir) = drop_in.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    atomic_file::remove_lock(conf);
    atomic_file::remove_lock(&ca_dir.join(CA_FILE_NAME));
    state.restarted();
    state.done_waiting();
    state.libmaas_record().forget();
    Ok(Removed { applied, ca_changed })
}
