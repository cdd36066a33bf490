//! Runs a simulated Ironic + Keystone on 127.0.0.1 in the foreground, for
//! benchmarks and manual checks. Prints one line of JSON (`auth_url`,
//! `ironic_url`, `username`, `password`, `clients_auth_section`) and serves
//! until killed or until its standard input closes.

use std::time::Duration;

use clap::Parser;
use metal_sim::cli::{self, KeystoneArgs, ServeArgs};
use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};

#[derive(Parser, Debug)]
#[command(name = "ironic-sim", about = "Serve a simulated Ironic API and Keystone on 127.0.0.1")]
struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Most nodes in one page (Ironic's max_limit).
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Delay before a power request changes the power state, in milliseconds.
    #[arg(long, default_value_t = 0)]
    power_delay_ms: u64,
    #[command(flatten)]
    keystone: KeystoneArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = IronicSimConfig {
        nodes: SimNode::generate(args.nodes),
        page_size: args.page_size,
        power_delay: Duration::from_millis(args.power_delay_ms),
        token_ttl: args.keystone.token_ttl(),
        region: args.keystone.region.clone(),
        ..Default::default()
    };
    let (username, password) = config.users.first().cloned().unwrap_or_default();
    cli::run(
        &args.serve,
        |port| IronicSim::start_on_port(config, port),
        |sim| {
            let line = serde_json::json!({
                "auth_url": sim.auth_url(),
                "ironic_url": sim.ironic_url(),
                "username": username,
                "password": password,
                "clients_auth_section": sim.clients_auth_section(),
            });
            Ok((line, ()))
        },
    )
}
