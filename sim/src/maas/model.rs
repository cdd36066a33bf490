//! The simulated MAAS's users and machines, and the settings, faults and
//! statistics of a simulator.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::util::random_alnum;

/// A MAAS user and the one API key (OAuth consumer + token) it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub username: String,
    pub is_superuser: bool,
    /// An inactive user's requests are refused with 403.
    pub active: bool,
    pub consumer_key: String,
    pub token_key: String,
    pub token_secret: String,
}

impl SimUser {
    /// The superuser "admin", with a fixed key (the same in every simulator).
    pub fn admin() -> SimUser {
        SimUser {
            username: "admin".into(),
            is_superuser: true,
            active: true,
            consumer_key: "Hq7wM3pXc9RbVt2LkF".into(),
            token_key: "Zs4nJd8QeYu6GaTr1W".into(),
            token_secret: "pV5mK2xN9cR7bT3qL8wF4hJ6sD1gY0aZ".into(),
        }
    }

    /// An active non-superuser with a random key (18/18/32 letters and
    /// digits, like MAAS makes).
    pub fn new(username: &str) -> SimUser {
        SimUser {
            username: username.into(),
            is_superuser: false,
            active: true,
            consumer_key: random_alnum(18),
            token_key: random_alnum(18),
            token_secret: random_alnum(32),
        }
    }

    /// The API key as MAAS shows it: `consumer:token:secret`.
    pub fn api_key(&self) -> String {
        format!("{}:{}:{}", self.consumer_key, self.token_key, self.token_secret)
    }

    /// A valid PLAINTEXT OAuth `Authorization` header value for this user, in
    /// the form python-libmaas sends (`realm="OAuth"`, quoted values, `%26`).
    pub fn auth_header(&self, nonce: &str, timestamp: i64) -> String {
        format!(
            "OAuth realm=\"OAuth\", oauth_nonce=\"{nonce}\", oauth_timestamp=\"{timestamp}\", oauth_version=\"1.0\", \
             oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"%26{}\"",
            self.consumer_key, self.token_key, self.token_secret
        )
    }
}

/// A machine's power state as MAAS reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PowerState {
    On,
    Off,
    Unknown,
    Error,
}

impl PowerState {
    /// The wire form: `on`, `off`, `unknown` or `error`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Unknown => "unknown",
            PowerState::Error => "error",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<PowerState> {
        match s {
            "on" => Some(PowerState::On),
            "off" => Some(PowerState::Off),
            "unknown" => Some(PowerState::Unknown),
            "error" => Some(PowerState::Error),
            _ => None,
        }
    }
}

impl std::fmt::Display for PowerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// MAAS node status: 6 Deployed.
pub const STATUS_DEPLOYED: u32 = 6;
/// MAAS node status: 4 Ready.
pub const STATUS_READY: u32 = 4;
/// MAAS node status: 10 Allocated.
pub const STATUS_ALLOCATED: u32 = 10;
/// MAAS node status: 9 Deploying.
pub const STATUS_DEPLOYING: u32 = 9;

/// The `status_name` MAAS shows for a status number.
pub fn status_name(status: u32) -> &'static str {
    const NAMES: [&str; 23] = [
        "New",
        "Commissioning",
        "Failed commissioning",
        "Missing",
        "Ready",
        "Reserved",
        "Deployed",
        "Retired",
        "Broken",
        "Deploying",
        "Allocated",
        "Failed deployment",
        "Releasing",
        "Releasing failed",
        "Disk erasing",
        "Failed disk erasing",
        "Rescue mode",
        "Entering rescue mode",
        "Failed to enter rescue mode",
        "Exiting rescue mode",
        "Failed to exit rescue mode",
        "Testing",
        "Failed testing",
    ];
    NAMES.get(status as usize).copied().unwrap_or("Unknown")
}

/// A machine known to the simulated MAAS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMachine {
    pub system_id: String,
    pub hostname: String,
    pub domain: String,
    pub power_state: PowerState,
    /// `ipmi`, `manual`, `redfish`, ...; `manual` machines cannot be powered
    /// off by MAAS and report `unknown` when queried.
    pub power_type: String,
    /// MAAS status number, e.g. 6 Deployed, 4 Ready (see [`status_name`]).
    pub status: u32,
    pub owner: Option<String>,
    pub zone: String,
    pub pool: String,
    /// A locked machine cannot be changed (power actions get 403).
    pub locked: bool,
}

impl SimMachine {
    /// `n` machines, the same every time: `system_id` six lowercase letters
    /// and digits (unique), hostname `node-0001`.., domain `maas`. Most are
    /// Deployed, owned by "admin", powered on, `ipmi`; every 10th is Ready
    /// (no owner, powered off); every 25th has power type `manual` (power
    /// state `unknown`, as MAAS reports for it); every 3rd is in zone
    /// `zone-b`, the others in `default`; all in pool `default`.
    pub fn generate(n: usize) -> Vec<SimMachine> {
        (1..=n).map(SimMachine::generated).collect()
    }

    fn generated(i: usize) -> SimMachine {
        let ready = i.is_multiple_of(10);
        let manual = i.is_multiple_of(25);
        SimMachine {
            system_id: system_id_for(i as u64),
            hostname: format!("node-{i:04}"),
            domain: "maas".into(),
            power_state: if manual {
                PowerState::Unknown
            } else if ready {
                PowerState::Off
            } else {
                PowerState::On
            },
            power_type: if manual { "manual" } else { "ipmi" }.into(),
            status: if ready { STATUS_READY } else { STATUS_DEPLOYED },
            owner: if ready { None } else { Some("admin".into()) },
            zone: if i.is_multiple_of(3) { "zone-b" } else { "default" }.into(),
            pool: "default".into(),
            locked: false,
        }
    }

    /// `hostname.domain`.
    pub fn fqdn(&self) -> String {
        format!("{}.{}", self.hostname, self.domain)
    }
}

/// A distinct six-character base-36 id for each index (an affine
/// permutation of 0..36^6).
fn system_id_for(i: u64) -> String {
    const SPACE: u64 = 36u64.pow(6);
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    // 2654435761 is prime and does not divide 36^6, so this is a bijection.
    let mut v = (i.wrapping_mul(2_654_435_761).wrapping_add(1_234_567_891)) % SPACE;
    let mut out = [0u8; 6];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 36) as usize];
        v /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Which names the TLS server certificate carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsNames {
    /// `localhost` and `127.0.0.1`.
    Default,
    /// Exactly these DNS names and IP addresses.
    Only(Vec<String>),
}

impl TlsNames {
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            TlsNames::Default => vec!["localhost".into(), "127.0.0.1".into()],
            TlsNames::Only(names) => names.clone(),
        }
    }
}

/// Settings of a simulated MAAS.
#[derive(Clone, Debug)]
pub struct MaasSimConfig {
    /// Users and their keys; the first one's key is [`crate::MaasSim::admin_key`].
    pub users: Vec<SimUser>,
    pub machines: Vec<SimMachine>,
    /// The version `version/` reports.
    pub version: String,
    /// Serve HTTPS with a certificate for these names (signed by a fresh CA).
    pub tls: Option<TlsNames>,
    /// Behave like the HTTP port of a TLS-enabled MAAS: 301 to
    /// `https://$host:5443$request_uri` for everything but
    /// `/MAAS/api/2.0/machines*`.
    pub redirect_to_https: bool,
    /// Behave like a web server that is not MAAS: 200 `text/html` everywhere.
    pub not_maas: bool,
    /// Server clock = real clock + this many seconds (`Date` header and the
    /// OAuth timestamp check).
    pub clock_offset_secs: i64,
    /// How long `query_power_state` takes to answer.
    pub power_query_delay: Duration,
    /// How long after `power_on`/`power_off` the power state changes.
    pub power_change_delay: Duration,
    /// At most this many `query_power_state` at once; the extra ones get 503
    /// with `Retry-After: 10` (as when MAAS has no rack connection free).
    pub max_concurrent_power_queries: Option<usize>,
}

impl Default for MaasSimConfig {
    fn default() -> MaasSimConfig {
        MaasSimConfig {
            users: vec![SimUser::admin()],
            machines: SimMachine::generate(10),
            version: "3.5.4".into(),
            tls: None,
            redirect_to_https: false,
            not_maas: false,
            clock_offset_secs: 0,
            power_query_delay: Duration::ZERO,
            power_change_delay: Duration::ZERO,
            max_concurrent_power_queries: None,
        }
    }
}

/// A BMC problem `query_power_state`, `power_on` and `power_off` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BmcFailure {
    /// 503 `No rack controllers can access the BMC of node <hostname>`.
    Unreachable,
    /// 504: the power driver timed out.
    Timeout,
    /// 500 with the power driver's error.
    Error,
}

/// What the simulator has served.
#[derive(Clone, Debug, Default)]
pub struct SimStats {
    /// HTTP requests received and answered (faulty answers included).
    pub requests: usize,
    /// Requests per endpoint, e.g. `GET version/`, `GET users/?op=whoami`,
    /// `GET machines/`, `GET machines/{id}/`,
    /// `GET machines/{id}/?op=query_power_state`,
    /// `POST machines/{id}/?op=power_on`. Paths outside the API are counted
    /// as `METHOD /full/path`.
    pub by_endpoint: BTreeMap<String, usize>,
    /// The most `query_power_state` requests in progress at once (those
    /// refused by the concurrency limit included).
    pub max_concurrent_power_queries: usize,
    /// Requests refused by the OAuth checks (401, or 400 for a malformed
    /// timestamp).
    pub rejected_auth: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_machines() {
        let ms = SimMachine::generate(100);
        let ids: HashSet<_> = ms.iter().map(|m| m.system_id.clone()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ms.iter().all(
            |m| m.system_id.len() == 6 && m.system_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        ));
        assert_eq!(ms[0].fqdn(), "node-0001.maas");
        assert_eq!((ms[0].status, ms[0].power_state, ms[0].owner.as_deref()), (6, PowerState::On, Some("admin")));
        assert_eq!((ms[9].status, ms[9].power_state, ms[9].owner.as_deref()), (4, PowerState::Off, None));
        assert_eq!(ms[24].power_type, "manual");
        assert_eq!(ms[2].zone, "zone-b");
        assert_eq!(SimMachine::generate(100), ms);
        let big: HashSet<_> = (0..200_000).map(system_id_for).collect();
        assert_eq!(big.len(), 200_000);
    }

    #[test]
    fn keys() {
        let a = SimUser::admin();
        assert_eq!((a.consumer_key.len(), a.token_key.len(), a.token_secret.len()), (18, 18, 32));
        let u = SimUser::new("bob");
        assert_eq!(u.api_key().split(':').map(str::len).collect::<Vec<_>>(), vec![18, 18, 32]);
        assert!(!u.is_superuser);
    }
}
