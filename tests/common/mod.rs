//! Helpers shared by the integration tests: running the binary, fake Juju
//! hook tools, and read-only or full file systems.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A made-up API key in MAAS's format. Tests assert it never leaks.
pub const KEY: &str = "TestConsumerKey123:TestTokenKey456789:TestTokenSecretAbcdefghijklmnop12";
pub const TOKEN_SECRET: &str = "TestTokenSecretAbcdefghijklmnop12";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_watcher-metal")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts the test key, and its secret part, appear in no output.
    pub fn assert_no_secret(&self) -> &Run {
        for secret in [KEY, TOKEN_SECRET] {
            assert!(!self.stdout.contains(secret), "secret in stdout:\n{}", self.stdout);
            assert!(!self.stderr.contains(secret), "secret in stderr:\n{}", self.stderr);
        }
        self
    }
}

/// Runs the binary with `args`, no Juju environment, and `stdin` as input.
pub fn run(args: &[&str]) -> Run {
    run_with(args, &[], None)
}

pub fn run_with(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("JUJU_CONTEXT_ID").env_remove("JUJU_DISPATCH_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn watcher-metal");
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    Run::from_output(child.wait_with_output().unwrap())
}

pub fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A YAML charm config with a MAAS URL and the test key.
pub fn maas_config(dir: &Path, conf_path: &Path) -> PathBuf {
    let path = dir.join("charm.yaml");
    write(
        &path,
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\n",
            conf_path.display()
        ),
    );
    path
}

/// Fake hook tools on a PATH of their own: each records its arguments in
/// `calls.log` and prints a canned answer.
pub struct FakeJuju {
    pub dir: tempfile::TempDir,
}

impl FakeJuju {
    pub fn new(config_json: &str, secret_json: Option<&str>) -> FakeJuju {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        write(&dir.path().join("config.json"), config_json);
        if let Some(secret) = secret_json {
            write(&dir.path().join("secret.json"), secret);
        }
        let log = dir.path().join("calls.log");
        for (tool, answer) in [("config-get", "config.json"), ("secret-get", "secret.json")] {
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nif [ -f '{}' ]; then cat '{}'; else echo 'ERROR secret not found' >&2; exit 1; fi\n",
                log.display(),
                dir.path().join(answer).display(),
                dir.path().join(answer).display()
            );
            let path = bin.join(tool);
            write(&path, &script);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeJuju { dir }
    }

    pub fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    pub fn calls(&self) -> String {
        fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let path = self.path_env();
        run_with(args, &[("PATH", &path), ("JUJU_CONTEXT_ID", "unit-watcher-maas-0-config-changed-1")], None)
    }
}

pub fn running_as_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::metadata(probe.path()).unwrap().uid() == 0
}

/// A directory on a small tmpfs of its own (root only), unmounted on drop.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        if !running_as_root() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path_str(dir.path())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount_read_only(&self) {
        let ok = Command::new("mount").args(["-o", "remount,ro", path_str(self.path())]).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}
