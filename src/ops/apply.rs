//! Putting the managed settings where Watcher reads them: the application
//! operation that both the CLI (`render`) and the charm (every hook) run.
//!
//! In drop-in mode (the default) the managed sections go to each
//! program's `<drop-in-root>/<program>.conf.d/<drop-in-name>`, and
//! watcher.conf is left to the charm that owns it, with one exception:
//! sections an earlier merge wrote there (they carry the
//! `# Managed by watcher-metal` marker) are removed, since watcher.conf is
//! read last and would override the drop-in. In merge mode the sections are
//! merged into watcher.conf and an old drop-in of ours is removed. Either
//! way the result is checked against the effective configuration: a
//! managed option that another file sets is a [`Clash`].
//!
//! Only our files are replaced or removed: a file at a drop-in's path that
//! lacks the drop-in marker (see `render::marked_by`) is the site's, and one
//! whose marker names another Juju application is that application's (two
//! applications of the charm on one machine). The plan refuses to replace
//! either ([`NotOurs`]) and leaves them out of every cleanup and removal; a
//! directory goes only when it is empty and is a `<program>.conf.d` this
//! program creates (never `watcher.conf.d`).
//!
//! The charm plans with what its unit wrote before (`Writer::record`):
//! files of earlier options that the current ones no longer name (another
//! `drop-in-name`, fewer `watcher-services`, another `drop-in-root`,
//! `watcher-conf-path` or mode) are taken out ([`Role::Stale`]).
//!
//! New files are 0640 and new directories 0750, in the group Watcher's
//! services run as (`watcher` when the system has it, else watcher.conf's);
//! a file that exists keeps its owner, group and mode, except that one
//! holding the key never stays readable by others ([`Applied::tightened`]).
//!
//! [`plan`] reads and computes without writing; [`apply`] writes the plan.
//! [`single`] renders one file alone (`render --full`, `render --output`),
//! and [`write_single`] writes it.

use std::path::{Path, PathBuf};

use crate::config::render::{self, RenderContext, RenderError, Renderer, IRONIC_SECTION, MAAS_SECTION};
use crate::config::{CharmConfig, ConfMode};
use crate::host::accounts::{self, Accounts};
use crate::host::atomic_file::{self, FileError, NewFile, WriteOutcome, Written};
use crate::ops::record::{Kind, Record};
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
    /// Our drop-in, removed in merge mode (or the one an earlier version
    /// put in `watcher.conf.d/`).
    Cleanup,
    /// A file of earlier options that the current ones no longer name:
    /// removed (a drop-in), or rid of our sections (a watcher.conf).
    Stale,
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
    /// The new content holds the key: the file must not stay readable by
    /// others.
    private: bool,
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
    /// watcher.conf.
    watcher_conf: PathBuf,
    /// The group new files and directories get.
    group: Option<u32>,
    /// The Juju application whose unit writes (`None`: the CLI).
    application: Option<String>,
    /// Every file the plan touches, the managed ones first.
    pub files: Vec<FileChange>,
    /// What the main program (the decision engine) would read at start-up
    /// once the plan is applied.
    pub(crate) layout_after: Layout,
    /// Managed options some program would take from another file, at
    /// start-up or after Watcher 12.0.0-16.0.0's second parse.
    pub clashes: Vec<Clash>,
}

/// A file that is not ours to replace or remove: nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum NotOurs {
    /// A file at a drop-in's path that watcher-metal did not write.
    #[error("{} is not a drop-in watcher-metal wrote; refusing to replace it", path.display())]
    ForeignDropIn {
        /// The file.
        path: PathBuf,
    },
    /// A drop-in another application of this charm wrote on the same
    /// machine.
    #[error("{} is the drop-in of application {application}, another application of this charm here; refusing to replace it", path.display())]
    OtherApplication {
        /// The file.
        path: PathBuf,
        /// The application its marker names.
        application: String,
    },
    /// `render --output` names an existing file that is not a drop-in of
    /// ours: writing a drop-in there would replace the whole file.
    #[error(
        "{} exists and is not a drop-in watcher-metal wrote; writing a drop-in would replace all of it",
        path.display()
    )]
    Output {
        /// The file.
        path: PathBuf,
    },
    /// A file at the CA certificate's path that watcher-metal did not write.
    #[error("{} is not a CA certificate watcher-metal wrote; refusing to replace it", path.display())]
    ForeignCaCert {
        /// The file.
        path: PathBuf,
    },
}

impl NotOurs {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            NotOurs::ForeignDropIn { .. } => {
                "rename or remove it by hand (drop-ins of ours start with `# Written by watcher-metal`), \
                 or set drop-in-name to another file name"
                    .to_owned()
            }
            NotOurs::OtherApplication { .. } => {
                "give each application of this charm on a machine its own drop-in-name (juju config APP \
                 drop-in-name=60-APP.conf); only one of them can set the managed options Watcher uses"
                    .to_owned()
            }
            NotOurs::Output { .. } => {
                "pass --merge to merge the managed sections into it, --full to write a whole watcher.conf there, \
                 or give --output a new file"
                    .to_owned()
            }
            NotOurs::ForeignCaCert { .. } => {
                "rename or remove it by hand (certificates of ours start with `# Written by watcher-metal`)".to_owned()
            }
        }
    }
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
    /// A file the plan would replace is not ours.
    #[error(transparent)]
    NotOurs(#[from] NotOurs),
}

/// Who writes, and what it wrote before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer<'a> {
    /// The Juju application whose unit writes; `None` for the CLI, which
    /// takes any file with our marker as its own.
    pub(crate) application: Option<&'a str>,
    /// What the unit wrote before; `None` for the CLI.
    pub(crate) record: Option<&'a Record>,
    /// Where Watcher's group is looked up.
    pub(crate) accounts: &'a Accounts,
}

/// Whether a file holding `text` is one `application`'s unit may replace
/// or remove: it carries our marker, naming this application or none (the
/// CLI, or a version before the marker named one). The CLI (`None`) takes
/// any marked file as its own.
pub(crate) fn is_ours(text: &str, application: Option<&str>) -> bool {
    match (render::marked_by(text), application) {
        (None, _) => false,
        (Some(None), _) | (Some(Some(_)), None) => true,
        (Some(Some(writer)), Some(me)) => writer == me,
    }
}

/// Refuses to replace the file at `path` holding `text` unless it is ours.
fn check_ours(path: &Path, text: &str, application: Option<&str>) -> Result<(), NotOurs> {
    match (render::marked_by(text), application) {
        (None, _) => Err(NotOurs::ForeignDropIn { path: path.to_owned() }),
        (Some(Some(writer)), Some(me)) if writer != me => {
            Err(NotOurs::OtherApplication { path: path.to_owned(), application: writer.to_owned() })
        }
        _ => Ok(()),
    }
}

/// The current content of the drop-in at `path`, when it is one of ours.
/// `Ok(None)`: no file, the site's, or another application's (a cleanup
/// leaves it alone).
fn our_drop_in(path: &Path, application: Option<&str>) -> Result<Option<String>, FileError> {
    Ok(atomic_file::read_existing(path)?.filter(|text| is_ours(text, application)))
}

/// [`atomic_file::read_existing`] for a file of earlier options: a path
/// that is no longer a readable file holds nothing of ours to take out.
fn read_stale(path: &Path) -> Result<Option<String>, FileError> {
    match atomic_file::read_existing(path) {
        Err(e @ FileError::Read { .. }) => Err(e),
        Err(_) => Ok(None),
        Ok(text) => Ok(text),
    }
}

/// `text` without the sections watcher-metal marks as its own.
pub(crate) fn without_our_sections(text: &str) -> String {
    ini::remove_marked_sections(text, &[MAAS_SECTION, IRONIC_SECTION])
}

/// The removal of the drop-in at `path`, as `role`, if it is one of ours.
fn our_drop_in_removed(path: &Path, application: Option<&str>, role: Role) -> Result<Option<FileChange>, FileError> {
    let old = read_stale(path)?.filter(|text| is_ours(text, application));
    Ok(old.map(|old| FileChange { path: path.to_owned(), role, old: Some(old), new: None, private: false }))
}

/// The watcher.conf at `path` with our marked sections taken out, if it
/// holds any (an earlier merge's).
fn our_sections_removed(path: &Path) -> Result<Option<FileChange>, FileError> {
    let Some(old) = read_stale(path)? else { return Ok(None) };
    let new = without_our_sections(&old);
    Ok((new != old).then(|| FileChange {
        path: path.to_owned(),
        role: Role::Stale,
        old: Some(old),
        new: Some(new),
        private: false,
    }))
}

/// The group new files and directories get: the one Watcher's services run
/// as (`watcher`) when the system has it, else watcher.conf's (or its
/// directory's).
pub(crate) fn services_group(accounts: &Accounts, watcher_conf: &Path) -> Option<u32> {
    accounts
        .group_id(accounts::WATCHER_ACCOUNT)
        .or_else(|| atomic_file::group_of(watcher_conf))
        .or_else(|| watcher_conf.parent().and_then(atomic_file::group_of))
}

/// Whether `text` holds one of the configuration's secrets.
fn holds_secret(config: &CharmConfig, text: &str) -> bool {
    config.secrets().iter().any(|s| !s.is_empty() && text.contains(s))
}

/// A drop-in root Watcher's services do not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadRoot {
    /// The root.
    pub root: PathBuf,
    /// The home of the user the services run as, when the system has it.
    pub home: Option<PathBuf>,
}

impl std::fmt::Display for UnreadRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let home = match &self.home {
            Some(home) => format!("their HOME is {}", home.display()),
            None => format!("there is no user {} here", accounts::WATCHER_ACCOUNT),
        };
        write!(
            f,
            "Watcher's services do not read the drop-ins in {}: drop-in-root is not /etc, and {home}",
            self.root.display()
        )
    }
}

impl UnreadRoot {
    /// What to do about it.
    pub fn hint(&self) -> String {
        "set drop-in-root to /etc (the default) or to the services' HOME: oslo.config looks for \
         <program>.conf.d only in ~/ and /etc/"
            .to_owned()
    }
}

/// Whether Watcher's services would not read the drop-ins of `config` (in
/// drop-in mode): a drop-in root that is neither `/etc` nor the home of the
/// user they run as.
pub fn unread_root(config: &CharmConfig, accounts: &Accounts) -> Option<UnreadRoot> {
    if config.mode != ConfMode::DropIn {
        return None;
    }
    let home = accounts.home_of(accounts::WATCHER_ACCOUNT);
    (!effective::root_is_read(&config.drop_in_root, home.as_deref()))
        .then(|| UnreadRoot { root: config.drop_in_root.clone(), home })
}

/// Computes the files to write for `config` with `renderer`, as the CLI
/// does: any drop-in of ours is its own, and it remembers nothing.
pub fn plan(config: &CharmConfig, renderer: &Renderer) -> Result<Plan, PlanError> {
    plan_for(config, renderer, Writer { application: None, record: None, accounts: &Accounts::system() })
}

/// Computes the files `writer` writes for `config` with `renderer`,
/// taking out what it wrote for earlier options.
pub(crate) fn plan_for(config: &CharmConfig, renderer: &Renderer, writer: Writer<'_>) -> Result<Plan, PlanError> {
    let conf = &config.watcher_conf_path;
    let app = writer.application;
    let current = |path: &Path| atomic_file::read_existing(path);
    let change = |path: PathBuf, role, old, new: Option<String>| {
        let private = new.as_deref().is_some_and(|text| holds_secret(config, text));
        FileChange { path, role, old, new, private }
    };
    let mut files = Vec::new();
    match config.mode {
        ConfMode::DropIn => {
            let text = renderer.drop_in(config, app)?;
            for path in config.drop_in_paths() {
                let old = current(&path)?;
                if let Some(old) = &old {
                    check_ours(&path, old, app)?;
                }
                files.push(change(path, Role::Managed, old, Some(text.clone())));
            }
            if let Some(old) = current(conf)? {
                let migrated = without_our_sections(&old);
                if migrated != old {
                    files.push(change(conf.clone(), Role::Migration, Some(old), Some(migrated)));
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
            files.push(change(conf.clone(), Role::Managed, old, Some(merged)));
            for path in config.drop_in_paths() {
                if let Some(old) = our_drop_in(&path, app)? {
                    files.push(change(path, Role::Cleanup, Some(old), None));
                }
            }
        }
    }
    // The drop-in an earlier version put in watcher.conf.d/ (a site file of
    // that name stays).
    let legacy = config.project_drop_in_path();
    if let Some(old) = our_drop_in(&legacy, app)? {
        files.push(change(legacy, Role::Cleanup, Some(old), None));
    }
    for stale in stale_changes(config, &writer, &files)? {
        files.push(stale);
    }

    let (clashes, layout_after) = clashes_after(config, &files, &config.target_paths())?;
    Ok(Plan {
        mode: config.mode,
        watcher_conf: conf.clone(),
        group: services_group(writer.accounts, conf),
        application: app.map(str::to_owned),
        files,
        layout_after,
        clashes,
    })
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
    let root = &config.drop_in_root;
    let mut clashes: Vec<Clash> = Vec::new();
    let mut main = None;
    for (i, program) in config.programs().iter().enumerate() {
        let target = targets.get(i).unwrap_or(conf);
        for reloaded in [false, true] {
            let before =
                if reloaded { Layout::read_reloaded(conf, root, program)? } else { Layout::read(conf, root, program)? };
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

/// The files of earlier options that the current ones no longer name, and
/// are still ours: from the unit's record, or, for a unit with none yet
/// (set up by a version before the record), each program's drop-in where
/// that version put it (from watcher-conf-path) when the root differs now.
/// The CLI remembers nothing, so has none.
fn stale_changes(
    config: &CharmConfig,
    writer: &Writer<'_>,
    planned: &[FileChange],
) -> Result<Vec<FileChange>, FileError> {
    let app = writer.application;
    let (drop_ins, confs) = match writer.record {
        Some(record) if record.found() => (record.paths(Kind::DropIn), record.paths(Kind::Sections)),
        Some(_) => (config.derived_drop_in_paths(), Vec::new()),
        None => (Vec::new(), Vec::new()),
    };
    let mut out: Vec<FileChange> = Vec::new();
    let taken = |out: &[FileChange], path: &Path| planned.iter().chain(out).any(|c| c.path == path);
    for path in drop_ins {
        if !taken(&out, &path) {
            out.extend(our_drop_in_removed(&path, app, Role::Stale)?);
        }
    }
    for path in confs {
        if !taken(&out, &path) && path != config.watcher_conf_path {
            out.extend(our_sections_removed(&path)?);
        }
    }
    Ok(out)
}

/// The record once `plan` is applied: the drop-ins it wrote, watcher.conf
/// when it merged into it or took sections out of it, the CA certificate
/// as recorded. Before the plan is applied (`applied` is `None`), every
/// file it may write is added, so that a run killed half-way still knows
/// them.
pub(crate) fn update_record(record: &mut Record, plan: &Plan, applied: Option<&Applied>) {
    let written: Vec<(PathBuf, Kind)> = plan
        .files
        .iter()
        .filter_map(|change| {
            let kind = match (change.role, plan.mode) {
                (Role::Managed, ConfMode::DropIn) => Kind::DropIn,
                (Role::Managed | Role::Migration, _) => Kind::Sections,
                _ => return None,
            };
            Some((change.path.clone(), kind))
        })
        .collect();
    if applied.is_some() {
        // What this plan did not write holds nothing of ours any more (it
        // was removed, or is not ours), but watcher.conf stays recorded.
        let conf = plan.watcher_conf.clone();
        let keep = |path: &Path, kind: Kind| written.iter().any(|(p, k)| p == path && *k == kind);
        record.retain(Kind::DropIn, |p| keep(p, Kind::DropIn));
        record.retain(Kind::Sections, |p| keep(p, Kind::Sections) || p == conf);
    }
    for (path, kind) in &written {
        record.add(path, *kind);
    }
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
/// is a drop-in of ours ([`NotOurs::Output`]); a merge or a whole file may
/// go anywhere.
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
        if !render::is_our_drop_in(text) {
            return Err(NotOurs::Output { path: path.to_owned() }.into());
        }
    }
    let contents = match content {
        Content::Full(context) => renderer.full(config, context)?,
        Content::Managed if config.mode == ConfMode::DropIn => renderer.drop_in(config, None)?,
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
                private: holds_secret(config, &contents),
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
/// already: a new file as the plan's are made, an existing one keeping its
/// owner, group and mode (not readable by others once it holds the key).
pub fn write_single(config: &CharmConfig, target: &Path, contents: &str) -> Result<Written, FileError> {
    let group = services_group(&Accounts::system(), &config.watcher_conf_path);
    atomic_file::write_kept(target, contents, NewFile::config(group), holds_secret(config, contents))
}

/// What applying a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Each file of the plan with what happened to it (`Unchanged` for a
    /// removal that found nothing to remove).
    pub outcomes: Vec<(PathBuf, Role, Outcome)>,
    /// The files that hold the key and were readable by others, with the
    /// mode they had: they are not any more.
    pub tightened: Vec<(PathBuf, u32)>,
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

/// The line saying that `path`, which holds the key, was readable by
/// others (`mode`) and is not any more.
pub fn tightened_line(path: &Path, mode: u32) -> String {
    format!(
        "{} holds the MAAS API key and was readable by others (mode {mode:04o}): now {:04o}",
        path.display(),
        mode & !0o007
    )
}

/// Writes the plan: the directory if needed, then each file atomically.
/// Stops at the first failure; files not yet reached keep their content.
pub fn apply(plan: &Plan) -> Result<Applied, FileError> {
    let new_file = NewFile::config(plan.group);
    let app = plan.application.as_deref();
    let mut created_dir = false;
    let mut outcomes = Vec::new();
    let mut tightened = Vec::new();
    for change in &plan.files {
        let outcome = match &change.new {
            Some(text) => {
                if change.role == Role::Managed && plan.mode == ConfMode::DropIn {
                    if let Some(dir) = change.path.parent() {
                        created_dir |= atomic_file::ensure_dir(dir, DROP_IN_DIR_MODE, plan.group)?;
                    }
                }
                let written = atomic_file::write_kept(&change.path, text, new_file, change.private)?;
                if let Some(mode) = written.tightened {
                    tightened.push((change.path.clone(), mode));
                }
                Outcome::Written(written.outcome)
            }
            // Checked again just before: a file the site put there since
            // the plan was read stays.
            None if our_drop_in(&change.path, app)?.is_none() => Outcome::Written(WriteOutcome::Unchanged),
            None => {
                if atomic_file::remove(&change.path)? {
                    if let Some(dir) = change.path.parent() {
                        remove_empty_drop_in_dir(dir, &plan.watcher_conf);
                    }
                    Outcome::Removed
                } else {
                    Outcome::Written(WriteOutcome::Unchanged)
                }
            }
        };
        outcomes.push((change.path.clone(), change.role, outcome));
    }
    Ok(Applied { outcomes, tightened, created_dir })
}

/// [`apply`] for a unit: every file the plan may write is in `record`
/// (saved) before anything is written, and the record says what the unit
/// holds once it is written.
pub(crate) fn apply_recorded(plan: &Plan, record: &mut Record) -> Result<Applied, FileError> {
    update_record(record, plan, None);
    record.save()?;
    let applied = apply(plan)?;
    update_record(record, plan, Some(&applied));
    record.save()?;
    Ok(applied)
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

/// Removes `dir` if it is a drop-in directory this program creates (see
/// [`is_program_drop_in_dir`]) and is empty.
pub(crate) fn remove_empty_drop_in_dir(dir: &Path, watcher_conf: &Path) {
    if is_program_drop_in_dir(dir, watcher_conf) {
        // Fails, as it should, unless the directory is empty.
        let _ = std::fs::remove_dir(dir);
    }
}

/// What the `remove` hook takes out of Watcher's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Removal<'a> {
    /// watcher-conf-path, as the options name it now.
    pub(crate) conf: &'a Path,
    /// The mode the options name now.
    pub(crate) mode: ConfMode,
    /// Every drop-in that may be ours: the options', the record's, where
    /// earlier versions put them.
    pub(crate) drop_ins: Vec<PathBuf>,
    /// Other watcher.conf files the record says hold our sections.
    pub(crate) sections: Vec<PathBuf>,
    /// The Juju application whose unit removes.
    pub(crate) application: Option<&'a str>,
}

/// Removes what watcher-metal wrote: the drop-ins of ours among
/// `removal.drop_ins`, and the managed sections in watcher.conf (all of
/// them in merge mode, the marked ones in drop-in mode, and in the other
/// watcher.conf files recorded).
pub(crate) fn plan_removal(removal: &Removal<'_>) -> Result<Vec<FileChange>, FileError> {
    let mut files: Vec<FileChange> = Vec::new();
    for drop_in in &removal.drop_ins {
        if files.iter().any(|f| &f.path == drop_in) {
            continue;
        }
        // A site file of that name, or another application's, is not ours to remove.
        files.extend(our_drop_in_removed(drop_in, removal.application, Role::Cleanup)?);
    }
    let conf = removal.conf;
    if let Some(old) = atomic_file::read_existing(conf)? {
        let new = match removal.mode {
            ConfMode::DropIn => without_our_sections(&old),
            ConfMode::Merge => ini::merge(
                &old,
                &[
                    ManagedSection { name: MAAS_SECTION, body: None },
                    ManagedSection { name: IRONIC_SECTION, body: None },
                ],
            ),
        };
        if new != old {
            let change = FileChange {
                path: conf.to_owned(),
                role: Role::Migration,
                old: Some(old),
                new: Some(new),
                private: false,
            };
            files.push(change);
        }
    }
    for path in removal.sections.iter().filter(|p| p.as_path() != conf) {
        files.extend(our_sections_removed(path)?);
    }
    Ok(files)
}

/// Applies a removal plan (see [`plan_removal`]).
pub(crate) fn apply_removal(files: &[FileChange], removal: &Removal<'_>) -> Result<Applied, FileError> {
    let plan = Plan {
        mode: ConfMode::Merge,
        watcher_conf: removal.conf.to_owned(),
        group: None,
        application: removal.application.map(str::to_owned),
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
            // `<root>`, as /etc for /etc/watcher/watcher.conf.
            ("drop-in-root".to_owned(), json!(conf.parent().unwrap().parent().unwrap().display().to_string())),
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
        let removal = Removal {
            conf: &conf,
            mode: ConfMode::DropIn,
            drop_ins: vec![ours.clone(), site.clone()],
            sections: Vec::new(),
            application: Some("watcher-maas"),
        };
        let files = plan_removal(&removal).unwrap();
        assert_eq!(files.iter().map(|f| &f.path).collect::<Vec<_>>(), [&ours]);
        // The site's file put at our path after the plan was read stays too.
        std::fs::write(&ours, "[DEFAULT]\ndebug = false\n").unwrap();
        let applied = apply_removal(&files, &removal).unwrap();
        assert!(!applied.settings_changed(), "{applied:?}");
        assert_eq!(std::fs::read_to_string(&ours).unwrap(), "[DEFAULT]\ndebug = false\n");
        assert_eq!(std::fs::read_to_string(&site).unwrap(), "[DEFAULT]\ndebug = true\n");
    }

    #[test]
    fn new_files_and_directories_get_the_services_group_and_private_modes() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (root, conf) = unit();
        std::fs::write(&conf, PRINCIPAL).unwrap();
        let meta = std::fs::metadata(&conf).unwrap();
        // As root any group will do; otherwise the writer's own.
        let as_root = meta.uid() == 0;
        let watcher_gid = if as_root { 4242 } else { meta.gid() };
        let etc = root.path().join("accounts");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("group"), format!("root:x:0:\nwatcher:x:{watcher_gid}:\n")).unwrap();
        let accounts = Accounts::in_dir(&etc);
        let renderer = Renderer::new(None).unwrap();
        let writer = Writer { application: Some("watcher-maas"), record: None, accounts: &accounts };
        apply(&plan_for(&config(&conf, "drop-in"), &renderer, writer).unwrap()).unwrap();
        let of = |path: &Path| {
            let m = std::fs::metadata(path).unwrap();
            (m.permissions().mode() & 0o777, m.gid())
        };
        for program in ["watcher-decision-engine", "watcher-applier"] {
            let dir = root.path().join(format!("{program}.conf.d"));
            assert_eq!(of(&dir), (0o750, watcher_gid), "{program}");
            assert_eq!(of(&dir.join("50-watcher-metal.conf")), (0o640, watcher_gid), "{program}");
        }
        if !as_root {
            return;
        }
        // No `watcher` group: watcher.conf's.
        std::os::unix::fs::chown(&conf, None, Some(4343)).unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();
        std::fs::remove_dir_all(root.path().join("watcher-applier.conf.d")).unwrap();
        apply(&plan_for(&config(&conf, "drop-in"), &renderer, writer).unwrap()).unwrap();
        let dir = root.path().join("watcher-applier.conf.d");
        assert_eq!(of(&dir), (0o750, 4343));
        assert_eq!(of(&dir.join("50-watcher-metal.conf")), (0o640, 4343));
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
                ("drop-in-root".to_owned(), json!(root.path().display().to_string())),
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
