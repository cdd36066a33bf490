//! Putting the managed settings where Watcher reads them: the application
//! operation that both the CLI (`render`) and the charm (every hook) run.
//!
//! In drop-in mode (the default) the managed sections go to
//! `watcher.conf.d/<drop-in-name>` beside watcher.conf, and watcher.conf is
//! left to the charm that owns it, with one exception: sections an earlier
//! merge wrote there (they carry [`ini::MARKER`]) are removed, since
//! watcher.conf is read last and would override the drop-in. In merge mode
//! the sections are merged into watcher.conf and an old drop-in of ours is
//! removed. Either way the result is checked against the effective
//! configuration: a managed option that another file sets is a [`Clash`].
//!
//! [`plan`] reads and computes without writing; [`apply`] writes the plan.

use std::path::{Path, PathBuf};

use crate::atomic_file::{self, FileError, WriteOutcome};
use crate::config::{CharmConfig, ConfMode};
use crate::effective::{self, Clash, Layout};
use crate::ini::{self, ManagedSection};
use crate::render::{RenderError, Renderer, IRONIC_SECTION, MAAS_SECTION};

/// The mode of the drop-in directory when it is created: the services'
/// group may enter it, others may not.
pub const DROP_IN_DIR_MODE: u32 = 0o750;

/// Why a file is part of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The file holding the managed sections: the drop-in, or watcher.conf
    /// in merge mode.
    Managed,
    /// watcher.conf losing the sections an earlier merge wrote.
    Migration,
    /// Our drop-in, removed in merge mode.
    Cleanup,
}

/// One file the plan writes (`new` is `Some`) or removes (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    pub role: Role,
    /// The current content; `None` when the file does not exist.
    pub old: Option<String>,
    pub new: Option<String>,
}

impl FileChange {
    pub fn changes(&self) -> bool {
        self.old != self.new
    }
}

/// What rendering would do, computed without writing.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: ConfMode,
    /// The file holding the managed sections.
    pub target: PathBuf,
    /// watcher.conf, whose owner new files and the directory get.
    pub watcher_conf: PathBuf,
    /// Every file the plan touches, the managed one first.
    pub files: Vec<FileChange>,
    /// What Watcher's services would read once the plan is applied.
    pub layout_after: Layout,
    /// Managed options Watcher would take from another file.
    pub clashes: Vec<Clash>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    File(#[from] FileError),
}

/// Computes the files to write for `config` with `renderer`.
pub fn plan(config: &CharmConfig, renderer: &Renderer) -> Result<Plan, PlanError> {
    let conf = &config.watcher_conf_path;
    let drop_in = config.drop_in_path();
    let layout = Layout::read(conf)?;
    let current = |path: &Path| layout.files.iter().find(|f| f.path == path).map(|f| f.text.clone());
    let mut files = Vec::new();
    let mut after = layout.clone();
    match config.mode {
        ConfMode::DropIn => {
            let text = renderer.drop_in(config)?;
            files.push(FileChange {
                path: drop_in.clone(),
                role: Role::Managed,
                old: current(&drop_in),
                new: Some(text),
            });
            if let Some(old) = atomic_file::read_existing(conf)? {
                let migrated = ini::remove_marked_sections(&old, &[MAAS_SECTION, IRONIC_SECTION]);
                if migrated != old {
                    files.push(FileChange {
                        path: conf.clone(),
                        role: Role::Migration,
                        old: Some(old),
                        new: Some(migrated),
                    });
                }
            }
        }
        ConfMode::Merge => {
            let old = atomic_file::read_existing(conf)?;
            let managed = renderer.managed_sections(config)?;
            let merged = ini::merge(
                old.as_deref().unwrap_or(""),
                &[
                    ManagedSection { name: MAAS_SECTION, body: managed.maas.as_deref() },
                    ManagedSection { name: IRONIC_SECTION, body: Some(&managed.ironic) },
                ],
            );
            files.push(FileChange { path: conf.clone(), role: Role::Managed, old, new: Some(merged) });
            if let Some(old) = current(&drop_in) {
                files.push(FileChange { path: drop_in.clone(), role: Role::Cleanup, old: Some(old), new: None });
            }
        }
    }
    for change in &files {
        after = after.with_file(&change.path, change.new.as_deref());
    }
    let target = files[0].path.clone();
    let clashes = effective::clashes(&after, &target);
    Ok(Plan { mode: config.mode, target, watcher_conf: conf.clone(), files, layout_after: after, clashes })
}

/// What applying a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Each file of the plan with what happened to it (`Unchanged` for a
    /// removal that found nothing to remove).
    pub outcomes: Vec<(PathBuf, Role, Outcome)>,
    /// The drop-in directory was created: the services must be restarted
    /// for it to count, since oslo.config looks only at start-up.
    pub created_dir: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Written(WriteOutcome),
    Removed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written(w) => w.as_str(),
            Outcome::Removed => "removed",
        }
    }

    pub fn changed(self) -> bool {
        !matches!(self, Outcome::Written(WriteOutcome::Unchanged))
    }
}

impl Applied {
    /// Whether what Watcher reads for the managed options changed, so the
    /// services need a restart: any file of the plan changed, or the
    /// directory was created.
    pub fn settings_changed(&self) -> bool {
        self.created_dir || self.outcomes.iter().any(|(_, _, o)| o.changed())
    }
}

/// Writes the plan: the directory if needed, then each file atomically.
/// Stops at the first failure; files not yet reached keep their content.
pub fn apply(plan: &Plan) -> Result<Applied, FileError> {
    let owner = atomic_file::owner_of(&plan.watcher_conf)
        .or_else(|| plan.watcher_conf.parent().and_then(atomic_file::owner_of));
    let mut created_dir = false;
    let mut outcomes = Vec::new();
    for change in &plan.files {
        let outcome = match &change.new {
            Some(text) => {
                if change.role == Role::Managed && plan.mode == ConfMode::DropIn {
                    if let Some(dir) = change.path.parent() {
                        created_dir |= atomic_file::ensure_dir(dir, DROP_IN_DIR_MODE, owner)?;
                    }
                }
                Outcome::Written(atomic_file::write_if_changed_owned(&change.path, text, owner)?)
            }
            None => {
                if atomic_file::remove(&change.path)? {
                    Outcome::Removed
                } else {
                    Outcome::Written(WriteOutcome::Unchanged)
                }
            }
        };
        outcomes.push((change.path.clone(), change.role, outcome));
    }
    Ok(Applied { outcomes, created_dir })
}

/// Removes what watcher-metal wrote: the drop-in, and the managed sections
/// in watcher.conf (all of them in merge mode, the marked ones in drop-in
/// mode).
pub fn plan_removal(conf: &Path, drop_in: &Path, mode: ConfMode) -> Result<Vec<FileChange>, FileError> {
    let mut files = Vec::new();
    if let Some(old) = atomic_file::read_existing(drop_in)? {
        files.push(FileChange { path: drop_in.to_owned(), role: Role::Cleanup, old: Some(old), new: None });
    }
    if let Some(old) = atomic_file::read_existing(conf)? {
        let new = match mode {
            ConfMode::DropIn => ini::remove_marked_sections(&old, &[MAAS_SECTION, IRONIC_SECTION]),
            ConfMode::Merge => ini::merge(
                &old,
                &[
                    ManagedSection { name: MAAS_SECTION, body: None },
                    ManagedSection { name: IRONIC_SECTION, body: None },
                ],
            ),
        };
        if new != old {
            files.push(FileChange { path: conf.to_owned(), role: Role::Migration, old: Some(old), new: Some(new) });
        }
    }
    Ok(files)
}

/// Applies a removal plan (see [`plan_removal`]).
pub fn apply_removal(files: &[FileChange], watcher_conf: &Path) -> Result<Applied, FileError> {
    let plan = Plan {
        mode: ConfMode::Merge,
        target: watcher_conf.to_owned(),
        watcher_conf: watcher_conf.to_owned(),
        files: files.to_vec(),
        layout_after: Layout::default(),
        clashes: Vec::new(),
    };
    apply(&plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, NoSecrets};
    use serde_json::json;

    const KEY: &str = "aaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbb:cccccccccccccccccccccccccccccccc";
    const PRINCIPAL: &str = "[DEFAULT]\ndebug = false\n\n[database]\nconnection = sqlite://\n";

    fn config(conf: &Path, mode: &str) -> CharmConfig {
        let entries = vec![
            ("maas-url".to_owned(), json!("http://10.0.0.2:5240/MAAS")),
            ("maas-api-key".to_owned(), json!(KEY)),
            ("watcher-conf-path".to_owned(), json!(conf.display().to_string())),
            ("watcher-conf-mode".to_owned(), json!(mode)),
        ];
        load(&entries, &NoSecrets).unwrap().0
    }

    #[test]
    fn drop_in_mode_migrates_marked_sections_and_leaves_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("watcher.conf");
        let renderer = Renderer::new(None).unwrap();
        // An earlier merge.
        std::fs::write(&conf, PRINCIPAL).unwrap();
        apply(&plan(&config(&conf, "merge"), &renderer).unwrap()).unwrap();
        assert_ne!(std::fs::read_to_string(&conf).unwrap(), PRINCIPAL);

        let p = plan(&config(&conf, "drop-in"), &renderer).unwrap();
        assert_eq!(p.files.iter().map(|f| f.role).collect::<Vec<_>>(), [Role::Managed, Role::Migration]);
        assert!(p.clashes.is_empty(), "{:?}", p.clashes);
        let applied = apply(&p).unwrap();
        assert!(applied.created_dir && applied.settings_changed());
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), PRINCIPAL);
        let drop_in = dir.path().join("watcher.conf.d/50-watcher-metal.conf");
        assert!(std::fs::read_to_string(&drop_in).unwrap().contains("[maas_client]\n"));

        // Converged: nothing to do, nothing to restart.
        let again = apply(&plan(&config(&conf, "drop-in"), &renderer).unwrap()).unwrap();
        assert!(!again.settings_changed(), "{again:?}");

        // Back to merge: the drop-in goes.
        let back = apply(&plan(&config(&conf, "merge"), &renderer).unwrap()).unwrap();
        assert!(back.outcomes.iter().any(|(_, role, o)| *role == Role::Cleanup && *o == Outcome::Removed));
        assert!(!drop_in.exists());
    }

    #[test]
    fn a_later_setting_is_a_clash() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("watcher.conf");
        std::fs::write(&conf, "[maas_client]\ntimeout = 5\n").unwrap();
        let p = plan(&config(&conf, "drop-in"), &Renderer::new(None).unwrap()).unwrap();
        assert_eq!(p.clashes, vec![Clash { section: "maas_client", option: "timeout", path: conf.clone() }]);
    }
}
