//! Damaged listings through the readers the clients use, end to end: a
//! MAAS machines listing (read element by element by `read_json_list`)
//! and Ironic and Nova pages (their lists read element by element by
//! `read_json_page`, into types of the clients' shapes; whole, as JSON
//! values, by `read_json`) are cut, have a byte flipped or inserted, and
//! are served over HTTP from 127.0.0.1 in two writes, so a read can end
//! anywhere in the body. An undamaged body reads back as served; a damaged
//! one yields exactly what serde_json makes of the same bytes, or a typed
//! error, within the timeout.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};
use watcher_metal::clients::http::{build_client, HttpOptions, TransportError};
use watcher_metal::clients::json_body::{read_json, read_json_list, read_json_page, BodyError};
use watcher_metal::clients::maas::Machine;

const TIMEOUT: Duration = Duration::from_secs(5);
const LIMIT: u64 = 1 << 20;
const POWER: [&str; 3] = ["on", "off", "unknown"];

/// How the server ends the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// `Content-Length` is the body's length.
    Length,
    /// No `Content-Length`: the body ends when the connection closes.
    Close,
    /// `Content-Length` promises more than is sent; the connection closes.
    Short,
    /// `Content-Length` promises more than is sent; the connection stays open.
    Stall,
}

#[derive(Clone, Debug)]
struct Reply {
    body: Vec<u8>,
    /// The first write ends here, the second follows a moment later.
    split: usize,
    ending: Ending,
}

/// An HTTP server on 127.0.0.1 answering each connection with the reply
/// set last, then closing it. Stopped and joined on drop, so a failing
/// test leaves no thread behind.
struct Server {
    addr: SocketAddr,
    reply: Arc<Mutex<Option<Reply>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reply: Arc<Mutex<Option<Reply>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (reply, stop) = (reply.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let current = reply.lock().unwrap().clone();
                    if let Some(current) = current {
                        let _ = answer(stream, &current);
                    }
                }
            })
        };
        Server { addr, reply, stop, thread: Some(thread) }
    }

    fn get(&self, reply: Reply) -> reqwest::blocking::Response {
        *self.reply.lock().unwrap() = Some(reply);
        let response = client().get(format!("http://{}/MAAS/api/2.0/machines/", self.addr)).send().unwrap();
        assert_eq!(response.status(), 200);
        response
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_nodelay(true)?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let length = match reply.ending {
        Ending::Length => format!("Content-Length: {}\r\n", reply.body.len()),
        Ending::Close => String::new(),
        Ending::Short | Ending::Stall => format!("Content-Length: {}\r\n", reply.body.len() + 16),
    };
    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let split = reply.split.min(reply.body.len());
    stream.write_all(&reply.body[..split])?;
    stream.flush()?;
    std::thread::sleep(Duration::from_millis(2));
    stream.write_all(&reply.body[split..])?;
    stream.flush()?;
    if reply.ending == Ending::Stall {
        // Held open until the client gives up.
        while stream.read(&mut buf)? > 0 {}
    }
    stream.shutdown(Shutdown::Write)
}

fn client() -> reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| build_client(&HttpOptions::new(TIMEOUT), false).unwrap()).clone()
}

/// How a MAAS listing is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// Over several lines.
    Lines,
    /// On one line, as MAAS writes it, some strings with escapes.
    Escapes,
    /// On one line, no string with an escape.
    Plain,
}

/// A MAAS machines listing: the serialised machines and where each ends.
fn maas_listing(count: usize, style: Style) -> (Vec<u8>, Vec<Machine>, Vec<usize>) {
    let (open, between, close) = match style {
        Style::Lines => ("[\n", ",\n ", "\n]"),
        Style::Escapes | Style::Plain => ("[", ", ", "]"),
    };
    let mut body = open.as_bytes().to_vec();
    let mut machines = Vec::new();
    let mut ends = Vec::new();
    for i in 0..count {
        let description = if style == Style::Plain || i % 7 != 3 { "rack 1" } else { "rack \"1\"\n" };
        let element = json!({
            "system_id": format!("d8n3r{i}"),
            "hostname": format!("node-{i}"),
            "description": description,
            "fqdn": format!("node-{i}.maas"),
            "power_state": POWER[i % 3],
            "power_type": if i % 4 == 0 { Value::Null } else { json!("ipmi") },
            "status_name": "Deployed",
            "zone": {"name": "default", "description": "", "id": 1, "resource_uri": "/MAAS/api/2.0/zones/default/"},
            "pool": if i % 2 == 0 { Value::Null } else { json!({"id": i, "name": "pool-é", "tags": [{}]}) },
            "owner": "admin",
            "locked": i % 5 == 0,
            // A number last, so an element can end with one.
            "status": 6 + i as i64 * 10,
        });
        if i > 0 {
            body.extend_from_slice(between.as_bytes());
        }
        body.extend_from_slice(serde_json::to_string(&element).unwrap().as_bytes());
        ends.push(body.len());
        machines.push(serde_json::from_value(element).unwrap());
    }
    body.extend_from_slice(close.as_bytes());
    (body, machines, ends)
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![Just(Style::Lines), Just(Style::Escapes), Just(Style::Plain)]
}

/// An Ironic node page and a Nova hypervisor page, as the clients read them.
fn pages() -> Vec<Vec<u8>> {
    let ironic = json!({
        "nodes": [
            {"uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "name": "node-0", "power_state": "power on",
             "provision_state": "active", "maintenance": false, "instance_uuid": null,
             "properties": {"cpus": 8, "memory_mb": 16384}},
            {"uuid": "2ca37d1c-14e3-5e3f-bf98-d13e8044d234", "name": null, "power_state": null,
             "provision_state": "available", "maintenance": true, "instance_uuid": null, "properties": {}}
        ],
        "next": "http://127.0.0.1/v1/nodes?limit=2&marker=2ca37d1c-14e3-5e3f-bf98-d13e8044d234"
    });
    let nova = json!({
        "hypervisors": [
            {"id": "b1e43b5f-eec1-44e0-9f10-7b4945c0226d", "hypervisor_hostname": "compute-0.maas",
             "state": "up", "status": "enabled", "servers": [{"uuid": "a", "name": "vm-1"}]},
            {"id": "c2f54c60-ffd2-55f1-a021-8c5a56d1337e", "hypervisor_hostname": "compute-1.maas",
             "state": "down", "status": "disabled", "running_vms": 0}
        ],
        "hypervisors_links": [{"rel": "next", "href": "http://127.0.0.1/v2.1/os-hypervisors/detail?marker=c2"}]
    });
    vec![serde_json::to_vec_pretty(&ironic).unwrap(), serde_json::to_vec(&nova).unwrap()]
}

/// Where in a body damage falls: anywhere, or next to a byte of the JSON
/// structure (`[]{},:"`), where readers decide the most.
#[derive(Clone, Copy, Debug)]
struct Spot {
    raw: usize,
    structural: bool,
    delta: i8,
}

impl Spot {
    /// The offset in `body`, below `bound`.
    fn resolve(self, body: &[u8], bound: usize) -> usize {
        if !self.structural {
            return self.raw % bound;
        }
        let marks: Vec<usize> =
            (0..=body.len()).filter(|&i| body.get(i).is_none_or(|b| b"[]{},:\"".contains(b))).collect();
        let mark = marks[self.raw % marks.len()] as isize + isize::from(self.delta);
        mark.clamp(0, bound as isize - 1) as usize
    }
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    None,
    Cut(Spot),
    Flip(Spot, u8),
    Insert(Spot, u8),
}

impl Damage {
    fn apply(self, body: &[u8]) -> Vec<u8> {
        let mut bytes = body.to_vec();
        match self {
            Damage::None => {}
            Damage::Cut(at) => bytes.truncate(at.resolve(body, body.len())),
            Damage::Flip(at, b) => bytes[at.resolve(body, body.len())] = b,
            Damage::Insert(at, b) => bytes.insert(at.resolve(body, body.len() + 1), b),
        }
        bytes
    }

    /// The first byte the damage touches, if any.
    fn position(self, body: &[u8]) -> Option<usize> {
        match self {
            Damage::None => None,
            Damage::Cut(at) | Damage::Flip(at, _) => Some(at.resolve(body, body.len())),
            Damage::Insert(at, _) => Some(at.resolve(body, body.len() + 1)),
        }
    }

    /// Whether the damaged body is a strict prefix of the original.
    fn is_cut(self) -> bool {
        matches!(self, Damage::Cut(_))
    }
}

fn spot() -> impl Strategy<Value = Spot> {
    (any::<usize>(), any::<bool>(), -2i8..=2).prop_map(|(raw, structural, delta)| Spot { raw, structural, delta })
}

fn damage() -> impl Strategy<Value = Damage> {
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"[]{},:\"\\ \t\n0123456789.eE-+ntfu\x0c".to_vec())];
    prop_oneof![
        1 => Just(Damage::None),
        3 => spot().prop_map(Damage::Cut),
        3 => (spot(), byte.clone()).prop_map(|(at, b)| Damage::Flip(at, b)),
        3 => (spot(), byte).prop_map(|(at, b)| Damage::Insert(at, b)),
    ]
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![Just(Ending::Length), Just(Ending::Close), Just(Ending::Short)]
}

fn runner() -> TestRunner {
    TestRunner::new(Config { failure_persistence: None, ..Config::default() })
}

/// What a body broken off by the server must give: a transport failure
/// if the bytes sent are all valid, else a transport or shape error.
fn check_broken_off(result: &Result<(), BodyError>, damage: Damage) -> Result<(), TestCaseError> {
    match result {
        Err(BodyError::Transport(TransportError::Protocol { .. })) => Ok(()),
        Err(BodyError::Shape { json_declared: true, .. }) if !damage.is_cut() => Ok(()),
        other => Err(TestCaseError::fail(format!("a body broken off gave {other:?}"))),
    }
}

/// Serves a listing of `count` machines with `damage`, ended by `ending`,
/// the first write ending at `split`, and checks what read_json_list makes
/// of it.
fn check_maas_listing(
    server: &Server,
    (count, style): (usize, Style),
    damage: Damage,
    ending: Ending,
    split: usize,
) -> Result<(), TestCaseError> {
    let (body, machines, ends) = maas_listing(count, style);
    let damaged = damage.apply(&body);
    let reply = Reply { split, body: damaged.clone(), ending };
    let started = Instant::now();
    let mut read = Vec::new();
    let result = read_json_list(server.get(reply), LIMIT, TIMEOUT, |m: Machine| read.push(m));
    prop_assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());

    // Whatever the outcome, the machines wholly before the damage were read
    // as they were served. A machine that ends the bytes of a body broken
    // off is not yet known to be whole.
    let broken_off = damage.is_cut() && ending == Ending::Short;
    let before = |end: usize, at: usize| end < at || (end == at && !broken_off);
    let intact = damage.position(&body).map_or(count, |at| ends.iter().filter(|&&end| before(end, at)).count());
    prop_assert!(read.len() >= intact, "{} of {intact} intact machines read: {result:?}", read.len());
    prop_assert_eq!(&read[..intact], &machines[..intact]);

    if ending == Ending::Short {
        return check_broken_off(&result, damage);
    }
    match serde_json::from_slice::<Vec<Machine>>(&damaged) {
        Ok(expected) => {
            prop_assert_eq!(&result, &Ok(()));
            prop_assert_eq!(&read, &expected);
            if matches!(damage, Damage::None) {
                prop_assert_eq!(&read, &machines);
            }
        }
        Err(e) => prop_assert!(
            matches!(result, Err(BodyError::Shape { json_declared: true, .. })),
            "serde_json: {e}; read_json_list: {result:?} after {} machines",
            read.len()
        ),
    }
    Ok(())
}

#[test]
fn damaged_maas_listings_read_as_serde_json_reads_them_or_fail_typed() {
    let server = Server::start();
    let strategy = (1usize..12, style(), damage(), ending(), any::<prop::sample::Index>());
    runner()
        .run(&strategy, |(count, style, damage, ending, split)| {
            let len = maas_listing(count, style).0.len();
            check_maas_listing(&server, (count, style), damage, ending, split.index(len + 2))
        })
        .unwrap();
}

/// A listing long enough to be parsed by two threads (a window of it in
/// parts, each after the first from a guessed element start), damaged
/// anywhere.
#[test]
fn damaged_long_maas_listings_read_as_serde_json_reads_them_or_fail_typed() {
    let server = Server::start();
    let count = 1200;
    let lengths = [Style::Lines, Style::Escapes, Style::Plain].map(|style| (style, maas_listing(count, style).0.len()));
    for (_, len) in lengths {
        assert!(len > 256 * 1024, "{len} bytes is too short to be parsed in parts");
    }
    let strategy = (style(), damage(), ending(), any::<prop::sample::Index>());
    TestRunner::new(Config { cases: 48, failure_persistence: None, ..Config::default() })
        .run(&strategy, |(style, damage, ending, split)| {
            let len = lengths.iter().find(|(s, _)| *s == style).map_or(0, |(_, len)| *len);
            check_maas_listing(&server, (count, style), damage, ending, split.index(len + 2))
        })
        .unwrap();
}

/// Every cut, and every structural byte flipped in or inserted, at and
/// beside the list's own brackets, commas and element boundaries.
#[test]
fn every_damage_to_the_list_structure_reads_as_serde_json_reads_it_or_fails_typed() {
    let server = Server::start();
    let (body, _, _) = maas_listing(3, Style::Lines);
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut spots = Vec::new();
    for (i, &b) in body.iter().enumerate() {
        let outer = depth <= 1;
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth -= 1,
            _ => {}
        }
        if !in_string && (outer || depth <= 1) && b"[]{},".contains(&b) {
            spots.extend([i.saturating_sub(1), i, i + 1]);
        }
    }
    spots.push(body.len());
    spots.sort_unstable();
    spots.dedup();
    let mut cases = 0;
    for &at in &spots {
        let spot = Spot { raw: at, structural: false, delta: 0 };
        let mut damages = vec![Damage::Cut(spot)];
        for &b in b"[]{},:\" \x0c0n" {
            damages.extend([Damage::Flip(spot, b), Damage::Insert(spot, b)]);
        }
        for damage in damages {
            if at >= body.len() && !matches!(damage, Damage::Insert(..)) {
                continue;
            }
            if let Err(e) = check_maas_listing(&server, (3, Style::Lines), damage, Ending::Length, at) {
                panic!("{damage:?}: {e}");
            }
            cases += 1;
        }
    }
    assert!(cases > 300, "{cases} cases");
}

#[test]
fn damaged_ironic_and_nova_pages_read_as_serde_json_reads_them_or_fail_typed() {
    let server = Server::start();
    let strategy = (0usize..2, damage(), ending(), any::<prop::sample::Index>());
    runner()
        .run(&strategy, |(page, damage, ending, split)| {
            let body = &pages()[page];
            let damaged = damage.apply(body);
            let reply = Reply { split: split.index(damaged.len() + 1), body: damaged.clone(), ending };
            let started = Instant::now();
            let result = read_json::<Value>(server.get(reply), LIMIT, TIMEOUT);
            prop_assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
            if ending == Ending::Short {
                return check_broken_off(&result.map(drop), damage);
            }
            match serde_json::from_slice::<Value>(&damaged) {
                Ok(expected) => {
                    prop_assert_eq!(&result, &Ok(expected));
                    if matches!(damage, Damage::None) {
                        prop_assert_eq!(result.unwrap(), serde_json::from_slice::<Value>(body).unwrap());
                    }
                }
                Err(e) => prop_assert!(
                    matches!(result, Err(BodyError::Shape { json_declared: true, .. })),
                    "serde_json: {e}; read_json: {result:?}"
                ),
            }
            Ok(())
        })
        .unwrap();
}

/// An Ironic node and a Nova hypervisor, the fields the clients read.
#[derive(Debug, PartialEq, Deserialize)]
struct IronicNode {
    uuid: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    power_state: Option<String>,
    #[serde(default)]
    provision_state: Option<String>,
    #[serde(default)]
    extra: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Hypervisor {
    id: Value,
    #[serde(default)]
    hypervisor_hostname: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    running_vms: Option<u64>,
    #[serde(default)]
    servers: Option<Vec<IgnoredAny>>,
}

/// The pages as the clients read them (the list streamed, the rest after)
/// and as serde_json reads them whole.
#[derive(Debug, PartialEq, Deserialize)]
struct IronicRest {
    #[allow(dead_code)]
    nodes: Vec<IgnoredAny>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct IronicPage {
    nodes: Vec<IronicNode>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct NovaRest {
    #[serde(default)]
    #[allow(dead_code)]
    hypervisors: Vec<IgnoredAny>,
    #[serde(default)]
    hypervisors_links: Vec<Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct NovaPage {
    #[serde(default)]
    hypervisors: Vec<Hypervisor>,
    #[serde(default)]
    hypervisors_links: Vec<Value>,
}

/// Serves `body` with `damage` and checks what `read_json_page` makes of
/// it against serde_json's reading of the whole page.
fn check_page<T, R, W>(
    server: &Server,
    body: &[u8],
    list: &str,
    damage: Damage,
    ending: Ending,
    split: usize,
    whole: impl Fn(W) -> (Vec<T>, R),
) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + Send + PartialEq + std::fmt::Debug,
    R: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    W: serde::de::DeserializeOwned,
{
    let damaged = damage.apply(body);
    let reply = Reply { split: split.min(damaged.len()), body: damaged.clone(), ending };
    let started = Instant::now();
    let mut read = Vec::new();
    let result = read_json_page::<T, R>(server.get(reply), LIMIT, TIMEOUT, list, |e| read.push(e));
    prop_assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
    if ending == Ending::Short {
        return check_broken_off(&result.map(drop), damage);
    }
    match serde_json::from_slice::<W>(&damaged).map(whole) {
        Ok((elements, rest)) => {
            prop_assert_eq!(result, Ok(rest));
            prop_assert_eq!(read, elements);
        }
        Err(e) => prop_assert!(
            matches!(result, Err(BodyError::Shape { json_declared: true, .. })),
            "serde_json: {e}; read_json_page: {result:?}"
        ),
    }
    Ok(())
}

#[test]
fn damaged_ironic_and_nova_pages_stream_as_serde_json_reads_them_or_fail_typed() {
    let server = Server::start();
    let strategy = (0usize..2, damage(), ending(), any::<prop::sample::Index>());
    runner()
        .run(&strategy, |(page, damage, ending, split)| {
            let body = &pages()[page];
            let split = split.index(body.len() + 2);
            if page == 0 {
                check_page(&server, body, "nodes", damage, ending, split, |p: IronicPage| {
                    (p.nodes, IronicRest { nodes: Vec::new(), next: p.next })
                })
            } else {
                check_page(&server, body, "hypervisors", damage, ending, split, |p: NovaPage| {
                    (p.hypervisors, NovaRest { hypervisors: Vec::new(), hypervisors_links: p.hypervisors_links })
                })
            }
        })
        .unwrap();
}

#[test]
fn a_listing_that_stops_coming_times_out_with_what_came_read() {
    let server = Server::start();
    let (body, machines, ends) = maas_listing(3, Style::Lines);
    let sent = body[..ends[1] + 4].to_vec();
    // The clients give the request and the reader the same timeout.
    let timeout = Duration::from_millis(400);
    *server.reply.lock().unwrap() = Some(Reply { split: sent.len(), body: sent, ending: Ending::Stall });
    let client = build_client(&HttpOptions::new(timeout), false).unwrap();
    let response = client.get(format!("http://{}/MAAS/api/2.0/machines/", server.addr)).send().unwrap();
    let started = Instant::now();
    let mut read = Vec::new();
    let result = read_json_list(response, LIMIT, timeout, |m: Machine| read.push(m));
    assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
    assert_eq!(result, Err(BodyError::Transport(TransportError::Timeout { after: timeout })));
    assert_eq!(read, machines[..2]);
}
