//! The library's error type and the exit code each failure maps to.
//!
//! Every failure a user can cause has its own exit code (documented in the
//! README) and a hint saying what to do.

use crate::atomic_file::FileError;
use crate::config::ConfigError;
use crate::juju::HookToolError;
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
    #[error("{message}")]
    Usage { message: String, hint: String },
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
            Error::Usage { .. } => exit::USAGE,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Error::Config(e) => e.hint(),
            Error::Render(e) => e.hint().to_owned(),
            Error::File(e) => e.hint(),
            Error::HookTool(e) => e.hint().to_owned(),
            Error::Usage { hint, .. } => hint.clone(),
        }
    }
}
