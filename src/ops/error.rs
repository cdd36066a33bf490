//! The library's error type: every failure an operation can end in, each
//! with a hint saying what to do. Which exit code each one is, is
//! `exit_codes`' business.

use std::path::PathBuf;

use crate::clients::http::{ClientBuildError, TransportError};
use crate::clients::maas::MaasError;
use crate::clients::openstack::keystone::KeystoneError;
use crate::clients::openstack::service::{ErrorKind, OpenStackError, Service};
use crate::config::render::RenderError;
use crate::config::ConfigError;
use crate::host::atomic_file::FileError;
use crate::host::juju::HookToolError;
use crate::metal::MetalError;
use crate::ops::apply::{NotOurs, PlanError};
use crate::ops::power::PowerError;

/// Any failure of an operation; [`crate::exit_codes::of`] gives its exit
/// code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The charm configuration is unreadable, breaks a rule, or names a secret that cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A template, the templates directory or the `--context` file failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A configuration file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// A file the user named (`render --output`) could not be written; the
    /// hint is the face's, in its own words.
    #[error("{source}")]
    Output {
        /// Why it could not be written.
        source: FileError,
        /// What to do about it.
        hint: String,
    },
    /// A Juju hook tool failed.
    #[error(transparent)]
    HookTool(#[from] HookToolError),
    /// A MAAS request failed: below HTTP or with one of MAAS's diagnoses.
    #[error(transparent)]
    Maas(#[from] MaasError),
    /// The MAAS client could not be set up: `maas-ca-cert` is not a usable PEM certificate, or
    /// HTTPS could not be configured.
    #[error("{}", maas_setup(.0))]
    MaasSetup(#[from] ClientBuildError),
    /// The files were written, but Watcher would take a managed option from
    /// another file. Never empty.
    #[error("{}{}", .0[0], more(.0.len()))]
    Clash(Vec<crate::watcher::effective::Clash>),
    /// A file watcher-metal would replace is not one it wrote (the site's,
    /// or another application's of the charm): it is not replaced.
    #[error(transparent)]
    NotOurs(#[from] NotOurs),
    /// A MAAS-only command was asked for, but `maas-url` is unset.
    #[error("MAAS is not configured (maas-url is unset), so Watcher uses Ironic")]
    MaasNotConfigured,
    /// A MAAS-only command was asked for on a watcher.conf whose
    /// `[maas_client] url` is unset or empty, as Watcher reads it.
    #[error("[maas_client] url is not set in {} or its drop-ins, so Watcher uses Ironic", conf.display())]
    MaasNotInWatcherConf {
        /// The watcher.conf read.
        conf: PathBuf,
    },
    /// Finding or listing nodes failed: no such node, several, or the MAAS or Ironic request
    /// failed.
    #[error(transparent)]
    Metal(#[from] MetalError),
    /// A Nova request failed: its configuration, Keystone, the transport or Nova itself.
    #[error(transparent)]
    Nova(OpenStackError),
    /// A `power` command was refused, timed out or failed.
    #[error(transparent)]
    Power(#[from] PowerError),
    /// The `--hypervisors` list could not be read.
    #[error("{}: {message}", path.display())]
    HypervisorList {
        /// The path given to `--hypervisors`.
        path: PathBuf,
        /// Why it could not be read.
        message: String,
    },
    /// The system could not do what the unit needs of it (restart a
    /// service, rebuild the CA bundle, run Watcher's Python).
    #[error("{message}")]
    System {
        /// What failed, as the system reported it.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The command was given wrongly.
    #[error("{message}")]
    Usage {
        /// What is wrong with the command line.
        message: String,
        /// How to give it rightly.
        hint: String,
    },
}

fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " (and 1 more clash)".to_owned(),
        n => format!(" (and {} more clashes)", n - 1),
    }
}

/// A Nova failure is `Nova`; an Ironic one is the metal backend's.
impl From<OpenStackError> for Error {
    fn from(e: OpenStackError) -> Self {
        match e.service {
            Service::Ironic => Error::Metal(MetalError::Ironic(e)),
            Service::Nova => Error::Nova(e),
        }
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Render(e) => Error::Render(e),
            PlanError::File(e) => Error::File(e),
            PlanError::NotOurs(e) => Error::NotOurs(e),
        }
    }
}

impl Error {
    /// What to do about it (may be empty).
    pub fn hint(&self) -> String {
        match self {
            Error::Config(e) => e.hint(),
            Error::Render(e) => e.hint(),
            Error::File(e) => e.hint(),
            Error::HookTool(e) => e.hint(),
            Error::Maas(e) => e.hint(),
            Error::MaasSetup(_) => "paste the CA certificate in PEM form into maas-ca-cert".to_owned(),
            Error::Clash(clashes) => clashes.first().map(crate::watcher::effective::Clash::hint).unwrap_or_default(),
            Error::NotOurs(e) => e.hint(),
            Error::MaasNotConfigured => "set maas-url and maas-api-key-secret (or maas-api-key)".to_owned(),
            Error::MaasNotInWatcherConf { .. } => {
                "set [maas_client] url and api_key (the charm writes them in a drop-in, from maas-url and its key)"
                    .to_owned()
            }
            Error::Metal(e) => e.hint(),
            Error::Nova(e) => e.hint(),
            Error::Power(e) => e.hint(),
            Error::HypervisorList { .. } => {
                "give --hypervisors a file with one hypervisor hostname a line, or - for stdin".to_owned()
            }
            Error::System { hint, .. } | Error::Usage { hint, .. } | Error::Output { hint, .. } => hint.clone(),
        }
    }
}

// What to do about the protocol clients' failures. The clients' errors say
// what went wrong and with which setting; the names the user knows those
// settings by (charm options, watcher.conf's options, the OpenStack CLI)
// are this layer's, so their hints are written here.

/// What to do about a failure below HTTP, for a service reached at the URL
/// in `option` trusting the CA in `ca_option`.
fn transport_hint(e: &TransportError, option: &str, ca_option: &str) -> String {
    match e {
        TransportError::Dns { .. } => format!("check the host name in {option}, or use an IP address"),
        TransportError::Refused { .. } => {
            format!("check the host and port in {option} and that the service is running")
        }
        TransportError::Proxy { .. } => "check that the proxy is running, or http_proxy, https_proxy and no_proxy \
                                          where Watcher's services get them (their systemd environment)"
            .to_owned(),
        TransportError::Timeout { .. } => {
            "check that the service is reachable from this machine (firewall, routing), or raise the timeout".to_owned()
        }
        TransportError::TlsUntrusted { .. } => {
            format!("set {ca_option} to the PEM of the CA that signed the server's certificate")
        }
        TransportError::TlsHostname { .. } => {
            format!("use the host name the server's certificate names in {option}, or reissue the certificate")
        }
        TransportError::Tls { .. } | TransportError::Protocol { .. } => {
            format!("check the scheme in {option} (https for TLS, http otherwise) and any proxy on the way")
        }
        TransportError::TooLarge { .. } => "narrow the request (filters)".to_owned(),
    }
}

impl MaasError {
    /// What the user should do about it, naming the charm options to
    /// change (the client knows the settings only as values).
    pub fn hint(&self) -> String {
        match self {
            MaasError::Transport(TransportError::Refused { .. }) => {
                "check the host and port in maas-url (MAAS listens on 5240, or 5443 with TLS) and that MAAS is running"
                    .into()
            }
            MaasError::Transport(TransportError::Timeout { .. }) => {
                "check that MAAS is reachable from this machine (firewall, routing), or raise maas-timeout".into()
            }
            MaasError::Transport(TransportError::Tls { .. } | TransportError::Protocol { .. }) => {
                "check the scheme: https for MAAS with TLS (port 5443), http otherwise (port 5240)".into()
            }
            MaasError::Transport(TransportError::TooLarge { .. }) => {
                "filter the listing (by zone, pool or hostname)".into()
            }
            MaasError::Transport(e) => transport_hint(e, "maas-url", "maas-ca-cert"),
            MaasError::Redirect { suggestion: Some(url), .. } => {
                format!("MAAS has TLS enabled: set maas-url to {url} (and maas-ca-cert if its CA is private)")
            }
            MaasError::Redirect { .. } => "set maas-url to the address MAAS redirects to".into(),
            MaasError::NotFound { .. } => {
                "check the path in maas-url: MAAS serves its API under /MAAS, e.g. http://HOST:5240/MAAS".into()
            }
            MaasError::Gone => "remove /api/1.0 from maas-url; use http://HOST:5240/MAAS".into(),
            MaasError::InvalidApiKey | MaasError::InvalidToken | MaasError::BadSignature => {
                "create a new key with `sudo maas apikey --generate --username USER` on the MAAS region controller and set it"
                    .into()
            }
            MaasError::ExpiredTimestamp { .. } => {
                "synchronise this machine's clock with MAAS's (chrony or systemd-timesyncd)".into()
            }
            MaasError::NonceReused => "retry; if it persists, check that the system clock is not stepping back".into(),
            MaasError::Unauthorized { .. } => "check maas-api-key".into(),
            MaasError::Forbidden { .. } => {
                "check the MAAS user is active and may manage these machines (an admin can check in the MAAS UI)".into()
            }
            MaasError::BadRequest { .. } | MaasError::Status { .. } => {
                "check the request; MAAS's message says what it expected".into()
            }
            MaasError::Conflict { .. } => "check the machine's state in MAAS".into(),
            MaasError::Server { .. } => "check MAAS's health (`maas status`, regiond logs) and retry".into(),
            MaasError::NotMaas { .. } => {
                "maas-url answers, but not as MAAS: check host, port and path (http://HOST:5240/MAAS)".into()
            }
        }
    }
}

impl MaasError {
    /// The fix in a few words, for a unit's status, which leads with it and
    /// must fit in 120 characters with the diagnosis ([`MaasError::hint`]
    /// says it in full).
    pub(crate) fn fix(&self) -> String {
        match self {
            MaasError::Transport(TransportError::Dns { .. }) => "fix the host name in maas-url".into(),
            MaasError::Transport(TransportError::Refused { .. }) => "start MAAS or fix maas-url's port".into(),
            MaasError::Transport(TransportError::Timeout { .. }) => "check the way to MAAS".into(),
            MaasError::Transport(TransportError::TlsUntrusted { .. }) => "set maas-ca-cert to MAAS's CA".into(),
            MaasError::Transport(TransportError::TlsHostname { .. }) => {
                "use the host name MAAS's certificate names in maas-url".into()
            }
            MaasError::Transport(_) => "check maas-url's scheme (https on 5443, http on 5240)".into(),
            MaasError::Redirect { suggestion: Some(url), .. } => format!("set maas-url to {url}"),
            MaasError::Redirect { .. } => "set maas-url to where MAAS redirects".into(),
            MaasError::NotFound { .. } | MaasError::Gone | MaasError::NotMaas { .. } => {
                "set maas-url to http://HOST:5240/MAAS".into()
            }
            MaasError::InvalidApiKey
            | MaasError::InvalidToken
            | MaasError::BadSignature
            | MaasError::Unauthorized { .. } => "set a key MAAS accepts".into(),
            MaasError::ExpiredTimestamp { .. } | MaasError::NonceReused => "sync this machine's clock with MAAS".into(),
            MaasError::Forbidden { .. } => "check the key's MAAS user".into(),
            MaasError::Server { .. } => "check MAAS's health".into(),
            MaasError::BadRequest { .. } | MaasError::Status { .. } | MaasError::Conflict { .. } => "check MAAS".into(),
        }
    }
}

/// What to do about a Keystone failure, for credentials used to reach
/// `service` (`Ironic`, `Nova`).
fn keystone_hint(e: &KeystoneError, service: &str) -> String {
    match e {
        KeystoneError::Config { .. } => {
            format!("Watcher reaches {service} with the Keystone credentials in [watcher_clients_auth] of watcher.conf")
        }
        KeystoneError::Transport(error) => {
            transport_hint(error, "auth_url in [watcher_clients_auth] (Keystone)", "[watcher_clients_auth] cafile")
        }
        KeystoneError::Refused { status: 500.., .. } => {
            "Keystone failed on its side: its log says why; retry when it is fixed".into()
        }
        KeystoneError::Refused { .. } => "check the user, password and project in [watcher_clients_auth]".into(),
        KeystoneError::Unexpected { .. } => "check that auth_url in [watcher_clients_auth] is Keystone's".into(),
    }
}

impl OpenStackError {
    /// What to do about it: Ironic's settings are charm options, Nova's
    /// are watcher.conf's `[nova_client]`.
    pub fn hint(&self) -> String {
        match self.service {
            Service::Ironic => ironic_hint(&self.kind),
            Service::Nova => nova_hint(&self.kind),
        }
    }
}

fn ironic_hint(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::Keystone(e @ KeystoneError::Config { .. }) => {
            format!("{}; set maas-url to use MAAS instead", keystone_hint(e, "Ironic"))
        }
        ErrorKind::Keystone(e) => keystone_hint(e, "Ironic"),
        ErrorKind::Transport(error) => transport_hint(
            error,
            "the catalog's baremetal endpoint (`openstack endpoint list --service baremetal`)",
            "[watcher_clients_auth] cafile",
        ),
        ErrorKind::NoEndpoint { .. } => {
            "check ironic-endpoint-type and ironic-region-name against `openstack endpoint list --service baremetal`"
                .into()
        }
        ErrorKind::Microversion { .. } => "set ironic-api-version to 1 (or to a version Ironic supports)".into(),
        ErrorKind::Api { status: 409, .. } => "the node is busy; retry when its current operation finishes".into(),
        ErrorKind::Api { .. } => "Ironic's message says what it expected".into(),
        // Not produced: Ironic's settings are checked as charm options.
        ErrorKind::Config { .. } => "check ironic-api-version, ironic-endpoint-type and ironic-region-name".into(),
        ErrorKind::Unexpected { .. } => "check that the endpoint is Ironic's".into(),
    }
}

fn nova_hint(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::Keystone(e) => keystone_hint(e, "Nova"),
        ErrorKind::Config { .. } => "set [nova_client] api_version to 2.56 (Watcher's default) or later".into(),
        ErrorKind::Transport(error) => {
            transport_hint(error, "the catalog's compute endpoint", "[watcher_clients_auth] cafile")
        }
        ErrorKind::NoEndpoint { .. } => {
            "check [nova_client] endpoint_type and region_name against `openstack endpoint list --service compute`"
                .into()
        }
        ErrorKind::Microversion { .. } => {
            "set [nova_client] api_version to one this Nova supports (`openstack versions show --service compute`)"
                .into()
        }
        ErrorKind::Api { status: 403, .. } => {
            "listing hypervisors needs an admin role (policy os_compute_api:os-hypervisors:list-detail)".into()
        }
        ErrorKind::Api { status: 401, .. } => {
            "Nova does not accept Keystone's token: check Nova's Keystone settings".into()
        }
        ErrorKind::Api { .. } => "Nova's message says what it expected".into(),
        ErrorKind::Unexpected { .. } => "check that the catalog's compute endpoint is Nova's".into(),
    }
}

impl MetalError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            MetalError::Maas(e) => e.hint(),
            MetalError::Ironic(e) => e.hint(),
            MetalError::NotFound(_) => "give the node's id, or its hostname as `watcher-metal nodes` lists it".into(),
            MetalError::Ambiguous { .. } => "give the node's id instead".into(),
        }
    }
}

/// A MAAS client that could not be set up, in the charm option's name when
/// `maas-ca-cert` is at fault.
fn maas_setup(e: &ClientBuildError) -> String {
    if e.is_about_the_ca() {
        format!("maas-ca-cert: {e}")
    } else {
        e.to_string()
    }
}
