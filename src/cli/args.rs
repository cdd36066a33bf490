//! The arguments: clap's types for every command and its options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "watcher-metal",
    version,
    about = "Render and check OpenStack Watcher's MAAS / Ironic configuration for Juju charms",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Render the managed [maas_client] and [ironic_client] sections: into a
    /// drop-in beside watcher.conf (default), merged into watcher.conf
    /// (--merge), or a whole watcher.conf (--full).
    Render(RenderArgs),
    /// Check that MAAS answers at maas-url and accepts the API key: version,
    /// whoami, and a machine listing. Each failure has its own exit code.
    Validate(ValidateArgs),
    /// List bare-metal nodes with their power state (MAAS or Ironic, chosen
    /// as Watcher chooses), or report which hypervisors Watcher can manage.
    Nodes(NodesArgs),
    /// Show or change one node's power state.
    Power(PowerArgs),
    /// Run every check Watcher's MAAS (or Ironic) path depends on and report
    /// all of them: the effective configuration, Watcher's version,
    /// python-libmaas, MAAS and its TLS as Watcher sees it, Ironic, the
    /// debug key leak. Exit 14 when a check failed; warnings do not fail.
    Doctor(DoctorArgs),
    /// Run the Juju hook or action named by JUJU_DISPATCH_PATH (the charm's
    /// `dispatch` script calls this).
    Dispatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum TableFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(super) struct NodesArgs {
    #[command(flatten)]
    pub(super) source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub(super) format: TableFormat,

    /// Re-read each node's power state now instead of taking the listing's:
    /// MAAS asks the BMC (query_power_state); Ironic has no such call, so
    /// this reads the conductor's record, which it refreshes from the BMC
    /// periodically. Nodes whose query fails show `error` and why.
    #[arg(long)]
    pub(super) live: bool,

    /// Live queries in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256), requires = "live")]
    pub(super) concurrency: u16,

    /// A file of hypervisor hostnames, one a line (`-` for stdin): report
    /// which ones Watcher can power-manage, using Watcher's matching rule.
    #[arg(long, value_name = "FILE", conflicts_with = "nova")]
    pub(super) hypervisors: Option<PathBuf>,

    /// Ask Nova for the hypervisors (Keystone from [watcher_clients_auth],
    /// [nova_client] of watcher-conf-path) and report which ones Watcher
    /// pairs with a node, their state, status and running VMs, and what
    /// saving_energy would do with each pair.
    #[arg(long)]
    pub(super) nova: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum PowerAction {
    Status,
    On,
    Off,
}

#[derive(Debug, Args)]
pub(super) struct PowerArgs {
    #[command(flatten)]
    pub(super) source: ConfigArgs,

    /// status, on or off.
    #[arg(value_enum)]
    pub(super) action: PowerAction,

    /// The node: its id (MAAS system_id, Ironic uuid) or hostname.
    pub(super) node: String,

    /// After on/off, poll until the node reports the new state.
    #[arg(long)]
    pub(super) wait: bool,

    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 600, requires = "wait", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub(super) timeout: u64,

    /// Power off even when the node is not deployed (MAAS) or active (Ironic).
    #[arg(long)]
    pub(super) force: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(super) format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    pub(super) source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(super) format: Format,
}

#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    #[command(flatten)]
    pub(super) source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(super) format: Format,

    /// Skip the machine listing: only version and key checks (two requests).
    #[arg(long)]
    pub(super) quick: bool,
}

/// Where the charm options come from.
#[derive(Debug, Args)]
pub(super) struct ConfigArgs {
    /// A YAML file of charm options (a flat map, or `juju deploy --config`'s
    /// {application: {option: value}} form); `-` reads standard input.
    /// Without it, inside a Juju hook, options come from `config-get`.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(super) config: Option<PathBuf>,

    /// The application to read when the config file holds several.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub(super) app: Option<String>,

    /// Read the MAAS and Ironic settings from an existing watcher.conf
    /// instead: the effective [maas_client] and [ironic_client] values as
    /// the decision engine reads them, from its drop-ins
    /// (watcher.conf.d/*.conf and watcher-decision-engine.conf.d/*.conf,
    /// sorted) and the file itself, the last setting winning.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub(super) watcher_conf: Option<PathBuf>,

    /// With --watcher-conf: the directory holding the programs'
    /// PROGRAM.conf.d/ (the charm option drop-in-root; default /etc).
    #[arg(long, value_name = "DIR", requires = "watcher_conf")]
    pub(super) drop_in_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct RenderArgs {
    #[command(flatten)]
    pub(super) source: ConfigArgs,

    /// Render the whole file from watcher.conf.j2 instead.
    #[arg(long, conflicts_with = "merge")]
    pub(super) full: bool,

    /// Merge the managed sections into watcher.conf itself instead of
    /// writing the drop-in (overrides the watcher-conf-mode option).
    #[arg(long)]
    pub(super) merge: bool,

    /// YAML or JSON file with the other sections for --full
    /// ({section: {option: value}}).
    #[arg(long, value_name = "FILE", requires = "full")]
    pub(super) context: Option<PathBuf>,

    /// Directory whose templates override the built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    pub(super) templates: Option<PathBuf>,

    /// Where to write; `-` prints to standard output. Default: the drop-ins
    /// (DROP-IN-ROOT/PROGRAM.conf.d/DROP-IN-NAME for each of
    /// watcher-services: /etc/PROGRAM.conf.d by default), or
    /// watcher-conf-path with --merge or --full. With a PATH only that file
    /// is written: no migration, no clash check.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub(super) output: Option<PathBuf>,

    /// Write nothing: exit 0 when the file is up to date, 1 with a diff
    /// (secrets masked) when it would change.
    #[arg(long, conflicts_with = "reveal_secrets")]
    pub(super) check: bool,

    /// With `--output -`, print secrets instead of masking them.
    #[arg(long)]
    pub(super) reveal_secrets: bool,
}
