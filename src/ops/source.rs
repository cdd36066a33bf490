//! Where the charm options come from, for both faces: a YAML file (or
//! standard input), `config-get` and `secret-get` in a hook, or the
//! `[maas_client]`/`[ironic_client]` sections of an existing watcher.conf.
//! Loading reads them and checks them into a [`CharmConfig`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::config::{self, CharmConfig, ConfigError, NoSecrets, OptionMap, SecretSource, Warning};
use crate::host::juju::{self, HookTools};
use crate::ops::Error;
use crate::secret::SecretString;
use crate::watcher::effective::Layout;

/// One source of charm options.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A YAML map of options (flat, or `juju deploy --config`'s form keyed
    /// by application); `-` is standard input.
    File {
        /// The file (`-`: standard input).
        path: &'a Path,
        /// The application whose options to take from the keyed form;
        /// `None`: the file's only one. Refused with a flat file.
        app: Option<&'a str>,
    },
    /// `config-get`, with the key from `secret-get` (`--refresh` when
    /// `refresh`, so a new revision is never missed).
    Hook {
        /// The hook tools to run.
        tools: &'a dyn HookTools,
        /// Pass `--refresh` to `secret-get`.
        refresh: bool,
    },
    /// The managed sections of a watcher.conf and its drop-ins.
    WatcherConf {
        /// The watcher.conf.
        path: &'a Path,
        /// Where the programs' drop-in directories are (`drop-in-root`;
        /// `None`: `/etc`).
        drop_in_root: Option<&'a Path>,
    },
}

/// The options as the source gives them, unchecked.
pub(crate) fn read_options(source: Source<'_>) -> Result<OptionMap, Error> {
    match source {
        Source::File { path, app } => {
            let name = path.display().to_string();
            let text = read_text(path).map_err(|message| ConfigError::Unreadable {
                source_name: name.clone(),
                message,
                hint: "pass --config a readable YAML file of charm options".to_owned(),
            })?;
            Ok(config::parse_yaml(&text, &name, app)?)
        }
        Source::Hook { tools, .. } => {
            let text = tools.config_get_all()?;
            Ok(config::parse_config_get(&text)?)
        }
        Source::WatcherConf { path, drop_in_root } => {
            let (layout, path, root) = read_watcher_conf(path, drop_in_root)?;
            let mut options = config::watcher_conf_options(&layout);
            options.push((config::WATCHER_CONF_PATH.to_owned(), path.display().to_string().into()));
            options.push((config::DROP_IN_ROOT.to_owned(), root.display().to_string().into()));
            Ok(options)
        }
    }
}

/// The drop-in root a command was given (`--drop-in-root`, made absolute),
/// or the default, `/etc`.
pub fn drop_in_root_given(given: Option<&Path>) -> PathBuf {
    match given {
        Some(root) => {
            std::fs::canonicalize(root).or_else(|_| std::path::absolute(root)).unwrap_or_else(|_| root.to_path_buf())
        }
        None => PathBuf::from(config::DEFAULT_DROP_IN_ROOT),
    }
}

/// What the decision engine reads from the watcher.conf at `given` (made
/// absolute), which must exist, with its programs' drop-ins under
/// `drop_in_root` (see [`drop_in_root_given`]).
fn read_watcher_conf(given: &Path, drop_in_root: Option<&Path>) -> Result<(Layout, PathBuf, PathBuf), Error> {
    let path = std::path::absolute(given).unwrap_or_else(|_| given.to_path_buf());
    let root = drop_in_root_given(drop_in_root);
    let layout = Layout::read(&path, &root, config::DEFAULT_PROGRAM)?;
    if !layout.has_watcher_conf() {
        return Err(ConfigError::Unreadable {
            source_name: path.display().to_string(),
            message: "does not exist".to_owned(),
            hint: "give --watcher-conf the path of an existing watcher.conf".to_owned(),
        }
        .into());
    }
    Ok((layout, path, root))
}

/// The checked configuration, and what was worth a warning. From a
/// watcher.conf, the values are Watcher's, named as there (see
/// `config::load_effective`).
pub fn load(source: Source<'_>) -> Result<(CharmConfig, Vec<Warning>), Error> {
    if let Source::WatcherConf { path, drop_in_root } = source {
        let (layout, path, root) = read_watcher_conf(path, drop_in_root)?;
        return Ok(config::load_effective(&layout, &path, &root, None)?);
    }
    let options = read_options(source)?;
    let hook_secrets;
    let secrets: &dyn SecretSource = match source {
        Source::Hook { tools, refresh } => {
            hook_secrets = HookSecrets { tools, refresh };
            &hook_secrets
        }
        _ => &NoSecrets,
    };
    Ok(config::load(&options, secrets)?)
}

/// Adapts [`HookTools`] to the [`SecretSource`] the config loader asks.
struct HookSecrets<'a> {
    tools: &'a dyn HookTools,
    refresh: bool,
}

impl SecretSource for HookSecrets<'_> {
    fn secret_content(&self, uri: &str) -> Result<Vec<(String, SecretString)>, String> {
        juju::secret_content(self.tools, uri, self.refresh)
    }
}

/// A file's text, or standard input's for `-`, without the byte order
/// mark some editors put first (as PyYAML skips it); the error is a
/// message.
pub fn read_text(path: &Path) -> Result<String, String> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => "is not UTF-8 text".to_owned(),
            _ => format!("cannot read: {e}"),
        })?
    };
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}
