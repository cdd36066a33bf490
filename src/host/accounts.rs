//! Watcher's user and group as the system names them: the home directory
//! of the user its services run as (oslo.config looks for
//! `~/<program>.conf.d` there) and the id of their group (which must be
//! able to read what is written for them).
//!
//! Ubuntu's and Debian's Watcher packages create a system user and group
//! `watcher` (`User=watcher`, `Group=watcher` in their units, HOME
//! `/var/lib/watcher`), which `adduser` puts in `/etc/passwd` and
//! `/etc/group`; those two files are read here. `WATCHER_METAL_ETC` names
//! another directory holding them, for tests and `scripts/lab`, which run
//! Watcher's services as another user.

use std::path::{Path, PathBuf};

/// The user and the group Watcher's services run as.
pub const WATCHER_ACCOUNT: &str = "watcher";

/// The environment variable naming the directory of `passwd` and `group`
/// (default `/etc`).
pub const ETC_VARIABLE: &str = "WATCHER_METAL_ETC";

/// The account files of one system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts {
    dir: PathBuf,
}

impl Accounts {
    /// This machine's: `$WATCHER_METAL_ETC` when set, else `/etc`.
    pub fn system() -> Accounts {
        let dir = std::env::var_os(ETC_VARIABLE).filter(|d| !d.is_empty()).map(PathBuf::from);
        Accounts { dir: dir.unwrap_or_else(|| PathBuf::from("/etc")) }
    }

    /// The `passwd` and `group` files of `dir`.
    pub fn in_dir(dir: &Path) -> Accounts {
        Accounts { dir: dir.to_owned() }
    }

    /// The id of group `name`, when the group file has it.
    pub fn group_id(&self, name: &str) -> Option<u32> {
        // name:password:GID:members
        entry(&self.dir.join("group"), name).and_then(|fields| fields.get(2)?.parse().ok())
    }

    /// The home directory of user `name`, when the passwd file has it.
    pub fn home_of(&self, name: &str) -> Option<PathBuf> {
        // name:password:UID:GID:GECOS:HOME:shell
        entry(&self.dir.join("passwd"), name)
            .and_then(|fields| fields.get(5).filter(|h| h.starts_with('/')).map(PathBuf::from))
    }
}

/// The fields of the line of `file` for `name` (the first such line, as
/// the C library reads it); `None` when the file or the line is missing.
fn entry(file: &Path, name: &str) -> Option<Vec<String>> {
    let text = std::fs::read(file).ok()?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|fields| fields.first().is_some_and(|n| n == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_group_id_and_the_home() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("group"), "# a comment\nroot:x:0:\nwatchers:x:7:\nwatcher:x:64061:\n").unwrap();
        std::fs::write(
            dir.path().join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\nwatcher:x:64061:64061::/var/lib/watcher:/usr/sbin/nologin\nodd:x:1:1::relative:/bin/sh\n",
        )
        .unwrap();
        let accounts = Accounts::in_dir(dir.path());
        assert_eq!(accounts.group_id(WATCHER_ACCOUNT), Some(64061));
        assert_eq!(accounts.group_id("nova"), None);
        assert_eq!(accounts.home_of(WATCHER_ACCOUNT), Some(PathBuf::from("/var/lib/watcher")));
        assert_eq!(accounts.home_of("odd"), None, "a home that is not absolute is none");
        assert_eq!(Accounts::in_dir(&dir.path().join("nope")).group_id("root"), None);
    }
}
