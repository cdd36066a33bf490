//! The unit's own programs the charm runs: systemd, the CA bundle, dpkg,
//! apt and Watcher's Python. Each is found by name on PATH (so tests can
//! stand in for them), runs with no standard input, and reports a failure
//! as one line.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::host::service_env;

/// The package that holds Watcher's Python code on Ubuntu.
pub(crate) const WATCHER_PACKAGE: &str = "python3-watcher";
/// Ubuntu's python-libmaas, which Watcher's MAAS helper imports.
pub(crate) const LIBMAAS_PACKAGE: &str = "python3-libmaas";
/// The module Watcher's MAAS helper imports.
pub(crate) const LIBMAAS_MODULE: &str = "maas.client";
/// The interpreter Ubuntu's Watcher services run on.
pub(crate) const WATCHER_PYTHON: &str = "python3";
/// How long one `apt-get install` waits for the package manager's lock
/// (`DPkg::Lock::Timeout`), in seconds.
pub(crate) const APT_LOCK_WAIT_SECS: u32 = 30;
/// How many times an install is tried while the lock is held by another
/// process (each waits [`APT_LOCK_WAIT_SECS`]).
pub(crate) const APT_LOCK_ATTEMPTS: u32 = 2;

/// A systemd unit as `systemctl show` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// No unit file of that name (`LoadState=not-found`).
    Missing,
    /// Loaded and active (or activating, reloading).
    Running,
    /// Not running: loaded but inactive or failed, or not loaded at all
    /// (masked, a bad unit file); the load and active states, as systemd
    /// says them.
    NotRunning(String),
}

/// Why apt could not install a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AptFailure {
    /// Another process held the package manager's lock through every wait:
    /// a later try may succeed. apt's line.
    Locked(String),
    /// The package could not be downloaded (network, mirror, proxy): a
    /// later try may succeed. apt's line.
    Unreachable(String),
    /// apt says the package cannot be installed (unknown, no candidate,
    /// broken dependencies, dpkg interrupted): a person must act. apt's line.
    Refused(String),
}

impl AptFailure {
    /// apt's line.
    pub(crate) fn line(&self) -> &str {
        match self {
            AptFailure::Locked(l) | AptFailure::Unreachable(l) | AptFailure::Refused(l) => l,
        }
    }
}

/// What the charm asks of the machine.
pub trait System {
    /// Restarts `service` if it is running (`systemctl try-restart`).
    fn restart(&self, service: &str) -> Result<(), String>;
    /// Each of `services`' state, in order, from one `systemctl show`.
    fn service_states(&self, services: &[String]) -> Result<Vec<ServiceState>, String>;
    /// Rebuilds the system's CA bundle after a certificate was added to or
    /// removed from the CA directory (`update-ca-certificates`).
    fn refresh_ca_bundle(&self) -> Result<(), String>;
    /// The installed version of each of `packages`, in order (`None`: not
    /// installed), from one `dpkg-query`.
    fn package_versions(&self, packages: &[&str]) -> Result<Vec<Option<String>>, String>;
    /// The installed version of a Debian package, `None` when it is not
    /// installed.
    fn package_version(&self, package: &str) -> Result<Option<String>, String> {
        Ok(self.package_versions(&[package])?.into_iter().next().flatten())
    }
    /// Whether Watcher's Python can import `module`.
    fn python_imports(&self, module: &str) -> Result<bool, String>;
    /// Installs a Debian package, noninteractively, waiting for the
    /// package manager's lock and trying again while another process holds
    /// it.
    fn install_package(&self, package: &str) -> Result<(), AptFailure>;
    /// The environment systemd starts `service` with, in order (see
    /// [`service_env`]); `None` when systemd has
    /// no such unit.
    fn service_environment(&self, service: &str) -> Result<Option<Vec<(String, String)>>, String>;
}

/// The real machine.
pub struct Host;

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<std::process::Output, String> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().map_err(|e| format!("cannot run {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> Result<(), String> {
    let output = run(program, args, &[])?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{program} {}: {}", args.join(" "), one_line(&stderr)))
    }
}

/// A program's standard output, when it succeeds.
fn run_stdout(program: &str, args: &[&str]) -> Result<String, String> {
    let output = run(program, args, &[])?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{program} {}: {}", args.join(" "), one_line(&stderr)));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| format!("{program} {}: printed text that is not UTF-8", args.join(" ")))
}

/// Text as one line: its non-blank lines, trimmed, joined by spaces (a
/// program's stderr in an error, a status message).
pub(crate) fn one_line(text: &str) -> String {
    text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The line apt's failure is about: its last `E:` line, or its last line.
fn apt_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("E:"))
        .or(lines.last())
        .map(|l| (*l).to_owned())
        .unwrap_or_else(|| "apt-get failed without a message".to_owned())
}

/// apt's failure, by what its error lines say: the lock held by another
/// process, a download that failed, or anything else (the package cannot be
/// installed).
fn classify_apt(stderr: &str) -> AptFailure {
    let errors: Vec<&str> = stderr.lines().map(str::trim).filter(|l| l.starts_with("E:")).collect();
    let line = apt_error_line(stderr);
    let any = |needles: &[&str]| errors.iter().any(|l| needles.iter().any(|n| l.contains(n)));
    // "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process
    // 1234 (unattended-upgr)", "Unable to acquire the dpkg frontend lock",
    // "Unable to lock the administration directory", "Unable to lock
    // directory /var/cache/apt/archives/".
    if any(&["Could not get lock", "Unable to acquire the dpkg frontend lock", "Unable to lock"]) {
        // The line that names the process holding it, when there is one.
        let holder = errors.iter().find(|l| l.contains("It is held by"));
        return AptFailure::Locked(holder.map_or(line, |l| (*l).to_owned()));
    }
    // "Failed to fetch http://... Temporary failure resolving ...", "Unable
    // to fetch some archives, maybe run apt-get update or try with
    // --fix-missing?"
    if any(&["Failed to fetch", "Unable to fetch some archives"]) {
        return AptFailure::Unreachable(line);
    }
    AptFailure::Refused(line)
}

/// The state `systemctl show -p LoadState,ActiveState` gives one unit.
fn service_state(load: &str, active: &str) -> ServiceState {
    match (load, active) {
        ("not-found", _) => ServiceState::Missing,
        ("loaded", "active" | "activating" | "reloading" | "refreshing") => ServiceState::Running,
        ("loaded", other) => ServiceState::NotRunning(other.to_owned()),
        (load, _) => ServiceState::NotRunning(if load.is_empty() { "not loaded".to_owned() } else { load.to_owned() }),
    }
}

/// `systemctl show`'s blocks (one a unit, in the order asked, separated by
/// a blank line) as states.
fn parse_service_states(stdout: &str, count: usize) -> Result<Vec<ServiceState>, String> {
    let states: Vec<ServiceState> = stdout
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let value = |key: &str| {
                block.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).unwrap_or("").trim()
            };
            service_state(value("LoadState"), value("ActiveState"))
        })
        .collect();
    if states.len() == count {
        Ok(states)
    } else {
        Err(format!("systemctl show described {} units, not {count}", states.len()))
    }
}

/// `dpkg-query`'s lines (`PACKAGE STATUS VERSION`) as each package's
/// installed version, in the order asked.
fn parse_package_versions(stdout: &str, packages: &[&str]) -> Vec<Option<String>> {
    packages
        .iter()
        .map(|package| {
            stdout.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some(package) && words.next() == Some("installed"))
                    .then(|| words.next().map(str::to_owned))
                    .flatten()
            })
        })
        .collect()
}

impl Host {
    fn apt_install(package: &str) -> Result<(), AptFailure> {
        let env = [("DEBIAN_FRONTEND", "noninteractive")];
        let lock = format!("DPkg::Lock::Timeout={APT_LOCK_WAIT_SECS}");
        let args = ["install", "-y", "-q", "-o", &lock, "-o", "Dpkg::Options::=--force-confold", package];
        let output = run("apt-get", &args, &env).map_err(AptFailure::Refused)?;
        if output.status.success() {
            return Ok(());
        }
        Err(classify_apt(&String::from_utf8_lossy(&output.stderr)))
    }

    /// Installs, trying again while the lock is held (apt waits for it
    /// itself, but loses it to another process now and then).
    fn apt_install_waiting(package: &str) -> Result<(), AptFailure> {
        let mut attempt = 1;
        loop {
            match Host::apt_install(package) {
                Err(AptFailure::Locked(_)) if attempt < APT_LOCK_ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }
}

impl System for Host {
    fn restart(&self, service: &str) -> Result<(), String> {
        run_ok("systemctl", &["try-restart", service])
    }

    fn service_states(&self, services: &[String]) -> Result<Vec<ServiceState>, String> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["show", "--property=LoadState,ActiveState"];
        args.extend(services.iter().map(String::as_str));
        let output = run("systemctl", &args, &[])?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("systemctl show: {}", one_line(&stderr)));
        }
        parse_service_states(&String::from_utf8_lossy(&output.stdout), services.len())
    }

    fn refresh_ca_bundle(&self) -> Result<(), String> {
        run_ok("update-ca-certificates", &[])
    }

    fn package_versions(&self, packages: &[&str]) -> Result<Vec<Option<String>>, String> {
        let mut args = vec!["-W", "-f=${Package} ${db:Status-Status} ${Version}\\n"];
        args.extend_from_slice(packages);
        // dpkg-query exits 1 when it knows one of the packages not at all.
        let output = run("dpkg-query", &args, &[])?;
        Ok(parse_package_versions(&String::from_utf8_lossy(&output.stdout), packages))
    }

    fn python_imports(&self, module: &str) -> Result<bool, String> {
        let output = run(WATCHER_PYTHON, &["-c", &format!("import {module}")], &[])?;
        Ok(output.status.success())
    }

    fn service_environment(&self, service: &str) -> Result<Option<Vec<(String, String)>>, String> {
        let show = ["show", "--property=LoadState,Environment,EnvironmentFiles,UnsetEnvironment", "--", service];
        let unit = service_env::parse_show(&run_stdout("systemctl", &show)?);
        if unit.load_state.as_deref() != Some("loaded") {
            return Ok(None);
        }
        let manager = run_stdout("systemctl", &["show-environment"])?;
        service_env::environment(&unit, &manager).map(Some)
    }

    fn install_package(&self, package: &str) -> Result<(), AptFailure> {
        match Host::apt_install_waiting(package) {
            // A stale package list: refresh it once and try again.
            Err(AptFailure::Refused(e)) if e.contains("Unable to locate package") || e.contains("404") => {
                let lock = format!("DPkg::Lock::Timeout={APT_LOCK_WAIT_SECS}");
                let _ = run("apt-get", &["update", "-q", "-o", &lock], &[("DEBIAN_FRONTEND", "noninteractive")]);
                Host::apt_install_waiting(package)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_error_lines() {
        let stderr = "W: some warning\nE: Unable to locate package python3-libmaas\n";
        assert_eq!(apt_error_line(stderr), "E: Unable to locate package python3-libmaas");
        assert_eq!(apt_error_line("dpkg was interrupted\n\n"), "dpkg was interrupted");
        assert_eq!(apt_error_line(""), "apt-get failed without a message");
    }

    #[test]
    fn apt_failures_are_told_apart() {
        // apt 2.7's words (Ubuntu 24.04).
        let locked = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n";
        assert_eq!(
            classify_apt(locked),
            AptFailure::Locked(
                "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)"
                    .into()
            )
        );
        let archives = "E: Could not get lock /var/cache/apt/archives/lock. It is held by process 77 (apt-get)\nE: Unable to lock directory /var/cache/apt/archives/\n";
        assert!(matches!(classify_apt(archives), AptFailure::Locked(_)));
        let offline = "E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/universe/p/python-libmaas/python3-libmaas_0.6.8-3_all.deb  Temporary failure resolving 'archive.ubuntu.com'\nE: Unable to fetch some archives, maybe run apt-get update or try with --fix-missing?\n";
        assert!(matches!(classify_apt(offline), AptFailure::Unreachable(_)));
        for refused in [
            "E: Unable to locate package python3-libmaas\n",
            "E: Package 'python3-libmaas' has no installation candidate\n",
            "E: Unable to correct problems, you have held broken packages.\n",
            "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n",
        ] {
            assert!(matches!(classify_apt(refused), AptFailure::Refused(_)), "{refused}");
        }
    }

    #[test]
    fn service_states_from_systemctl_show() {
        // systemd 255's output for three units, one with no unit file.
        let out = "LoadState=loaded\nActiveState=active\n\nLoadState=not-found\nActiveState=inactive\n\nActiveState=inactive\nLoadState=masked\n";
        assert_eq!(
            parse_service_states(out, 3).unwrap(),
            [ServiceState::Running, ServiceState::Missing, ServiceState::NotRunning("masked".into())]
        );
        assert_eq!(
            parse_service_states("LoadState=loaded\nActiveState=failed\n", 1).unwrap(),
            [ServiceState::NotRunning("failed".into())]
        );
        assert!(parse_service_states("LoadState=loaded\nActiveState=active\n", 2).is_err());
    }

    #[test]
    fn package_versions_from_one_query() {
        let out = "python3-watcher installed 2:12.0.0-0ubuntu1\npython3-libmaas config-files 0.6.8-3\n";
        assert_eq!(
            parse_package_versions(out, &["python3-libmaas", "python3-watcher", "python3"]),
            [None, Some("2:12.0.0-0ubuntu1".to_owned()), None]
        );
    }
}
