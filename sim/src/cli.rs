//! What the simulators' binaries share: the options each of them takes, and
//! running a simulator in the foreground (start it, print one line of JSON
//! about it, serve until standard input closes, stop it).

use std::io;
use std::time::Duration;

use anyhow::Context;

use crate::util::wait_for_stdin_close;

/// Where and how long a simulator binary serves.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Keep serving when standard input closes (stop with a signal instead).
    #[arg(long)]
    pub ignore_stdin: bool,
}

/// The Keystone in front of an OpenStack simulator.
#[derive(clap::Args, Debug, Clone)]
pub struct KeystoneArgs {
    /// Token lifetime, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Region of the catalog endpoints.
    #[arg(long, default_value = "RegionOne")]
    pub region: String,
}

impl KeystoneArgs {
    /// The token lifetime.
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl)
    }
}

/// Runs a simulator binary: `start(port)` starts the simulator,
/// `describe` gives the JSON line printed about it and a value kept until
/// the simulator has stopped (a file to remove, say), then it serves until
/// standard input closes (or for ever with `--ignore-stdin`). A failure
/// comes back with what was being done, for `main` to print.
pub fn run<S, G>(
    args: &ServeArgs,
    start: impl FnOnce(u16) -> io::Result<S>,
    describe: impl FnOnce(&S) -> anyhow::Result<(serde_json::Value, G)>,
) -> anyhow::Result<()> {
    let sim = start(args.port).with_context(|| format!("cannot start on 127.0.0.1:{}", args.port))?;
    let (line, keep) = describe(&sim)?;
    println!("{line}");
    wait_for_stdin_close(args.ignore_stdin);
    drop(sim);
    drop(keep);
    Ok(())
}
