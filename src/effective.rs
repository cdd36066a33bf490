//! The effective configuration: what Watcher's services read, file by file.
//!
//! Watcher's services run with `--config-file=/etc/watcher/watcher.conf`,
//! and oslo.config also reads its default config directories, among them
//! `/etc/watcher/watcher.conf.d`, **before** that file: the directory's
//! `*.conf` files in sorted order (hidden files excluded, as Python's glob
//! excludes them), then watcher.conf. For each option the last setting
//! wins, so watcher.conf wins any clash with a drop-in, and a drop-in that
//! sorts later wins over one that sorts earlier.
//!
//! [`Layout`] holds those files in that order; [`Layout::setting`] answers
//! which file set an option last, and [`clashes`] which of the managed
//! options Watcher would not take from the file watcher-metal wrote.

use std::path::{Path, PathBuf};

use crate::atomic_file::FileError;
use crate::ini;

/// The directory beside watcher.conf that oslo.config reads by itself.
pub const DROP_IN_DIR_NAME: &str = "watcher.conf.d";

/// The drop-in directory for a watcher.conf: `<its directory>/watcher.conf.d`.
pub fn drop_in_dir(watcher_conf: &Path) -> PathBuf {
    watcher_conf.parent().unwrap_or_else(|| Path::new("/")).join(DROP_IN_DIR_NAME)
}

/// Whether oslo.config reads a directory entry named `name` (`*.conf`,
/// not hidden).
pub fn is_read_as_drop_in(name: &str) -> bool {
    name.ends_with(".conf") && !name.starts_with('.')
}

/// One configuration file as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    pub path: PathBuf,
    pub text: String,
}

/// The files Watcher's services read, in the order they read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub files: Vec<ConfFile>,
}

/// Where an option's effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub path: PathBuf,
}

impl Layout {
    /// Reads the drop-ins beside `watcher_conf` and then `watcher_conf`
    /// itself. Missing files and a missing directory are skipped, as
    /// oslo.config skips them.
    pub fn read(watcher_conf: &Path) -> Result<Layout, FileError> {
        let mut files = Vec::new();
        for path in drop_in_paths(&drop_in_dir(watcher_conf))?.into_iter().chain([watcher_conf.to_owned()]) {
            if let Some(text) = read_followed(&path)? {
                files.push(ConfFile { path, text });
            }
        }
        Ok(Layout { files })
    }

    /// The layout with `path` holding `text` instead (added in its sorted
    /// place among the drop-ins when it is one, or at the end), or with
    /// `path` left out when `text` is `None`: what Watcher would read once
    /// a file is written or removed.
    pub fn with_file(&self, path: &Path, text: Option<&str>) -> Layout {
        let mut files: Vec<ConfFile> = self.files.iter().filter(|f| f.path != path).cloned().collect();
        if let Some(text) = text {
            let file = ConfFile { path: path.to_owned(), text: text.to_owned() };
            let dir = path.parent();
            // Drop-ins come before the watcher.conf at the end; among
            // themselves they sort by name.
            let at =
                files.iter().position(|f| f.path.parent() != dir || f.path.as_path() > path).unwrap_or(files.len());
            let is_drop_in = dir.and_then(Path::file_name).is_some_and(|n| n == DROP_IN_DIR_NAME);
            if is_drop_in {
                files.insert(at, file);
            } else {
                files.push(file);
            }
        }
        Layout { files }
    }

    /// The options of `section` across all files, in read order: the last
    /// entry of a key is its effective value.
    pub fn section(&self, section: &str) -> Vec<(String, String)> {
        self.files.iter().flat_map(|f| ini::read_section(&f.text, section)).collect()
    }

    /// The effective value of `section`'s `key`, and the file that set it.
    pub fn setting(&self, section: &str, key: &str) -> Option<Setting> {
        self.files.iter().rev().find_map(|f| {
            ini::read_section(&f.text, section)
                .into_iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, value)| Setting { value, path: f.path.clone() })
        })
    }

    /// The paths read, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }
}

/// A configuration file's text as oslo.config reads it (following links);
/// `None` when it does not exist.
fn read_followed(path: &Path) -> Result<Option<String>, FileError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| FileError::NotText { path: path.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(FileError::Directory { path: path.to_owned() }),
        Err(e) => Err(FileError::Read { path: path.to_owned(), source: e }),
    }
}

/// The `*.conf` files of `dir` in the order oslo.config reads them (sorted
/// by name, as Python sorts strings); none when `dir` does not exist.
pub fn drop_in_paths(dir: &Path) -> Result<Vec<PathBuf>, FileError> {
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

/// A managed option that Watcher would take from another file than the one
/// watcher-metal wrote (or that another file sets although the charm leaves
/// it unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub section: &'static str,
    pub option: &'static str,
    /// The file whose setting Watcher would use.
    pub path: PathBuf,
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sets [{}] {}, which overrides the charm's setting",
            self.path.display(),
            self.section,
            self.option
        )
    }
}

impl Clash {
    pub fn hint(&self) -> String {
        format!(
            "remove `{}` from [{}] in {}: Watcher reads watcher.conf after its drop-ins, and a later drop-in after an earlier one",
            self.option,
            self.section,
            self.path.display()
        )
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
pub fn clashes(layout: &Layout, ours: &Path) -> Vec<Clash> {
    let own_text = layout.files.iter().find(|f| f.path == ours).map(|f| f.text.as_str()).unwrap_or("");
    let mut out = Vec::new();
    for (section, options) in MANAGED_OPTIONS {
        let own = ini::read_section(own_text, section);
        for option in options.iter().copied() {
            let intended =
                own.iter().rev().find(|(k, _)| k == option).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
            let Some(effective) = layout.setting(section, option) else { continue };
            if effective.path == ours {
                continue;
            }
            let effective_value = Some(effective.value.as_str()).filter(|v| !v.is_empty());
            if effective_value != intended {
                out.push(Clash { section, option, path: effective.path });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(files: &[(&str, &str)]) -> Layout {
        Layout {
            files: files.iter().map(|(p, t)| ConfFile { path: PathBuf::from(p), text: (*t).to_owned() }).collect(),
        }
    }

    const OURS: &str = "/etc/watcher/watcher.conf.d/50-watcher-metal.conf";
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
        let l = layout(&[
            (OURS, "[maas_client]\nurl = ours\napi_key = k\ntimeout = 120\n[ironic_client]\napi_version = 1\n"),
            (
                "/etc/watcher/watcher.conf.d/90-z.conf",
                "[maas_client]\ntimeout = 120\n[ironic_client]\nregion_name = r\n",
            ),
            (CONF, "[maas_client]\nurl = theirs\n"),
        ]);
        let found = clashes(&l, Path::new(OURS));
        assert_eq!(
            found,
            vec![
                Clash { section: "maas_client", option: "url", path: CONF.into() },
                Clash {
                    section: "ironic_client",
                    option: "region_name",
                    path: "/etc/watcher/watcher.conf.d/90-z.conf".into()
                },
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
    fn drop_ins_are_read_sorted_then_watcher_conf() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("watcher.conf");
        let d = drop_in_dir(&conf);
        std::fs::create_dir(&d).unwrap();
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.conf.bak", "A.conf"] {
            std::fs::write(d.join(name), "[x]\n").unwrap();
        }
        std::fs::write(&conf, "[x]\n").unwrap();
        let l = Layout::read(&conf).unwrap();
        let names: Vec<String> =
            l.paths().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["A.conf", "a.conf", "b.conf", "watcher.conf"]);
        // A file added in its place.
        let l = l.with_file(&d.join("50-watcher-metal.conf"), Some("[y]\n"));
        let names: Vec<String> =
            l.paths().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["50-watcher-metal.conf", "A.conf", "a.conf", "b.conf", "watcher.conf"]);
    }
}
