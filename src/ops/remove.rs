//! The charm's `remove` hook, as an operation: take out what the charm
//! wrote (everything its record names, and what the options name: the
//! drop-ins, the managed sections, the CA certificate, its state files),
//! then restart the services once, best effort: the unit is going away. It
//! works from the raw options, since the config may be invalid by now.

use std::path::{Path, PathBuf};

use crate::config::{self, CharmOptions};
use crate::host::juju::LogLevel;
use crate::ops::apply::Removal;
use crate::ops::converge::{self, Note, Notes, Unit};
use crate::ops::record::Kind;
use crate::ops::source::{self, Source};
use crate::ops::unit;
use crate::ops::Error;
use crate::watcher::effective;

/// What removal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The files changed or removed, in order.
    pub changed: Vec<PathBuf>,
    /// Whether the CA certificate was removed.
    pub ca_removed: bool,
    /// The services restarted.
    pub restarted: Vec<String>,
}

/// What the options name, read as leniently as they can be: the options
/// themselves when they are valid, else the defaults, with an absolute
/// `watcher-conf-path` and `drop-in-root` taken as given.
fn options_to_remove(options: &config::OptionMap) -> Result<CharmOptions, Error> {
    let raw = |name: &str| raw_option(options, name);
    let mut lenient = match CharmOptions::from_map(options) {
        Ok((options, _)) => options,
        Err(_) => CharmOptions::from_map(&Vec::new()).map(|(o, _)| o)?,
    };
    if let Some(path) = raw(config::WATCHER_CONF_PATH).filter(|p| Path::new(p).is_absolute()) {
        lenient.watcher_conf_path = PathBuf::from(path);
    }
    if let Some(path) = raw(config::DROP_IN_ROOT).filter(|p| Path::new(p).is_absolute()) {
        lenient.drop_in_root = PathBuf::from(path);
    }
    Ok(lenient)
}

/// Removes what the charm wrote on the unit.
pub fn remove(unit: &Unit<'_>, notes: &mut Notes<'_>) -> Result<Removed, Error> {
    let options = source::read_options(Source::Hook { tools: unit.tools, refresh: false })?;
    let lenient = options_to_remove(&options)?;
    let conf = lenient.watcher_conf_path.clone();
    let state = unit.state_files(&conf);
    let app = unit.application.as_deref();
    let mut record = unit.record(&state, notes)?;
    // Each program's drop-in; the shared directory's and the one beside
    // watcher.conf's directory, where earlier versions wrote them; every
    // drop-in the record names.
    let mut drop_ins = config::drop_in_paths_of(&lenient.drop_in_root, &lenient.services, &lenient.drop_in_name);
    drop_ins.push(effective::drop_in_dir(&conf).join(&lenient.drop_in_name));
    let derived = effective::derived_drop_in_root(&conf);
    drop_ins.extend(config::drop_in_paths_of(&derived, &lenient.services, &lenient.drop_in_name));
    drop_ins.extend(record.paths(Kind::DropIn));
    // Under the default layout several of these name the same file: each once.
    let mut seen = std::collections::HashSet::new();
    drop_ins.retain(|path| seen.insert(path.clone()));
    let removal =
        Removal { conf: &conf, mode: lenient.mode, drop_ins, sections: record.paths(Kind::Sections), application: app };
    let pem = raw_option(&options, config::MAAS_CA_CERT);
    let removed = unit::remove(unit.system, &removal, &unit.ca_dir, pem, &mut record, &state)?;
    let mut changed = Vec::new();
    for (path, _, outcome) in removed.applied.outcomes.iter().filter(|(_, _, o)| o.changed()) {
        notes(Note::Log(LogLevel::Info, format!("{} {}", outcome.as_str(), path.display())))?;
        changed.push(path.clone());
    }
    if removed.ca.changed {
        converge::log_ca_change(notes, &removed.ca.path, false)?;
    }
    let mut restarted = Vec::new();
    if removed.applied.settings_changed() || removed.ca.changed {
        for service in config::services_from_options(&options) {
            // Best effort: the unit is going away.
            match unit.system.restart(&service) {
                Ok(()) => restarted.push(service),
                Err(e) => notes(Note::Log(LogLevel::Warning, e))?,
            }
        }
    }
    Ok(Removed { changed, ca_removed: removed.ca.changed, restarted })
}

/// A string option as given, when set.
fn raw_option<'o>(options: &'o config::OptionMap, name: &str) -> Option<&'o str> {
    crate::clients::last_setting(options, name).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::converge::fakes::{noted, FakeUnit};
    use crate::ops::doctor::Depth;

    #[test]
    fn removal_takes_out_the_drop_ins_and_restarts_once_even_with_options_gone_bad() {
        let unit = FakeUnit::new();
        unit.set("maas-ca-cert", crate::config::TEST_CA_PEM.into());
        let (done, _) = noted(|notes| converge::converge(&unit.unit(), Depth::Hook, notes));
        done.unwrap();
        unit.system.take_restarts();
        // An option broken since: removal still finds what was written.
        unit.set("maas-timeout", (-1).into());
        let (removed, notes) = noted(|notes| remove(&unit.unit(), notes));
        let removed = removed.unwrap();
        let drop_ins = [unit.drop_in("watcher-decision-engine"), unit.drop_in("watcher-applier")];
        assert_eq!(removed.changed, drop_ins);
        assert!(removed.ca_removed);
        assert!(drop_ins.iter().all(|d| !d.exists() && !d.parent().unwrap().exists()));
        assert_eq!(unit.system.take_restarts(), ["watcher-decision-engine", "watcher-applier"]);
        let ca = format!(
            "removed {} and rebuilt the CA bundle",
            unit.dir.path().join("ca/watcher-metal-watcher-maas.crt").display()
        );
        assert!(notes.contains(&Note::Log(LogLevel::Info, ca)), "{notes:?}");
        // Nothing left: a second removal changes and restarts nothing.
        let (again, _) = noted(|notes| remove(&unit.unit(), notes));
        assert_eq!(again.unwrap(), Removed { changed: vec![], ca_removed: false, restarted: vec![] });
    }

    #[test]
    fn a_failed_restart_on_removal_is_logged_not_fatal() {
        let unit = FakeUnit::new();
        noted(|notes| converge::converge(&unit.unit(), Depth::Hook, notes)).0.unwrap();
        *unit.system.failing_restarts.lock().unwrap() = 1;
        let (removed, notes) = noted(|notes| remove(&unit.unit(), notes));
        assert_eq!(removed.unwrap().restarted, ["watcher-applier"]);
        let failed = "systemctl try-restart watcher-decision-engine: Job failed".to_owned();
        assert!(notes.contains(&Note::Log(LogLevel::Warning, failed)), "{notes:?}");
    }
}
