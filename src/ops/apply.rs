//! Putting the managed settings where Watcher reads them: the application
//! operation that both the CLI (`render`) and the charm (every hook) run.
//!
//! In drop-in mode (the default) the managed sections go to each
//! program's `<program>.conf.d/<drop-in-name>` beside watcher.conf's
//! directory, and watcher.conf is left to the charm that owns it, with one
//! exception: sections an earlier merge wrote there (they carry the
//! `# Managed by watcher-metal` marker) are removed, since
//! watcher.conf is read last and would override the drop-in. In merge mode
//! the sections are merged into watcher.conf and an old drop-in of ours is
//! removed. Either way the result is checked against the effective
//! configuration: a managed option that another file sets is a [`Clash`].
//!
//! Only our files are replaced or removed: a file at a drop-in's path that
//! lacks the drop-in header (see `render::is_our_drop_in`) is the site's. The
//! plan refuses to replace it ([`PlanError::ForeignDropIn`]) and leaves it
//! out of every cleanup and removal; a directory goes only when it is empty
//! and is a `<program>.conf.d` this program creates (never `watcher.conf.d`).
//!
//! [`plan`] reads and computes without writing; [`apply`] writes the plan.
//! [`single`] renders one file alone (`render --full`, `render --output`),
//! and [`write_single`] writes it.

use std::path::{Path, PathBuf};

use crate::config::render::{is_our_drop_in, RenderContext, RenderError, Renderer, IRONIC_SECTION, MAAS_SECTION};
use crate::config::{CharmConfig, ConfMode};
use crate::host::atomic_file::{self, FileError, WriteOutcome};
use crate::watcher::effective::{self, Clash, Layout};
use crate::watcher::ini::{self, ManagedSection};

/// The mode of the drop-in directory when it is created: the services'
/// group may enter it, others may not.
const DROP_IN_DIR_MODE: u32 = 0o750;

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
    /// The file.
    pub path: PathBuf,
    role: Role,
    /// The current content; `None` when the file does not exist.
    pub old: Option<String>,
    /// The content it gets; `None` when the plan removes it.
    pub new: Option<String>,
}

impl FileChange {
    /// Whether applying it alters the file (writing the same text does not).
    pub fn changes(&self) -> bool {
        self.old != self.new
    }
}

/// What rendering would do, computed without writing.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) mode: ConfMode,
    /// watcher.conf, whose owner new files and directories get.
    watcher_conf: PathBuf,
    /// Every file the plan touches, the managed ones first.
    pub files: Vec<FileChange>,
    /// What the main program (the decision engine) would read at start-up
    /// once the plan is applied.
    pub(crate) layout_after: Layout,
    /// Managed options some program would take from another file, at
    /// start-up or after Watcher 12.0.0-16.0.0's second parse.
    pub clashes: Vec<Clash>,
}

/// Why a plan (or a [`single`] file) could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A template failed to render.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A file the plan reads could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file at a drop-in's path that watcher-metal did not write: it is
    /// never replaced.
    #[error("{} is not a drop-in watcher-metal wrote; refusing to replace it", path.display())]
    ForeignDropIn {
        /// The file.
        path: PathBuf,
    },
    /// `render --output` names an existing file that is not a drop-in of
    /// ours: writing a drop-in there would replace the whole file.
    #[error(
        "{} exists and is not a drop-in watcher-metal wrote; writing a drop-in would replace all of it",
        path.display()
    )]
    OutputNotOurs {
        /// The file.
        path: PathBuf,
    },
}

/// The current content of the drop-in at `path`, when it is one we wrote.
/// `Ok(None)`: no file, or the site's (a cleanup leaves it alone).
fn our_drop_in(path: &Path) -> Result<Option<String>, FileError> {
    Ok(atomic_file::read_existing(path)?.filter(|text| is_our_drop_in(text)))
}

/// Computes the files to write for `config` with `renderer`.
pub fn plan(config: &CharmConfig, renderer: &Renderer) -> Result<Plan, PlanError> {
    let conf = &config.watcher_conf_path;
    let current = |path: &Path| atomic_file::read_existing(path);
    let mut files = Vec::new();
    match config.mode {
        ConfMode::DropIn => {
            let text = renderer.drop_in(config)?;
            for path in config.drop_in_paths() {
                let old = current(&path)?;
                if old.as_deref().is_some_and(|text| !is_our_drop_in(text)) {
                    return Err(PlanError::ForeignDropIn { path });
                }
                files.push(FileChange { path, role: Role::Managed, old, new: Some(text.clone()) });
            }
            if let Some(old) = current(conf)? {
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
            let old = current(conf)?;
            let managed = renderer.managed_sections(config)?;
            let merged = ini::merge(
                old.as_deref().unwrap_or(""),
                &[
                    ManagedSection { name: MAAS_SECTION, body: managed.maas.as_deref() },
                    ManagedSection { name: IRONIC_SECTION, body: Some(&managed.ironic) },
                ],
            );
            files.push(FileChange { path: conf.clone(), role: Role::Managed, old, new: Some(merged) });
            for path in config.drop_in_paths() {
                if let Some(old) = our_drop_in(&path)? {
                    files.push(FileChange { path, role: Role::Cleanup, old: Some(old), new: None });
                }
            }
        }
    }
    // The drop-in an earlier version put in watcher.conf.d/ (a site file of
    // that name stays).
    let legacy = config.project_drop_in_path();
    if let Some(old) = our_drop_in(&legacy)? {
        files.push(FileChange { path: legacy, role: Role::Cleanup, old: Some(old), new: None });
    }

    let (clashes, layout_after) = clashes_after(config, &files, &config.target_paths())?;
    Ok(Plan { mode: config.mode, watcher_conf: conf.clone(), files, layout_after, clashes })
}

/// The clashes once `files` hold their new text, for every program of
/// `config`, each against its target (`targets[i]`, its drop-in; with a
/// single target, watcher.conf, the same for all), at start-up and after
/// Watcher 12.0.0-16.0.0's second parse; and what the first program reads
/// at start-up.
fn clashes_after(
    config: &CharmConfig,
    files: &[FileChange],
    targets: &[PathBuf],
) -> Result<(Vec<Clash>, Layout), FileError> {
    let conf = &config.watcher_conf_path;
    let mut clashes: Vec<Clash> = Vec::new();
    let mut main = None;
    for (i, program) in config.programs().iter().enumerate() {
        let target = targets.get(i).unwrap_or(conf);
        for reloaded in [false, true] {
            let before = if reloaded { Layout::read_reloaded(conf, program)? } else { Layout::read(conf, program)? };
            let after = files.iter().fold(before, |l, change| l.with_file(&change.path, change.new.as_deref()));
            for clash in effective::clashes(&after, target) {
                if !clashes.contains(&clash) {
                    clashes.push(clash);
                }
            }
            if main.is_none() && !reloaded {
                main = Some(after);
            }
        }
    }
    Ok((clashes, main.unwrap_or_default()))
}

/// What one file alone would become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Single {
    /// The target's current content (`None`: it does not exist, or the
    /// target is standard output).
    pub existing: Option<String>,
    /// Its new content.
    pub contents: String,
    /// When the file is watcher-conf-path (a whole file, or a merge):
    /// managed options some program would take from another file once it
    /// is written.
    pub clashes: Vec<Clash>,
}

/// What is rendered into the one file.
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// A whole watcher.conf from the template and `context`.
    Full(&'a RenderContext),
    /// The managed sections as the mode puts them: a drop-in's text, or
    /// the target (for standard output: watcher-conf-path) with them
    /// merged in.
    Managed,
}

/// Renders `content` for `target` (`None` is standard output) without
/// writing. A drop-in is rendered for an existing file only when that file
/// is a drop-in of ours ([`PlanError::OutputNotOurs`]); a merge or a whole
/// file may go anywhere.
pub fn single(
    config: &CharmConfig,
    renderer: &Renderer,
    content: Content<'_>,
    target: Option<&Path>,
) -> Result<Single, PlanError> {
    let existing = match target {
        Some(path) => atomic_file::read_existing(path)?,
        None => None,
    };
    if let (Content::Managed, ConfMode::DropIn, Some(path), Some(text)) = (content, config.mode, target, &existing) {
        if !is_our_drop_in(text) {
            return Err(PlanError::OutputNotOurs { path: path.to_owned() });
        }
    }
    let contents = match content {
        Content::Full(context) => renderer.full(config, context)?,
        Content::Managed if config.mode == ConfMode::DropIn => renderer.drop_in(config)?,
        Content::Managed => {
            // Printing a merge shows it on watcher-conf-path's content.
            let base = match target {
                Some(_) => existing.clone(),
                None => atomic_file::read_existing(&config.watcher_conf_path)?,
            };
            let managed = renderer.managed_sections(config)?;
            ini::merge(
                base.as_deref().unwrap_or(""),
                &[
                    ManagedSection { name: MAAS_SECTION, body: managed.maas.as_deref() },
                    ManagedSection { name: IRONIC_SECTION, body: Some(&managed.ironic) },
                ],
            )
        }
    };
    // A whole watcher.conf, or one merged into, is checked as a merge is.
    let writes_conf = matches!(content, Content::Full(_)) || config.mode == ConfMode::Merge;
    let clashes = match target {
        Some(path) if writes_conf && same_path(path, &config.watcher_conf_path) => {
            let change = FileChange {
                path: config.watcher_conf_path.clone(),
                role: Role::Managed,
                old: existing.clone(),
                new: Some(contents.clone()),
            };
            clashes_after(config, &[change], &[])?.0
        }
        _ => Vec::new(),
    };
    Ok(Single { existing, contents, clashes })
}

/// Whether two paths name the same file, relative or not (links are not
/// followed: watcher.conf is never one).
fn same_path(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    absolute(a) == absolute(b)
}

/// Writes a [`single`] file's contents to `target` unless it holds them
/// already.
pub fn write_single(target: &Path, contents: &str) -> Result<WriteOutcome, FileError> {
    atomic_file::write_if_changed(target, contents)
}

/// What applying a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Each file of the plan with what happened to it (`Unchanged` for a
    /// removal that found nothing to remove).
    pub outcomes: Vec<(PathBuf, Role, Outcome)>,
    /// The drop-in directory was created: the services must be restarted
    /// for it to count, since oslo.config looks only at start-up.
    created_dir: bool,
}

/// What applying one [`FileChange`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file was created, updated, or left as it was (also: a removal
    /// that found no file).
    Written(WriteOutcome),
    /// The file was removed.
    Removed,
}

impl Outcome {
    /// `created`, `updated`, `unchanged` or `removed`, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written(w) => w.as_str(),
            Outcome::Removed => "removed",
        }
    }

    /// Whether the file on disk changed.
    pub fn changed(self) -> bool {
        !matches!(self, Outcome::Written(WriteOutcome::Unchanged))
    }
}

impl Applied {
    /// Whether what Watcher reads for the managed options changed, so the
    /// services need a restart: any file of the plan changed, or the
    /// directory was created.
    pub(crate) fn settings_changed(&self) -> bool {
        self.created_dir || self.outcomes.iter().any(|(_, _, o)| o.changed())
    }

    /// Whether a drop-in directory was created.
    pub(crate) fn created_dir(&self) -> bool {
        self.created_dir
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
            // Checked again just before: a file the site put there since
            // the plan was read stays.
            None if our_drop_in(&change.path)?.is_none() => Outcome::Written(WriteOutcome::Unchanged),
            None => {
                if atomic_file::remove(&change.path)? {
                    if let Some(dir) =
                        change.path.parent().filter(|dir| is_program_drop_in_dir(dir, &plan.watcher_conf))
                    {
                        // Fails, as it should, unless the directory is empty.
                        let _ = std::fs::remove_dir(dir);
                    }
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

/// Whether `dir` is a directory this program creates for a drop-in: a
/// `<program>.conf.d`, and not Watcher's own `watcher.conf.d` beside
/// watcher.conf (which the site or the Watcher charm owns). Creation is not
/// recorded, so that is what "ours" can mean for a directory.
fn is_program_drop_in_dir(dir: &Path, watcher_conf: &Path) -> bool {
    let named =
        dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() > ".conf.d".len() && n.ends_with(".conf.d"));
    named && dir != effective::drop_in_dir(watcher_conf)
}

/// Removes what watcher-metal wrote: the drop-ins (each program's and any
/// in watcher.conf.d/), and the managed sections in watcher.conf (all of
/// them in merge mode, the marked ones in drop-in mode).
pub(crate) fn plan_removal(conf: &Path, drop_ins: &[PathBuf], mode: ConfMode) -> Result<Vec<FileChange>, FileError> {
    let mut files = Vec::new();
    for drop_in in drop_ins {
        // A site file of that name is not ours to remove.
        if let Some(old) = our_drop_in(drop_in)? {
            files.push(FileChange { path: drop_in.clone(), role: Role::Cleanup, old: Some(old), new: None });
        }
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
pub(crate) fn apply_removal(files: &[FileChange], watcher_conf: &Path) -> Result<Applied, FileError> {
    let plan = Plan {
        mode: ConfMode::Merge,
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

    /// `<root>/watcher/watcher.conf`, as `/etc/watcher/watcher.conf`.
    fn unit() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("watcher")).unwrap();
        let conf = root.path().join("watcher/watcher.conf");
        (root, conf)
    }

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
    fn drop_in_mode_writes_one_drop_in_per_program_and_migrates_marked_sections() {
        let (root, conf) = unit();
        let renderer = Renderer::new(None).unwrap();
        // An earlier merge, and an earlier drop-in in watcher.conf.d/.
        std::fs::write(&conf, PRINCIPAL).unwrap();
        apply(&plan(&config(&conf, "merge"), &renderer).unwrap()).unwrap();
        assert_ne!(std::fs::read_to_string(&conf).unwrap(), PRINCIPAL);
        let legacy = root.path().join("watcher/watcher.conf.d/50-watcher-metal.conf");
        std::fs::create_dir(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "# Written by watcher-metal\n[maas_client]\nurl = http://old/MAAS\n").unwrap();

        let p = plan(&config(&conf, "drop-in"), &renderer).unwrap();
        let roles: Vec<Role> = p.files.iter().map(|f| f.role).collect();
        assert_eq!(roles, [Role::Managed, Role::Managed, Role::Migration, Role::Cleanup]);
        assert!(p.clashes.is_empty(), "{:?}", p.clashes);
        let applied = apply(&p).unwrap();
        assert!(applied.created_dir && applied.settings_changed());
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), PRINCIPAL);
        assert!(!legacy.exists(), "the old drop-in");
        assert!(legacy.parent().unwrap().exists(), "watcher.conf.d is not ours to remove, even empty");
        for program in ["watcher-decision-engine", "watcher-applier"] {
            let drop_in = root.path().join(format!("{program}.conf.d/50-watcher-metal.conf"));
            assert!(std::fs::read_to_string(&drop_in).unwrap().contains("[maas_client]\n"), "{program}");
        }

        // Converged: nothing to do, nothing to restart.
        let again = apply(&plan(&config(&conf, "drop-in"), &renderer).unwrap()).unwrap();
        assert!(!again.settings_changed(), "{again:?}");

        // Back to merge: the drop-ins go.
        let back = apply(&plan(&config(&conf, "merge"), &renderer).unwrap()).unwrap();
        assert_eq!(
            back.outcomes.iter().filter(|(_, role, o)| *role == Role::Cleanup && *o == Outcome::Removed).count(),
            2
        );
        assert!(!root.path().join("watcher-applier.conf.d").exists());
    }

    #[test]
    fn removal_leaves_site_files_of_the_drop_in_name_and_their_directories() {
        let (root, conf) = unit();
        std::fs::write(&conf, PRINCIPAL).unwrap();
        let renderer = Renderer::new(None).unwrap();
        apply(&plan(&config(&conf, "drop-in"), &renderer).unwrap()).unwrap();
        let ours = root.path().join("watcher-decision-engine.conf.d/50-watcher-metal.conf");
        let site = root.path().join("watcher-applier.conf.d/50-watcher-metal.conf");
        std::fs::write(&site, "[DEFAULT]\ndebug = true\n").unwrap();
        let drop_ins = [ours.clone(), site.clone()];
        let files = plan_removal(&conf, &drop_ins, ConfMode::DropIn).unwrap();
        assert_eq!(files.iter().map(|f| &f.path).collect::<Vec<_>>(), [&ours]);
        // The site's file put at our path after the plan was read stays too.
        std::fs::write(&ours, "[DEFAULT]\ndebug = false\n").unwrap();
        let applied = apply_removal(&files, &conf).unwrap();
        assert!(!applied.settings_changed(), "{applied:?}");
        assert_eq!(std::fs::read_to_string(&ours).unwrap(), "[DEFAULT]\ndebug = false\n");
        assert_eq!(std::fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
    }

    #[test]
    fn a_later_setting_is_a_clash() {
        let (_root, conf) = unit();
        std::fs::write(&conf, "[maas_client]\ntimeout = 5\n").unwrap();
        let p = plan(&config(&conf, "drop-in"), &Renderer::new(None).unwrap()).unwrap();
        assert_eq!(p.clashes, vec![Clash::Option { section: "maas_client", option: "timeout", path: conf.clone() }]);
    }

    /// In merge mode every program's view is checked too, not only the
    /// first one's: the applier powers the machines.
    #[test]
    fn merge_mode_checks_every_program() {
        let (root, conf) = unit();
        std::fs::write(&conf, PRINCIPAL).unwrap();
        let applier = root.path().join("watcher-applier.conf.d");
        std::fs::create_dir(&applier).unwrap();
        std::fs::write(applier.join("60-site.conf"), "[maas_client]\nurl = http://elsewhere:5240/MAAS\n").unwrap();
        let ironic = load(
            &vec![
                ("watcher-conf-path".to_owned(), json!(conf.display().to_string())),
                ("watcher-conf-mode".to_owned(), json!("merge")),
            ],
            &NoSecrets,
        )
        .unwrap()
        .0;
        let expected =
            vec![Clash::Option { section: "maas_client", option: "url", path: applier.join("60-site.conf") }];
        let p = plan(&ironic, &Renderer::new(None).unwrap()).unwrap();
        assert_eq!(p.clashes, expected);
        // And a whole watcher.conf (`render --full`), written or merged alone.
        let context = RenderContext::default();
        let renderer = Renderer::new(None).unwrap();
        for content in [Content::Full(&context), Content::Managed] {
            let one = single(&ironic, &renderer, content, Some(&conf)).unwrap();
            assert_eq!(one.clashes, expected, "{content:?}");
        }
        // Printed, or written elsewhere, nothing is checked.
        assert!(single(&ironic, &renderer, Content::Full(&context), None).unwrap().clashes.is_empty());
        let elsewhere = root.path().join("elsewhere.conf");
        assert!(single(&ironic, &renderer, Content::Full(&context), Some(&elsewhere)).unwrap().clashes.is_empty());
    }

    #[test]
    fn what_12_to_16_forget_is_a_clash() {
        // watcher.conf.d sets region_name, which the charm leaves unset: the
        // services see it at start-up only.
        let (root, conf) = unit();
        std::fs::write(&conf, PRINCIPAL).unwrap();
        let project = root.path().join("watcher/watcher.conf.d");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(project.join("10-site.conf"), "[ironic_client]\nregion_name = R2\n").unwrap();
        let p = plan(&config(&conf, "drop-in"), &Renderer::new(None).unwrap()).unwrap();
        assert_eq!(
            p.clashes,
            vec![Clash::Option { section: "ironic_client", option: "region_name", path: project.join("10-site.conf") }]
        );
    }
}
