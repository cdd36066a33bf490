//! Runs a simulated Nova + Keystone on 127.0.0.1 in the foreground, for
//! benchmarks and manual checks. Prints one line of JSON (`auth_url`,
//! `nova_url`, `username`, `password`, `clients_auth_section`) and serves
//! until killed or until its standard input closes.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use metal_sim::nova::{NovaSim, NovaSimConfig, SimHypervisor};

#[derive(Parser, Debug)]
#[command(name = "nova-sim", about = "Serve a simulated Nova hypervisor API and Keystone on 127.0.0.1")]
struct Args {
    /// Number of hypervisors (hostnames node-0001.maas.., the MAAS simulator's fqdns).
    #[arg(long, default_value_t = 10)]
    hypervisors: usize,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Most hypervisors in one page (Nova's `[api] max_limit`).
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Highest microversion served.
    #[arg(long, default_value = "2.96")]
    max_version: String,
    /// Token lifetime, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: u64,
    /// Region of the catalog endpoints.
    #[arg(long, default_value = "RegionOne")]
    region: String,
    /// Keep serving when standard input closes (stop with a signal instead).
    #[arg(long)]
    ignore_stdin: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = NovaSimConfig {
        hypervisors: SimHypervisor::generate(args.hypervisors),
        page_size: args.page_size,
        max_version: args.max_version,
        token_ttl: Duration::from_secs(args.token_ttl),
        region: args.region,
        ..Default::default()
    };
    let (username, password) = config.users.first().cloned().unwrap_or_default();
    let sim = match NovaSim::start_on_port(config, args.port) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("nova-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let line = serde_json::json!({
        "auth_url": sim.auth_url(),
        "nova_url": sim.nova_url_for("public"),
        "username": username,
        "password": password,
        "clients_auth_section": sim.clients_auth_section(),
    });
    println!("{line}");

    metal_sim::wait_for_stdin_close(args.ignore_stdin);
    drop(sim);
    ExitCode::SUCCESS
}
