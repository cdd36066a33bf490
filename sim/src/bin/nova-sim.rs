//! Runs a simulated Nova + Keystone on 127.0.0.1 in the foreground, for
//! benchmarks and manual checks. Prints one line of JSON (`auth_url`,
//! `nova_url`, `username`, `password`, `clients_auth_section`) and serves
//! until killed or until its standard input closes.

use clap::Parser;
use metal_sim::cli::{self, KeystoneArgs, ServeArgs};
use metal_sim::nova::{NovaSim, NovaSimConfig, SimHypervisor};

#[derive(Parser, Debug)]
#[command(name = "nova-sim", about = "Serve a simulated Nova hypervisor API and Keystone on 127.0.0.1")]
struct Args {
    /// Number of hypervisors (hostnames node-0001.maas.., the MAAS simulator's fqdns).
    #[arg(long, default_value_t = 10)]
    hypervisors: usize,
    /// Most hypervisors in one page (Nova's `[api] max_limit`).
    #[arg(long, default_value_t = 1000)]
    page_size: usize,
    /// Highest microversion served.
    #[arg(long, default_value = "2.96")]
    max_version: String,
    #[command(flatten)]
    keystone: KeystoneArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = NovaSimConfig {
        hypervisors: SimHypervisor::generate(args.hypervisors),
        page_size: args.page_size,
        max_version: args.max_version,
        token_ttl: args.keystone.token_ttl(),
        region: args.keystone.region.clone(),
        ..Default::default()
    };
    let (username, password) = config.users.first().cloned().unwrap_or_default();
    cli::run(
        &args.serve,
        |port| NovaSim::start_on_port(config, port),
        |sim| {
            let line = serde_json::json!({
                "auth_url": sim.auth_url(),
                "nova_url": sim.nova_url_for("public"),
                "username": username,
                "password": password,
                "clients_auth_section": sim.clients_auth_section(),
            });
            Ok((line, ()))
        },
    )
}
