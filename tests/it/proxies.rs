//! Proxies, as Watcher goes through them: MAAS never (python-libmaas's
//! aiohttp session does not trust the environment), Keystone, Ironic and
//! Nova through the proxy variables of the environment Watcher's services
//! run with (keystoneauth's requests session trusts it), read as requests
//! reads them. The real peers judge: python-libmaas and requests from
//! Watcher 12.0.0's venv (Ubuntu 24.04's versions), and a loopback proxy
//! that records every request sent through it. The charm's side is in
//! `charm/proxies.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use metal_sim::ironic::{IronicSim, IronicSimConfig, SimNode};
use metal_sim::{MaasSim, MaasSimConfig};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};
use watcher_metal::clients::proxy::Proxies;

use crate::common::*;

/// An HTTP forward proxy on 127.0.0.1 that records the request line of
/// every request sent through it (`GET http://127.0.0.1:PORT/path`) and
/// forwards it, one request per connection. `CONNECT` is recorded and
/// refused. Dropping it stops it.
pub(crate) struct RecordingProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingProxy {
    pub(crate) fn start() -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen_by, stop_by) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_by.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let seen = seen_by.clone();
                std::thread::spawn(move || {
                    let _ = relay(stream, &seen);
                });
            }
        });
        RecordingProxy { port, seen, stop, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines seen so far.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads an HTTP head (up to the blank line) and returns its lines.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(lines);
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Ok(lines);
        }
        lines.push(line);
    }
}

fn content_length(head: &[String]) -> usize {
    head.iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The head with its hop-by-hop connection headers replaced by
/// `Connection: close`.
fn closing(head: &[String]) -> String {
    let mut text = String::new();
    for line in head {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(name.as_str(), "connection" | "proxy-connection" | "keep-alive") {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
    text.push_str("Connection: close\r\n\r\n");
    text
}

fn relay(client: TcpStream, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let head = read_head(&mut reader)?;
    let Some(request_line) = head.first() else { return Ok(()) };
    let mut words = request_line.split_whitespace();
    let (method, target, version) =
        (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or("HTTP/1.1"));
    seen.lock().unwrap().push(format!("{method} {target}"));
    let Some(rest) = target.strip_prefix("http://").filter(|_| method != "CONNECT") else {
        client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        return Ok(());
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut body = vec![0; content_length(&head)];
    reader.read_exact(&mut body)?;

    let upstream = TcpStream::connect(authority)?;
    upstream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!("{method} {path} {version}\r\n");
    request.push_str(&closing(&head[1..]));
    (&upstream).write_all(request.as_bytes())?;
    (&upstream).write_all(&body)?;
    let mut answer = BufReader::new(upstream);
    let response_head = read_head(&mut answer)?;
    let mut response_body = vec![0; content_length(&response_head)];
    answer.read_exact(&mut response_body)?;
    let mut response = response_head.first().cloned().unwrap_or_default();
    response.push_str("\r\n");
    response.push_str(&closing(&response_head[1..]));
    client.write_all(response.as_bytes())?;
    client.write_all(&response_body)?;
    client.shutdown(Shutdown::Both)
}

/// Every proxy variable there is, set to `url`, and no bypass list.
pub(crate) fn proxy_environment(url: &str) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> =
        ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"]
            .into_iter()
            .map(|name| (name, url.to_owned()))
            .collect();
    env.extend([("no_proxy", String::new()), ("NO_PROXY", String::new())]);
    env
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Watcher 12.0.0's venv: python-libmaas, keystoneauth and requests at
/// Ubuntu 24.04's versions.
fn python() -> Option<String> {
    peer_python("WATCHER12_PYTHON", "the proxy checks against python-libmaas and requests")
}

#[test]
fn maas_is_reached_directly_whatever_the_environment_says() {
    let sim = MaasSim::start(MaasSimConfig::default()).unwrap();
    let proxy = RecordingProxy::start();
    let env = proxy_environment(&proxy.url());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, &format!("maas-url: {}\nmaas-api-key: {}\n", sim.base_url(), sim.admin_key()));
    for args in [&["validate"][..], &["nodes"], &["power", "status", &sim.machines()[0].system_id]] {
        let mut all = args.to_vec();
        all.extend(["-c", path_str(&config)]);
        let r = run_with(&all, &borrowed(&env), None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    assert_eq!(proxy.seen(), Vec::<String>::new(), "MAAS was asked through the environment's proxy");

    // python-libmaas itself, in the same environment.
    let Some(python) = python() else { return };
    let mut child = Command::new(python)
        .arg("tests/peers/libmaas_check.py")
        .arg(sim.base_url())
        .envs(borrowed(&env))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{}\n", sim.admin_key()).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(proxy.seen(), Vec::<String>::new(), "python-libmaas went through the environment's proxy");
}

/// Keystone and Ironic simulated, and a charm config whose watcher.conf
/// holds their credentials.
struct Ironic {
    sim: IronicSim,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

impl Ironic {
    fn start() -> Ironic {
        let sim = IronicSim::start(IronicSimConfig { nodes: SimNode::generate(3), ..Default::default() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let conf = conf_path(dir.path());
        write(&conf, &format!("[DEFAULT]\ndebug = false\n\n{}", sim.clients_auth_section()));
        let config = dir.path().join("charm.yaml");
        write(&config, &format!("watcher-conf-path: {}\n", conf.display()));
        Ironic { sim, dir, config }
    }

    /// `watcher-metal nodes` with `env`; the nodes listed.
    fn nodes(&self, env: &[(&'static str, String)]) -> Run {
        let r = run_with(&["nodes", "-c", path_str(&self.config)], &borrowed(env), None);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("3 nodes"), "{}", r.stdout);
        r
    }
}

/// The requests a proxy saw, as `METHOD path` below the simulator.
fn paths(proxy: &RecordingProxy, sim: &IronicSim) -> Vec<String> {
    let base = format!("http://127.0.0.1:{}", sim.port());
    proxy.seen().iter().map(|l| l.replacen(&base, "", 1)).collect()
}

#[test]
fn the_command_line_uses_the_services_proxies_where_they_run_and_its_own_elsewhere() {
    let ironic = Ironic::start();
    let (services, own) = (RecordingProxy::start(), RecordingProxy::start());
    let mut env = proxy_environment(&own.url());

    // Watcher's decision engine runs here, with a proxy of its own.
    let show = format!("LoadState=loaded\nEnvironment=\"http_proxy={}\" NOTE=x\n", services.url());
    let systemd = FakeJuju::new("{}", None);
    systemd.set_systemd(&show, "LANG=C.UTF-8\n");
    env.push(("PATH", systemd.path_env()));
    ironic.nodes(&env);
    let seen = paths(&services, &ironic.sim);
    assert!(seen.contains(&"POST /identity/v3/auth/tokens".to_owned()), "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("GET /baremetal/v1/nodes")), "{seen:?}");
    assert_eq!(own.seen(), Vec::<String>::new());

    // Its no_proxy, from an environment file, names the simulator's host.
    let file = systemd.dir.path().join("watcher.env");
    write(&file, &format!("# site proxy\nhttp_proxy='{}'\nno_proxy=localhost,127.0.0.0/8\n", services.url()));
    let show = format!("LoadState=loaded\nEnvironmentFiles={} (ignore_errors=no)\n", file.display());
    let before = services.seen().len();
    systemd.set_systemd(&show, "");
    ironic.nodes(&env);
    assert_eq!(services.seen().len(), before, "no_proxy was not honoured");
    assert_eq!(own.seen(), Vec::<String>::new());

    // Watcher is not on this machine: the command's own environment.
    systemd.set_systemd("LoadState=not-found\n", "");
    ironic.nodes(&env);
    assert!(paths(&own, &ironic.sim).contains(&"POST /identity/v3/auth/tokens".to_owned()), "{:?}", own.seen());
    assert_eq!(services.seen().len(), before);

    // keystoneauth, as Watcher logs in, goes through the environment's proxy.
    let Some(python) = python() else { return };
    // keystoneauth finds the version in the URL (the simulator has no
    // version discovery).
    let text = std::fs::read_to_string(conf_path(ironic.dir.path())).unwrap();
    let conf = ironic.dir.path().join("keystoneauth.conf");
    write(&conf, &text.replace(&ironic.sim.auth_url(), &format!("{}/v3", ironic.sim.auth_url())));
    let login = |env: &[(&'static str, String)]| {
        let out = Command::new(&python)
            .arg("tests/peers/keystoneauth_login.py")
            .arg(&conf)
            .envs(borrowed(env))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
    };
    let before = services.seen().len();
    login(&proxy_environment(&services.url()));
    assert!(paths(&services, &ironic.sim)[before..].contains(&"POST /identity/v3/auth/tokens".to_owned()));
    let mut bypassed = proxy_environment(&services.url());
    bypassed.push(("no_proxy", "localhost,127.0.0.0/8".to_owned()));
    let before = services.seen().len();
    login(&bypassed);
    assert_eq!(services.seen().len(), before, "keystoneauth went through the proxy despite no_proxy");
}

#[test]
fn a_proxy_that_cannot_be_reached_is_named_with_where_it_comes_from() {
    let ironic = Ironic::start();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let systemd = FakeJuju::new("{}", None);
    systemd.set_systemd(&format!("LoadState=loaded\nEnvironment=\"http_proxy=http://user:pw@127.0.0.1:{port}\"\n"), "");
    let env = [("PATH", systemd.path_env())];
    let r = run_with(&["nodes", "-c", path_str(&ironic.config)], &borrowed(&env), None);
    assert_eq!(r.code, i32::from(watcher_metal::exit_codes::REFUSED), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("connection refused by the proxy 127.0.0.1:{port}")), "{}", r.stderr);
    assert!(r.stderr.contains("http_proxy") && !r.stderr.contains("auth_url"), "{}", r.stderr);
    assert!(!r.stderr.contains("pw"), "the proxy's password: {}", r.stderr);
}

/// One proxy choice for the differential test: an environment (one value
/// a name, in order) and the URL asked for.
fn cases() -> impl Strategy<Value = (Vec<(String, String)>, String)> {
    let proxy_names = prop::sample::select(vec![
        "http_proxy",
        "HTTP_PROXY",
        "Http_Proxy",
        "HTTP_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "ftp_proxy",
    ]);
    let proxy_values = prop::sample::select(vec![
        "",
        "http://p1:3128",
        "p2:8080",
        "https://user:pw@p3:8443",
        "http://P4.Example.COM/",
        "socks5://p5:1080",
    ]);
    let no_proxy_names = prop::sample::select(vec!["no_proxy", "NO_PROXY", "No_Proxy"]);
    let no_proxy_values = prop::sample::select(vec![
        "",
        "*",
        "example.com",
        ".example.com",
        "ample.com",
        "10.0.0.0/8",
        "10.1.2.3",
        "10.1.2.3/33",
        "keystone:5000",
        " localhost , 127.0.0.1 ",
        "EXAMPLE.COM,nova",
        "::1",
        "[::1]:6385",
    ]);
    let var = prop_oneof![
        4 => (proxy_names, proxy_values),
        2 => (no_proxy_names, no_proxy_values),
        1 => Just(("REQUEST_METHOD", "GET")),
    ];
    let urls = prop::sample::select(vec![
        "http://keystone.example.com:5000/v3",
        "https://keystone.example.com/v3",
        "http://10.1.2.3:5000/",
        "https://10.200.0.1:13000/",
        "http://keystone:5000/v3",
        "https://nova:8774/v2.1",
        "http://[::1]:6385/",
        "http://localhost:6385/v1",
        "https://sub.ample.com/",
    ]);
    (prop::collection::vec(var, 0..7), urls).prop_map(|(vars, url)| {
        let mut env: Vec<(String, String)> = Vec::new();
        for (name, value) in vars {
            if !env.iter().any(|(n, _)| n == name) {
                env.push((name.to_owned(), value.to_owned()));
            }
        }
        (env, url.to_owned())
    })
}

/// Our choice in the peer's terms: null, or the proxy's scheme, host, port
/// and user; a proxy we refuse must be one requests cannot use as an HTTP
/// proxy either (not http or https).
fn ours(env: &[(String, String)], url: &str, theirs: &Value) -> Value {
    match Proxies::from_environment(env).proxy_for(&url::Url::parse(url).unwrap()) {
        Ok(None) => Value::Null,
        Ok(Some(proxy)) => json!({
            "scheme": proxy.scheme(),
            "host": proxy.host_str(),
            "port": proxy.port_or_known_default(),
            "user": Some(proxy.username()).filter(|u| !u.is_empty()),
        }),
        Err(_) => match theirs["scheme"].as_str() {
            Some(scheme) if scheme != "http" && scheme != "https" => theirs.clone(),
            _ => Value::from("refused"),
        },
    }
}

#[test]
fn proxies_are_read_as_requests_reads_them() {
    let Some(python) = python() else { return };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let all: Vec<_> = (0..500).map(|_| cases().new_tree(&mut runner).unwrap().current()).collect();
    let input: String = all.iter().map(|(env, url)| format!("{}\n", json!({"env": env, "url": url}))).collect();
    let mut child = Command::new(python)
        .arg("tests/peers/requests_proxies.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(theirs.len(), all.len());
    let mut proxied = 0;
    for ((env, url), theirs) in all.iter().zip(&theirs) {
        assert_eq!(&ours(env, url, theirs), theirs, "{env:?} for {url}");
        proxied += usize::from(!theirs.is_null());
    }
    // Both outcomes are well represented.
    assert!(proxied > 100 && proxied < 450, "{proxied} of {} cases go through a proxy", all.len());
}
