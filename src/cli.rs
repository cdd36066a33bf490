//! The command line: arguments, and what each command does with the library.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use watcher_metal::atomic_file::{self, WriteOutcome};
use watcher_metal::config::{self, CharmConfig, NoSecrets, OptionMap, SecretSource, Warning};
use watcher_metal::error::exit;
use watcher_metal::ini::{self, ManagedSection};
use watcher_metal::juju::{self, HookSecrets, JujuHookTools};
use watcher_metal::render::{RenderContext, Renderer, IRONIC_SECTION, MAAS_SECTION};
use watcher_metal::{secret, Error};

#[derive(Debug, Parser)]
#[command(
    name = "watcher-metal",
    version,
    about = "Render and check OpenStack Watcher's MAAS / Ironic configuration for Juju charms",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render watcher.conf: update the managed [maas_client] and [ironic_client]
    /// sections of the existing file (default), or write a whole file (--full).
    Render(RenderArgs),
}

/// Where the charm options come from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A YAML file of charm options (a flat map, or `juju deploy --config`'s
    /// {application: {option: value}} form); `-` reads standard input.
    /// Without it, inside a Juju hook, options come from `config-get`.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The application to read when the config file holds several.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub app: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub source: ConfigArgs,

    /// Render the whole file from watcher.conf.j2 instead of merging the
    /// managed sections into the existing file.
    #[arg(long)]
    pub full: bool,

    /// YAML or JSON file with the other sections for --full
    /// ({section: {option: value}}).
    #[arg(long, value_name = "FILE", requires = "full")]
    pub context: Option<PathBuf>,

    /// Directory whose templates override the built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Where to write; `-` prints to standard output. Default: the
    /// watcher-conf-path option.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Write nothing: exit 0 when the file is up to date, 1 with a diff
    /// (secrets masked) when it would change.
    #[arg(long, conflicts_with = "reveal_secrets")]
    pub check: bool,

    /// With `--output -`, print secrets instead of masking them.
    #[arg(long)]
    pub reveal_secrets: bool,
}

/// Runs a command; `Ok` carries the exit code of a run that did its job.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(args) => render(&args),
    }
}

fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Reads the charm options from `--config`, or from `config-get` in a hook.
fn read_options(source: &ConfigArgs) -> Result<OptionMap, Error> {
    match &source.config {
        Some(path) => {
            let name = path.display().to_string();
            let text = read_text(path).map_err(|message| config::ConfigError::Unreadable {
                source_name: name.clone(),
                message,
                hint: "pass --config a readable YAML file of charm options".to_owned(),
            })?;
            Ok(config::parse_yaml(&text, &name, source.app.as_deref())?)
        }
        None if juju::in_hook_context() => juju::read_config(&JujuHookTools),
        None => Err(Error::Usage {
            message: "no charm configuration given".to_owned(),
            hint: "pass --config FILE (a YAML map of charm options), or run inside a Juju hook".to_owned(),
        }),
    }
}

/// Reads and checks the charm configuration, printing warnings.
pub fn load_config(source: &ConfigArgs) -> Result<CharmConfig, Error> {
    let options = read_options(source)?;
    let hook_secrets;
    let secrets: &dyn SecretSource = if source.config.is_none() && juju::in_hook_context() {
        hook_secrets = HookSecrets { tools: &JujuHookTools, refresh: false };
        &hook_secrets
    } else {
        &NoSecrets
    };
    let (config, warnings) = config::load(&options, secrets)?;
    print_warnings(&warnings);
    Ok(config)
}

/// A file's text, or standard input for `-`; the error is a message.
fn read_text(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => "is not UTF-8 text".to_owned(),
        _ => format!("cannot read: {e}"),
    })
}

fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

fn render(args: &RenderArgs) -> Result<u8, Error> {
    if args.check && args.output.as_deref().is_some_and(is_stdout) {
        return Err(Error::Usage {
            message: "--check compares with a file; it cannot be used with --output -".to_owned(),
            hint: "drop --output -, or give --output PATH".to_owned(),
        });
    }
    let config = load_config(&args.source)?;
    let renderer = Renderer::new(args.templates.as_deref())?;
    let target: &Path = args.output.as_deref().unwrap_or(&config.watcher_conf_path);
    // The file the merge starts from: the target, or watcher-conf-path when printing.
    let base: &Path = if is_stdout(target) { &config.watcher_conf_path } else { target };

    let existing = if is_stdout(target) && args.full { None } else { atomic_file::read_existing(base)? };
    let contents = if args.full {
        let context = match &args.context {
            Some(path) => {
                let name = path.display().to_string();
                let text = read_text(path).map_err(|message| {
                    Error::Render(watcher_metal::render::RenderError::Context { source_name: name.clone(), message })
                })?;
                RenderContext::parse(&text, &name)?
            }
            None => RenderContext::default(),
        };
        renderer.full(&config, &context)?
    } else {
        let managed = renderer.managed_sections(&config)?;
        ini::merge(
            existing.as_deref().unwrap_or(""),
            &[
                ManagedSection { name: MAAS_SECTION, body: managed.maas.as_deref() },
                ManagedSection { name: IRONIC_SECTION, body: Some(&managed.ironic) },
            ],
        )
    };

    let mask = |text: &str| ini::mask_secret_values(&secret::mask(text, &config.secrets()));
    if args.check {
        let current = existing.unwrap_or_default();
        if current == contents {
            return Ok(0);
        }
        let old = mask(&current);
        let new = mask(&contents);
        let diff = similar::TextDiff::from_lines(&old, &new);
        let shown = target.display().to_string();
        print_stdout(&diff.unified_diff().context_radius(3).header(&shown, &shown).to_string());
        return Ok(exit::WOULD_CHANGE);
    }
    if is_stdout(target) {
        print_stdout(&if args.reveal_secrets { contents } else { mask(&contents) });
        return Ok(0);
    }
    let outcome = atomic_file::write_if_changed(target, &contents)?;
    report(outcome, target);
    Ok(0)
}

fn report(outcome: WriteOutcome, target: &Path) {
    print_stdout(&format!("{} {}\n", outcome.as_str(), target.display()));
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
