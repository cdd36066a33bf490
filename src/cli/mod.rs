//! The command line: `args` (what clap parses), `commands` (one function
//! per command, calling the operations), `report` (what they print).

mod args;
mod commands;
mod report;

use std::ffi::OsString;

pub(crate) use args::Cli;
use args::Command;
pub(crate) use report::print_error;
use watcher_metal::exit_codes;
use watcher_metal::ops::Error;
use watcher_metal::secret::mask_api_key_shapes;

/// Whether the command prints JSON (`--format json`), so its failures do
/// too.
pub(crate) fn json_output(cli: &Cli) -> bool {
    match &cli.command {
        Command::Validate(args) => args.format == args::Format::Json,
        Command::Nodes(args) => args.format == args::TableFormat::Json,
        Command::Power(args) => args.format == args::Format::Json,
        Command::Doctor(args) => args.format == args::Format::Json,
        Command::Render(_) | Command::Dispatch => false,
    }
}

/// Whether the raw arguments ask for JSON (`--format json` or
/// `--format=json`), for failures before they are parsed.
fn asks_for_json(args: &[OsString]) -> bool {
    args.windows(2).any(|w| w[0] == "--format" && w[1] == "json") || args.iter().any(|a| a == "--format=json")
}

/// The arguments as parsed, or the exit code once a parse failure (or
/// `--help`, `--version`) is printed: as clap prints it, with anything
/// shaped like a MAAS API key masked, and as JSON too when `--format json`
/// was asked for.
pub(crate) fn parse(args: Vec<OsString>) -> Result<Cli, u8> {
    use clap::Parser as _;
    match Cli::try_parse_from(&args) {
        Ok(cli) => Ok(cli),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Err(u8::try_from(e.exit_code()).unwrap_or(exit_codes::USAGE))
        }
        Err(e) => {
            let rendered = mask_api_key_shapes(&e.render().to_string());
            if asks_for_json(&args) {
                let first = rendered.lines().next().unwrap_or_default();
                let message = first.strip_prefix("error: ").unwrap_or(first);
                let error =
                    report::json_error(exit_codes::USAGE, message, "run the command with --help for its arguments");
                report::print_stdout(&format!("{}\n", serde_json::json!({ "error": error })));
            }
            eprint!("{rendered}");
            Err(exit_codes::USAGE)
        }
    }
}

/// Runs a command; `Ok` carries the exit code of a run that did its job.
pub(crate) fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Render(args) => commands::render(&args),
        Command::Validate(args) => commands::validate(&args),
        Command::Nodes(args) => commands::nodes(&args),
        Command::Power(args) => commands::power(&args),
        Command::Doctor(args) => commands::doctor(&args),
        Command::Dispatch => commands::dispatch(),
    }
}
