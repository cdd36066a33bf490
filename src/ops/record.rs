//! What the charm remembers having written on its unit: every file it
//! wrote or changed (each program's drop-in, watcher.conf when it merged
//! sections into it or took an earlier merge's out, the CA certificate),
//! so that each converge takes out the files of earlier options that the
//! current ones no longer name, and `remove` takes out all of them.
//!
//! The record is a small JSON file in the charm directory, beside the
//! charm's other state, written atomically (0600). Juju keeps such a file
//! across `upgrade-charm`: its deployer removes only the files the old
//! charm archive held (the ops framework keeps its `.unit-state.db` there
//! the same way). A unit set up by a version before the record has none;
//! `Record::found` says so, and what it can know comes from the markers
//! on disk. A file there that is not a record counts as none, and the
//! unit's log says so (`Record::damaged`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::host::atomic_file::{self, FileError};

/// The record's file name in the charm directory.
pub(crate) const RECORD_FILE_NAME: &str = ".watcher-metal-written.json";

/// What a recorded file holds of the charm's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// A whole file of ours: a program's drop-in.
    DropIn,
    /// A watcher.conf the charm merged its sections into, or took an
    /// earlier merge's sections out of.
    Sections,
    /// The CA certificate in the system's store.
    CaCert,
}

/// One file the charm wrote or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The file.
    pub(crate) path: PathBuf,
    /// What it holds of ours.
    pub(crate) kind: Kind,
}

/// The record as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// The Juju application whose unit wrote the files.
    #[serde(default)]
    application: Option<String>,
    #[serde(default)]
    files: Vec<Entry>,
}

/// The files the unit wrote, and where that is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    path: PathBuf,
    application: Option<String>,
    found: bool,
    /// Why what was at `path` is not a record, when it was not.
    damaged: Option<String>,
    entries: Vec<Entry>,
}

impl Record {
    /// The record kept at `path` for `application`'s unit; an empty one when
    /// there is none yet, or when what is there is not a record (the
    /// markers on disk still tell what is ours).
    pub(crate) fn load(path: &Path, application: Option<&str>) -> Result<Record, FileError> {
        let (stored, damaged) = match atomic_file::read_existing(path)? {
            Some(text) => match serde_json::from_str::<Stored>(&text) {
                Ok(stored) => (Some(stored), None),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, None),
        };
        Ok(Record {
            path: path.to_owned(),
            application: application.map(str::to_owned),
            found: stored.is_some(),
            damaged,
            entries: stored.map(|s| s.files).unwrap_or_default(),
        })
    }

    /// Why the file at the record's path was not a record (it is then
    /// treated as none, and written anew), when it was not.
    pub(crate) fn damaged(&self) -> Option<&str> {
        self.damaged.as_deref()
    }

    /// Where the record is kept.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a record was there when it was loaded: `false` for a new
    /// unit, or one that an earlier version of the charm set up.
    pub(crate) fn found(&self) -> bool {
        self.found
    }

    /// The recorded files of `kind`.
    pub(crate) fn paths(&self, kind: Kind) -> Vec<PathBuf> {
        self.entries.iter().filter(|e| e.kind == kind).map(|e| e.path.clone()).collect()
    }

    /// Whether `path` is recorded as `kind`.
    pub(crate) fn has(&self, path: &Path, kind: Kind) -> bool {
        self.entries.iter().any(|e| e.path == path && e.kind == kind)
    }

    /// Remembers `path` as holding `kind`.
    pub(crate) fn add(&mut self, path: &Path, kind: Kind) {
        if !self.has(path, kind) {
            self.entries.push(Entry { path: path.to_owned(), kind });
        }
    }

    /// Forgets the files of `kind` for which `keep` is false.
    pub(crate) fn retain(&mut self, kind: Kind, keep: impl Fn(&Path) -> bool) {
        self.entries.retain(|e| e.kind != kind || keep(&e.path));
    }

    /// Writes the record (atomically, 0600) unless it says that already.
    pub(crate) fn save(&self) -> Result<(), FileError> {
        let stored = Stored { application: self.application.clone(), files: self.entries.clone() };
        let mut text = serde_json::to_string_pretty(&stored).unwrap_or_default();
        text.push('\n');
        atomic_file::write_if_changed_with_mode(&self.path, &text, 0o600)?;
        Ok(())
    }

    /// Removes the record and its lock: nothing it names is left.
    pub(crate) fn delete(&self) -> Result<(), FileError> {
        atomic_file::remove(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_record_survives_a_reload_and_garbage_counts_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECORD_FILE_NAME);
        let mut record = Record::load(&path, Some("watcher-maas")).unwrap();
        assert!(!record.found());
        record.add(Path::new("/etc/watcher-applier.conf.d/50-watcher-metal.conf"), Kind::DropIn);
        record.add(Path::new("/etc/watcher-applier.conf.d/50-watcher-metal.conf"), Kind::DropIn);
        record.add(Path::new("/usr/local/share/ca-certificates/watcher-metal-watcher-maas.crt"), Kind::CaCert);
        record.save().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = Record::load(&path, Some("watcher-maas")).unwrap();
        assert!(again.found());
        assert_eq!(again.entries, record.entries);
        assert_eq!(again.paths(Kind::DropIn), [PathBuf::from("/etc/watcher-applier.conf.d/50-watcher-metal.conf")]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"application\": \"watcher-maas\"") && text.contains("\"kind\": \"ca-cert\""), "{text}");

        assert_eq!(again.damaged(), None);
        std::fs::write(&path, "not json").unwrap();
        let garbage = Record::load(&path, None).unwrap();
        assert!(!garbage.found());
        assert!(garbage.damaged().is_some_and(|why| why.contains("line 1")), "{:?}", garbage.damaged());
        again.delete().unwrap();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the record and its lock are gone");
    }
}

/// The unit over an operator's day: options changed, the unit removed,
/// another application of the charm beside it, a unit an earlier version
/// set up. Driven as the hooks drive the operations, with fake hook tools.
#[cfg(test)]
mod unit_tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use crate::host::juju::{LogLevel, Status};
    use crate::ops::converge::fakes::{noted, FakeSystem, FakeTools, FakeUnit, KEY};
    use crate::ops::converge::{converge, Converged, Note, Unit};
    use crate::ops::doctor::Depth;
    use crate::ops::remove::remove;

    const SERVICES: [&str; 2] = ["watcher-decision-engine", "watcher-applier"];

    fn converged(unit: &Unit<'_>) -> (Converged, Vec<Note>) {
        let (done, notes) = noted(|notes| converge(unit, Depth::Hook, notes));
        (done.unwrap_or_else(|e| panic!("{e}: {notes:?}")), notes)
    }

    fn removed(unit: &Unit<'_>) {
        let (done, notes) = noted(|notes| remove(unit, notes));
        done.unwrap_or_else(|e| panic!("{e}: {notes:?}"));
    }

    /// Every file under `dir` (the charm directory left out) holding the
    /// key, or our marker.
    fn ours_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if !path.ends_with("charm") {
                        stack.push(path);
                    }
                } else {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    if text.contains(KEY) || text.contains("Written by watcher-metal") || text.contains("Managed by") {
                        found.push(path);
                    }
                }
            }
        }
        found
    }

    fn drop_in(root: &Path, program: &str, name: &str) -> PathBuf {
        root.join(format!("{program}.conf.d")).join(name)
    }

    #[test]
    fn a_renamed_drop_in_takes_the_old_one_with_it_but_never_a_site_file() {
        let unit = FakeUnit::new();
        converged(&unit.unit());
        let root = unit.dir.path();
        // The site keeps a file of the new name in the applier's directory.
        let site = drop_in(root, "watcher-applier", "10-watcher-metal.conf");
        std::fs::write(&site, "[DEFAULT]\ndebug = true\n").unwrap();
        // A name that sorts first, and another timeout: the old drop-in,
        // read later, would override it.
        unit.set("drop-in-name", "10-watcher-metal.conf".into());
        unit.set("maas-timeout", 9.into());
        let (done, notes) = noted(|notes| converge(&unit.unit(), Depth::Hook, notes));
        let done = done.unwrap();
        assert_eq!(done.target.status, Status::Blocked, "the site's file is not replaced");
        assert!(
            done.target.message == format!("rename or remove {}: it is not a drop-in of ours", site.display()),
            "{notes:?}"
        );
        assert_eq!(std::fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
        std::fs::remove_file(&site).unwrap();
        let (done, notes) = converged(&unit.unit());
        assert_ne!(done.target.status, Status::Blocked, "{:?}", done.target);
        for program in SERVICES {
            assert!(!drop_in(root, program, "50-watcher-metal.conf").exists(), "{program}: {notes:?}");
            assert!(std::fs::read_to_string(drop_in(root, program, "10-watcher-metal.conf"))
                .unwrap()
                .contains("timeout = 9"));
        }
        let said = format!(
            "removed {} (the options no longer name it)",
            drop_in(root, "watcher-applier", "50-watcher-metal.conf").display()
        );
        assert!(notes.contains(&Note::Log(LogLevel::Info, said)), "{notes:?}");
    }

    #[test]
    fn narrowed_services_leave_no_drop_in_for_the_others() {
        let unit = FakeUnit::new();
        converged(&unit.unit());
        unit.set("watcher-services", "watcher-decision-engine".into());
        let (done, _) = converged(&unit.unit());
        // The applier read the key at its start: it is restarted once more,
        // without its drop-in.
        assert_eq!(done.restarted, ["watcher-decision-engine", "watcher-applier"]);
        let applier = drop_in(unit.dir.path(), "watcher-applier", "50-watcher-metal.conf");
        assert!(!applier.exists() && !applier.parent().unwrap().exists(), "the applier keeps no key");
        assert!(drop_in(unit.dir.path(), "watcher-decision-engine", "50-watcher-metal.conf").exists());
    }

    #[test]
    fn a_new_drop_in_root_or_watcher_conf_leaves_nothing_of_ours_behind() {
        let unit = FakeUnit::new();
        converged(&unit.unit());
        let home = unit.dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        unit.set("drop-in-root", home.display().to_string().into());
        converged(&unit.unit());
        for program in SERVICES {
            assert!(!drop_in(unit.dir.path(), program, "50-watcher-metal.conf").exists(), "{program}");
            assert!(drop_in(&home, program, "50-watcher-metal.conf").exists(), "{program}");
        }
        // Merged into one watcher.conf, then pointed at another: the first
        // loses our sections, every other byte stays.
        unit.set("watcher-conf-mode", "merge".into());
        converged(&unit.unit());
        let first = std::fs::read_to_string(unit.conf()).unwrap();
        assert!(first.contains(KEY));
        let other = unit.dir.path().join("etc-watcher/other.conf");
        std::fs::write(&other, "[DEFAULT]\ndebug = False\n").unwrap();
        unit.set("watcher-conf-path", other.display().to_string().into());
        converged(&unit.unit());
        assert_eq!(std::fs::read_to_string(unit.conf()).unwrap(), "[DEFAULT]\ndebug = False\n");
        assert!(std::fs::read_to_string(&other).unwrap().contains(KEY));
        assert_eq!(ours_under(unit.dir.path()), [other], "only the watcher.conf named now holds the key");
    }

    #[test]
    fn remove_takes_out_everything_recorded_not_only_what_the_options_name() {
        let unit = FakeUnit::new();
        unit.set("drop-in-name", "40-a.conf".into());
        unit.set("maas-ca-cert", crate::config::TEST_CA_PEM.into());
        converged(&unit.unit());
        // Renamed, with an option gone bad: nothing is written, and removal
        // reads the options leniently (the default name).
        unit.set("drop-in-name", "60-b.conf".into());
        unit.set("maas-timeout", (-1).into());
        assert_eq!(converged(&unit.unit()).0.target.status, Status::Blocked);
        removed(&unit.unit());
        assert_eq!(ours_under(unit.dir.path()), Vec::<PathBuf>::new());
        let charm: Vec<_> =
            std::fs::read_dir(unit.dir.path().join("charm")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(charm.is_empty(), "no record, marker or lock left: {charm:?}");
        for program in SERVICES {
            assert!(!unit.dir.path().join(format!("{program}.conf.d")).exists());
        }
    }

    #[test]
    fn co_located_applications_keep_to_their_own_files() {
        let a = FakeUnit::new();
        a.set("maas-ca-cert", crate::config::TEST_CA_PEM.into());
        converged(&a.unit());
        // A second application of the charm on the same machine: same
        // watcher.conf, drop-in root and CA directory, its own charm dir.
        let b_dir = a.dir.path().join("charm-b");
        std::fs::create_dir(&b_dir).unwrap();
        let b_tools = FakeTools { config: std::sync::Mutex::new(a.tools.config.lock().unwrap().clone()) };
        let b_system = FakeSystem::new();
        let b = Unit {
            tools: &b_tools,
            system: &b_system,
            clock: &a.clock,
            charm_dir: Some(b_dir),
            ca_dir: a.dir.path().join("ca"),
            application: Some("watcher-maas-b".to_owned()),
            accounts: a.accounts(),
        };
        let a_drop_in = a.drop_in("watcher-applier");
        let a_text = std::fs::read_to_string(&a_drop_in).unwrap();
        let (done, _) = converged(&b);
        assert_eq!(done.target.status, Status::Blocked);
        assert!(
            done.target.message
                == format!(
                    "set another drop-in-name: watcher-maas wrote {}",
                    a.drop_in("watcher-decision-engine").display()
                ),
            "{}",
            done.target.message
        );
        assert_eq!(std::fs::read_to_string(&a_drop_in).unwrap(), a_text, "untouched");
        *b_tools.config.lock().unwrap().get_mut("drop-in-name").unwrap() = "60-b.conf".into();
        converged(&b);
        let b_drop_in = drop_in(a.dir.path(), "watcher-applier", "60-b.conf");
        assert!(std::fs::read_to_string(&b_drop_in).unwrap().contains("for application watcher-maas-b"));
        let ca = |app: &str| a.dir.path().join(format!("ca/watcher-metal-{app}.crt"));
        assert!(ca("watcher-maas").exists() && ca("watcher-maas-b").exists());

        // A goes: B's files stay, A's are gone.
        removed(&a.unit());
        assert!(!a_drop_in.exists() && !ca("watcher-maas").exists());
        assert!(b_drop_in.exists() && ca("watcher-maas-b").exists());
        assert_ne!(converged(&b).0.target.status, Status::Blocked);
        removed(&b);
        assert_eq!(ours_under(a.dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn a_unit_an_earlier_version_set_up_is_known_by_its_markers() {
        // Before the record: drop-ins beside watcher.conf's directory with
        // the marker that named no application, the certificate under the
        // name every application shared.
        let unit = FakeUnit::new();
        let earlier = "# Written by watcher-metal from the charm config; local edits are replaced.\n[maas_client]\n";
        for program in SERVICES {
            let path = unit.drop_in(program);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("{earlier}api_key = {KEY}\n")).unwrap();
        }
        let legacy_ca = unit.dir.path().join("ca/watcher-maas.crt");
        std::fs::write(&legacy_ca, crate::config::TEST_CA_PEM).unwrap();
        let site_ca = unit.dir.path().join("ca/site.crt");
        std::fs::write(&site_ca, crate::config::TEST_CA_PEM).unwrap();
        unit.set("maas-ca-cert", crate::config::TEST_CA_PEM.into());
        let home = unit.dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        unit.set("drop-in-root", home.display().to_string().into());
        converged(&unit.unit());
        for program in SERVICES {
            assert!(!unit.drop_in(program).exists(), "where the earlier version wrote it");
            assert!(drop_in(&home, program, "50-watcher-metal.conf").exists());
        }
        assert!(!legacy_ca.exists(), "it holds what the earlier version wrote for maas-ca-cert");
        assert!(site_ca.exists());
        let ca = unit.dir.path().join("ca/watcher-metal-watcher-maas.crt");
        let text = std::fs::read_to_string(&ca).unwrap();
        assert!(
            text.starts_with("# Written by watcher-metal for application watcher-maas ")
                && text.ends_with(crate::config::TEST_CA_PEM)
        );
    }

    #[test]
    fn a_damaged_record_is_said_and_written_anew() {
        let unit = FakeUnit::new();
        converged(&unit.unit());
        let conf = unit.dir.path().join("etc-watcher/watcher.conf");
        let path = unit.unit().state_files(&conf).record_path();
        std::fs::write(&path, "{\"files\": [").unwrap();
        let (_, notes) = converged(&unit.unit());
        let said = notes.iter().any(|n| {
            matches!(n, Note::Log(LogLevel::Warning, line)
                if line.starts_with(&format!("{} is not a record of the files this unit wrote (", path.display()))
                    && line.contains("the markers on disk decide"))
        });
        assert!(said, "{notes:?}");
        let record = super::Record::load(&path, Some("watcher-maas")).unwrap();
        assert!(record.found() && record.damaged().is_none());
        for program in SERVICES {
            assert!(record.has(&unit.drop_in(program), super::Kind::DropIn), "{program}");
        }
        // Said once: the next hook finds the record.
        let (_, notes) = converged(&unit.unit());
        assert!(!notes.iter().any(|n| matches!(n, Note::Log(_, line) if line.contains("is not a record"))));
    }

    #[test]
    fn merging_the_key_into_a_watcher_conf_others_can_read_tightens_it_and_says_so() {
        let unit = FakeUnit::new();
        std::fs::set_permissions(unit.conf(), std::fs::Permissions::from_mode(0o644)).unwrap();
        // In drop-in mode watcher.conf gets no key: its mode stays.
        converged(&unit.unit());
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&unit.conf()), 0o644);
        unit.set("watcher-conf-mode", "merge".into());
        let (_, notes) = converged(&unit.unit());
        assert_eq!(mode(&unit.conf()), 0o640);
        let said = format!(
            "{} holds the MAAS API key and was readable by others (mode 0644): now 0640",
            unit.conf().display()
        );
        assert!(notes.contains(&Note::Log(LogLevel::Warning, said)), "{notes:?}");
    }
}
