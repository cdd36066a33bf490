//! Writing configuration files so that readers only ever see the old or the
//! new content.
//!
//! A write takes a lock beside the file (so two hooks serialise), creates a
//! temporary file in the same directory with mode 0600 before any byte is
//! written, writes and fsyncs it, gives it mode 0640 and the old file's owner
//! and group, renames it over the target and fsyncs the directory. Any
//! failure before the rename leaves the old file byte-for-byte intact and
//! removes the temporary file. Temporary files left by a killed run are
//! removed by the next run.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every file this tool writes.
const FILE_MODE: u32 = 0o640;

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
/// that. See the module documentation for the steps.
pub(crate) fn write_if_changed(path: &Path, contents: &str) -> Result<WriteOutcome, FileError> {
    write_if_changed_with_mode(path, contents, FILE_MODE)
}

/// [`write_if_changed`] with another final mode (a public certificate is
/// 0644, say).
pub(crate) fn write_if_changed_with_mode(path: &Path, contents: &str, mode: u32) -> Result<WriteOutcome, FileError> {
    write_file(path, contents, mode, None)
}

/// [`write_if_changed`] for a file that, when it is new, gets `owner`
/// (uid, gid) instead of the writer's; an existing file keeps its own.
pub(crate) fn write_if_changed_owned(
    path: &Path,
    contents: &str,
    owner: Option<(u32, u32)>,
) -> Result<WriteOutcome, FileError> {
    write_file(path, contents, FILE_MODE, owner)
}

/// The owner and group of `path`, if it exists.
pub(crate) fn owner_of(path: &Path) -> Option<(u32, u32)> {
    fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

/// Creates `dir` (one level: its parent must exist) with `mode` and
/// `owner` unless it exists. Returns whether it was created. A link, or
/// anything that is not a directory, is refused.
pub(crate) fn ensure_dir(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> Result<bool, FileError> {
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
    // Owner first, then the mode that lets the group in.
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(error("setting the directory's owner"))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(error("setting the directory's mode"))?;
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(true)
}

fn write_file(
    path: &Path,
    contents: &str,
    mode: u32,
    new_owner: Option<(u32, u32)>,
) -> Result<WriteOutcome, FileError> {
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
    if existing_meta.is_some() {
        let current = fs::read(path).map_err(|e| FileError::Read { path: path.to_owned(), source: e })?;
        if current == contents.as_bytes() {
            return Ok(WriteOutcome::Unchanged);
        }
    }

    let mut temp = create_temp(dir, &name).map_err(write_error("creating a temporary file"))?;
    temp.as_file_mut().write_all(contents.as_bytes()).map_err(write_error("writing"))?;
    let file = temp.as_file();
    if let Some(meta) = &existing_meta {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
            .map_err(write_error("keeping the owner and group"))?;
    } else if let Some((uid, gid)) = new_owner {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid)).map_err(write_error("setting the owner and group"))?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode)).map_err(write_error("setting the file's mode"))?;
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
    Ok(if existing_meta.is_some() { WriteOutcome::Updated } else { WriteOutcome::Created })
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

/// Removes `path` and the lock file beside it; `false` when there was no
/// file. A link or directory is refused, not removed.
pub(crate) fn remove(path: &Path) -> Result<bool, FileError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => check_kind(path, &meta)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FileError::Read { path: path.to_owned(), source: e }),
    }
    fs::remove_file(path).map_err(|source| FileError::Write { path: path.to_owned(), step: "removing", source })?;
    let _ = fs::remove_file(parent_dir(path).join(format!(".{}.lock", file_name(path))));
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
