//! The MAAS simulator checked with a client written elsewhere:
//! python-libmaas (`tests/peers/libmaas_check.py`) connects, lists the
//! machines and queries a power state, and must see the simulator's data.
//!
//! Needs WATCHER_METAL_PYTHON: a Python with python-libmaas (see
//! `tests/peers/requirements.txt`). Under CI the variable is required, so
//! the check cannot silently not run.

use std::io::Write;
use std::process::{Command, Stdio};

use metal_sim::{MaasSim, MaasSimConfig, PowerState, SimMachine};
use serde_json::Value;

fn python() -> Option<String> {
    crate::common::peer_python("WATCHER_METAL_PYTHON", "the python-libmaas cross-check")
}

/// Runs the libmaas check against `sim` (querying `system_id`, or the first
/// machine) and returns its summary.
fn libmaas_summary(python: &str, sim: &MaasSim, system_id: Option<&str>) -> Value {
    let mut cmd = Command::new(python);
    cmd.arg("tests/peers/libmaas_check.py").arg(sim.base_url());
    if let Some(id) = system_id {
        cmd.arg(id);
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run the libmaas check");
    child.stdin.take().unwrap().write_all(format!("{}\n", sim.admin_key()).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let secret = sim.admin_key().rsplit(':').next().unwrap().to_string();
    assert!(!stdout.contains(&secret) && !stderr.contains(&secret), "the key was printed");
    assert!(out.status.success(), "libmaas check failed:\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad summary ({e}): {stdout}"))
}

#[test]
fn python_libmaas_reads_the_simulated_maas() {
    let Some(python) = python() else { return };
    let sim = MaasSim::start(MaasSimConfig { machines: SimMachine::generate(25), ..Default::default() }).unwrap();
    let machines = sim.machines();

    let summary = libmaas_summary(&python, &sim, None);
    assert_eq!(summary["machines"], 25);
    assert_eq!(summary["first_fqdn"], machines[0].fqdn());
    assert_eq!(summary["first_system_id"], machines[0].system_id.as_str());
    let ids: Vec<&str> = machines.iter().map(|m| m.system_id.as_str()).collect();
    assert_eq!(summary["system_ids"], serde_json::json!(ids));
    assert_eq!(summary["power_state"], "on");
    assert_eq!(summary["whoami"], "admin");

    // A machine switched off, and a manual one, as libmaas sees them.
    assert!(sim.set_power_state(&machines[1].system_id, PowerState::Off));
    assert_eq!(libmaas_summary(&python, &sim, Some(&machines[1].system_id))["power_state"], "off");
    assert_eq!(libmaas_summary(&python, &sim, Some(&machines[24].system_id))["power_state"], "unknown");

    let stats = sim.stats();
    for endpoint in
        ["GET describe/", "GET machines/", "GET machines/{id}/?op=query_power_state", "GET users/?op=whoami"]
    {
        assert_eq!(stats.by_endpoint.get(endpoint), Some(&3), "{endpoint}: {:?}", stats.by_endpoint);
    }
    assert_eq!(stats.rejected_auth, 0);
}
