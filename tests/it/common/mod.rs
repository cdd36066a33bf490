//! Helpers shared by the integration tests: running the binary, fake Juju
//! hook tools, and read-only or full file systems.
// The modules of the test binary each use a part of these helpers.
#![allow(dead_code, unreachable_pub)]

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
    real_etc_before();
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("JUJU_CONTEXT_ID").env_remove("JUJU_DISPATCH_PATH").env_remove("JUJU_UNIT_NAME");
    // This machine's users and groups are not the test's: no `watcher`.
    cmd.env("WATCHER_METAL_ETC", no_accounts());
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
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_real_etc_untouched(args);
    run
}

/// The drop-in directories a test could write into the real `/etc` (the
/// default `drop-in-root`) by forgetting to name its own root.
const REAL_DROP_IN_DIRS: [&str; 2] = ["/etc/watcher-decision-engine.conf.d", "/etc/watcher-applier.conf.d"];

/// Fails the test that just ran the binary if a Watcher drop-in directory
/// appeared in the real `/etc` (one that was there when the tests started,
/// on a machine with Watcher, does not count): every test names a
/// drop-in root of its own.
pub fn assert_real_etc_untouched(args: &[&str]) {
    let before = real_etc_before();
    for (dir, was) in REAL_DROP_IN_DIRS.iter().zip(before) {
        assert!(
            *was || !Path::new(dir).exists(),
            "`watcher-metal {}` wrote into the real {dir}: give the test a drop-in-root of its own",
            args.join(" ")
        );
    }
}

/// Which of [`REAL_DROP_IN_DIRS`] existed before the first run of the
/// binary.
fn real_etc_before() -> &'static [bool] {
    static BEFORE: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    BEFORE.get_or_init(|| REAL_DROP_IN_DIRS.iter().map(|d| Path::new(d).exists()).collect())
}

/// An empty directory for `WATCHER_METAL_ETC`: no user or group `watcher`.
fn no_accounts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-accounts");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `<root>/etc/watcher/watcher.conf`, its directory made: laid out as on a
/// unit, with `<root>/etc` standing for `/etc` (the drop-in root that
/// [`maas_config`] names, so that `<root>/etc/<program>.conf.d` stays
/// inside `root`).
pub fn conf_path(root: &Path) -> PathBuf {
    let dir = root.join("etc").join("watcher");
    fs::create_dir_all(&dir).unwrap();
    dir.join("watcher.conf")
}

pub fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

/// Temporary files (`*.tmp`) left in `dir`.
pub fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A directory for `WATCHER_METAL_ETC` in `dir` whose user `watcher` (the
/// one Watcher's services run as) has `home` as its HOME: the drop-in root
/// a test uses for `/etc` is then one the services read.
pub fn accounts_with_home(dir: &Path, home: &Path) -> PathBuf {
    let etc = dir.join("accounts");
    fs::create_dir_all(&etc).unwrap();
    write(&etc.join("passwd"), &format!("watcher:x:64061:64061::{}:/usr/sbin/nologin\n", home.display()));
    write(&etc.join("group"), "root:x:0:\n");
    etc
}

/// The drop-in root of a watcher.conf laid out by [`conf_path`]:
/// `<root>/etc`.
pub fn drop_in_root(conf_path: &Path) -> PathBuf {
    conf_path.parent().and_then(Path::parent).unwrap().to_owned()
}

/// A YAML charm config with a MAAS URL and the test key, the drop-ins in
/// `<root>/etc` (see [`conf_path`]).
pub fn maas_config(dir: &Path, conf_path: &Path) -> PathBuf {
    let path = dir.join("charm.yaml");
    write(
        &path,
        &format!(
            "maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
            conf_path.display(),
            drop_in_root(conf_path).display()
        ),
    );
    path
}

/// Fake hook tools (and `systemctl`) on a PATH of their own: each records
/// its arguments in `calls.log` (fields separated by 0x1f, records by 0x1e) and prints a
/// canned answer: `config-get` the config JSON, `secret-get` the secret
/// JSON, `action-get` the action parameters. The machine's users and groups
/// are `etc/passwd` and `etc/group` beside them (`WATCHER_METAL_ETC`):
/// none, until [`FakeJuju::set_watcher_home`] adds Watcher's user.
pub struct FakeJuju {
    pub dir: tempfile::TempDir,
}

/// One recorded hook tool call: the tool, then its arguments.
pub type Call = Vec<String>;

impl FakeJuju {
    pub fn new(config_json: &str, secret_json: Option<&str>) -> FakeJuju {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        write(&dir.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n");
        write(&dir.path().join("etc/group"), "root:x:0:\n");
        let juju = FakeJuju { dir };
        juju.set_config(config_json);
        juju.set_watcher_version(Some("2:12.0.0-0ubuntu1"));
        if let Some(secret) = secret_json {
            write(&juju.dir.path().join("secret.json"), secret);
        }
        let log = juju.dir.path().join("calls.log");
        let record = format!(
            "{{ printf '%s' \"$(basename \"$0\")\"; for a in \"$@\"; do printf '\\037%s' \"$a\"; done; printf '\\036'; }} >> '{}'\n",
            log.display()
        );
        let answers = [
            ("config-get", Some("config.json")),
            ("secret-get", Some("secret.json")),
            ("action-get", Some("params.json")),
            ("status-set", None),
            ("application-version-set", None),
            ("juju-log", None),
            ("action-set", None),
            ("action-fail", None),
            ("systemctl", None),
            ("update-ca-certificates", None),
            ("dpkg-query", None),
            ("python3", None),
            ("apt-get", None),
        ];
        for (tool, answer) in answers {
            let mut script = format!("#!/bin/sh\n{record}");
            if let Some(file) = answer {
                let path = juju.dir.path().join(file);
                script.push_str(&format!(
                    "if [ -f '{0}' ]; then cat '{0}'; else echo 'ERROR {tool}: not found' >&2; exit 1; fi\n",
                    path.display()
                ));
            }
            let state = |name: &str| juju.dir.path().join(name).display().to_string();
            match tool {
                // `show-environment` and `show` of a unit's environment print
                // the files set_systemd wrote. `show` of units' states: every
                // unit loaded and active but those named in systemctl-missing
                // (not-found, and a restart of one fails as systemd's does);
                // a restart fails while systemctl-fails exists.
                "systemctl" => script.push_str(&format!(
                    "case \"$1\" in show-environment) cat '{2}' 2>/dev/null; exit 0;; esac\n\
                     if [ \"$1\" = show ]; then case \"$*\" in *Environment*) cat '{3}' 2>/dev/null; exit 0;; esac; \
                     shift; for u in \"$@\"; do case \"$u\" in -*) continue;; esac; \
                     if grep -qx \"$u\" '{1}' 2>/dev/null; then printf 'LoadState=not-found\\nActiveState=inactive\\n\\n'; \
                     else printf 'LoadState=loaded\\nActiveState=active\\n\\n'; fi; done; exit 0; fi\n\
                     for u in \"$@\"; do if grep -qx \"$u\" '{1}' 2>/dev/null; then \
                     echo \"Failed to $1 $u.service: Unit $u.service not found.\" >&2; exit 5; fi; done\n\
                     if [ -f '{0}' ]; then echo 'Job failed' >&2; exit 1; fi\n",
                    state("systemctl-fails"),
                    state("systemctl-missing"),
                    state("systemctl-show-environment"),
                    state("systemctl-show")
                )),
                // dpkg-query -W -f='${Package} ${db:Status-Status} ${Version}\n' PACKAGE...:
                // python3-watcher as dpkg-version says, python3-libmaas unless
                // libmaas-missing exists, python3 always.
                "dpkg-query" => script.push_str(&format!(
                    "code=0; for p in \"$@\"; do case \"$p\" in \
                     -*) ;; \
                     python3-watcher) if [ -f '{0}' ]; then printf '%s %s\\n' \"$p\" \"$(cat '{0}')\"; else code=1; fi;; \
                     python3-libmaas) if [ -f '{1}' ]; then code=1; else printf '%s installed 0.6.8-3\\n' \"$p\"; fi;; \
                     python3) printf 'python3 installed 3.12.3-0ubuntu2\\n';; \
                     *) echo \"dpkg-query: no packages found matching $p\" >&2; code=1;; esac; done; exit $code\n",
                    state("dpkg-version"),
                    state("libmaas-missing")
                )),
                // Watcher's Python: `import maas.client` fails while libmaas-missing exists.
                "python3" => script.push_str(&format!("if [ -f '{}' ]; then exit 1; fi\nexit 0\n", state("libmaas-missing"))),
                // apt-get install: fails on apt's lock as many times as
                // apt-locked says, fails with apt's message in apt-fails,
                // else "installs" libmaas.
                "apt-get" => script.push_str(&format!(
                    "n=$(cat '{2}' 2>/dev/null || echo 0); if [ \"$n\" -gt 0 ]; then echo $((n - 1)) > '{2}'; \
                     echo 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)' >&2; \
                     echo 'E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?' >&2; exit 100; fi\n\
                     if [ -f '{0}' ]; then echo 'Reading package lists...' >&2; cat '{0}' >&2; exit 100; fi\nrm -f '{1}'\n",
                    state("apt-fails"),
                    state("libmaas-missing"),
                    state("apt-locked")
                )),
                _ => {}
            }
            let path = bin.join(tool);
            write(&path, &script);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        juju
    }

    /// Where `dispatch` installs `maas-ca-cert` in these tests.
    pub fn ca_dir(&self) -> std::path::PathBuf {
        let dir = self.dir.path().join("ca-certificates");
        let _ = fs::create_dir_all(&dir);
        dir
    }

    /// Adds the user Watcher's services run as, `watcher`, with `home` as
    /// its home directory (where oslo.config looks for `~/<program>.conf.d`).
    pub fn set_watcher_home(&self, home: &Path) {
        let passwd =
            format!("root:x:0:0:root:/root:/bin/bash\nwatcher:x:64061:64061::{}:/usr/sbin/nologin\n", home.display());
        write(&self.dir.path().join("etc/passwd"), &passwd);
    }

    /// Adds the group `watcher`, with id `gid`.
    pub fn set_watcher_group(&self, gid: u32) {
        write(&self.dir.path().join("etc/group"), &format!("root:x:0:\nwatcher:x:{gid}:\n"));
    }

    pub fn set_config(&self, config_json: &str) {
        write(&self.dir.path().join("config.json"), config_json);
    }

    /// What dpkg-query reports for python3-watcher (`None`: not installed).
    pub fn set_watcher_version(&self, version: Option<&str>) {
        let path = self.dir.path().join("dpkg-version");
        match version {
            Some(v) => write(&path, &format!("installed {v}")),
            None => {
                let _ = fs::remove_file(path);
            }
        }
    }

    /// Makes `import maas.client` fail until apt-get installs it; with
    /// `apt_error`, apt-get fails with that message.
    pub fn set_libmaas_missing(&self, apt_error: Option<&str>) {
        write(&self.dir.path().join("libmaas-missing"), "");
        if let Some(e) = apt_error {
            write(&self.dir.path().join("apt-fails"), &format!("{e}\n"));
        }
    }

    /// Makes the next `times` apt-get runs fail on the package manager's
    /// lock, as when unattended-upgrades holds it.
    pub fn set_apt_locked(&self, times: u32) {
        write(&self.dir.path().join("apt-locked"), &format!("{times}\n"));
    }

    /// Makes `systemctl show` find no unit of these names.
    pub fn set_missing_units(&self, units: &[&str]) {
        let lines: String = units.iter().map(|u| format!("{u}\n")).collect();
        write(&self.dir.path().join("systemctl-missing"), &lines);
    }

    /// What `systemctl show UNIT` and `systemctl show-environment` print.
    pub fn set_systemd(&self, show: &str, manager_environment: &str) {
        write(&self.dir.path().join("systemctl-show"), show);
        write(&self.dir.path().join("systemctl-show-environment"), manager_environment);
    }

    pub fn set_params(&self, params_json: &str) {
        write(&self.dir.path().join("params.json"), params_json);
    }

    pub fn path_env(&self) -> String {
        format!("{}:{}", self.dir.path().join("bin").display(), std::env::var("PATH").unwrap_or_default())
    }

    /// The raw log: one line a call, arguments separated by spaces.
    pub fn calls(&self) -> String {
        self.call_list().iter().map(|c| format!("{}\n", c.join(" "))).collect()
    }

    /// Each call as its tool and arguments (records end with 0x1e, so
    /// arguments may hold newlines).
    pub fn call_list(&self) -> Vec<Call> {
        fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .split('\u{1e}')
            .filter(|r| !r.is_empty())
            .map(|r| r.split('\u{1f}').map(str::to_owned).collect())
            .collect()
    }

    pub fn calls_to(&self, tool: &str) -> Vec<Call> {
        self.call_list().into_iter().filter(|c| c[0] == tool).collect()
    }

    pub fn clear_calls(&self) {
        let _ = fs::remove_file(self.dir.path().join("calls.log"));
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let path = self.path_env();
        let ca_dir = self.ca_dir().display().to_string();
        let etc = self.dir.path().join("etc").display().to_string();
        let mut all = vec![
            ("PATH", path.as_str()),
            ("JUJU_CONTEXT_ID", "unit-watcher-maas-0-1"),
            ("JUJU_UNIT_NAME", "watcher-maas/0"),
            ("WATCHER_METAL_CA_DIR", ca_dir.as_str()),
            ("WATCHER_METAL_ETC", etc.as_str()),
        ];
        all.extend_from_slice(env);
        run_with(args, &all, None)
    }

    /// Runs `watcher-metal dispatch` as Juju would for `dispatch_path`.
    pub fn dispatch(&self, dispatch_path: &str) -> Run {
        self.run_with(&["dispatch"], &[("JUJU_DISPATCH_PATH", dispatch_path)])
    }
}

/// The Python interpreter of a peer, from the environment variable `var`
/// (`scripts/test` sets each). Under CI a missing one is a failure, so a
/// peer check cannot silently not run; elsewhere `what` is skipped, saying so.
pub fn peer_python(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var_os("CI").is_some() => panic!("{var} must be set under CI"),
        _ => {
            eprintln!("{var} is not set: {what} not run (scripts/test sets it)");
            None
        }
    }
}

/// Whether the tests run as root (the owner of a new file).
pub fn running_as_root() -> bool {
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::metadata(probe.path()).unwrap().uid() == 0
}

fn env_flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// For `test`, which checks one thing as root and another as any other
/// user: whether it runs as root. Under `WATCHER_METAL_REQUIRE_UNPRIVILEGED=1`
/// (how `scripts/test` runs these tests as an unprivileged user) root is a
/// failure, so the unprivileged half cannot silently not run.
pub fn takes_root_branch(test: &str) -> bool {
    let root = running_as_root();
    assert!(
        !(root && env_flag("WATCHER_METAL_REQUIRE_UNPRIVILEGED")),
        "{test}: runs as root although WATCHER_METAL_REQUIRE_UNPRIVILEGED=1 asks for an unprivileged user"
    );
    root
}

/// Reports that `test` did not run, and why, on the real standard error
/// (past libtest's capture, so it shows for a passing test too). Under
/// `WATCHER_METAL_REQUIRE_ROOT=1` (CI, which runs as root) it is a failure.
pub fn skipped(test: &str, why: &str) {
    assert!(!env_flag("WATCHER_METAL_REQUIRE_ROOT"), "{test}: not run although WATCHER_METAL_REQUIRE_ROOT=1: {why}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// A directory on a small tmpfs of its own (root only), unmounted on drop.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// The mounted tmpfs, or why there is none (not root, or `mount` failed).
    pub fn mount(size: &str) -> Result<Tmpfs, String> {
        if !running_as_root() {
            return Err("mounting a tmpfs needs root".to_owned());
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", path_str(dir.path())])
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { dir })
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

/// Gives `dir` its mode back on drop (0755), so that a directory made
/// read-only by a test can be removed even when the test fails.
pub struct Writable(pub PathBuf);

impl Drop for Writable {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}
