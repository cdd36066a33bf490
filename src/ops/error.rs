//! The library's error type: every failure an operation can end in, each
//! with a hint saying what to do. Which exit code each one is, is
//! `exit_codes`' business.

use std::path::PathBuf;

use crate::clients::maas::{ClientBuildError, MaasError};
use crate::clients::openstack::nova::NovaError;
use crate::config::render::RenderError;
use crate::config::ConfigError;
use crate::host::atomic_file::FileError;
use crate::host::juju::HookToolError;
use crate::metal::MetalError;
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
    /// A Juju hook tool failed.
    #[error(transparent)]
    HookTool(#[from] HookToolError),
    /// A MAAS request failed: below HTTP or with one of MAAS's diagnoses.
    #[error(transparent)]
    Maas(#[from] MaasError),
    /// The MAAS client could not be set up: `maas-ca-cert` is not a usable PEM certificate, or
    /// HTTPS could not be configured.
    #[error(transparent)]
    MaasSetup(#[from] ClientBuildError),
    /// The files were written, but Watcher would take a managed option from
    /// another file. Never empty.
    #[error("{}{}", .0[0], more(.0.len()))]
    Clash(Vec<crate::watcher::effective::Clash>),
    /// A MAAS-only command was asked for, but `maas-url` is unset.
    #[error("MAAS is not configured (maas-url is unset), so Watcher uses Ironic")]
    MaasNotConfigured,
    /// Finding or listing nodes failed: no such node, several, or the MAAS or Ironic request
    /// failed.
    #[error(transparent)]
    Metal(#[from] MetalError),
    /// A Nova request failed: its configuration, Keystone, the transport or Nova itself.
    #[error(transparent)]
    Nova(#[from] NovaError),
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

impl From<crate::ops::apply::PlanError> for Error {
    fn from(e: crate::ops::apply::PlanError) -> Self {
        match e {
            crate::ops::apply::PlanError::Render(e) => Error::Render(e),
            crate::ops::apply::PlanError::File(e) => Error::File(e),
        }
    }
}

impl Error {
    /// What to do about it (may be empty).
    pub fn hint(&self) -> String {
        match self {
            Error::Config(e) => e.hint(),
            Error::Render(e) => e.hint().to_owned(),
            Error::File(e) => e.hint(),
            Error::HookTool(e) => e.hint().to_owned(),
            Error::Maas(e) => e.hint(),
            Error::MaasSetup(_) => "paste the CA certificate in PEM form into maas-ca-cert".to_owned(),
            Error::Clash(clashes) => clashes.first().map(crate::watcher::effective::Clash::hint).unwrap_or_default(),
            Error::MaasNotConfigured => "set maas-url and maas-api-key-secret (or maas-api-key)".to_owned(),
            Error::Metal(e) => e.hint(),
            Error::Nova(e) => e.hint(),
            Error::Power(e) => e.hint(),
            Error::HypervisorList { .. } => {
                "give --hypervisors a file with one hypervisor hostname a line, or - for stdin".to_owned()
            }
            Error::System { hint, .. } | Error::Usage { hint, .. } => hint.clone(),
        }
    }
}
