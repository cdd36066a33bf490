//! `validate`: prove that a MAAS URL and API key work, in three steps, and
//! stop at the first that fails:
//!
//! 1. `GET version/` (anonymous): the URL answers as MAAS;
//! 2. `GET users/?op=whoami` (signed): MAAS accepts the key;
//! 3. `GET machines/` (signed, streamed): the user can list machines.
//!
//! Three requests in all; step 3 can be skipped for a quicker check.
//!
//! A hook's checks share one [`Budget`] of [`HOOK_MAAS_TIME`]: each request
//! is cut to the time left, so a silent MAAS holds Juju's machine lock for
//! that long, not for `maas-timeout` a request.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clients::http::TransportError;
use crate::clients::maas::{MaasClient, MaasError, MachineCount, WhoAmI};

/// How long one hook spends on MAAS in all: a hook runs while Juju holds
/// the machine's lock, which the principal's hooks wait for.
pub const HOOK_MAAS_TIME: Duration = Duration::from_secs(15);

/// The time left for MAAS calls: a hook's [`HOOK_MAAS_TIME`], or nothing
/// beyond each request's own timeout (`maas-timeout`: the actions and the
/// command line).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// When the time runs out, and how much there was.
    limit: Option<(Instant, Duration)>,
}

impl Budget {
    /// No limit beyond each request's timeout.
    pub fn unlimited() -> Budget {
        Budget { limit: None }
    }

    /// `total` from now on.
    pub fn starting_now(total: Duration) -> Budget {
        Budget { limit: Some((Instant::now() + total, total)) }
    }

    /// The time that was left at `paused`, counted from now: what the
    /// caller did in between (a restart) is not MAAS's time.
    pub(crate) fn resumed(self, paused: Instant) -> Budget {
        match self.limit {
            Some((deadline, total)) => Budget { limit: Some((deadline + paused.elapsed(), total)) },
            None => self,
        }
    }

    /// `client` for the next call: its requests, and the retries of its
    /// 503s and 409s, ending before the time runs out. The failure when
    /// none is left is a timeout of the budget's whole time.
    pub(crate) fn bound(&self, client: &MaasClient) -> Result<MaasClient, MaasError> {
        let Some((deadline, total)) = self.limit else { return Ok(client.clone()) };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(MaasError::Transport(TransportError::Timeout { after: total }));
        }
        let timeout = client.timeout().min(left);
        Ok(client.bounded(timeout, left - timeout))
    }

    /// `error` as the person reading it should understand it: a request
    /// the budget cut short timed out after the budget's time, not after
    /// the few seconds that were left for it.
    pub(crate) fn explain(&self, error: MaasError, configured: Duration) -> MaasError {
        match (error, self.limit) {
            (MaasError::Transport(TransportError::Timeout { after }), Some((_, total))) if after < configured => {
                MaasError::Transport(TransportError::Timeout { after: total })
            }
            (error, _) => error,
        }
    }

    /// Whether the budget, not `maas-timeout`, bounded a request that timed
    /// out (`configured` is `maas-timeout`).
    pub(crate) fn cut(&self, error: &MaasError, configured: Duration) -> bool {
        match (error, self.limit) {
            (MaasError::Transport(TransportError::Timeout { after }), Some((_, total))) => {
                *after == total && total < configured
            }
            _ => false,
        }
    }
}

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
    validate_within(client, list_machines, Budget::unlimited())
}

/// [`validate`] within `budget`.
pub fn validate_within(client: &MaasClient, list_machines: bool, budget: Budget) -> Result<Report, Box<Failure>> {
    let started = Instant::now();
    let configured = client.timeout();
    let mut report = Report { api_url: client.url().api_root().to_string(), ..Report::default() };
    let fail = |stage: Stage, error: MaasError, mut report: Report| {
        report.latency_ms = elapsed_ms(started);
        Box::new(Failure { stage, error: budget.explain(error, configured), report })
    };
    let bounded = |stage: Stage, report: &Report| budget.bound(client).map_err(|e| fail(stage, e, report.clone()));

    let version = bounded(Stage::Reach, &report)?.version().map_err(|e| fail(Stage::Reach, e, report.clone()))?;
    if version.version.trim().is_empty() {
        let error = MaasError::NotMaas { detail: "version/ answered without a version".to_owned() };
        return Err(fail(Stage::Reach, error, report));
    }
    report.maas_version = Some(version.version);

    let user =
        bounded(Stage::Authenticate, &report)?.whoami().map_err(|e| fail(Stage::Authenticate, e, report.clone()))?;
    report.user = Some(user);

    if list_machines {
        let count = bounded(Stage::ListMachines, &report)?
            .count_machines()
            .map_err(|e| fail(Stage::ListMachines, e, report.clone()))?;
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;
    use crate::clients::maas::api_key::MaasApiKey;
    use crate::clients::maas::url::MaasUrl;
    use crate::clients::maas::ClientOptions;

    /// A client of a MAAS on `port` whose requests may each take 120 s.
    fn client(port: u16) -> MaasClient {
        let url = MaasUrl::parse(&format!("http://127.0.0.1:{port}/MAAS")).unwrap();
        let key = MaasApiKey::parse("TestConsumerKey123:TestTokenKey456789:TestTokenSecretAbcdefghijklmnop12").unwrap();
        MaasClient::new(url, key.key, ClientOptions::new(Duration::from_secs(120))).unwrap()
    }

    #[test]
    fn a_budget_cuts_the_requests_of_a_silent_maas_and_says_its_own_time() {
        // Connections complete in the kernel's backlog; nothing ever answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let budget = Budget::starting_now(Duration::from_millis(300));
        let failure = validate_within(&client(silent.local_addr().unwrap().port()), false, budget).unwrap_err();
        assert_eq!(failure.stage, Stage::Reach);
        assert_eq!(failure.error, MaasError::Transport(TransportError::Timeout { after: Duration::from_millis(300) }));
        assert!(budget.cut(&failure.error, Duration::from_secs(120)));
    }

    #[test]
    fn a_spent_budget_sends_nothing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let budget = Budget::starting_now(Duration::ZERO);
        let failure = validate_within(&client(listener.local_addr().unwrap().port()), false, budget).unwrap_err();
        assert_eq!(failure.error, MaasError::Transport(TransportError::Timeout { after: Duration::ZERO }));
        assert_eq!(listener.accept().map(drop).unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "no connection");
        // Without a budget the request's own timeout is all there is.
        assert!(!Budget::unlimited().cut(&failure.error, Duration::from_secs(120)));
    }
}
