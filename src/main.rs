//! `watcher-metal`: see `watcher-metal --help` and the README.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use watcher_metal::exit_codes;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // A panic is a bug; say so plainly, with the internal exit code, and no
    // backtrace that could carry data.
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error{place}; this is a bug in watcher-metal, please report it");
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::from(exit_codes::INTERNAL),
    }
}

/// Runs the command; a failure is printed as its one-line cause and hint,
/// and ends in its own exit code.
fn run(cli: cli::Cli) -> u8 {
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            let hint = error.hint();
            if !hint.is_empty() {
                eprintln!("  hint: {hint}");
            }
            exit_codes::of(&error)
        }
    }
}
