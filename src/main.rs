//! `watcher-metal`: see `watcher-metal --help` and the README.

mod cli;

use std::process::ExitCode;

use watcher_metal::exit_codes;

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    let json = cli::json_output(&cli);
    // A panic is a bug; say so plainly, with the internal exit code, and no
    // backtrace that could carry data.
    std::panic::set_hook(Box::new(move |info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let message = format!("internal error{place}; this is a bug in watcher-metal, please report it");
        cli::print_error(exit_codes::INTERNAL, &message, "", json);
    }));
    match std::panic::catch_unwind(|| run(cli, json)) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::from(exit_codes::INTERNAL),
    }
}

/// Runs the command; a failure is printed as its one-line cause and hint
/// (and as JSON for `--format json`), and ends in its own exit code.
fn run(cli: cli::Cli, json: bool) -> u8 {
    match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            let code = exit_codes::of(&error);
            cli::print_error(code, &error.to_string(), &error.hint(), json);
            code
        }
    }
}
