//! The library's error type and the exit code each failure maps to.
//!
//! Every failure a user can cause has its own exit code (documented in the
//! README) and a hint saying what to do.

use crate::atomic_file::FileError;
use crate::config::ConfigError;
use crate::http::TransportError;
use crate::juju::HookToolError;
use crate::maas::{ClientBuildError, MaasError};
use crate::metal::MetalError;
use crate::render::RenderError;

/// Exit codes. 0 is success; 2 is a usage error (from the argument parser).
pub mod exit {
    /// `render --check`: the file is not up to date.
    pub const WOULD_CHANGE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const CONFIG_INVALID: u8 = 3;
    pub const CONFIG_UNREADABLE: u8 = 4;
    pub const SECRET: u8 = 5;
    pub const CONTEXT: u8 = 6;
    pub const TEMPLATE: u8 = 7;
    pub const CONF_READ: u8 = 8;
    pub const CONF_WRITE: u8 = 9;
    pub const HOOK_TOOL: u8 = 10;
    /// A MAAS command was asked for but MAAS is not configured.
    pub const MAAS_NOT_CONFIGURED: u8 = 11;
    /// A Watcher service could not be restarted after watcher.conf changed.
    pub const SERVICE_RESTART: u8 = 12;
    /// Another file sets a managed option, so Watcher would not use ours.
    pub const CLASH: u8 = 13;
    /// `doctor`: at least one check failed.
    pub const DOCTOR_FAILED: u8 = 14;
    // MAAS failures, one code per diagnosis.
    pub const MAAS_DNS: u8 = 20;
    pub const MAAS_REFUSED: u8 = 21;
    pub const MAAS_TIMEOUT: u8 = 22;
    pub const MAAS_TLS_UNTRUSTED: u8 = 23;
    pub const MAAS_TLS_HOSTNAME: u8 = 24;
    pub const MAAS_TLS: u8 = 25;
    pub const MAAS_REDIRECT: u8 = 26;
    pub const MAAS_NOT_FOUND: u8 = 27;
    pub const MAAS_GONE: u8 = 28;
    pub const MAAS_INVALID_KEY: u8 = 29;
    pub const MAAS_INVALID_TOKEN: u8 = 30;
    pub const MAAS_BAD_SIGNATURE: u8 = 31;
    pub const MAAS_CLOCK_SKEW: u8 = 32;
    pub const MAAS_UNAUTHORIZED: u8 = 33;
    pub const MAAS_FORBIDDEN: u8 = 34;
    pub const MAAS_NOT_MAAS: u8 = 35;
    pub const MAAS_SERVER: u8 = 36;
    pub const MAAS_REFUSED_REQUEST: u8 = 37;
    pub const MAAS_PROTOCOL: u8 = 38;
    // Node commands.
    pub const NODE_NOT_FOUND: u8 = 40;
    pub const NODE_AMBIGUOUS: u8 = 41;
    /// `power off` of a node that is not deployed/active, without --force.
    pub const POWER_OFF_REFUSED: u8 = 42;
    /// `power --wait`: the state was not reached in time.
    pub const WAIT_TIMED_OUT: u8 = 43;
    /// MAAS powers on only allocated or deployed machines.
    pub const NOT_ALLOCATED: u8 = 44;
    /// The hypervisor list could not be read.
    pub const HYPERVISOR_LIST: u8 = 45;
    /// `power on|off` without --wait while the service is changing the
    /// node's power to the other state.
    pub const POWER_CHANGING: u8 = 46;
    // Ironic and Keystone.
    /// `[watcher_clients_auth]` is missing or incomplete.
    pub const IRONIC_CONFIG: u8 = 50;
    pub const KEYSTONE_REFUSED: u8 = 51;
    pub const IRONIC_NO_ENDPOINT: u8 = 52;
    pub const IRONIC_MICROVERSION: u8 = 53;
    pub const IRONIC_API: u8 = 54;
    // Nova (its Keystone errors use the Keystone codes above).
    /// `[nova_client]` is unusable (an api_version Watcher refuses).
    pub const NOVA_CONFIG: u8 = 55;
    /// No `compute` endpoint of that interface/region in the catalog.
    pub const NOVA_NO_ENDPOINT: u8 = 56;
    /// Nova does not support the microversion asked for.
    pub const NOVA_MICROVERSION: u8 = 57;
    /// Nova refused the request, or its answer is not Nova's.
    pub const NOVA_API: u8 = 58;
    /// A fault in this program: please report it.
    pub const INTERNAL: u8 = 70;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    HookTool(#[from] HookToolError),
    #[error(transparent)]
    Maas(#[from] MaasError),
    #[error(transparent)]
    MaasSetup(#[from] ClientBuildError),
    /// The files were written, but Watcher would take a managed option from
    /// another file. Never empty.
    #[error("{}{}", .0[0], more(.0.len()))]
    Clash(Vec<crate::effective::Clash>),
    #[error("MAAS is not configured (maas-url is unset), so Watcher uses Ironic")]
    MaasNotConfigured,
    #[error(transparent)]
    Metal(#[from] MetalError),
    /// A refusal or failure the command itself decided, with its own code.
    #[error("{message}")]
    Command { code: u8, message: String, hint: String },
    #[error("{message}")]
    Usage { message: String, hint: String },
}

fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " (and 1 more clash)".to_owned(),
        n => format!(" (and {} more clashes)", n - 1),
    }
}

impl From<crate::apply::PlanError> for Error {
    fn from(e: crate::apply::PlanError) -> Self {
        match e {
            crate::apply::PlanError::Render(e) => Error::Render(e),
            crate::apply::PlanError::File(e) => Error::File(e),
        }
    }
}

/// The exit code for each MAAS diagnosis.
pub fn maas_exit_code(e: &MaasError) -> u8 {
    match e {
        MaasError::Transport(e) => transport_exit_code(e),
        MaasError::Redirect { .. } => exit::MAAS_REDIRECT,
        MaasError::NotFound { .. } => exit::MAAS_NOT_FOUND,
        MaasError::Gone => exit::MAAS_GONE,
        MaasError::InvalidApiKey => exit::MAAS_INVALID_KEY,
        MaasError::InvalidToken => exit::MAAS_INVALID_TOKEN,
        MaasError::BadSignature => exit::MAAS_BAD_SIGNATURE,
        MaasError::ExpiredTimestamp { .. } => exit::MAAS_CLOCK_SKEW,
        MaasError::NonceReused | MaasError::Unauthorized { .. } => exit::MAAS_UNAUTHORIZED,
        MaasError::Forbidden { .. } => exit::MAAS_FORBIDDEN,
        MaasError::NotMaas { .. } => exit::MAAS_NOT_MAAS,
        MaasError::Server { .. } => exit::MAAS_SERVER,
        MaasError::BadRequest { .. } | MaasError::Conflict { .. } | MaasError::Status { .. } => {
            exit::MAAS_REFUSED_REQUEST
        }
    }
}

/// The exit code for a failure below HTTP, for MAAS and Ironic alike.
pub fn transport_exit_code(e: &TransportError) -> u8 {
    match e {
        TransportError::Dns { .. } => exit::MAAS_DNS,
        TransportError::Refused { .. } => exit::MAAS_REFUSED,
        TransportError::Timeout { .. } => exit::MAAS_TIMEOUT,
        TransportError::TlsUntrusted { .. } => exit::MAAS_TLS_UNTRUSTED,
        TransportError::TlsHostname { .. } => exit::MAAS_TLS_HOSTNAME,
        TransportError::Tls { .. } => exit::MAAS_TLS,
        TransportError::TooLarge { .. } | TransportError::Protocol { .. } => exit::MAAS_PROTOCOL,
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(ConfigError::Invalid(_)) => exit::CONFIG_INVALID,
            Error::Config(ConfigError::Unreadable { .. }) => exit::CONFIG_UNREADABLE,
            Error::Config(ConfigError::Secret { .. }) => exit::SECRET,
            Error::Render(RenderError::Context { .. }) => exit::CONTEXT,
            Error::Render(_) => exit::TEMPLATE,
            Error::File(FileError::MissingDirectory { .. } | FileError::Write { .. }) => exit::CONF_WRITE,
            Error::File(_) => exit::CONF_READ,
            Error::HookTool(_) => exit::HOOK_TOOL,
            Error::Maas(e) => maas_exit_code(e),
            Error::MaasSetup(_) => exit::CONFIG_INVALID,
            Error::Clash(_) => exit::CLASH,
            Error::MaasNotConfigured => exit::MAAS_NOT_CONFIGURED,
            Error::Metal(MetalError::Maas(e)) => maas_exit_code(e),
            Error::Metal(MetalError::Ironic(e)) => e.exit_code(),
            Error::Metal(MetalError::NotFound(_)) => exit::NODE_NOT_FOUND,
            Error::Metal(MetalError::Ambiguous { .. }) => exit::NODE_AMBIGUOUS,
            Error::Command { code, .. } => *code,
            Error::Usage { .. } => exit::USAGE,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Error::Config(e) => e.hint(),
            Error::Render(e) => e.hint().to_owned(),
            Error::File(e) => e.hint(),
            Error::HookTool(e) => e.hint().to_owned(),
            Error::Maas(e) => e.hint(),
            Error::MaasSetup(_) => "paste the CA certificate in PEM form into maas-ca-cert".to_owned(),
            Error::Clash(clashes) => clashes.first().map(crate::effective::Clash::hint).unwrap_or_default(),
            Error::MaasNotConfigured => "set maas-url and maas-api-key-secret (or maas-api-key)".to_owned(),
            Error::Metal(e) => e.hint(),
            Error::Command { hint, .. } => hint.clone(),
            Error::Usage { hint, .. } => hint.clone(),
        }
    }
}
