//! Writing configuration files so that readers only ever see the old or the
//! new content.
//!
//! A write takes a lock beside the file (so two hooks serialise), creates a
//! temporary file in the same directory with mode 0600 before any byte is
//! written, writes and fsyncs it, gives it its owner, group and mode,
//! renames it over the target and fsyncs the directory. Any failure before
//! the rename leaves the old file byte-for-byte intact and removes the
//! temporary file. Temporary files left by a killed run are removed by the
//! next run.
//!
//! A file that exists keeps its owner, group and mode, except that a file
//! holding a secret never stays readable (or writable) by others: those
//! bits are taken away, and the write says so ([`Written::tightened`]). A
//! new file gets the mode and group its `NewFile` says (0640, the
//! services' group); its owner is the writer (root, in a hook).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of a configuration file this tool creates: the owner writes,
/// the group (Watcher's services) reads, others nothing.
pub(crate) const FILE_MODE: u32 = 0o640;

/// The permission bits of "others".
const OTHERS: u32 = 0o007;

/// How a file that does not exist yet is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewFile {
    /// Its mode.
    pub(crate) mode: u32,
    /// Its group (`None`: the writer's).
    pub(crate) group: Option<u32>,
}

impl NewFile {
    /// A configuration file: 0640, in `group` when given.
    pub(crate) fn config(group: Option<u32>) -> NewFile {
        NewFile { mode: FILE_MODE, group }
    }
}

/// What a write did, with the mode a file holding a secret lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Created, updated or unchanged.
    pub outcome: WriteOutcome,
    /// The file existed, readable by others, and now holds a secret: its
    /// mode was this and is now without the others' bits.
    pub tightened: Option<u32>,
}

/// What a write did to the target file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The file did not exist and now does.
    Created,
    /// The file existed with other content and was replaced.
    Updated,
    /// The file already held exactly these bytes; nothing was written.
    Unchanged,
}

impl WriteOutcome {
    /// The outcome as one lowercase word (`created`, `updated`, `unchanged`),
    /// as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteOutcome::Created => "created",
            WriteOutcome::Updated => "updated",
            WriteOutcome::Unchanged => "unchanged",
        }
    }

    pub(crate) fn changed(self) -> bool {
        self != WriteOutcome::Unchanged
    }
}

/// Why a file could not be read, written or removed. `path` is always the
/// file or directory concerned, as the caller gave it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The path is a symbolic link; links are never followed or replaced.
    #[error("{} is a symbolic link; refusing to replace it", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The path names a directory where a file was expected.
    #[error("{} is a directory, not a file", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
    },
    /// The path is neither a regular file nor a directory (a socket, a
    /// device), or a file where a directory should be.
    #[error("{} is not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The directory that should hold the file does not exist, or is not a
    /// directory.
    #[error("directory {} does not exist", path.display())]
    MissingDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// Reading the file, or its metadata, failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file's content is not UTF-8.
    #[error("{} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The file's `$` references loop, nest too deep or expand too far:
    /// oslo.config cannot read it either. The layer that resolves them
    /// (`watcher::ini`, above this one) says which and what to do.
    #[error("{}: {cause}", path.display())]
    Substitution {
        /// The file.
        path: PathBuf,
        /// Which reference, and why.
        cause: String,
        /// What to do about it.
        hint: String,
    },
    /// One step of writing, creating or removing failed. A failed write
    /// leaves the old file, if any, as it was.
    #[error("cannot write {}: {step}: {source}", path.display())]
    Write {
        /// The file or directory being written.
        path: PathBuf,
        /// The step that failed, e.g. `"locking"`, `"renaming into place"`.
        step: &'static str,
        /// The I/O error.
        source: io::Error,
    },
}

impl FileError {
    /// One line telling the user what to do about it.
    pub(crate) fn hint(&self) -> String {
        match self {
            FileError::Symlink { .. } => {
                "point watcher-conf-path (or --output) at the real file, not at a link".to_owned()
            }
            FileError::Directory { .. } | FileError::NotRegular { .. } => {
                "point watcher-conf-path (or --output) at a file".to_owned()
            }
            FileError::MissingDirectory { .. } => {
                "install Watcher first (it creates /etc/watcher), or set watcher-conf-path".to_owned()
            }
            FileError::NotText { .. } => "the file must be UTF-8 text, as oslo.config expects".to_owned(),
            FileError::Substitution { hint, .. } => hint.clone(),
            FileError::Read { source, .. } | FileError::Write { source, .. } => match source.kind() {
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                    "the file system is full: free some space and retry".to_owned()
                }
                io::ErrorKind::ReadOnlyFilesystem => {
                    "the file system is read-only: remount it read-write or write elsewhere".to_owned()
                }
                io::ErrorKind::PermissionDenied => {
                    "run as a user that may write the file and its directory (hooks run as root)".to_owned()
                }
                _ => "check the path, its directory and the disk".to_owned(),
            },
        }
    }
}

/// Reads the current content of `path`: `None` when it does not exist.
/// Refuses links, directories and non-UTF-8 content.
pub(crate) fn read_existing(path: &Path) -> Result<Option<String>, FileError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_kind(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::Read { path: path.to_owned(), source: e }),
    }
    let bytes = fs::read(path).map_err(|e| FileError::Read { path: path.to_owned(), source: e })?;
    String::from_utf8(bytes).map(Some).map_err(|_| FileError::NotText { path: path.to_owned() })
}

fn check_kind(path: &Path, meta: &fs::Metadata) -> Result<(), FileError> {
    let kind = meta.file_type();
    if kind.is_symlink() {
        Err(FileError::Symlink { path: path.to_owned() })
    } else if kind.is_dir() {
        Err(FileError::Directory { path: path.to_owned() })
    } else if !kind.is_file() {
        Err(FileError::NotRegular { path: path.to_owned() })
    } else {
        Ok(())
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".to_owned())
}

/// Writes `contents` to `path` atomically unless it already holds exactly
/// that (see the module documentation for the steps). A new file is made
/// as `new` says; an existing one keeps its owner, group and mode, except
/// that when `private` (the contents hold a secret) its bits for others are
/// taken away, even when its contents do not change.
pub(crate) fn write_kept(path: &Path, contents: &str, new: NewFile, private: bool) -> Result<Written, FileError> {
    write_file(path, contents, Mode::Kept { new, private })
}

/// Writes `path` with `mode`, new or not (a public certificate is 0644, the
/// charm's own state 0600); an existing file keeps its owner and group.
pub(crate) fn write_if_changed_with_mode(path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, FileError> {
    write_file(path, contents, Mode::Forced(mode)).map(|w| w.outcome)
}

/// Which mode a write gives the file.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// This mode, whether the file is new or not.
    Forced(u32),
    /// A new file as `new` says; an existing one keeps its own, without the
    /// others' bits when `private`.
    Kept { new: NewFile, private: bool },
}

/// The group of `path`, if it exists.
pub(crate) fn group_of(path: &Path) -> Option<u32> {
    fs::metadata(path).ok().map(|m| m.gid())
}

/// Creates `dir` (one level: its parent must exist) with `mode` and
/// `group` (the writer's when `None`) unless it exists. Returns whether it
/// was created. A link, or anything that is not a directory, is refused.
pub(crate) fn ensure_dir(dir: &Path, mode: u32, group: Option<u32>) -> Result<bool, FileError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(false),
        Ok(meta) if meta.file_type().is_symlink() => return Err(FileError::Symlink { path: dir.to_owned() }),
        Ok(_) => return Err(FileError::NotRegular { path: dir.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FileError::Read { path: dir.to_owned(), source: e }),
    }
    let parent = parent_dir(dir);
    if !parent.is_dir() {
        return Err(FileError::MissingDirectory { path: parent.to_owned() });
    }
    let error = |step: &'static str| move |source: io::Error| FileError::Write { path: dir.to_owned(), step, source };
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        // Another hook made it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(false),
        Err(e) => return Err(error("creating the directory")(e)),
    }
    // The group first, then the mode that lets it in.
    if let Some(gid) = group {
        std::os::unix::fs::chown(dir, None, Some(gid)).map_err(error("setting the directory's group"))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(error("setting the directory's mode"))?;
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(true)
}

fn write_file(path: &Path, contents: &str, mode: Mode) -> Result<Written, FileError> {
    let dir = parent_dir(path);
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(FileError::MissingDirectory { path: dir.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(FileError::MissingDirectory { path: dir.to_owned() })
        }
        Err(e) => return Err(FileError::Read { path: dir.to_owned(), source: e }),
    }
    let name = file_name(path);
    let write_error =
        |step: &'static str| move |source: io::Error| FileError::Write { path: path.to_owned(), step, source };

    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_error("creating the lock file"))?;
    lock.lock().map_err(write_error("locking"))?;

    remove_stale_temp_files(dir, &name);

    let existing_meta = match fs::symlink_metadata(path) {
        Ok(meta) => {
            check_kind(path, &meta)?;
            Some(meta)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(FileError::Read { path: path.to_owned(), source: e }),
    };
    // The final mode, and the mode it replaces when that takes bits away.
    let (final_mode, tightened) = match (mode, &existing_meta) {
        (Mode::Forced(mode), _) => (mode, None),
        (Mode::Kept { new, .. }, None) => (new.mode, None),
        (Mode::Kept { private, .. }, Some(meta)) => {
            let old = meta.permissions().mode() & 0o7777;
            if private && old & OTHERS != 0 {
                (old & !OTHERS, Some(old))
            } else {
                (old, None)
            }
        }
    };
    if existing_meta.is_some() {
        let current = fs::read(path).map_err(|e| FileError::Read { path: path.to_owned(), source: e })?;
        if current == contents.as_bytes() {
            if tightened.is_some() {
                fs::set_permissions(path, fs::Permissions::from_mode(final_mode))
                    .map_err(write_error("setting the file's mode"))?;
            }
            return Ok(Written { outcome: WriteOutcome::Unchanged, tightened });
        }
    }

    let mut temp = create_temp(dir, &name).map_err(write_error("creating a temporary file"))?;
    temp.as_file_mut().write_all(contents.as_bytes()).map_err(write_error("writing"))?;
    let file = temp.as_file();
    match (&existing_meta, mode) {
        (Some(meta), _) => std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
            .map_err(write_error("keeping the owner and group"))?,
        (None, Mode::Kept { new: NewFile { group: Some(gid), .. }, .. }) => {
            std::os::unix::fs::fchown(file, None, Some(gid)).map_err(write_error("setting the group"))?;
        }
        (None, _) => {}
    }
    file.set_permissions(fs::Permissions::from_mode(final_mode)).map_err(write_error("setting the file's mode"))?;
    file.sync_all().map_err(write_error("syncing"))?;
    temp.persist(path).map_err(|e| FileError::Write {
        path: path.to_owned(),
        step: "renaming into place",
        source: e.error,
    })?;
    if let Ok(d) = File::open(dir) {
        // The rename is done; a failed directory sync only weakens durability.
        let _ = d.sync_all();
    }
    drop(lock);
    let outcome = if existing_meta.is_some() { WriteOutcome::Updated } else { WriteOutcome::Created };
    Ok(Written { outcome, tightened })
}

/// A new temporary file beside the target, created with mode 0600 (so no
/// secret is ever readable by others, even before the final mode is set),
/// removed again if dropped before it is renamed into place.
fn create_temp(dir: &Path, name: &str) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&temp_prefix(name))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.")
}

/// Removes `path`, and the lock and temporary files this module keeps
/// beside it ([`remove_lock`]); `false` when there was no file. A link or
/// directory is refused, not removed.
pub(crate) fn remove(path: &Path) -> Result<bool, FileError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_kind(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FileError::Read { path: path.to_owned(), source: e }),
    }
    fs::remove_file(path).map_err(|source| FileError::Write { path: path.to_owned(), step: "removing", source })?;
    remove_lock(path);
    if let Ok(d) = File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
    Ok(true)
}

/// Removes the lock file (and any stale temporary files) this module keeps
/// beside `path`, once nothing will write `path` again.
pub(crate) fn remove_lock(path: &Path) {
    let dir = parent_dir(path);
    let name = file_name(path);
    remove_stale_temp_files(dir, &name);
    let _ = fs::remove_file(dir.join(format!(".{name}.lock")));
}

/// Removes `.NAME.*.tmp` files left by a run that was killed mid-write. Only
/// called with the lock held, so no live write can own them.
fn remove_stale_temp_files(dir: &Path, name: &str) {
    let prefix = temp_prefix(name);
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && file_name.ends_with(".tmp") && file_name.len() > prefix.len() + 4 {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_if_changed(path: &Path, contents: &str) -> Result<WriteOutcome, FileError> {
        write_kept(path, contents, NewFile::config(None), false).map(|w| w.outcome)
    }

    #[test]
    fn creates_updates_and_leaves_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watcher.conf");
        assert_eq!(write_if_changed(&path, "a\n").unwrap(), WriteOutcome::Created);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, FILE_MODE);
        assert_eq!(write_if_changed(&path, "a\n").unwrap(), WriteOutcome::Unchanged);
        assert_eq!(write_if_changed(&path, "b\n").unwrap(), WriteOutcome::Updated);
        assert_eq!(fs::read_to_string(&path).unwrap(), "b\n");
        let names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    /// A group the test may give a file: 4242 as root, else its own.
    fn some_group(dir: &Path) -> u32 {
        let probe = dir.join("probe");
        fs::write(&probe, "").unwrap();
        let meta = fs::metadata(&probe).unwrap();
        fs::remove_file(probe).unwrap();
        if meta.uid() == 0 {
            4242
        } else {
            meta.gid()
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_file_gets_its_mode_and_group_an_existing_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let gid = some_group(dir.path());
        let path = dir.path().join("50-watcher-metal.conf");
        let new = NewFile::config(Some(gid));
        let written = write_kept(&path, "a\n", new, true).unwrap();
        assert_eq!(written, Written { outcome: WriteOutcome::Created, tightened: None });
        assert_eq!((mode_of(&path), fs::metadata(&path).unwrap().gid()), (0o640, gid));
        // The site made it 0600: a rewrite keeps that, and the group.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let written = write_kept(&path, "b\n", NewFile::config(None), true).unwrap();
        assert_eq!(written, Written { outcome: WriteOutcome::Updated, tightened: None });
        assert_eq!((mode_of(&path), fs::metadata(&path).unwrap().gid()), (0o600, gid));
        // Without a secret, a file others may read stays so.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(write_kept(&path, "c\n", new, false).unwrap().tightened, None);
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(write_if_changed(&path, "d\n").unwrap(), WriteOutcome::Updated);
        assert_eq!(mode_of(&path), 0o644, "a rewrite does not force 0640");
    }

    #[test]
    fn a_file_holding_a_secret_is_never_left_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watcher.conf");
        fs::write(&path, "[DEFAULT]\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        let written = write_kept(&path, "[maas_client]\napi_key = k\n", NewFile::config(None), true).unwrap();
        assert_eq!(written, Written { outcome: WriteOutcome::Updated, tightened: Some(0o664) });
        assert_eq!(mode_of(&path), 0o660, "the owner's and the group's bits stay");
        // Opened up again by hand with the same content: tightened again.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let written = write_kept(&path, "[maas_client]\napi_key = k\n", NewFile::config(None), true).unwrap();
        assert_eq!(written, Written { outcome: WriteOutcome::Unchanged, tightened: Some(0o644) });
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(
            write_kept(&path, "[maas_client]\napi_key = k\n", NewFile::config(None), true).unwrap().tightened,
            None
        );
    }

    #[test]
    fn a_forced_mode_applies_to_new_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        write_if_changed_with_mode(&path, "a\n", 0o644).unwrap();
        assert_eq!(mode_of(&path), 0o644);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_if_changed_with_mode(&path, "b\n", 0o644).unwrap();
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn a_new_directory_gets_its_mode_and_group() {
        let dir = tempfile::tempdir().unwrap();
        let gid = some_group(dir.path());
        let sub = dir.path().join("watcher-applier.conf.d");
        assert!(ensure_dir(&sub, 0o750, Some(gid)).unwrap());
        let meta = fs::metadata(&sub).unwrap();
        assert_eq!((meta.permissions().mode() & 0o7777, meta.gid()), (0o750, gid));
        assert!(!ensure_dir(&sub, 0o750, Some(gid)).unwrap());
    }

    #[test]
    fn temp_files_start_private() {
        let dir = tempfile::tempdir().unwrap();
        let temp = create_temp(dir.path(), "watcher.conf").unwrap();
        assert_eq!(temp.as_file().metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let name = temp.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".watcher.conf.") && name.ends_with(".tmp"), "{name}");
    }

    #[test]
    fn stale_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watcher.conf");
        let stale = dir.path().join(".watcher.conf.AbC123.tmp");
        fs::write(&stale, "partial").unwrap();
        let other = dir.path().join(".other.conf.AbC123.tmp");
        fs::write(&other, "not ours").unwrap();
        write_if_changed(&path, "x\n").unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }

    #[test]
    fn refuses_links_directories_and_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.conf");
        fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(write_if_changed(&link, "new"), Err(FileError::Symlink { .. })));
        assert!(matches!(read_existing(&link), Err(FileError::Symlink { .. })));
        assert_eq!(fs::read_to_string(&real).unwrap(), "old");
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        assert!(matches!(write_if_changed(&sub, "new"), Err(FileError::Directory { .. })));
        let missing = dir.path().join("nope/watcher.conf");
        assert!(matches!(write_if_changed(&missing, "new"), Err(FileError::MissingDirectory { .. })));
    }

    #[test]
    fn non_utf8_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watcher.conf");
        fs::write(&path, b"\xff\xfe[x]").unwrap();
        assert!(matches!(read_existing(&path), Err(FileError::NotText { .. })));
        assert_eq!(read_existing(&dir.path().join("absent")).unwrap(), None);
    }
}
