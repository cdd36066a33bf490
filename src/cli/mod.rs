//! The command line: arguments, and what each command does with the library.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use watcher_metal::config::render::{RenderContext, Renderer};
use watcher_metal::config::{self, CharmConfig, ConfMode, Warning};
use watcher_metal::host::atomic_file::WriteOutcome;
use watcher_metal::host::juju::{self, JujuHookTools};
use watcher_metal::ops::apply::{self, Content};
use watcher_metal::ops::source::{self, read_text, Source};
use watcher_metal::{
    clients::openstack::nova, exit_codes, metal, ops::backend, ops::listing, ops::power, ops::survey, ops::validate,
    secret, watcher::ini, watcher::pairing, Error,
};

#[derive(Debug, Parser)]
#[command(
    name = "watcher-metal",
    version,
    about = "Render and check OpenStack Watcher's MAAS / Ironic configuration for Juju charms",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
enum TableFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct NodesArgs {
    #[command(flatten)]
    source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    format: TableFormat,

    /// Re-read each node's power state now instead of taking the listing's:
    /// MAAS asks the BMC (query_power_state); Ironic has no such call, so
    /// this reads the conductor's record, which it refreshes from the BMC
    /// periodically. Nodes whose query fails show `error` and why.
    #[arg(long)]
    live: bool,

    /// Live queries in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256), requires = "live")]
    concurrency: u16,

    /// A file of hypervisor hostnames, one a line (`-` for stdin): report
    /// which ones Watcher can power-manage, using Watcher's matching rule.
    #[arg(long, value_name = "FILE", conflicts_with = "nova")]
    hypervisors: Option<PathBuf>,

    /// Ask Nova for the hypervisors (Keystone from [watcher_clients_auth],
    /// [nova_client] of watcher-conf-path) and report which ones Watcher
    /// pairs with a node, their state, status and running VMs, and what
    /// saving_energy would do with each pair.
    #[arg(long)]
    nova: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PowerAction {
    Status,
    On,
    Off,
}

#[derive(Debug, Args)]
struct PowerArgs {
    #[command(flatten)]
    source: ConfigArgs,

    /// status, on or off.
    #[arg(value_enum)]
    action: PowerAction,

    /// The node: its id (MAAS system_id, Ironic uuid) or hostname.
    node: String,

    /// After on/off, poll until the node reports the new state.
    #[arg(long)]
    wait: bool,

    /// With --wait: give up after this many seconds.
    #[arg(long, default_value_t = 600, requires = "wait", value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,

    /// Power off even when the node is not deployed (MAAS) or active (Ironic).
    #[arg(long)]
    force: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct DoctorArgs {
    #[command(flatten)]
    source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Args)]
struct ValidateArgs {
    #[command(flatten)]
    source: ConfigArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Skip the machine listing: only version and key checks (two requests).
    #[arg(long)]
    quick: bool,
}

/// Where the charm options come from.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// A YAML file of charm options (a flat map, or `juju deploy --config`'s
    /// {application: {option: value}} form); `-` reads standard input.
    /// Without it, inside a Juju hook, options come from `config-get`.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,

    /// The application to read when the config file holds several.
    #[arg(long, value_name = "NAME", requires = "config")]
    app: Option<String>,

    /// Read the MAAS and Ironic settings from an existing watcher.conf
    /// instead: the effective [maas_client] and [ironic_client] values of
    /// its drop-ins (watcher.conf.d/*.conf, sorted) and the file itself,
    /// the last setting winning, as Watcher's services read them.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    watcher_conf: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RenderArgs {
    #[command(flatten)]
    source: ConfigArgs,

    /// Render the whole file from watcher.conf.j2 instead.
    #[arg(long, conflicts_with = "merge")]
    full: bool,

    /// Merge the managed sections into watcher.conf itself instead of
    /// writing the drop-in (overrides the watcher-conf-mode option).
    #[arg(long)]
    merge: bool,

    /// YAML or JSON file with the other sections for --full
    /// ({section: {option: value}}).
    #[arg(long, value_name = "FILE", requires = "full")]
    context: Option<PathBuf>,

    /// Directory whose templates override the built-in ones, file by file.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,

    /// Where to write; `-` prints to standard output. Default: the drop-in
    /// (watcher.conf.d/DROP-IN-NAME beside watcher-conf-path), or
    /// watcher-conf-path with --merge or --full. With a PATH only that file
    /// is written: no migration, no clash check.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,

    /// Write nothing: exit 0 when the file is up to date, 1 with a diff
    /// (secrets masked) when it would change.
    #[arg(long, conflicts_with = "reveal_secrets")]
    check: bool,

    /// With `--output -`, print secrets instead of masking them.
    #[arg(long)]
    reveal_secrets: bool,
}

/// Runs a command; `Ok` carries the exit code of a run that did its job.
pub(crate) fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(args) => render(&args),
        Command::Validate(args) => validate(&args),
        Command::Nodes(args) => nodes(&args),
        Command::Power(args) => power(&args),
        Command::Doctor(args) => doctor(&args),
        Command::Dispatch => dispatch(),
    }
}

fn print_warnings(warnings: &[Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Where `--config`, `--watcher-conf` or the hook say the options are.
fn source_of(args: &ConfigArgs) -> Result<Source<'_>, Error> {
    if let Some(path) = &args.watcher_conf {
        return Ok(Source::WatcherConf(path));
    }
    match &args.config {
        Some(path) => Ok(Source::File { path, app: args.app.as_deref() }),
        None if juju::in_hook_context() => Ok(Source::Hook { tools: &JujuHookTools, refresh: false }),
        None => Err(Error::Usage {
            message: "no charm configuration given".to_owned(),
            hint: "pass --config FILE (a YAML map of charm options), or run inside a Juju hook".to_owned(),
        }),
    }
}

/// Reads and checks the charm configuration, printing warnings.
fn load_config(args: &ConfigArgs) -> Result<CharmConfig, Error> {
    let (config, warnings) = source::load(source_of(args)?)?;
    print_warnings(&warnings);
    Ok(config)
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
    let mut config = load_config(&args.source)?;
    if args.merge {
        config.mode = ConfMode::Merge;
    }
    let renderer = Renderer::new(args.templates.as_deref())?;
    let mask = |text: &str| ini::mask_secret_values(&secret::mask(text, &config.secrets()));
    if args.full || args.output.is_some() {
        return render_one(args, &config, &renderer, &mask);
    }
    let plan = apply::plan(&config, &renderer)?;
    if args.check {
        let changes: Vec<_> = plan.files.iter().filter(|c| c.changes()).collect();
        if !changes.is_empty() {
            for change in changes {
                let (old, new) = (change.old.as_deref().unwrap_or(""), change.new.as_deref().unwrap_or(""));
                let shown = diff(old, new, &change.path, &mask);
                if shown.is_empty() {
                    print_stdout(&format!("{}: only secret values differ (masked)\n", change.path.display()));
                } else {
                    print_stdout(&shown);
                }
            }
            return Ok(exit_codes::WOULD_CHANGE);
        }
    } else {
        let applied = apply::apply(&plan)?;
        for (path, role, outcome) in &applied.outcomes {
            if *role == apply::Role::Managed || outcome.changed() {
                print_stdout(&format!("{} {}\n", outcome.as_str(), path.display()));
            }
        }
    }
    if !plan.clashes.is_empty() {
        return Err(Error::Clash(plan.clashes));
    }
    Ok(0)
}

/// `render --full`, or `render --output PATH|-`: one file, nothing else.
fn render_one(
    args: &RenderArgs,
    config: &CharmConfig,
    renderer: &Renderer,
    mask: &dyn Fn(&str) -> String,
) -> Result<u8, Error> {
    // Without --output this is --full, which writes watcher.conf.
    let target: &Path = args.output.as_deref().unwrap_or(&config.watcher_conf_path);
    let file = (!is_stdout(target)).then_some(target);
    let context;
    let content = if args.full {
        context = match &args.context {
            Some(path) => {
                let name = path.display().to_string();
                let text = read_text(path).map_err(|message| {
                    Error::Render(watcher_metal::config::render::RenderError::Context {
                        source_name: name.clone(),
                        message,
                    })
                })?;
                RenderContext::parse(&text, &name)?
            }
            None => RenderContext::default(),
        };
        Content::Full(&context)
    } else {
        Content::Managed
    };
    let single = apply::single(config, renderer, content, file)?;
    if args.check {
        let current = single.existing.unwrap_or_default();
        if current == single.contents {
            return Ok(0);
        }
        print_stdout(&diff(&current, &single.contents, target, mask));
        return Ok(exit_codes::WOULD_CHANGE);
    }
    let Some(file) = file else {
        print_stdout(&if args.reveal_secrets { single.contents } else { mask(&single.contents) });
        return Ok(0);
    };
    let outcome = apply::write_single(file, &single.contents)?;
    report(outcome, file);
    Ok(0)
}

/// A unified diff of `old` to `new` with secrets masked.
fn diff(old: &str, new: &str, path: &Path, mask: &dyn Fn(&str) -> String) -> String {
    let (old, new) = (mask(old), mask(new));
    let shown = path.display().to_string();
    similar::TextDiff::from_lines(&old, &new).unified_diff().context_radius(3).header(&shown, &shown).to_string()
}

fn report(outcome: WriteOutcome, target: &Path) {
    print_stdout(&format!("{} {}\n", outcome.as_str(), target.display()));
}

/// Writes `value` as one line of JSON straight to standard output (no
/// intermediate copy: listings can be large).
fn write_json_line(value: &impl serde::Serialize) {
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    // A closed pipe is not an error, as in print_stdout.
    if serde_json::to_writer(&mut out, value).is_ok() {
        let _ = out.write_all(b"\n").and_then(|()| out.flush());
    }
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn validate(args: &ValidateArgs) -> Result<u8, Error> {
    let config = load_config(&args.source)?;
    let Some(maas) = &config.maas else {
        return Err(Error::MaasNotConfigured);
    };
    let client = backend::maas_client(maas, backend::maas_options(maas))?;
    let outcome = validate::validate(&client, !args.quick);
    match args.format {
        Format::Text => match outcome {
            Ok(report) => {
                print_stdout(&lines(&validate::human_lines(&report)));
                Ok(0)
            }
            Err(failure) => {
                print_stdout(&lines(&validate::human_lines(&failure.report)));
                Err(Error::Maas(failure.error))
            }
        },
        Format::Json => {
            let (mut value, code) = match outcome {
                Ok(report) => (json_report("ok", &report), 0),
                Err(failure) => {
                    let code = exit_codes::maas(&failure.error);
                    let mut value = json_report("failed", &failure.report);
                    value["stage"] = failure.stage.as_str().into();
                    value["error"] = failure.error.to_string().into();
                    value["hint"] = failure.error.hint().into();
                    value["exit_code"] = code.into();
                    (value, code)
                }
            };
            value["backend"] = config.backend().as_str().into();
            print_stdout(&format!("{value}\n"));
            Ok(code)
        }
    }
}

fn json_report(result: &str, report: &validate::Report) -> serde_json::Value {
    serde_json::json!({
        "result": result,
        "api_url": report.api_url,
        "maas_version": report.maas_version,
        "user": report.user.as_ref().map(|u| &u.username),
        "is_superuser": report.user.as_ref().map(|u| u.is_superuser),
        "machines": report.machines,
        "latency_ms": report.latency_ms,
    })
}

fn lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn nodes(args: &NodesArgs) -> Result<u8, Error> {
    let config = load_config(&args.source)?;
    // Read the hypervisor list first: a bad file should fail before any request.
    let hypervisors = match &args.hypervisors {
        Some(path) => Some(survey::parse_hypervisor_list(
            &read_text(path).map_err(|message| Error::HypervisorList { path: path.clone(), message })?,
        )),
        None => None,
    };
    let concurrency = usize::from(args.concurrency);
    let request = listing::Request { live: args.live, concurrency, hypervisors, nova: args.nova };
    let bar = std::sync::OnceLock::new();
    let listed = listing::list(&config, &request, &|done, total| {
        bar.get_or_init(|| progress_bar(total)).set_position(done as u64);
    })?;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    if let Some(hint) = &listed.empty_hint {
        eprintln!("warning: Ironic lists no nodes for these credentials\n  hint: {hint}");
    }
    match (&listed.matches, &listed.nova) {
        (Some(matches), _) => print_hypervisor_report(args.format, listed.backend, matches),
        (None, Some((nova, pairing))) => print_nova_report(args.format, nova, pairing),
        (None, None) => print_nodes(args.format, listed.backend, &listed.rows),
    }
    Ok(0)
}

/// One hypervisor of the `--nova` report.
#[derive(serde::Serialize)]
struct NovaRow<'a> {
    #[serde(flatten)]
    hypervisor: &'a nova::Hypervisor,
    watcher: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    power_state: Option<metal::PowerState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    saving_energy: Option<pairing::SavingEnergy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    near_miss: Option<&'a pairing::NearMiss>,
}

fn nova_rows<'a>(listing: &'a nova::HypervisorListing, pairing: &'a pairing::Pairing) -> Vec<NovaRow<'a>> {
    let mut rows: Vec<NovaRow<'a>> = listing
        .hypervisors
        .iter()
        .map(|hypervisor| NovaRow {
            hypervisor,
            watcher: "skips",
            node_id: None,
            node_name: None,
            power_state: None,
            saving_energy: None,
            note: None,
            reason: None,
            near_miss: None,
        })
        .collect();
    for m in &pairing.managed {
        if let Some(row) = rows.get_mut(m.hypervisor_index).filter(|r| r.node_id.is_none()) {
            row.watcher = "manages";
            row.node_id = Some(&m.node_id);
            row.node_name = Some(&m.node_name);
            row.power_state = Some(m.power_state);
            row.saving_energy = m.saving_energy;
            row.note = m.note.as_deref();
        }
    }
    for u in &pairing.unpaired_hypervisors {
        if let Some(row) = rows.get_mut(u.index) {
            row.reason = Some(&u.reason);
            row.near_miss = u.near_miss.and_then(|i| pairing.near_misses.get(i));
        }
    }
    rows
}

fn print_nova_report(format: TableFormat, listing: &nova::HypervisorListing, pairing: &pairing::Pairing) {
    let rows = nova_rows(listing, pairing);
    match format {
        TableFormat::Json => {
            #[derive(serde::Serialize)]
            struct Report<'a> {
                backend: metal::Backend,
                summary: &'a pairing::Summary,
                nova: NovaMeta<'a>,
                hypervisors: &'a [NovaRow<'a>],
                near_misses: &'a [pairing::NearMiss],
                unpaired_nodes: &'a [pairing::UnpairedNode],
                plan: &'a pairing::Plan,
                warnings: &'a [String],
            }
            #[derive(serde::Serialize)]
            struct NovaMeta<'a> {
                endpoint: &'a str,
                requested_microversion: &'a str,
                microversion: Option<&'a str>,
                pages: usize,
                running_vms_from: nova::RunningVmsSource,
            }
            write_json_line(&Report {
                backend: pairing.backend,
                summary: &pairing.summary,
                nova: NovaMeta {
                    endpoint: &listing.endpoint,
                    requested_microversion: &listing.requested_microversion,
                    microversion: listing.microversion.as_deref(),
                    pages: listing.pages,
                    running_vms_from: listing.running_vms_from,
                },
                hypervisors: &rows,
                near_misses: &pairing.near_misses,
                unpaired_nodes: &pairing.unpaired_nodes,
                plan: &pairing.plan,
                warnings: &pairing.warnings,
            });
        }
        TableFormat::Table => {
            let dash = || "-".to_owned();
            let opt = |v: Option<&String>| v.cloned().unwrap_or_else(dash);
            let mut table =
                vec![["HYPERVISOR", "STATE", "STATUS", "VMS", "WATCHER", "NODE", "POWER", "SAVING_ENERGY", "DETAIL"]
                    .map(str::to_owned)
                    .to_vec()];
            for row in &rows {
                let h = row.hypervisor;
                table.push(vec![
                    h.hostname.clone(),
                    opt(h.state.as_ref()),
                    opt(h.status.as_ref()),
                    h.running_vms.map_or_else(dash, |n| n.to_string()),
                    row.watcher.to_owned(),
                    row.node_id.map_or_else(dash, str::to_owned),
                    row.power_state.map_or_else(dash, |p| p.as_str().to_owned()),
                    row.saving_energy.map_or_else(dash, |v| v.as_str().to_owned()),
                    match (row.watcher, h.page) {
                        ("manages", Some(page)) if page > 0 => {
                            let past =
                                format!("page {} of Nova's listing: Watcher 12.0.0-15.0.0 do not see it", page + 1);
                            row.note.map_or(past.clone(), |n| format!("{n}; {past}"))
                        }
                        _ => row.note.or(row.reason).unwrap_or("").to_owned(),
                    },
                ]);
            }
            let mut out = render_table(&table);
            let s = &pairing.summary;
            if !pairing.near_misses.is_empty() {
                out.push_str("\nnear misses (Watcher skips these and logs only INFO):\n");
                for m in &pairing.near_misses {
                    out.push_str(&format!("  {} {}\n", m.hypervisor, m.message));
                }
            }
            if !pairing.unpaired_nodes.is_empty() {
                out.push_str(&format!("\n{} nodes without a hypervisor (Watcher skips them):\n", s.unpaired_nodes));
                for u in &pairing.unpaired_nodes {
                    out.push_str(&format!("  {} {}: {}\n", u.node_id, u.node_name, u.reason));
                }
            }
            out.push_str(&format!(
                "\n{} of {} hypervisors can be power-managed by Watcher via {}; {} near misses, {} nodes without a hypervisor\n",
                s.managed,
                s.hypervisors,
                pairing.backend.as_str(),
                s.near_misses,
                s.unpaired_nodes
            ));
            let p = &pairing.plan;
            let action = if p.power_off > 0 {
                format!("it would power off {} (at random), keeping {} free node(s) on", p.power_off, p.keep_on)
            } else if p.power_on > 0 {
                format!("it would power on {} to keep {} free node(s) on", p.power_on, p.keep_on)
            } else {
                format!("it would change nothing (keeps {} free node(s) on)", p.keep_on)
            };
            out.push_str(&format!(
                "saving_energy (default parameters): {} power-off candidates, {} power-on reserve, {} busy, {} ignored{}; {action}\n",
                s.power_off_candidates,
                s.power_on_reserve,
                s.busy,
                s.ignored,
                if s.unknown > 0 { format!(", {} unknown", s.unknown) } else { String::new() },
            ));
            out.push_str(&format!(
                "Nova: {} hypervisors in {} page(s) at microversion {}; running VMs from {}\n",
                s.hypervisors,
                listing.pages,
                listing.microversion.as_deref().unwrap_or(&listing.requested_microversion),
                match listing.running_vms_from {
                    nova::RunningVmsSource::RunningVms => "running_vms",
                    nova::RunningVmsSource::Servers => "the servers listed per hypervisor",
                }
            ));
            print_stdout(&out);
            for w in &pairing.warnings {
                eprintln!("warning: {w}");
            }
        }
    }
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    // Shown only on a terminal, and only for runs long enough to need it.
    if len < 50 || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} nodes queried ({eta} left)") {
        bar.set_style(style);
    }
    bar
}

fn print_nodes(format: TableFormat, backend: metal::Backend, rows: &[survey::NodeRow]) {
    let counts = survey::count_by_power_state(rows);
    match format {
        TableFormat::Json => {
            #[derive(serde::Serialize)]
            struct Listing<'a> {
                backend: metal::Backend,
                nodes: &'a [survey::NodeRow],
                summary: std::collections::BTreeMap<&'static str, usize>,
            }
            let summary = counts.iter().map(|(s, n)| (s.as_str(), *n)).collect();
            write_json_line(&Listing { backend, nodes: rows, summary });
        }
        TableFormat::Table => {
            let mut table = vec![["ID", "HOSTNAME", "POWER", "STATE", "NOTE"].map(str::to_owned).to_vec()];
            for row in rows {
                table.push(vec![
                    row.node.id.clone(),
                    row.node.display_name().to_owned(),
                    row.node.power_state.as_str().to_owned(),
                    row.node.provision_state.clone(),
                    row.error.clone().unwrap_or_default(),
                ]);
            }
            let mut out = render_table(&table);
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            out.push_str(&format!("{} nodes ({}) via {}\n", rows.len(), summary.join(", "), backend.as_str()));
            print_stdout(&out);
        }
    }
}

fn print_hypervisor_report(format: TableFormat, backend: metal::Backend, matches: &[survey::HypervisorMatch]) {
    let managed = matches.iter().filter(|m| m.managed()).count();
    match format {
        TableFormat::Json => {
            let value = serde_json::json!({
                "backend": backend,
                "managed": managed,
                "skipped": matches.len() - managed,
                "hypervisors": matches,
            });
            print_stdout(&format!("{value}\n"));
        }
        TableFormat::Table => {
            let mut table = vec![["HYPERVISOR", "WATCHER", "NODE", "DETAIL"].map(str::to_owned).to_vec()];
            for m in matches {
                let (verdict, node, detail) = match &m.node_id {
                    Some(id) => (
                        "manages",
                        id.clone(),
                        format!("power {}", m.power_state.map(metal::PowerState::as_str).unwrap_or("?")),
                    ),
                    None => ("skips", "-".to_owned(), m.reason.clone().unwrap_or_default()),
                };
                table.push(vec![m.hypervisor.clone(), verdict.to_owned(), node, detail]);
            }
            let mut out = render_table(&table);
            out.push_str(&format!(
                "{managed} of {} hypervisors can be power-managed by Watcher via {}\n",
                matches.len(),
                backend.as_str()
            ));
            print_stdout(&out);
        }
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn power(args: &PowerArgs) -> Result<u8, Error> {
    let config = load_config(&args.source)?;
    let client = backend::connect(&config, 2)?;
    let request = power::Request {
        target: match args.action {
            PowerAction::Status => None,
            PowerAction::On => Some(metal::PowerState::On),
            PowerAction::Off => Some(metal::PowerState::Off),
        },
        wait: args.wait,
        force: args.force,
        timeout: std::time::Duration::from_secs(args.timeout),
    };
    let done = power::run(client.as_ref(), &args.node, &request)?;
    print_power(args.format, &done.node, &done.reading, done.note);
    Ok(0)
}

fn print_power(format: Format, node: &metal::Node, reading: &metal::PowerReading, note: Option<&str>) {
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "id": node.id, "hostname": node.hostname, "power_state": reading.state,
                "raw_power_state": reading.raw, "changing_to": reading.changing_to, "note": note,
            });
            print_stdout(&format!("{value}\n"));
        }
        Format::Text => {
            let name = if node.hostname.is_empty() { &node.id } else { &node.hostname };
            let notes: Vec<String> = reading
                .changing_to
                .map(|to| format!("changing to {to}"))
                .into_iter()
                .chain(note.map(str::to_owned))
                .collect();
            let note = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
            print_stdout(&format!("{name} {}: {}{note}\n", node.id, reading.state));
        }
    }
}

fn doctor(args: &DoctorArgs) -> Result<u8, Error> {
    // On a Watcher machine the default is what the services read.
    let default_source;
    let source = if args.source.config.is_none() && args.source.watcher_conf.is_none() && !juju::in_hook_context() {
        default_source = ConfigArgs {
            config: None,
            app: None,
            watcher_conf: Some(PathBuf::from(config::DEFAULT_WATCHER_CONF_PATH)),
        };
        &default_source
    } else {
        &args.source
    };
    let loaded = load_config(source);
    // Charm options that cannot be loaded leave nothing to check; a
    // watcher.conf that cannot be is itself the first finding.
    let loaded = match loaded {
        Err(e) if source.watcher_conf.is_none() => return Err(e),
        other => other,
    };
    let conf_path = match &loaded {
        Ok(config) => config.watcher_conf_path.clone(),
        Err(_) => source
            .watcher_conf
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_WATCHER_CONF_PATH)),
    };
    let config = loaded.as_ref().map_err(|e| (e.to_string(), e.hint()));
    let report = watcher_metal::ops::doctor::diagnose(config, &conf_path, &watcher_metal::host::system::Host)?;
    match args.format {
        Format::Text => print_stdout(&lines(&watcher_metal::ops::doctor::human_lines(&report))),
        Format::Json => write_json_line(&report),
    }
    Ok(if report.failed() { exit_codes::DOCTOR_FAILED } else { 0 })
}

fn dispatch() -> Result<u8, Error> {
    let path = std::env::var("JUJU_DISPATCH_PATH").unwrap_or_default();
    let Some(event) = watcher_metal::charm::Event::from_dispatch_path(&path) else {
        return Err(Error::Usage {
            message: format!("JUJU_DISPATCH_PATH `{path}` names no hook or action"),
            hint: "dispatch runs inside Juju, which sets JUJU_DISPATCH_PATH=hooks/NAME or actions/NAME".to_owned(),
        });
    };
    let charm_dir = std::env::var_os("JUJU_CHARM_DIR").or_else(|| std::env::var_os("CHARM_DIR")).map(PathBuf::from);
    let ctx = watcher_metal::charm::Context {
        tools: &JujuHookTools,
        system: &watcher_metal::host::system::Host,
        charm_dir,
        ca_dir: std::env::var_os("WATCHER_METAL_CA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(watcher_metal::charm::DEFAULT_CA_DIR)),
    };
    watcher_metal::charm::run(&ctx, &event)?;
    Ok(0)
}
