//! One function per command: build the options, call the operation, hand
//! the result to `report`.

use std::path::{Path, PathBuf};

use watcher_metal::config::render::{RenderContext, Renderer};
use watcher_metal::config::{CharmConfig, ConfMode};
use watcher_metal::host::juju::{self, JujuHookTools};
use watcher_metal::ops::apply::{self, Content};
use watcher_metal::ops::source::{self, read_text, Source};
use watcher_metal::ops::{backend, listing, power, validate, Error};
use watcher_metal::watcher::{ini, pairing};
use watcher_metal::{exit_codes, metal, secret};

use super::args::{ConfigArgs, DoctorArgs, Format, NodesArgs, PowerAction, PowerArgs, RenderArgs, ValidateArgs};
use super::report::{
    diff, json_report, lines, print_hypervisor_report, print_nodes, print_nova_report, print_power, print_stdout,
    print_warnings, progress_bar, report, write_json_line,
};

/// Where `--config`, `--watcher-conf` or the hook say the options are.
pub(super) fn source_of(args: &ConfigArgs) -> Result<Source<'_>, Error> {
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
pub(super) fn load_config(args: &ConfigArgs) -> Result<CharmConfig, Error> {
    let (config, warnings) = source::load(source_of(args)?)?;
    print_warnings(&warnings);
    Ok(config)
}

pub(super) fn is_stdout(path: &Path) -> bool {
    path == Path::new("-")
}

pub(super) fn render(args: &RenderArgs) -> Result<u8, Error> {
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

pub(super) fn validate(args: &ValidateArgs) -> Result<u8, Error> {
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

/// How Watcher's services reach what they call, for a command that asks
/// Nova when `nova`: the proxies of their environment, or where they are not
/// on this machine, the command's own (none inside a Juju hook).
fn watcher_reach(config: &CharmConfig, nova: bool) -> backend::Reach {
    let elsewhere = backend::Elsewhere::for_command(juju::in_hook_context());
    backend::Reach::of_watcher(config, nova, &watcher_metal::host::system::Host, elsewhere)
}

pub(super) fn nodes(args: &NodesArgs) -> Result<u8, Error> {
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
    // On a Watcher machine the default is what the services read.
    let default_source;
    let source = if args.source.config.is_none() && args.source.watcher_conf.is_none() && !juju::in_hook_context() {
        default_source = ConfigArgs {
            config: None,
            app: None,
            watcher_conf: Some(watcher_metal::ops::doctor::default_watcher_conf()),
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
            .unwrap_or_else(watcher_metal::ops::doctor::default_watcher_conf),
    };
    let config = loaded.as_ref().map_err(|e| (e.to_string(), e.hint()));
    let elsewhere = backend::Elsewhere::for_command(juju::in_hook_context());
    let report =
        watcher_metal::ops::doctor::diagnose(config, &conf_path, &watcher_metal::host::system::Host, elsewhere)?;
    match args.format {
        Format::Text => print_stdout(&lines(&watcher_metal::ops::doctor::human_lines(&report))),
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
    };
    watcher_metal::charm::run(&unit, &event)?;
    Ok(0)
}
