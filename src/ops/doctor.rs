//! `doctor`: every check Watcher's metal path depends on, all of them run
//! and reported, not only the first failure. Both faces use it: the CLI
//! (`watcher-metal doctor`), the charm's `doctor` action, and every hook
//! (the cheap checks, within [`validate::HOOK_MAAS_TIME`] for MAAS, whose
//! first failure leads the unit's status).
//!
//! Each check has a name, a status (`ok`, `warn`, `fail`, `skip`), a
//! one-line message and a hint. Warnings never fail the run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clients::maas::MaasError;
use crate::config::CharmConfig;
use crate::host::accounts::Accounts;
use crate::host::system::{self, System};
use crate::metal::{self, Node};
use crate::ops::apply;
use crate::ops::backend::{self, Elsewhere, Reach};
use crate::ops::validate;
use crate::watcher::effective::{self, Layout};
use crate::watcher::version::{self, MaasSupport, WatcherVersion};

/// A check's verdict. Only `Fail` fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    /// Passed.
    Ok,
    /// Works, but something is worth fixing.
    Warn,
    /// Watcher's metal path cannot work as configured.
    Fail,
    /// Not run: it does not apply, needs what an earlier check could not
    /// get, or is left out at this [`Depth`].
    Skip,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// One of the names in [`names`], e.g. `maas-tls`.
    pub(crate) name: &'static str,
    /// The verdict.
    pub(crate) status: Verdict,
    /// One line: what was found.
    pub(crate) message: String,
    /// One line: what to do about it; empty when there is nothing to do.
    pub(crate) hint: String,
    /// A failure that may pass by itself (MAAS unreachable, slow, 5xx): the
    /// charm waits instead of blocking.
    #[serde(skip)]
    pub(crate) transient: bool,
    /// The fix in a few words, for a unit's status that leads with it;
    /// empty when the status says the message and the hint.
    #[serde(skip)]
    pub(crate) fix: String,
}

impl Check {
    fn new(name: &'static str, status: Verdict, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { name, status, message: message.into(), hint: hint.into(), transient: false, fix: String::new() }
    }

    fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Verdict::Ok, message, "")
    }

    fn skip(name: &'static str, message: impl Into<String>) -> Check {
        Check::new(name, Verdict::Skip, message, "")
    }
}

/// The checks, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check's outcome.
    pub(crate) checks: Vec<Check>,
    /// The files Watcher's services read, in order.
    files: Vec<PathBuf>,
}

impl Report {
    /// Whether any check failed (warnings do not count).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Verdict::Fail)
    }

    /// The first check, in run order, with `status`.
    pub(crate) fn first(&self, status: Verdict) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == status)
    }

    /// How many checks have `status`.
    pub(crate) fn count(&self, status: Verdict) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// Check names, shared with the charm's action results.
mod names {
    pub(crate) const CONFIG: &str = "config";
    pub(crate) const WATCHER: &str = "watcher-version";
    pub(crate) const LIBMAAS: &str = "python-libmaas";
    pub(crate) const MAAS: &str = "maas";
    pub(crate) const MAAS_TLS: &str = "maas-tls";
    pub(crate) const IRONIC: &str = "ironic";
    pub(crate) const DEBUG_KEY: &str = "debug-key-leak";
    pub(crate) const PAIRING: &str = "nova-pairing";
}

/// How much to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// update-status: MAAS's version and key within the hooks' time
    /// ([`validate::HOOK_MAAS_TIME`]); no listing, no Ironic.
    Cheap,
    /// Other hooks: the same.
    Hook,
    /// Everything, each request within `maas-timeout`: the CLI and the action.
    Full,
}

impl Depth {
    /// The time MAAS may take at this depth, from now.
    pub(crate) fn maas_budget(self) -> validate::Budget {
        match self {
            Depth::Cheap | Depth::Hook => validate::Budget::starting_now(validate::HOOK_MAAS_TIME),
            Depth::Full => validate::Budget::unlimited(),
        }
    }
}

/// What a hook learnt before the checks, so that they ask nothing twice;
/// `None` where they must ask themselves.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// Watcher's package version, as dpkg reported it.
    pub(crate) watcher_package: Option<Option<String>>,
    /// Whether Watcher's Python imports python-libmaas.
    pub(crate) libmaas: Option<bool>,
    /// MAAS's version and key check with these very settings (tried
    /// before they were written).
    pub(crate) maas: Option<Result<validate::Report, Box<validate::Failure>>>,
    /// The time MAAS may take; `None`: the depth's.
    pub(crate) budget: Option<validate::Budget>,
    /// How Keystone, Ironic and Nova are reached (the proxies of Watcher's
    /// services); directly by default.
    pub(crate) reach: Reach,
}

/// What the checks look at.
pub(crate) struct Inputs<'a> {
    /// The configuration, or why it cannot be loaded (message, hint).
    pub(crate) config: Result<&'a CharmConfig, (String, String)>,
    /// What Watcher's services read.
    pub(crate) layout: &'a Layout,
    /// Managed options some Watcher program would take from another file
    /// (see [`effective::clashes_on_disk`]).
    pub(crate) clashes: &'a [effective::Clash],
    pub(crate) system: &'a dyn System,
    /// Watcher's user and group: whether its services read the drop-in root.
    pub(crate) accounts: &'a Accounts,
    pub(crate) depth: Depth,
}

/// What the checks learnt beyond their outcome, for callers that go on.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    watcher_version: Option<WatcherVersion>,
    pub(crate) maas_version: Option<String>,
    pub(crate) maas_user: Option<String>,
    /// The nodes Watcher's backend lists (full depth only).
    nodes: Option<Vec<Node>>,
}

/// The watcher.conf doctor reads when no options say where it is (or they
/// cannot be loaded): the one Ubuntu's Watcher packages install.
pub fn default_watcher_conf() -> PathBuf {
    PathBuf::from(crate::config::DEFAULT_WATCHER_CONF_PATH)
}

/// The clashes in what is on disk for `config`: against our drop-ins (or
/// watcher.conf in merge mode, or when the drop-ins are not there yet).
fn clashes_now(config: &CharmConfig) -> Result<Vec<effective::Clash>, crate::host::atomic_file::FileError> {
    let conf = &config.watcher_conf_path;
    let ours: Vec<PathBuf> = match config.mode {
        crate::config::ConfMode::DropIn => {
            config.drop_in_paths().into_iter().map(|d| if d.exists() { d } else { conf.clone() }).collect()
        }
        crate::config::ConfMode::Merge => config.programs().iter().map(|_| conf.clone()).collect(),
    };
    effective::clashes_on_disk(conf, &config.drop_in_root, &config.programs(), &ours)
}

/// What is read from disk for the checks: the configuration Watcher's
/// files give (or why there is none), the layout, the clashes.
struct OnDisk {
    config: Result<CharmConfig, (String, String)>,
    layout: Layout,
    clashes: Vec<effective::Clash>,
}

/// Reads what the decision engine (or the charm's first service) reads
/// from `conf` and its drop-ins, and what it makes of it: every value the
/// checks use comes from these files, never from the charm's options,
/// which only say where the files are, what the system's CA store holds,
/// and what to compare them with (clashes). A file that cannot be read,
/// a missing watcher.conf and values Watcher cannot use are findings.
fn read_on_disk(charm: Option<&CharmConfig>, conf: &Path, root: &Path) -> OnDisk {
    let program = charm.map_or(crate::config::DEFAULT_PROGRAM, CharmConfig::main_program);
    let failed = |message: String, hint: String| OnDisk {
        config: Err((message, hint)),
        layout: Layout::default(),
        clashes: Vec::new(),
    };
    let unreadable =
        |e: crate::host::atomic_file::FileError| failed(format!("cannot read what Watcher reads: {e}"), e.hint());
    let layout = match Layout::read(conf, root, program) {
        Ok(layout) => layout,
        Err(e) => return unreadable(e),
    };
    if !layout.has_watcher_conf() {
        let read =
            if layout.files.is_empty() { String::new() } else { format!(" (read only: {})", file_names(&layout)) };
        let message = format!("{} does not exist: Watcher's services cannot start without it{read}", conf.display());
        let hint = "run doctor on a Watcher unit, with watcher-conf-path (or --watcher-conf) naming the file Watcher's services run with";
        return OnDisk { config: Err((message, hint.to_owned())), layout, clashes: Vec::new() };
    }
    let config = match crate::config::load_effective(&layout, conf, root, charm) {
        Ok((config, _)) => config,
        Err(e) => {
            let hint = e.hint();
            return OnDisk { config: Err((e.to_string(), hint)), layout, clashes: Vec::new() };
        }
    };
    // Without the charm's options, the drop-ins of ours are where the
    // defaults put them.
    match clashes_now(charm.unwrap_or(&config)) {
        Ok(clashes) => OnDisk { config: Ok(config), layout, clashes },
        Err(e) => unreadable(e),
    }
}

/// Every check, at full depth, of what Watcher's services read from
/// watcher.conf at `conf` and its drop-ins: the CLI's `doctor` and the
/// charm's action. `charm` is the charm's options when there are any
/// (`--config`, a hook), or why they cannot be loaded; `None` with
/// `--watcher-conf`. The programs' drop-ins are under `root`. The backend
/// and every value checked come from the files; a file that cannot be
/// read is the `config` check's failure, and every check is still reported.
/// Keystone, Ironic and Nova are asked through the proxies Watcher's
/// services have ([`Reach::of_watcher`]); where those services are not, as
/// `elsewhere` says.
pub fn diagnose(
    charm: Option<Result<&CharmConfig, (String, String)>>,
    conf: &Path,
    root: &Path,
    system: &dyn System,
    elsewhere: Elsewhere,
) -> Report {
    let given = charm.as_ref().and_then(|c| c.as_ref().ok().copied());
    let on_disk = read_on_disk(given, conf, root);
    let config = match (&charm, &on_disk.config) {
        (Some(Err(problem)), _) => Err(problem.clone()),
        (_, Ok(config)) => Ok(config),
        (_, Err(problem)) => Err(problem.clone()),
    };
    let reach = match &config {
        Ok(config) => Reach::of_watcher(config, true, system, elsewhere),
        Err(_) => Reach::direct(),
    };
    let accounts = Accounts::system();
    let inputs = Inputs {
        config,
        layout: &on_disk.layout,
        clashes: &on_disk.clashes,
        system,
        accounts: &accounts,
        depth: Depth::Full,
    };
    let mut report = run_with(&inputs, Known { reach, ..Known::default() }).0;
    if let (Some(charm), Ok(files)) = (given, &on_disk.config) {
        if let Some(differs) = charm_differs(charm, files) {
            if let Some(check) = report.checks.iter_mut().find(|c| c.name == names::CONFIG && c.status == Verdict::Ok) {
                *check = differs;
            }
        }
    }
    report
}

/// A warning when the charm's options say one thing and the files Watcher
/// reads another (no clash: the charm's files are not written yet, or the
/// options were changed since): the first option that differs, named, its
/// values not shown.
fn charm_differs(charm: &CharmConfig, files: &CharmConfig) -> Option<Check> {
    let (section, option) = match (&charm.maas, &files.maas) {
        (None, Some(_)) | (Some(_), None) => ("maas_client", "url"),
        (Some(ours), Some(theirs)) if ours.url != theirs.url => ("maas_client", "url"),
        (Some(ours), Some(theirs)) if ours.api_key != theirs.api_key => ("maas_client", "api_key"),
        (Some(ours), Some(theirs)) if ours.timeout != theirs.timeout => ("maas_client", "timeout"),
        _ if charm.ironic.api_version != files.ironic.api_version => ("ironic_client", "api_version"),
        _ if charm.ironic.endpoint_type != files.ironic.endpoint_type => ("ironic_client", "endpoint_type"),
        _ if charm.ironic.region_name != files.ironic.region_name => ("ironic_client", "region_name"),
        _ => return None,
    };
    let uses = if files.maas.is_some() { "MAAS" } else { "Ironic" };
    Some(Check::new(
        names::CONFIG,
        Verdict::Warn,
        format!("Watcher reads another [{section}] {option} than the charm's options give; it uses {uses}, as its files say"),
        "render the charm's options (`watcher-metal render`; the charm does at its next hook), then restart Watcher's services",
    ))
}

/// Runs every check of the inputs' depth, with what the caller already
/// knows, asking OpenStack through `known.reach` (at the hooks' depths no
/// OpenStack service is asked, and MAAS is always reached directly, as
/// Watcher reaches it).
pub(crate) fn run_with(inputs: &Inputs<'_>, known: Known) -> (Report, Findings) {
    let reach = &known.reach;
    let mut report =
        Report { checks: Vec::new(), files: inputs.layout.paths().iter().map(|p| p.to_path_buf()).collect() };
    let mut found = Findings::default();
    report.checks.push(config_check(inputs));
    let version_check = watcher_check(inputs, known.watcher_package.clone(), &mut found);
    report.checks.push(version_check);
    let Ok(config) = inputs.config else {
        for name in [names::LIBMAAS, names::MAAS, names::MAAS_TLS, names::IRONIC, names::PAIRING, names::DEBUG_KEY] {
            report.checks.push(Check::skip(name, "the configuration could not be loaded"));
        }
        return (report, found);
    };
    // Nova's hypervisors download while the backend is checked and listed.
    std::thread::scope(|scope| {
        let hypervisors = (inputs.depth == Depth::Full).then(|| {
            scope.spawn(|| backend::nova_client_for(inputs.layout, reach).and_then(|client| client.list_hypervisors()))
        });
        match &config.maas {
            Some(_) => {
                report.checks.push(libmaas_check(inputs.system, known.libmaas));
                let budget = known.budget.unwrap_or_else(|| inputs.depth.maas_budget());
                report.checks.extend(maas_checks(config, inputs.depth, budget, known.maas, reach, &mut found));
                report.checks.push(Check::skip(names::IRONIC, "Watcher uses MAAS ([maas_client] url is set)"));
            }
            None => {
                report.checks.push(Check::skip(names::LIBMAAS, "Watcher uses Ironic; python-libmaas is not needed"));
                report.checks.push(Check::skip(names::MAAS, "[maas_client] url is unset: Watcher uses Ironic"));
                report.checks.push(Check::skip(names::MAAS_TLS, "[maas_client] url is unset"));
                report.checks.push(ironic_check(config, inputs.depth, reach, &mut found));
            }
        }
        let listing = hypervisors.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(crate::clients::openstack::service::OpenStackError::unexpected(
                    crate::clients::openstack::service::Service::Nova,
                    "the listing stopped",
                ))
            })
        });
        report.checks.push(pairing_check(config, reach, listing, &mut found));
    });
    report.checks.push(debug_check(inputs, config, found.watcher_version));
    (report, found)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The names of the files `layout` reads, in order.
fn file_names(layout: &Layout) -> String {
    layout.paths().iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ")
}

/// The effective configuration: which files, who set each managed option,
/// and clashes.
fn config_check(inputs: &Inputs<'_>) -> Check {
    let name = names::CONFIG;
    if let Err((message, hint)) = &inputs.config {
        return Check::new(name, Verdict::Fail, message.clone(), hint.clone());
    }
    let files: Vec<String> = inputs.layout.paths().iter().map(|p| file_name(p)).collect();
    // Which file set the managed options, grouped by file.
    let mut by_file: Vec<(String, Vec<&str>)> = Vec::new();
    for (section, options) in effective::MANAGED_OPTIONS {
        for option in options {
            if let Some(s) = inputs.layout.setting(section, option) {
                let file = file_name(&s.path);
                match by_file.iter_mut().find(|(f, _)| *f == file) {
                    Some((_, list)) => list.push(option),
                    None => by_file.push((file, vec![option])),
                }
            }
        }
    }
    let set_by: Vec<String> = by_file.iter().map(|(f, opts)| format!("{} from {f}", opts.join(", "))).collect();
    let clashes = inputs.clashes;
    if let Some(first) = clashes.first() {
        let more = if clashes.len() > 1 { format!(" (and {} more)", clashes.len() - 1) } else { String::new() };
        return Check::new(name, Verdict::Fail, format!("{first}{more}"), first.hint());
    }
    if let Some(unread) = inputs.config.as_ref().ok().and_then(|c| apply::unread_root(c, inputs.accounts)) {
        return Check::new(name, Verdict::Warn, unread.to_string(), unread.hint());
    }
    let settings = if set_by.is_empty() { "no managed option set".to_owned() } else { set_by.join(", ") };
    Check::ok(name, format!("read {}; {settings}", files.join(", ")))
}

fn watcher_check(inputs: &Inputs<'_>, known: Option<Option<String>>, found: &mut Findings) -> Check {
    let name = names::WATCHER;
    let maas = inputs.config.as_ref().is_ok_and(|c| c.maas.is_some());
    let package = known.map_or_else(|| inputs.system.package_version(system::WATCHER_PACKAGE), Ok);
    let version = match package {
        Ok(Some(text)) => match WatcherVersion::parse_deb(&text) {
            Some(v) => v,
            None => return Check::new(name, Verdict::Warn, format!("cannot read Watcher's version from `{text}`"), ""),
        },
        Ok(None) => {
            return Check::new(
                name,
                Verdict::Warn,
                format!("{} is not installed on this machine", system::WATCHER_PACKAGE),
                "run doctor on a Watcher unit (where watcher-decision-engine runs)",
            )
        }
        Err(e) => return Check::new(name, Verdict::Warn, format!("cannot read Watcher's version: {e}"), ""),
    };
    found.watcher_version = Some(version);
    match (maas, version.maas_support()) {
        (true, MaasSupport::Missing) => Check::new(
            name,
            Verdict::Fail,
            format!("Watcher {version} has no MAAS support (2024.1, {}, or later needed)", version::FIRST_WITH_MAAS),
            "upgrade Watcher to 2024.1 (Ubuntu 24.04) or later, or unset maas-url to use Ironic",
        ),
        (true, MaasSupport::Defective { why }) => {
            Check::new(name, Verdict::Fail, defective_maas(version), defective_maas_hint(why))
        }
        _ => Check::ok(name, format!("Watcher {version}")),
    }
}

/// The status of a Watcher whose MAAS path is broken upstream: the two
/// ways out first, then what fails (within Juju's 120 characters).
pub(crate) fn defective_maas(version: WatcherVersion) -> String {
    format!(
        "use Watcher {}-{}, or unset maas-url to use Ironic: Watcher {version}'s MAAS power actions fail upstream",
        version::FIRST_WITH_MAAS,
        version::LAST_WORKING_MAAS
    )
}

/// The whole reason, for the log and the doctor's hint.
pub(crate) fn defective_maas_hint(why: &str) -> String {
    format!("{why}; see the compatibility table in the README")
}

fn libmaas_check(system: &dyn System, known: Option<bool>) -> Check {
    let name = names::LIBMAAS;
    match known.map_or_else(|| system.python_imports(system::LIBMAAS_MODULE), Ok) {
        Ok(true) => Check::ok(name, format!("Watcher's Python imports {}", system::LIBMAAS_MODULE)),
        Ok(false) => Check::new(
            name,
            Verdict::Fail,
            format!("Watcher's Python ({}) cannot import {}", system::WATCHER_PYTHON, system::LIBMAAS_MODULE),
            format!("install {} (the charm does so itself), then restart Watcher's services", system::LIBMAAS_PACKAGE),
        ),
        Err(e) => Check::new(name, Verdict::Fail, format!("cannot run Watcher's Python: {e}"), ""),
    }
}

pub(crate) fn is_transient(error: &MaasError) -> bool {
    use crate::clients::http::TransportError as T;
    match error {
        MaasError::Transport(t) => matches!(t, T::Refused { .. } | T::Timeout { .. } | T::Protocol { .. }),
        MaasError::Server { .. } => true,
        _ => false,
    }
}

/// `cut`: the hooks' time for MAAS, not `maas-timeout`, ran out.
fn maas_error_check(name: &'static str, prefix: &str, error: &MaasError, cut: bool) -> Check {
    let mut hint = error.hint();
    if cut {
        hint = format!(
            "{hint}; a hook waits {} s for MAAS in all, the doctor action maas-timeout",
            validate::HOOK_MAAS_TIME.as_secs()
        );
    }
    let mut check = Check::new(name, Verdict::Fail, format!("{prefix}{error}"), hint);
    check.transient = is_transient(error);
    check.fix = error.fix();
    check
}

/// MAAS as the charm configured it, then TLS as Watcher sees it, within
/// `budget`; `tried`: the version and key check already made; OpenStack
/// (Nova, for the listing) through `reach`.
fn maas_checks(
    config: &CharmConfig,
    depth: Depth,
    budget: validate::Budget,
    tried: Option<Result<validate::Report, Box<validate::Failure>>>,
    reach: &Reach,
    found: &mut Findings,
) -> Vec<Check> {
    let Some(maas) = &config.maas else { return Vec::new() };
    let options = backend::maas_options(maas);
    let configured = options.http.timeout;
    let https = maas.url.api_root().scheme() == "https";
    let mut checks = Vec::new();
    let client = match backend::maas_client(maas, options.clone()) {
        Ok(client) => client,
        Err(e) => {
            checks.push(Check::new(
                names::MAAS,
                Verdict::Fail,
                e.to_string(),
                "paste the CA certificate in PEM form into maas-ca-cert",
            ));
            checks.push(Check::skip(names::MAAS_TLS, "MAAS could not be checked"));
            return checks;
        }
    };
    // Version and key; in full, the machines listed once, as Watcher lists
    // them, for the count here and the pairing with Nova.
    match tried.unwrap_or_else(|| validate::validate_within(&client, false, budget)) {
        Ok(report) => {
            let user = report.user.as_ref().map(|u| u.username.clone()).unwrap_or_default();
            let role = if report.user.as_ref().is_some_and(|u| u.is_superuser) {
                "administrator"
            } else {
                "not an administrator"
            };
            let version = report.maas_version.clone().unwrap_or_default();
            found.maas_version = report.maas_version;
            found.maas_user = Some(user.clone());
            let listed = match depth {
                Depth::Full => Some(
                    backend::connect(config, reach, 16).and_then(|c| c.list_nodes().map_err(crate::ops::Error::from)),
                ),
                _ => None,
            };
            checks.push(match listed {
                Some(Err(e)) => {
                    Check::new(names::MAAS, Verdict::Fail, format!("cannot list MAAS machines: {e}"), e.hint())
                }
                Some(Ok(nodes)) => {
                    let check = Check::ok(
                        names::MAAS,
                        format!("MAAS {version}, key of user {user} ({role}), {} machines visible", nodes.len()),
                    );
                    found.nodes = Some(nodes);
                    check
                }
                None => Check::ok(names::MAAS, format!("MAAS {version}, key of user {user} ({role})")),
            });
        }
        Err(failure) => {
            let cut = budget.cut(&failure.error, configured);
            checks.push(maas_error_check(names::MAAS, failure.stage.failure_prefix(), &failure.error, cut));
        }
    }
    if !https {
        checks.push(Check::skip(names::MAAS_TLS, "maas-url is http: no TLS"));
        return checks;
    }
    // python-libmaas trusts the system's store only: check without maas-ca-cert.
    let mut system_only = options;
    system_only.http.ca_cert_pem = None;
    let tls = backend::maas_client(maas, system_only)
        .map_err(|e| e.to_string())
        .map(|c| budget.bound(&c).and_then(|c| c.version()).map_err(|e| budget.explain(e, configured)));
    checks.push(match tls {
        Ok(Ok(_)) => Check::ok(names::MAAS_TLS, "MAAS's certificate is trusted by the system's CA store, as Watcher needs"),
        Ok(Err(MaasError::Transport(t)))
            if matches!(
                t,
                crate::clients::http::TransportError::TlsUntrusted { .. }
                    | crate::clients::http::TransportError::TlsHostname { .. }
                    | crate::clients::http::TransportError::Tls { .. }
            ) =>
        {
            let mut check = Check::new(
            names::MAAS_TLS,
            Verdict::Fail,
            format!("Watcher would refuse MAAS's certificate: {t}"),
            "python-libmaas trusts only the system's CA store: set maas-ca-cert (the charm adds it there) or run update-ca-certificates with MAAS's CA, then restart Watcher's services",
            );
            check.fix = "set maas-ca-cert to MAAS's CA".to_owned();
            check
        }
        Ok(Err(e)) => {
            let mut c = Check::new(names::MAAS_TLS, Verdict::Skip, format!("not checked: {e}"), "");
            c.transient = is_transient(&e);
            c
        }
        Err(e) => Check::new(names::MAAS_TLS, Verdict::Fail, e, ""),
    });
    checks
}

fn ironic_check(config: &CharmConfig, depth: Depth, reach: &Reach, found: &mut Findings) -> Check {
    let name = names::IRONIC;
    if depth != Depth::Full {
        return Check::skip(name, "checked by the doctor action and command, not by every hook");
    }
    let client = match backend::connect(config, reach, 4) {
        Ok(client) => client,
        Err(e) => return Check::new(name, Verdict::Fail, e.to_string(), e.hint()),
    };
    match client.list_nodes() {
        Ok(nodes) if nodes.is_empty() => Check::new(
            name,
            Verdict::Fail,
            "Ironic answers, but lists no node to Watcher's project",
            "check Ironic's access rules: Watcher's user needs the service role (and rbac_service_role_elevated_access = true) or to own the nodes",
        ),
        Ok(nodes) => {
            let message = format!("Keystone and Ironic answer; {} nodes visible", nodes.len());
            found.nodes = Some(nodes);
            Check::ok(name, message)
        }
        Err(e) => {
            let e = crate::ops::Error::from(e);
            Check::new(name, Verdict::Fail, e.to_string(), e.hint())
        }
    }
}

/// Which machines Watcher would pair with Nova's hypervisors, by Watcher's
/// own rule: the nodes from the backend, the hypervisors from Nova.
fn pairing_check(
    config: &CharmConfig,
    reach: &Reach,
    listing: Option<
        Result<crate::clients::openstack::nova::HypervisorListing, crate::clients::openstack::service::OpenStackError>,
    >,
    found: &mut Findings,
) -> Check {
    let name = names::PAIRING;
    let Some(listing) = listing else {
        return Check::skip(name, "checked by the doctor action and command, not by every hook");
    };
    let nodes = match found.nodes.take() {
        Some(nodes) => nodes,
        None => match backend::connect(config, reach, 16).and_then(|c| c.list_nodes().map_err(crate::ops::Error::from))
        {
            Ok(nodes) => nodes,
            Err(_) => return Check::skip(name, "the metal backend could not list its nodes (see above)"),
        },
    };
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            return Check::new(name, Verdict::Fail, format!("cannot list Nova's hypervisors: {e}"), e.hint());
        }
    };
    let backend = if config.maas.is_some() { metal::Backend::Maas } else { metal::Backend::Ironic };
    let pairing = crate::watcher::pairing::pair(backend, &nodes, &listing.hypervisors);
    let summary = &pairing.summary;
    let counts =
        format!("{} of {} nodes pair with Nova's {} hypervisors", summary.managed, summary.nodes, summary.hypervisors);
    found.nodes = Some(nodes);
    if summary.managed == 0 {
        let hint = match pairing.near_misses.first() {
            Some(miss) => format!("{}; Watcher pairs only exact matches", miss.message),
            None => "Watcher keeps a MAAS machine only when its fqdn equals a hypervisor_hostname exactly (an Ironic node: extra.compute_node_id equals the hypervisor's id)".to_owned(),
        };
        return Check::new(name, Verdict::Fail, format!("no node Watcher could manage: {counts}"), hint);
    }
    if let Some(miss) = pairing.near_misses.first() {
        let more = match pairing.near_misses.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Check::new(
            name,
            Verdict::Warn,
            format!("{counts}; {} near miss{}", summary.near_misses, if summary.near_misses == 1 { "" } else { "es" }),
            format!("{}{more}; `watcher-metal nodes --nova` lists them all", miss.message),
        );
    }
    if let Some(warning) = pairing.warnings.first() {
        return Check::new(name, Verdict::Warn, counts, warning.clone());
    }
    Check::ok(
        name,
        format!(
            "{counts}; saving_energy: {} power-off candidates, {} in reserve, {} busy",
            summary.power_off_candidates, summary.power_on_reserve, summary.busy
        ),
    )
}

fn debug_check(inputs: &Inputs<'_>, config: &CharmConfig, version: Option<WatcherVersion>) -> Check {
    let name = names::DEBUG_KEY;
    if config.maas.is_none() {
        return Check::skip(name, "no MAAS key configured");
    }
    let debug = inputs.layout.setting("DEFAULT", "debug");
    let on = debug.as_ref().is_some_and(|s| version::oslo_bool(&s.value));
    match (on, version) {
        (false, _) => Check::ok(name, "[DEFAULT] debug is off"),
        (true, Some(v)) if !v.logs_key_with_debug() => Check::ok(name, format!("Watcher {v} masks the key even with debug on")),
        (true, v) => Check::new(
            name,
            Verdict::Warn,
            "debug=true logs the MAAS key in clear",
            format!(
                "[DEFAULT] debug = true{} makes Watcher {} write [maas_client] api_key to its logs at start-up: set debug=false on the Watcher charm (juju config watcher debug=false), then rotate the MAAS key",
                debug.map(|s| format!(" in {}", s.path.display())).unwrap_or_default(),
                v.map_or_else(|| "before 17.0.0".to_owned(), |v| v.to_string())
            ),
        ),
    }
}

/// The report as lines for a person: one per check.
pub fn human_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for c in &report.checks {
        lines.push(format!("{:<4}  {:<16} {}", c.status.as_str(), c.name, c.message));
        if !c.hint.is_empty() && matches!(c.status, Verdict::Warn | Verdict::Fail) {
            lines.push(format!("      {:<16} hint: {}", "", c.hint));
        }
    }
    let (fail, warn) = (report.count(Verdict::Fail), report.count(Verdict::Warn));
    lines.push(format!("{} checks: {fail} failed, {warn} warned", report.checks.len()));
    lines
}
