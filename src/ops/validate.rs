//! `validate`: prove that a MAAS URL and API key work, in three steps, and
//! stop at the first that fails:
//!
//! 1. `GET version/` (anonymous): the URL answers as MAAS;
//! 2. `GET users/?op=whoami` (signed): MAAS accepts the key;
//! 3. `GET machines/` (signed, streamed): the user can list machines.
//!
//! Three requests in all; step 3 can be skipped for a quicker check.

use std::time::Instant;

use serde::Serialize;

use crate::clients::maas::{MaasClient, MaasError, MachineCount, WhoAmI};

/// The three checks, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Reaching MAAS and reading its version.
    Reach,
    /// Having the key accepted.
    Authenticate,
    /// Listing machines.
    ListMachines,
}

impl Stage {
    /// How a failure at this stage starts, in words (key failures already
    /// say "MAAS rejected the API key").
    pub(crate) fn failure_prefix(self) -> &'static str {
        match self {
            Stage::Reach => "cannot use maas-url: ",
            Stage::Authenticate => "",
            Stage::ListMachines => "cannot list MAAS machines: ",
        }
    }

    /// The stage's kebab-case name (`reach`, `authenticate`,
    /// `list-machines`), as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Reach => "reach",
            Stage::Authenticate => "authenticate",
            Stage::ListMachines => "list-machines",
        }
    }
}

/// What was learnt, as far as the checks got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The API root every call went to.
    pub api_url: String,
    /// MAAS's `version` from `version/`; `None` when step 1 failed.
    pub maas_version: Option<String>,
    /// Whom the key authenticates; `None` when step 2 failed or was not
    /// reached.
    pub user: Option<WhoAmI>,
    /// The machines the user can see, by power state; `None` when step 3
    /// failed, was not reached or was skipped.
    pub machines: Option<MachineCount>,
    /// Wall time of all the checks, in milliseconds.
    pub latency_ms: u64,
}

/// The first check that failed, and what the ones before it learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The check that failed.
    pub stage: Stage,
    /// Why it failed.
    pub error: MaasError,
    /// What was learnt before; `latency_ms` includes the failed call.
    pub report: Report,
}

/// Runs the checks. `list_machines: false` stops after the key check.
pub fn validate(client: &MaasClient, list_machines: bool) -> Result<Report, Box<Failure>> {
    let started = Instant::now();
    let mut report = Report { api_url: client.url().api_root().to_string(), ..Report::default() };
    let fail = |stage: Stage, error: MaasError, mut report: Report| {
        report.latency_ms = elapsed_ms(started);
        Box::new(Failure { stage, error, report })
    };

    let version = client.version().map_err(|e| fail(Stage::Reach, e, report.clone()))?;
    if version.version.trim().is_empty() {
        let error = MaasError::NotMaas { detail: "version/ answered without a version".to_owned() };
        return Err(fail(Stage::Reach, error, report));
    }
    report.maas_version = Some(version.version);

    let user = client.whoami().map_err(|e| fail(Stage::Authenticate, e, report.clone()))?;
    report.user = Some(user);

    if list_machines {
        let count = client.count_machines().map_err(|e| fail(Stage::ListMachines, e, report.clone()))?;
        report.machines = Some(count);
    }
    report.latency_ms = elapsed_ms(started);
    Ok(report)
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The report as lines for a person, one per check passed.
pub fn human_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(version) = &report.maas_version {
        lines.push(format!("ok: MAAS {version} answers at {}", report.api_url));
    }
    if let Some(user) = &report.user {
        let role = if user.is_superuser { "administrator" } else { "non-administrator" };
        lines.push(format!("ok: API key accepted for user {} ({role})", user.username));
    }
    if let Some(m) = &report.machines {
        lines.push(format!(
            "ok: {} machine{} visible ({} on, {} off, {} other)",
            m.total,
            if m.total == 1 { "" } else { "s" },
            m.on,
            m.off,
            m.other
        ));
    }
    lines
}
