//! Faults: a MAAS that misbehaves on the wire, a process killed mid-write,
//! and hooks running at the same time. Every command must end within its
//! timeout with a clear error, in bounded memory, and watcher.conf must
//! always hold a whole file.

use std::cell::Cell;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use metal_sim::{Fault, FaultRule, MaasSim, MaasSimConfig};

/// Runs `validate` against a simulator whose `version/` misbehaves as
/// `fault` does, with a 2 s timeout.
fn validate_with(fault: Fault) -> (Run, Duration) {
    command_with("version/", fault, &["validate"])
}

/// Runs a command against a simulator where requests to `path` misbehave.
fn command_with(path: &str, fault: Fault, args: &[&str]) -> (Run, Duration) {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    sim.add_fault(FaultRule { path_contains: path.into(), op: None, times: None, fault });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, &format!("maas-url: {}\nmaas-api-key: {}\nmaas-timeout: 2\n", sim.base_url(), sim.admin_key()));
    let started = Instant::now();
    let mut all = args.to_vec();
    all.extend(["-c", path_str(&config)]);
    let r = run_measured(&all);
    let took = started.elapsed();
    assert!(!r.stderr.contains(&sim.admin_key()));
    (r, took)
}

fn error_line(r: &Run) -> &str {
    r.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or("")
}

thread_local! {
    /// The largest resident set, in KiB, of the children this thread ran
    /// through `run_measured`. libtest runs each test on a thread of its
    /// own, and the other modules' children (Python peers, cargo) share
    /// this process: getrusage's RUSAGE_CHILDREN would count them too.
    static MAX_CHILD_RSS_KIB: Cell<i64> = const { Cell::new(0) };
}

/// Forks `argv[2:]` from a small Python process, waits for it, writes its
/// largest resident set (KiB) to the file `argv[1]`, and ends as it ended.
/// A child's ru_maxrss counts the memory of the process it was spawned from
/// (the address space it had until exec): spawned from this test binary,
/// with every module's data in it, it would measure the binary.
const FORK_AND_MEASURE: &str = "import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], 'w') as f:
    f.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
sys.exit(os.WEXITSTATUS(status))
";

/// Runs the binary as `run` does, and notes its largest resident set.
fn run_measured(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let rss = dir.path().join("maxrss");
    let out = Command::new("python3")
        .args(["-c", FORK_AND_MEASURE])
        .arg(&rss)
        .arg(bin())
        .args(args)
        .env_remove("JUJU_CONTEXT_ID")
        .env_remove("JUJU_DISPATCH_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("spawn python3");
    let rss_kib: i64 = fs::read_to_string(&rss).expect("the child's maxrss").parse().unwrap();
    MAX_CHILD_RSS_KIB.with(|max| max.set(max.get().max(rss_kib)));
    Run::from_output(out)
}

/// The largest resident set of any child this test has run through
/// `run_measured`, in KiB.
fn max_child_rss_kib() -> i64 {
    MAX_CHILD_RSS_KIB.with(Cell::get)
}

#[test]
fn a_maas_that_never_answers_times_out() {
    let (r, took) = validate_with(Fault::Hang);
    assert_eq!((r.code, error_line(&r)), (22, "error: no answer within 2 s"));
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_maas_that_answers_one_byte_a_second_times_out() {
    let (r, took) = validate_with(Fault::Trickle { bytes_per_sec: 1 });
    assert_eq!((r.code, error_line(&r)), (22, "error: no answer within 2 s"));
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn one_deadline_covers_the_whole_request_body_included() {
    // The listing's headers arrive after 1.5 s and its body, about 5 s of it
    // at this rate, keeps coming: the request must still end at its 2 s, as
    // Watcher's own calls do, not 2 s after the headers.
    let sim =
        MaasSim::start(MaasSimConfig { machines: metal_sim::SimMachine::generate(40), ..Default::default() }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, &format!("maas-url: {}\nmaas-api-key: {}\nmaas-timeout: 2\n", sim.base_url(), sim.admin_key()));
    let listing_bytes = {
        let r = run(&["nodes", "--format", "json", "-c", path_str(&config)]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.len() as u32
    };
    let rate = (listing_bytes / 5).max(200);
    sim.add_fault(FaultRule {
        path_contains: "machines/".into(),
        op: None,
        times: None,
        fault: Fault::LateTrickle { delay: Duration::from_millis(1500), bytes_per_sec: rate },
    });
    let started = Instant::now();
    let r = run(&["nodes", "-c", path_str(&config)]);
    let took = started.elapsed();
    assert_eq!((r.code, error_line(&r)), (22, "error: no answer within 2 s"), "{}", r.stderr);
    assert!(took < Duration::from_millis(3500), "the request ran {took:?} against a 2 s timeout");
}

#[test]
fn an_endless_body_is_cut_off_in_bounded_memory() {
    // On version/ the first bytes already have the wrong shape.
    let (r, _) = validate_with(Fault::EndlessBody);
    assert_eq!(r.code, 35, "{}", r.stderr);
    // An endless machine listing, counted as it streams (validate) or
    // collected (nodes): both end at the timeout.
    for args in [&["validate"][..], &["nodes", "--format", "json"][..]] {
        let (r, took) = command_with("machines/", Fault::EndlessBody, args);
        assert_eq!((r.code, error_line(&r)), (22, "error: no answer within 2 s"), "{args:?}");
        // With --format json, only the error object.
        let partial = |l: &str| !l.starts_with("ok: ") && !l.starts_with(r#"{"error":{"#);
        assert!(!r.stdout.lines().any(partial), "no partial listing is printed: {}", r.stdout);
        assert!(took < Duration::from_secs(20), "{took:?}");
    }
    assert!(max_child_rss_kib() < 300 * 1024, "a child used {} KiB", max_child_rss_kib());
}

#[test]
fn a_connection_closed_mid_answer_is_reported() {
    let (r, _) = validate_with(Fault::CloseMidResponse);
    assert_eq!(r.code, 38, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: connection failed: "), "{}", r.stderr);
}

#[test]
fn a_two_gigabyte_content_length_is_not_believed() {
    let (r, took) = command_with("machines/", Fault::HugeContentLength, &["nodes"]);
    assert_eq!(r.code, 38, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: connection failed: "), "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(max_child_rss_kib() < 200 * 1024, "a child used {} KiB", max_child_rss_kib());
}

#[test]
fn garbage_instead_of_http_is_reported() {
    let (r, _) = validate_with(Fault::Garbage);
    assert_eq!(r.code, 38, "{}", r.stderr);
    assert!(error_line(&r).starts_with("error: connection failed: "), "{}", r.stderr);
}

/// A large watcher.conf, so that a write takes long enough to be killed
/// in the middle of it.
fn big_conf() -> String {
    let mut text = String::from("[DEFAULT]\ndebug = true\n");
    for i in 0..60_000 {
        text.push_str(&format!("# padding line {i} to make the file large enough to be interrupted\n"));
    }
    text
}

#[test]
fn killed_mid_write_leaves_old_or_new_never_partial() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let base = big_conf();
    write(&conf, &base);
    let configs: Vec<_> = ["http://10.0.0.1:5240/MAAS", "http://10.0.0.2:5240/MAAS"]
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let path = dir.path().join(format!("charm-{i}.yaml"));
            write(
                &path,
                &format!(
                    "maas-url: {url}\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
                    conf.display(),
                    drop_in_root(&conf).display()
                ),
            );
            path
        })
        .collect();
    // The two whole files a run can produce.
    let outputs: Vec<String> = configs
        .iter()
        .map(|c| {
            let out = dir.path().join("expected.conf");
            write(&out, &base);
            assert_eq!(run(&["render", "--merge", "-c", path_str(c), "-o", path_str(&out)]).code, 0);
            fs::read_to_string(&out).unwrap()
        })
        .collect();
    let _ = fs::remove_file(dir.path().join("expected.conf"));
    let _ = fs::remove_file(dir.path().join(".expected.conf.lock"));

    let mut killed_mid_run = 0;
    for i in 0..40u64 {
        let config = &configs[(i % 2) as usize];
        let mut child = Command::new(bin())
            .args(["render", "--merge", "-c", path_str(config)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of the kill from "at once" to "about done".
        std::thread::sleep(Duration::from_micros((i * 7919) % 12_000));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_mid_run += 1;
        }
        let now = fs::read_to_string(&conf).unwrap();
        assert!(now == base || outputs.contains(&now), "partial file after kill {i} ({} bytes)", now.len());
    }
    assert!(killed_mid_run > 0, "no run was interrupted; the test proved nothing");
    // The next run cleans up whatever temporary files the killed ones left.
    assert_eq!(run(&["render", "--merge", "-c", path_str(&configs[0])]).code, 0);
    let leftovers = temp_files(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(fs::read_to_string(&conf).unwrap(), outputs[0]);
}

#[test]
fn concurrent_runs_serialise() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, &big_conf());
    let configs: Vec<_> = (0..2)
        .map(|i| {
            let path = dir.path().join(format!("charm-{i}.yaml"));
            write(
                &path,
                &format!(
                    "maas-url: http://10.0.0.{i}:5240/MAAS\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
                    conf.display(), drop_in_root(&conf).display()
                ),
            );
            path
        })
        .collect();
    let children: Vec<_> = (0..8)
        .map(|i| {
            Command::new(bin())
                .args(["render", "--merge", "-c", path_str(&configs[i % 2])])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let text = fs::read_to_string(&conf).unwrap();
    assert_eq!(text.matches("[maas_client]").count(), 1);
    assert_eq!(text.matches("[ironic_client]").count(), 1);
    assert!(text.starts_with("[DEFAULT]\ndebug = true\n# padding line 0 "));
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
}
