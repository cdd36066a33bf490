//! The effective configuration: what Watcher's services read, file by file.
//!
//! Watcher's services run with `--config-file=/etc/watcher/watcher.conf`,
//! and oslo.config also reads two default config directories **before**
//! that file: `watcher.conf.d` (the project's, first found of
//! `~/.watcher/`, `~/`, `/etc/watcher/`, `/etc/`) and `<program>.conf.d`
//! (the program's, e.g. `watcher-decision-engine.conf.d`, first found in
//! the same places), each directory's `*.conf` files in sorted order
//! (hidden files excluded, as Python's glob excludes them). For each option
//! the last setting wins, so watcher.conf wins any clash with a drop-in.
//!
//! Watcher 12.0.0 to 16.0.0 then parse the configuration a second time when
//! they load a plugin with options (the decision engine at start-up, the
//! applier on its first action plan), without the project name: only
//! `~/<program>.conf.d` and `/etc/<program>.conf.d` count from then on, and
//! `watcher.conf.d` is forgotten. So the drop-in goes to
//! `<drop-in root>/<program>.conf.d/` for each Watcher service, the root
//! being `/etc` or the services' HOME, which every version reads at
//! start-up and after that second parse. No other root is read
//! ([`root_is_read`]), whatever `--config-file` says.
//!
//! [`Layout`] holds the files one program reads, in order ([`Layout::read`]
//! at start-up, [`Layout::read_reloaded`] after the second parse);
//! [`Layout::setting`] answers which file set an option last, and
//! `clashes` which of the managed options Watcher would not take from the
//! file watcher-metal wrote.

use std::path::{Path, PathBuf};

use crate::host::atomic_file::FileError;
use crate::watcher::ini;

/// The project's drop-in directory name.
const DROP_IN_DIR_NAME: &str = "watcher.conf.d";

fn conf_dir(watcher_conf: &Path) -> &Path {
    watcher_conf.parent().unwrap_or_else(|| Path::new("/"))
}

/// The project's drop-in directory beside a watcher.conf:
/// `<its directory>/watcher.conf.d`. Read at start-up only by Watcher
/// 12.0.0 to 16.0.0.
pub(crate) fn drop_in_dir(watcher_conf: &Path) -> PathBuf {
    conf_dir(watcher_conf).join(DROP_IN_DIR_NAME)
}

/// The program name a systemd unit of Watcher runs (`watcher-applier` for
/// `watcher-applier.service`).
pub(crate) fn program_name(service: &str) -> &str {
    service.strip_suffix(".service").unwrap_or(service)
}

/// A program's drop-in directory under the drop-in root `root`, where
/// watcher-metal writes: `/etc/<program>.conf.d` for the root `/etc`.
pub(crate) fn program_drop_in_dir(root: &Path, program: &str) -> PathBuf {
    root.join(format!("{program}.conf.d"))
}

/// The root an earlier version derived from watcher.conf's path: the parent
/// of its directory (`/etc` for `/etc/watcher/watcher.conf`).
pub(crate) fn derived_drop_in_root(watcher_conf: &Path) -> PathBuf {
    let dir = conf_dir(watcher_conf);
    dir.parent().unwrap_or(dir).to_owned()
}

/// Whether Watcher's services read `<root>/<program>.conf.d`: oslo.config
/// looks for a program's directory only in `~/.watcher/`, `~/`,
/// `/etc/watcher/` and `/etc/` at start-up, and in `~/` and `/etc/` after
/// Watcher 12.0.0-16.0.0's second parse. So the root must be `/etc` or the
/// services' HOME (`home`, when known).
pub fn root_is_read(root: &Path, home: Option<&Path>) -> bool {
    root == Path::new("/etc") || home.is_some_and(|home| home == root)
}

/// The directories that, when one exists, oslo.config reads at start-up
/// instead of [`program_drop_in_dir`], in its order: `~/.watcher/` comes
/// before `~/`, `/etc/watcher/` before `/etc/`. For a root that is the
/// services' HOME the first counts, for `/etc` the second.
fn shadowing_program_dirs(root: &Path, program: &str) -> [PathBuf; 2] {
    let name = format!("{program}.conf.d");
    [root.join(".watcher").join(&name), root.join("watcher").join(&name)]
}

/// Whether oslo.config reads a directory entry named `name` (`*.conf`,
/// not hidden).
pub(crate) fn is_read_as_drop_in(name: &str) -> bool {
    name.ends_with(".conf") && !name.starts_with('.')
}

/// One configuration file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfFile {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
}

/// The files one Watcher program reads, in the order it reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub(crate) files: Vec<ConfFile>,
    /// The drop-in directories, in the order they are read.
    dirs: Vec<PathBuf>,
    /// watcher.conf, read last.
    conf: PathBuf,
}

/// Where an option's effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value in force, as oslo.config reads it from that file.
    pub value: String,
    pub(crate) path: PathBuf,
}

impl Layout {
    /// What `program` reads at start-up: the project's drop-ins beside
    /// `watcher_conf`, the program's drop-ins (under the drop-in root
    /// `root`, unless a directory oslo.config finds first shadows it), then
    /// `watcher_conf` itself. Missing files and directories are skipped, as
    /// oslo.config skips them.
    pub fn read(watcher_conf: &Path, root: &Path, program: &str) -> Result<Layout, FileError> {
        let shadow = shadowing_program_dirs(root, program).into_iter().find(|d| d.is_dir());
        let program_dir = shadow.unwrap_or_else(|| program_drop_in_dir(root, program));
        Layout::read_dirs(vec![drop_in_dir(watcher_conf), program_dir], watcher_conf)
    }

    /// Whether watcher.conf itself exists and was read (drop-ins may be
    /// read without it).
    pub(crate) fn has_watcher_conf(&self) -> bool {
        self.files.iter().any(|f| f.path == self.conf)
    }

    /// What `program` reads once Watcher 12.0.0-16.0.0 parsed the
    /// configuration again without the project name: the program's
    /// drop-ins under `root`, then `watcher_conf`.
    pub fn read_reloaded(watcher_conf: &Path, root: &Path, program: &str) -> Result<Layout, FileError> {
        Layout::read_dirs(vec![program_drop_in_dir(root, program)], watcher_conf)
    }

    fn read_dirs(dirs: Vec<PathBuf>, watcher_conf: &Path) -> Result<Layout, FileError> {
        let mut files = Vec::new();
        for dir in &dirs {
            for path in drop_in_paths(dir)? {
                if let Some(text) = read_followed(&path)? {
                    files.push(ConfFile { path, text });
                }
            }
        }
        if let Some(text) = read_followed(watcher_conf)? {
            files.push(ConfFile { path: watcher_conf.to_owned(), text });
        }
        Ok(Layout { files, dirs, conf: watcher_conf.to_owned() })
    }

    /// Whether this program reads files in `dir`.
    fn reads_dir(&self, dir: &Path) -> bool {
        self.dirs.iter().any(|d| d == dir)
    }

    /// The layout with `path` holding `text` instead (in its place in the
    /// read order), or with `path` left out when `text` is `None`: what
    /// Watcher would read once a file is written or removed. A file in a
    /// directory this program does not read is left out.
    pub(crate) fn with_file(&self, path: &Path, text: Option<&str>) -> Layout {
        let mut out = self.clone();
        out.files.retain(|f| f.path != path);
        let Some(text) = text else { return out };
        if path != self.conf && !(is_drop_in_path(path) && path.parent().is_some_and(|d| self.reads_dir(d))) {
            return out;
        }
        out.files.push(ConfFile { path: path.to_owned(), text: text.to_owned() });
        let rank = |p: &Path| match p.parent().and_then(|d| self.dirs.iter().position(|x| x == d)) {
            Some(i) if p != self.conf => i,
            _ => usize::MAX,
        };
        out.files.sort_by(|a, b| (rank(&a.path), &a.path).cmp(&(rank(&b.path), &b.path)));
        out
    }

    /// The options of `section` across all files, in read order: the last
    /// entry of a key is its effective value.
    pub(crate) fn section(&self, section: &str) -> Vec<(String, String)> {
        self.files.iter().flat_map(|f| ini::read_section(&f.text, section)).collect()
    }

    /// The effective value of `section`'s `key`, and the file that set it.
    pub fn setting(&self, section: &str, key: &str) -> Option<Setting> {
        self.files.iter().rev().find_map(|f| {
            crate::clients::last_setting(&ini::read_section(&f.text, section), key)
                .map(|value| Setting { value: value.clone(), path: f.path.clone() })
        })
    }

    /// The paths read, in order.
    pub(crate) fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// A layout of exactly these files, read in this order.
    #[cfg(test)]
    pub(crate) fn from_files(files: Vec<ConfFile>) -> Layout {
        let conf = files.last().map(|f| f.path.clone()).unwrap_or_default();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for f in &files {
            if let Some(d) = f.path.parent() {
                if f.path != conf && !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_owned());
                }
            }
        }
        Layout { files, dirs, conf }
    }
}

fn is_drop_in_path(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(is_read_as_drop_in)
}

/// A configuration file's text as oslo.config reads it (following links);
/// `None` when it does not exist. A file whose `$` references oslo.config
/// could not resolve (a loop, too deep, too long) is refused.
fn read_followed(path: &Path) -> Result<Option<String>, FileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|_| FileError::NotText { path: path.to_owned() })?;
            ini::check_substitutions(&text).map_err(|e| FileError::Substitution {
                path: path.to_owned(),
                cause: e.to_string(),
                hint: e.hint(),
            })?;
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(FileError::Directory { path: path.to_owned() }),
        Err(e) => Err(FileError::Read { path: path.to_owned(), source: e }),
    }
}

/// The `*.conf` files of `dir` in the order oslo.config reads them (sorted
/// by name, as Python sorts strings); none when `dir` does not exist.
fn drop_in_paths(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(FileError::NotRegular { path: dir.to_owned() })
        }
        Err(e) => return Err(FileError::Read { path: dir.to_owned(), source: e }),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_read_as_drop_in))
        .map(|e| e.path())
        .collect();
    // UTF-8 byte order is code point order, which is how Python sorts str.
    paths.sort();
    Ok(paths)
}

/// Why Watcher would not use the managed settings watcher-metal wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// Another file sets a managed option to another value (or sets one the
    /// charm leaves unset), and Watcher reads it later.
    Option {
        /// The managed section (`maas_client` or `ironic_client`).
        section: &'static str,
        /// The option in it.
        option: &'static str,
        /// The file whose setting Watcher would use.
        path: PathBuf,
    },
    /// Watcher reads another directory of the same name instead of the one
    /// holding our file (oslo.config takes the first it finds).
    Shadowed {
        /// The same-named directory Watcher reads instead.
        dir: PathBuf,
        /// The file watcher-metal wrote, which Watcher therefore skips.
        ours: PathBuf,
    },
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clash::Option { section, option, path } => {
                write!(f, "{} sets [{section}] {option}, which overrides the charm's setting", path.display())
            }
            Clash::Shadowed { dir, ours } => {
                write!(f, "{} exists, so Watcher reads it instead of {}", dir.display(), ours.display())
            }
        }
    }
}

impl Clash {
    pub(crate) fn hint(&self) -> String {
        match self {
            Clash::Option { section, option, path } => format!(
                "remove `{option}` from [{section}] in {}: Watcher reads watcher.conf after its drop-ins, and a later drop-in after an earlier one",
                path.display()
            ),
            Clash::Shadowed { dir, ours } => format!(
                "move the files of {} to {} and remove it: oslo.config reads only the first directory of that name it finds",
                dir.display(),
                ours.parent().unwrap_or(ours).display()
            ),
        }
    }
}

/// The options watcher-metal manages, by section.
pub const MANAGED_OPTIONS: [(&str, &[&str]); 2] = [
    ("maas_client", &["url", "api_key", "timeout"]),
    ("ironic_client", &["api_version", "endpoint_type", "region_name"]),
];

/// Every managed option whose effective value in `layout` differs from what
/// `ours` (the file watcher-metal wrote, included in `layout`) sets. An
/// empty value counts as unset, as Watcher treats an empty `url`.
pub(crate) fn clashes(layout: &Layout, ours: &Path) -> Vec<Clash> {
    if let Some(dir) = ours.parent().filter(|d| ours != layout.conf && !layout.reads_dir(d)) {
        let name = dir.file_name();
        if let Some(read) = layout.dirs.iter().find(|d| d.file_name() == name) {
            return vec![Clash::Shadowed { dir: read.clone(), ours: ours.to_owned() }];
        }
    }
    let own_text = layout.files.iter().find(|f| f.path == ours).map(|f| f.text.as_str()).unwrap_or("");
    let mut out = Vec::new();
    for (section, options) in MANAGED_OPTIONS {
        let own = ini::read_section(own_text, section);
        for option in options.iter().copied() {
            let intended = crate::clients::last_setting(&own, option).map(String::as_str).filter(|v| !v.is_empty());
            let Some(effective) = layout.setting(section, option) else { continue };
            if effective.path == ours {
                continue;
            }
            let effective_value = Some(effective.value.as_str()).filter(|v| !v.is_empty());
            if effective_value != intended {
                out.push(Clash::Option { section, option, path: effective.path });
            }
        }
    }
    out
}

/// The clashes in what is on disk now, for each program with its drop-in
/// (`ours`, the same order as `programs`) under `root`, at start-up and
/// after Watcher 12.0.0-16.0.0's second parse.
pub(crate) fn clashes_on_disk(
    watcher_conf: &Path,
    root: &Path,
    programs: &[&str],
    ours: &[PathBuf],
) -> Result<Vec<Clash>, FileError> {
    let mut out = Vec::new();
    for (program, own) in programs.iter().zip(ours) {
        for layout in [Layout::read(watcher_conf, root, program)?, Layout::read_reloaded(watcher_conf, root, program)?]
        {
            for clash in clashes(&layout, own) {
                if !out.contains(&clash) {
                    out.push(clash);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(files: &[(&str, &str)]) -> Layout {
        Layout::from_files(
            files.iter().map(|(p, t)| ConfFile { path: PathBuf::from(p), text: (*t).to_owned() }).collect(),
        )
    }

    const OURS: &str = "/etc/watcher-decision-engine.conf.d/50-watcher-metal.conf";
    const CONF: &str = "/etc/watcher/watcher.conf";

    #[test]
    fn the_last_setting_wins_across_files() {
        let l = layout(&[
            ("/etc/watcher/watcher.conf.d/10-a.conf", "[maas_client]\ntimeout = 10\nurl = a\n"),
            (OURS, "[maas_client]\nurl = ours\n"),
            (CONF, "[MAAS_CLIENT]\ntimeout = 30\n"),
        ]);
        assert_eq!(l.setting("maas_client", "url").unwrap(), Setting { value: "ours".into(), path: OURS.into() });
        assert_eq!(l.setting("maas_client", "timeout").unwrap().path, PathBuf::from(CONF));
        assert_eq!(l.setting("maas_client", "api_key"), None);
    }

    #[test]
    fn clashes_name_the_file_and_option() {
        let later = "/etc/watcher-decision-engine.conf.d/90-z.conf";
        let l = layout(&[
            (OURS, "[maas_client]\nurl = ours\napi_key = k\ntimeout = 120\n[ironic_client]\napi_version = 1\n"),
            (later, "[maas_client]\ntimeout = 120\n[ironic_client]\nregion_name = r\n"),
            (CONF, "[maas_client]\nurl = theirs\n"),
        ]);
        let found = clashes(&l, Path::new(OURS));
        assert_eq!(
            found,
            vec![
                Clash::Option { section: "maas_client", option: "url", path: CONF.into() },
                Clash::Option { section: "ironic_client", option: "region_name", path: later.into() },
            ]
        );
        assert!(found[0].to_string().contains("/etc/watcher/watcher.conf sets [maas_client] url"));
    }

    #[test]
    fn an_empty_value_is_unset() {
        let l = layout(&[(OURS, "[ironic_client]\napi_version = 1\n"), (CONF, "[maas_client]\nurl =\n")]);
        assert!(clashes(&l, Path::new(OURS)).is_empty());
    }

    #[test]
    fn program_directories_sit_under_the_drop_in_root() {
        let conf = Path::new(CONF);
        let etc = Path::new("/etc");
        assert_eq!(program_drop_in_dir(etc, "watcher-applier"), PathBuf::from("/etc/watcher-applier.conf.d"));
        let home = Path::new("/var/lib/watcher");
        assert_eq!(
            program_drop_in_dir(home, "watcher-applier"),
            PathBuf::from("/var/lib/watcher/watcher-applier.conf.d")
        );
        assert_eq!(
            shadowing_program_dirs(etc, "watcher-applier")[1],
            PathBuf::from("/etc/watcher/watcher-applier.conf.d")
        );
        assert_eq!(
            shadowing_program_dirs(home, "watcher-applier")[0],
            PathBuf::from("/var/lib/watcher/.watcher/watcher-applier.conf.d")
        );
        assert_eq!(drop_in_dir(conf), PathBuf::from("/etc/watcher/watcher.conf.d"));
        assert_eq!(derived_drop_in_root(Path::new("/srv/w/etc/watcher.conf")), PathBuf::from("/srv/w"));
        assert_eq!(program_name("watcher-applier.service"), "watcher-applier");
        // Only /etc and the services' HOME are read.
        assert!(root_is_read(etc, None));
        assert!(root_is_read(home, Some(home)));
        assert!(!root_is_read(home, None));
        assert!(!root_is_read(Path::new("/etc/watcher"), Some(home)));
    }

    #[test]
    fn drop_ins_are_read_in_oslo_order_then_watcher_conf() {
        let root = tempfile::tempdir().unwrap();
        let etc_watcher = root.path().join("watcher");
        std::fs::create_dir(&etc_watcher).unwrap();
        let conf = etc_watcher.join("watcher.conf");
        let project = drop_in_dir(&conf);
        let program = program_drop_in_dir(root.path(), "watcher-decision-engine");
        std::fs::create_dir(&project).unwrap();
        std::fs::create_dir(&program).unwrap();
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.conf.bak", "A.conf"] {
            std::fs::write(project.join(name), "[x]\n").unwrap();
        }
        std::fs::write(program.join("10-p.conf"), "[x]\n").unwrap();
        std::fs::write(&conf, "[x]\n").unwrap();
        let names = |l: &Layout| -> Vec<String> {
            l.paths().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
        };
        let l = Layout::read(&conf, root.path(), "watcher-decision-engine").unwrap();
        assert_eq!(names(&l), ["A.conf", "a.conf", "b.conf", "10-p.conf", "watcher.conf"]);
        // A file added in its place; one in a directory not read is not.
        let ours = program.join("50-watcher-metal.conf");
        let l2 =
            l.with_file(&ours, Some("[y]\n")).with_file(&root.path().join("elsewhere.conf.d/x.conf"), Some("[z]\n"));
        assert_eq!(names(&l2), ["A.conf", "a.conf", "b.conf", "10-p.conf", "50-watcher-metal.conf", "watcher.conf"]);
        // After 12.0.0-16.0.0's second parse only the program's directory counts.
        let reloaded = Layout::read_reloaded(&conf, root.path(), "watcher-decision-engine").unwrap();
        assert_eq!(names(&reloaded), ["10-p.conf", "watcher.conf"]);
        // A program directory in `/etc/watcher/` shadows ours at start-up.
        let shadow = root.path().join("watcher/watcher-decision-engine.conf.d");
        std::fs::create_dir(&shadow).unwrap();
        let l = Layout::read(&conf, root.path(), "watcher-decision-engine").unwrap().with_file(&ours, Some("[y]\n"));
        assert_eq!(clashes(&l, &ours), vec![Clash::Shadowed { dir: shadow, ours: ours.clone() }]);
    }
}
