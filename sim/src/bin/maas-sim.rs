//! Runs a simulated MAAS on 127.0.0.1 in the foreground, for benchmarks and
//! manual checks. Prints one line of JSON (`url`, `api_key`, `ca_pem_file`)
//! and serves until killed or until its standard input closes.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use metal_sim::cli::{self, ServeArgs};
use metal_sim::{MaasSim, MaasSimConfig, SimMachine, TlsNames};

#[derive(Parser, Debug)]
#[command(name = "maas-sim", about = "Serve a simulated MAAS API on 127.0.0.1")]
struct Args {
    /// Number of machines.
    #[arg(long, default_value_t = 10)]
    machines: usize,
    /// Serve HTTPS with a fresh CA (its PEM written to a file).
    #[arg(long)]
    tls: bool,
    /// Delay of each query_power_state, in milliseconds.
    #[arg(long, default_value_t = 0)]
    power_query_delay_ms: u64,
    /// Delay before power_on/power_off change the power state, in milliseconds.
    #[arg(long, default_value_t = 0)]
    power_change_delay_ms: u64,
    /// Most query_power_state at once; more get 503 with Retry-After.
    #[arg(long)]
    max_concurrent_power_queries: Option<usize>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// A file removed when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = MaasSimConfig {
        machines: SimMachine::generate(args.machines),
        tls: args.tls.then_some(TlsNames::Default),
        power_query_delay: Duration::from_millis(args.power_query_delay_ms),
        power_change_delay: Duration::from_millis(args.power_change_delay_ms),
        max_concurrent_power_queries: args.max_concurrent_power_queries,
        ..Default::default()
    };
    cli::run(
        &args.serve,
        |port| MaasSim::start_on_port(config, port),
        |sim| {
            let ca_file = match sim.ca_pem() {
                Some(pem) => {
                    let path =
                        std::env::temp_dir().join(format!("maas-sim-{}-{}-ca.pem", std::process::id(), sim.port()));
                    std::fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
                    Some(RemoveOnDrop(path))
                }
                None => None,
            };
            let line = serde_json::json!({
                "url": sim.base_url(),
                "api_key": sim.admin_key(),
                "ca_pem_file": ca_file.as_ref().map(|f| f.0.display().to_string()),
            });
            Ok((line, ca_file))
        },
    )
}
