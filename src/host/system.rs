//! The unit's own programs the charm runs: systemd, the CA bundle, dpkg,
//! apt and Watcher's Python. Each is found by name on PATH (so tests can
//! stand in for them), runs with no standard input, and reports a failure
//! as one line.

use std::process::{Command, Stdio};

use crate::host::service_env;

/// The package that holds Watcher's Python code on Ubuntu.
pub(crate) const WATCHER_PACKAGE: &str = "python3-watcher";
/// Ubuntu's python-libmaas, which Watcher's MAAS helper imports.
pub(crate) const LIBMAAS_PACKAGE: &str = "python3-libmaas";
/// The module Watcher's MAAS helper imports.
pub(crate) const LIBMAAS_MODULE: &str = "maas.client";
/// The interpreter Ubuntu's Watcher services run on.
pub(crate) const WATCHER_PYTHON: &str = "python3";

/// What the charm asks of the machine.
pub trait System {
    /// Restarts `service` if it is running (`systemctl try-restart`).
    fn restart(&self, service: &str) -> Result<(), String>;
    /// Rebuilds the system's CA bundle after a certificate was added to or
    /// removed from the CA directory (`update-ca-certificates`).
    fn refresh_ca_bundle(&self) -> Result<(), String>;
    /// The installed version of a Debian package, `None` when it is not
    /// installed.
    fn package_version(&self, package: &str) -> Result<Option<String>, String>;
    /// Whether Watcher's Python can import `module`.
    fn python_imports(&self, module: &str) -> Result<bool, String>;
    /// Installs a Debian package, noninteractively. The error is apt's
    /// error line.
    fn install_package(&self, package: &str) -> Result<(), String>;
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

impl Host {
    fn apt_install(package: &str) -> Result<(), String> {
        let env = [("DEBIAN_FRONTEND", "noninteractive")];
        let args = ["install", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", package];
        let output = run("apt-get", &args, &env)?;
        if output.status.success() {
            return Ok(());
        }
        Err(apt_error_line(&String::from_utf8_lossy(&output.stderr)))
    }
}

impl System for Host {
    fn restart(&self, service: &str) -> Result<(), String> {
        run_ok("systemctl", &["try-restart", service])
    }

    fn refresh_ca_bundle(&self) -> Result<(), String> {
        run_ok("update-ca-certificates", &[])
    }

    fn package_version(&self, package: &str) -> Result<Option<String>, String> {
        let output = run("dpkg-query", &["-W", "-f=${db:Status-Status} ${Version}", package], &[])?;
        // dpkg-query exits 1 for a package it does not know.
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.strip_prefix("installed ").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
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

    fn install_package(&self, package: &str) -> Result<(), String> {
        match Host::apt_install(package) {
            // A stale package list: refresh it once and try again.
            Err(e) if e.contains("Unable to locate package") || e.contains("404") => {
                let _ = run("apt-get", &["update", "-q"], &[("DEBIAN_FRONTEND", "noninteractive")]);
                Host::apt_install(package)
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
}
