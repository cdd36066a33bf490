//! Exit codes, and the one mapping from every failure to its code.
//!
//! Every failure a user can cause has its own code, documented in the
//! README's table (`tests/exit_codes.rs` keeps the two equal). The error
//! types say what went wrong; only this module says which code that is.

use crate::clients::http::TransportError;
use crate::clients::maas::MaasError;
use crate::clients::openstack::keystone::KeystoneError;
use crate::clients::openstack::service::{ErrorKind, OpenStackError, Service};
use crate::config::render::RenderError;
use crate::config::ConfigError;
use crate::host::atomic_file::FileError;
use crate::metal::MetalError;
use crate::ops::apply::NotOurs;
use crate::ops::error::Error;
use crate::ops::power::PowerError;

/// `render --check`: the file is not up to date.
pub const WOULD_CHANGE: u8 = 1;
/// Bad flags, or no configuration given (also the argument parser's code).
pub const USAGE: u8 = 2;
/// The charm configuration breaks a rule.
pub const CONFIG_INVALID: u8 = 3;
/// The configuration could not be read or parsed.
pub const CONFIG_UNREADABLE: u8 = 4;
/// The Juju secret holding the key could not be read.
pub const SECRET: u8 = 5;
/// The `--context` file is invalid.
pub const CONTEXT: u8 = 6;
/// A template is missing, broken, or renders something unsafe.
pub const TEMPLATE: u8 = 7;
/// watcher.conf cannot be read (or is a link, a directory, not UTF-8).
pub const CONF_READ: u8 = 8;
/// A file cannot be written; the old one is intact.
pub const CONF_WRITE: u8 = 9;
/// A Juju hook tool failed.
pub const HOOK_TOOL: u8 = 10;
/// A MAAS command was asked for but MAAS is not configured.
pub const MAAS_NOT_CONFIGURED: u8 = 11;
/// A Watcher service could not be restarted after its configuration
/// changed (or the system could not be prepared for the restart).
pub const SERVICE_RESTART: u8 = 12;
/// Another file sets a managed option, so Watcher would not use ours.
pub const CLASH: u8 = 13;
/// `doctor`: at least one check failed.
pub const DOCTOR_FAILED: u8 = 14;
/// `render --output` names an existing file that is not a drop-in of ours.
pub const OUTPUT_NOT_OURS: u8 = 15;
/// A file at a drop-in's (or the CA certificate's) path is the site's, or
/// another application's of the charm, not ours, so it is not replaced.
pub const FOREIGN_DROP_IN: u8 = 16;
// Below HTTP, for every service (MAAS, Keystone, Ironic, Nova).
/// The host name does not resolve.
pub const DNS: u8 = 20;
/// The connection was refused.
pub const REFUSED: u8 = 21;
/// No answer within the timeout.
pub const TIMEOUT: u8 = 22;
/// TLS: the certificate is not signed by a trusted CA.
pub const TLS_UNTRUSTED: u8 = 23;
/// TLS: the certificate is for another host name.
pub const TLS_HOSTNAME: u8 = 24;
/// TLS: any other failure.
pub const TLS: u8 = 25;
// MAAS, one code per diagnosis.
/// MAAS redirects (TLS is enabled).
pub const MAAS_REDIRECT: u8 = 26;
/// 404: the URL's path is wrong.
pub const MAAS_NOT_FOUND: u8 = 27;
/// 410: the URL is MAAS's retired API 1.0.
pub const MAAS_GONE: u8 = 28;
/// 401: unknown consumer key.
pub const MAAS_INVALID_KEY: u8 = 29;
/// 401: unknown or revoked token.
pub const MAAS_INVALID_TOKEN: u8 = 30;
/// 401: wrong token secret.
pub const MAAS_BAD_SIGNATURE: u8 = 31;
/// 401: expired timestamp (the clocks differ).
pub const MAAS_CLOCK_SKEW: u8 = 32;
/// 401: any other reason.
pub const MAAS_UNAUTHORIZED: u8 = 33;
/// 403: the user may not do this.
pub const MAAS_FORBIDDEN: u8 = 34;
/// The answer is not MAAS's API.
pub const MAAS_NOT_MAAS: u8 = 35;
/// MAAS failed (5xx, after retries).
pub const MAAS_SERVER: u8 = 36;
/// MAAS refused the request (400, 409, another status).
pub const MAAS_REFUSED_REQUEST: u8 = 37;
/// The connection broke, the answer was not HTTP, or it was too large
/// (any service).
pub const PROTOCOL: u8 = 38;
// Node commands.
/// No such node.
pub const NODE_NOT_FOUND: u8 = 40;
/// The name matches several nodes.
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
// Keystone and Ironic.
/// `[watcher_clients_auth]` is missing or incomplete (Ironic and Nova).
pub const KEYSTONE_CONFIG: u8 = 50;
/// Keystone refused the credentials (or failed).
pub const KEYSTONE_REFUSED: u8 = 51;
/// No `baremetal` endpoint of that interface/region in the catalog.
pub const IRONIC_NO_ENDPOINT: u8 = 52;
/// Ironic does not support the microversion asked for.
pub const IRONIC_MICROVERSION: u8 = 53;
/// Ironic refused the request, or its answer is not Ironic's.
pub const IRONIC_API: u8 = 54;
// Nova (its Keystone failures use the Keystone codes above).
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

/// The exit code for `error`.
pub fn of(error: &Error) -> u8 {
    match error {
        Error::Config(ConfigError::Invalid(_)) => CONFIG_INVALID,
        Error::Config(ConfigError::Unreadable { .. }) => CONFIG_UNREADABLE,
        Error::Config(ConfigError::Secret { .. }) => SECRET,
        Error::Render(RenderError::Context { .. }) => CONTEXT,
        Error::Render(_) => TEMPLATE,
        Error::File(e) | Error::Output { source: e, .. } => file(e),
        Error::HookTool(_) => HOOK_TOOL,
        Error::Maas(e) => maas(e),
        Error::MaasSetup(_) => CONFIG_INVALID,
        Error::Clash(_) => CLASH,
        Error::NotOurs(NotOurs::Output { .. }) => OUTPUT_NOT_OURS,
        Error::NotOurs(_) => FOREIGN_DROP_IN,
        Error::MaasNotConfigured | Error::MaasNotInWatcherConf { .. } => MAAS_NOT_CONFIGURED,
        Error::Metal(e) => metal(e),
        Error::Nova(e) => openstack(e),
        Error::Power(e) => power(e),
        Error::HypervisorList { .. } => HYPERVISOR_LIST,
        Error::System { .. } => SERVICE_RESTART,
        Error::Usage { .. } => USAGE,
    }
}

fn file(e: &FileError) -> u8 {
    match e {
        FileError::MissingDirectory { .. } | FileError::Write { .. } => CONF_WRITE,
        _ => CONF_READ,
    }
}

/// The exit code for each MAAS diagnosis.
pub fn maas(e: &MaasError) -> u8 {
    match e {
        MaasError::Transport(e) => transport(e),
        MaasError::Redirect { .. } => MAAS_REDIRECT,
        MaasError::NotFound { .. } => MAAS_NOT_FOUND,
        MaasError::Gone => MAAS_GONE,
        MaasError::InvalidApiKey => MAAS_INVALID_KEY,
        MaasError::InvalidToken => MAAS_INVALID_TOKEN,
        MaasError::BadSignature => MAAS_BAD_SIGNATURE,
        MaasError::ExpiredTimestamp { .. } => MAAS_CLOCK_SKEW,
        MaasError::NonceReused | MaasError::Unauthorized { .. } => MAAS_UNAUTHORIZED,
        MaasError::Forbidden { .. } => MAAS_FORBIDDEN,
        MaasError::NotMaas { .. } => MAAS_NOT_MAAS,
        MaasError::Server { .. } => MAAS_SERVER,
        MaasError::BadRequest { .. } | MaasError::Conflict { .. } | MaasError::Status { .. } => MAAS_REFUSED_REQUEST,
    }
}

/// The exit code for a failure below HTTP, whichever service it was.
fn transport(e: &TransportError) -> u8 {
    match e {
        TransportError::Dns { .. } | TransportError::Proxy { refused: false, .. } => DNS,
        TransportError::Refused { .. } | TransportError::Proxy { refused: true, .. } => REFUSED,
        TransportError::Timeout { .. } => TIMEOUT,
        TransportError::TlsUntrusted { .. } => TLS_UNTRUSTED,
        TransportError::TlsHostname { .. } => TLS_HOSTNAME,
        TransportError::Tls { .. } => TLS,
        TransportError::TooLarge { .. } | TransportError::Protocol { .. } => PROTOCOL,
    }
}

/// A Keystone failure on behalf of a service; an answer that is not
/// Keystone's counts as that service's `unexpected` code.
fn keystone(e: &KeystoneError, unexpected: u8) -> u8 {
    match e {
        KeystoneError::Config { .. } => KEYSTONE_CONFIG,
        KeystoneError::Transport(e) => transport(e),
        KeystoneError::Refused { .. } => KEYSTONE_REFUSED,
        KeystoneError::Unexpected { .. } => unexpected,
    }
}

/// The exit code for an Ironic or Nova failure: each service has its own
/// codes above HTTP, Keystone's and the transport's are shared.
pub(crate) fn openstack(e: &OpenStackError) -> u8 {
    let (config, no_endpoint, microversion, api) = match e.service {
        // Ironic's settings are checked as charm options.
        Service::Ironic => (CONFIG_INVALID, IRONIC_NO_ENDPOINT, IRONIC_MICROVERSION, IRONIC_API),
        Service::Nova => (NOVA_CONFIG, NOVA_NO_ENDPOINT, NOVA_MICROVERSION, NOVA_API),
    };
    match &e.kind {
        ErrorKind::Keystone(k) => keystone(k, api),
        ErrorKind::Transport(t) => transport(t),
        ErrorKind::Config { .. } => config,
        ErrorKind::NoEndpoint { .. } => no_endpoint,
        ErrorKind::Microversion { .. } => microversion,
        ErrorKind::Api { .. } | ErrorKind::Unexpected { .. } => api,
    }
}

fn metal(e: &MetalError) -> u8 {
    match e {
        MetalError::Maas(e) => maas(e),
        MetalError::Ironic(e) => openstack(e),
        MetalError::NotFound(_) => NODE_NOT_FOUND,
        MetalError::Ambiguous { .. } => NODE_AMBIGUOUS,
    }
}

fn power(e: &PowerError) -> u8 {
    match e {
        PowerError::Metal(e) => metal(e),
        PowerError::Changing { .. } => POWER_CHANGING,
        PowerError::OffRefused { .. } => POWER_OFF_REFUSED,
        PowerError::NotAllocated { .. } => NOT_ALLOCATED,
        PowerError::WaitTimedOut { .. } => WAIT_TIMED_OUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openstack_failures_have_each_services_codes() {
        let nova = |kind| OpenStackError::new(Service::Nova, kind);
        let ironic = |kind| OpenStackError::new(Service::Ironic, kind);
        let forbidden = || ErrorKind::Api { status: 403, message: "no".into() };
        assert_eq!(openstack(&nova(forbidden())), NOVA_API);
        assert!(nova(forbidden()).hint().contains("admin"));
        assert_eq!(openstack(&ironic(forbidden())), IRONIC_API);
        let keystone = |e| ErrorKind::Keystone(e);
        let refused = || keystone(KeystoneError::Refused { status: 401, message: "x".into() });
        assert_eq!(openstack(&nova(refused())), KEYSTONE_REFUSED);
        assert_eq!(openstack(&ironic(refused())), KEYSTONE_REFUSED);
        let config = || keystone(KeystoneError::Config { message: "x".into() });
        assert_eq!(openstack(&nova(config())), KEYSTONE_CONFIG);
        let unexpected = || keystone(KeystoneError::Unexpected { detail: "x".into() });
        assert_eq!(openstack(&nova(unexpected())), NOVA_API);
        assert_eq!(openstack(&ironic(unexpected())), IRONIC_API);
        let no_endpoint = || ErrorKind::NoEndpoint { interface: "public".into(), region: Some("R".into()) };
        assert_eq!(openstack(&nova(no_endpoint())), NOVA_NO_ENDPOINT);
        assert_eq!(openstack(&ironic(no_endpoint())), IRONIC_NO_ENDPOINT);
        assert_eq!(
            nova(no_endpoint()).to_string(),
            "no compute endpoint with interface `public` in region `R` in the Keystone catalog"
        );
        assert_eq!(openstack(&nova(ErrorKind::Config { message: "x".into() })), NOVA_CONFIG);
        // An Ironic failure reaching `Error` is the metal backend's.
        assert!(matches!(Error::from(ironic(forbidden())), Error::Metal(MetalError::Ironic(_))));
        assert_eq!(of(&Error::from(ironic(forbidden()))), IRONIC_API);
        assert_eq!(of(&Error::from(nova(forbidden()))), NOVA_API);
    }
}
