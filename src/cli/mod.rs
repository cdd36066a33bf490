//! The command line: `args` (what clap parses), `commands` (one function
//! per command, calling the operations), `report` (what they print).

mod args;
mod commands;
mod report;

pub(crate) use args::Cli;
use args::Command;
use watcher_metal::ops::Error;

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
