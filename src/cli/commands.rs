//! One function per command: build the options, call the operation, hand
//! the result to `report`.

use std::path::{Path, PathBuf};

use watcher_metal::config::render::{RenderContext, Renderer};
use watcher_metal::config::{CharmConfig, ConfMode};
use watcher_metal::host::accounts::Accounts;
use watcher_metal::host::atomic_file::FileError;
use watcher_metal::host::juju::{self, JujuHookTools};
use watcher_metal::ops::apply::{self, Content};
use watcher_metal::ops::source::{self, read_text, Source};
use watcher_metal::ops::{backend, listing, power, validate, Error};
use watcher_metal::watcher::{ini, pairing};
use watcher_metal::{exit_codes, metal, secret};

use super::args::{ConfigArgs, DoctorArgs, Format, NodesArgs, PowerAction, PowerArgs, RenderArgs, ValidateArgs};
use super::report::{
    diff, json_error, json_report, lines, print_hypervisor_report, print_nodes, print_nova_report, print_power,
    print_stdout, print_warnings, progress_bar, report, write_json_line,
};

/// Where `--config`, `--watcher-conf` or the hook say the options are.
pub(super) fn source_of(args: &ConfigArgs) -> Result<Source<'_>, Error> {
    if let Some(path) = &args.watcher_conf {
        return Ok(Source::WatcherConf { path, drop_in_root: args.drop_in_root.as_deref() });
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
pub(super) fn load_config(args: &ConfigArgs) -> Result<CharmConfig, Error> {
    let (config, warnings) = source::load(source_of(args)?)?;
    print_warnings(&warnings);
    Ok(config)
}

pub(super) fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

/// Refuses two flags reading standard input (`-`): the first would take
/// it all and leave the other nothing.
fn one_stdin(readers: &[(&str, Option<&Path>)]) -> Result<(), Error> {
    let stdin: Vec<&str> = readers.iter().filter(|(_, path)| path.is_some_and(is_stdout)).map(|(f, _)| *f).collect();
    match stdin.as_slice() {
        [first, second, ..] => Err(Error::Usage {
            message: format!("{first} and {second} both read standard input (-)"),
            hint: format!("give {second} a file (or {first})"),
        }),
        _ => Ok(()),
    }
}

pub(super) fn render(args: &RenderArgs) -> Result<u8, Error> {
    if args.check && args.output.as_deref().is_some_and(is_stdout) {
        return Err(Error::Usage {
            message: "--check compares with a file; it cannot be used with --output -".to_owned(),
            hint: "drop --output -, or give --output PATH".to_owned(),
        });
    }
    if args.reveal_secrets && !args.output.as_deref().is_some_and(is_stdout) {
        return Err(Error::Usage {
            message: "--reveal-secrets applies only to --output -; files are written whole, secrets included"
                .to_owned(),
            hint: "add --output - to print the file with its secrets, or drop --reveal-secrets".to_owned(),
        });
    }
    one_stdin(&[("--config", args.source.config.as_deref()), ("--context", args.context.as_deref())])?;
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
    if let Some(unread) = apply::unread_root(&config, &Accounts::system()) {
        eprintln!("warning: {unread}\n  hint: {}", unread.hint());
    }
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
        for (path, mode) in &applied.tightened {
            eprintln!("warning: {}", apply::tightened_line(path, *mode));
        }
    }
    if !plan.clashes.is_empty() {
        return Err(Error::Clash(plan.clashes));
    }
    Ok(0)
}

/// `render --full`, or `render --output PATH|-`: one file, nothing else.
pub(super) fn render_one(
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
        if current != single.contents {
            let shown = diff(&current, &single.contents, target, mask);
            if shown.is_empty() {
                print_stdout(&format!("{}: only secret values differ (masked)\n", target.display()));
            } else {
                print_stdout(&shown);
            }
            return Ok(exit_codes::WOULD_CHANGE);
        }
    } else {
        let Some(file) = file else {
            print_stdout(&if args.reveal_secrets { single.contents } else { mask(&single.contents) });
            return Ok(0);
        };
        let written = apply::write_single(config, file, &single.contents).map_err(|e| match e {
            FileError::MissingDirectory { path } if args.output.is_some() => Error::Output {
                hint: format!("create {} first, or give --output a path in an existing directory", path.display()),
                source: FileError::MissingDirectory { path },
            },
            e => Error::File(e),
        })?;
        report(written.outcome, file);
        if let Some(mode) = written.tightened {
            eprintln!("warning: {}", apply::tightened_line(file, mode));
        }
    }
    if !single.clashes.is_empty() {
        return Err(Error::Clash(single.clashes));
    }
    Ok(0)
}

pub(super) fn validate(args: &ValidateArgs) -> Result<u8, Error> {
    let config = load_config(&args.source)?;
    let Some(maas) = &config.maas else {
        return Err(match args.source.watcher_conf {
            Some(_) => Error::MaasNotInWatcherConf { conf: config.watcher_conf_path.clone() },
            None => Error::MaasNotConfigured,
        });
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
                    value["error"] = json_error(code, &failure.error.to_string(), &failure.error.hint());
                    (value, code)
                }
            };
            value["backend"] = config.backend().as_str().into();
            print_stdout(&format!("{value}\n"));
            Ok(code)
        }
    }
}

/// How Watcher's services reach what they call, for a command that asks
/// Nova when `nova`: the proxies of their environment, or where they are not
/// on this machine, the command's own (none inside a Juju hook).
fn watcher_reach(config: &CharmConfig, nova: bool) -> backend::Reach {
    let elsewhere = backend::Elsewhere::for_command(juju::in_hook_context());
    backend::Reach::of_watcher(config, nova, &watcher_metal::host::system::Host, elsewhere)
}

pub(super) fn nodes(args: &NodesArgs) -> Result<u8, Error> {
    one_stdin(&[("--config", args.source.config.as_deref()), ("--hypervisors", args.hypervisors.as_deref())])?;
    let config = load_config(&args.source)?;
    // Read the hypervisor list first: a bad file should fail before any request.
    let hypervisors = match &args.hypervisors {
        Some(path) => Some(pairing::parse_hypervisor_list(
            &read_text(path).map_err(|message| Error::HypervisorList { path: path.clone(), message })?,
        )),
        None => None,
    };
    let concurrency = usize::from(args.concurrency);
    let reach = watcher_reach(&config, args.nova);
    let request = listing::Request { live: args.live, concurrency, hypervisors, nova: args.nova, reach };
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
    match (&listed.named, &listed.nova) {
        (Some(named), _) => print_hypervisor_report(args.format, listed.backend, named),
        (None, Some((nova, pairing))) => print_nova_report(args.format, nova, pairing),
        (None, None) => print_nodes(args.format, listed.backend, &listed.rows),
    }
    Ok(0)
}

pub(super) fn power(args: &PowerArgs) -> Result<u8, Error> {
    let config = load_config(&args.source)?;
    let client = backend::connect(&config, &watcher_reach(&config, false), 2)?;
    let request = power::Request {
        target: match args.action {
            PowerAction::Status => None,
            PowerAction::On => Some(metal::PowerState::On),
            PowerAction::Off => Some(metal::PowerState::Off),
        },
        wait: args.wait,
        force: args.force,
        timeout: std::time::Duration::from_secs(args.timeout),
        switches: power::Switches { wait: "--wait", force: "--force", timeout: "--timeout" },
    };
    let done = power::run(client.as_ref(), &args.node, &request, &watcher_metal::ops::clock::SystemClock)?;
    print_power(args.format, &done.node, &done.reading, done.note);
    Ok(0)
}

pub(super) fn doctor(args: &DoctorArgs) -> Result<u8, Error> {
    use watcher_metal::ops::doctor;
    let host = &watcher_metal::host::system::Host;
    // The charm's options (--config, or a hook's) say where the files are;
    // without them, the files themselves: --watcher-conf (and
    // --drop-in-root), or on a Watcher machine what the services read.
    let charm = args.source.config.is_some() || (args.source.watcher_conf.is_none() && juju::in_hook_context());
    let elsewhere = backend::Elsewhere::for_command(juju::in_hook_context());
    let report = if charm {
        let config = load_config(&args.source)?;
        doctor::diagnose(Some(Ok(&config)), &config.watcher_conf_path, &config.drop_in_root, host, elsewhere)
    } else {
        let given = args.source.watcher_conf.clone().unwrap_or_else(doctor::default_watcher_conf);
        let conf = std::path::absolute(&given).unwrap_or(given);
        let root = source::drop_in_root_given(args.source.drop_in_root.as_deref());
        doctor::diagnose(None, &conf, &root, host, elsewhere)
    };
    match args.format {
        Format::Text => print_stdout(&lines(&doctor::human_lines(&report))),
        Format::Json => write_json_line(&report),
    }
    Ok(if report.failed() { exit_codes::DOCTOR_FAILED } else { 0 })
}

pub(super) fn dispatch() -> Result<u8, Error> {
    let path = std::env::var("JUJU_DISPATCH_PATH").unwrap_or_default();
    let Some(event) = watcher_metal::charm::Event::from_dispatch_path(&path) else {
        return Err(Error::Usage {
            message: format!("JUJU_DISPATCH_PATH `{path}` names no hook or action"),
            hint: "dispatch runs inside Juju, which sets JUJU_DISPATCH_PATH=hooks/NAME or actions/NAME".to_owned(),
        });
    };
    let charm_dir = std::env::var_os("JUJU_CHARM_DIR").or_else(|| std::env::var_os("CHARM_DIR")).map(PathBuf::from);
    let unit = watcher_metal::charm::Unit {
        tools: &JujuHookTools,
        system: &watcher_metal::host::system::Host,
        clock: &watcher_metal::ops::clock::SystemClock,
        charm_dir,
        ca_dir: std::env::var_os("WATCHER_METAL_CA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(watcher_metal::charm::DEFAULT_CA_DIR)),
        application: juju::application_name(),
        accounts: Accounts::system(),
    };
    watcher_metal::charm::run(&unit, &event)?;
    Ok(0)
}
