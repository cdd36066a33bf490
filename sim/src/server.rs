//! The loopback server shared by the simulators: a listener on
//! `127.0.0.1`, one thread per connection, optional TLS, keep-alive, and the
//! raw socket behaviours used for fault injection; and [`Running`], the
//! service-plus-server pair each simulator's handle holds. Stopping it
//! closes every connection and joins every thread.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::http::{ReadError, Reader, Request, Response};

/// How long an idle keep-alive connection is kept open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Locks a mutex, ignoring poisoning (a panicking handler thread must not
/// take the whole server down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a service answers to one request.
pub(crate) enum Reply {
    /// A normal response.
    Send(Response),
    /// Send this valid response at `bytes_per_sec`.
    Trickle(Response, u32),
    /// Accept the request and never answer, until the client or the server
    /// closes the connection.
    Hang,
    /// Send the head of this response (its body ignored) with chunked
    /// transfer coding, then body chunks forever.
    EndlessBody(Response),
    /// Send this response's head (with its full `Content-Length`) and half of
    /// its body, then close.
    CloseMidResponse(Response),
    /// Send this response's head with `Content-Length: 2147483648` and its
    /// body (a few bytes), wait a little, then close.
    HugeContentLength(Response),
    /// Send bytes that are not HTTP, then close.
    Garbage,
}

/// Facts about the connection a request came in on.
pub(crate) struct ConnInfo<'a> {
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The server's port.
    pub port: u16,
    /// The server's stop signal, for interruptible waits.
    pub stop: &'a StopSignal,
}

/// Answers requests.
pub(crate) trait Service: Send + Sync + 'static {
    fn handle(&self, request: Request, conn: &ConnInfo<'_>) -> Reply;
}

/// Signals that the server is stopping; lets threads sleep interruptibly.
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
    flag: AtomicBool,
}

impl StopSignal {
    fn new() -> StopSignal {
        StopSignal { stopped: Mutex::new(false), cond: Condvar::new(), flag: AtomicBool::new(false) }
    }

    /// Whether the server is stopping.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        *lock(&self.stopped) = true;
        self.cond.notify_all();
    }

    /// Sleeps for `d`, or less if the server stops. Returns `false` if it
    /// stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = lock(&self.stopped);
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            stopped = self.cond.wait_timeout(stopped, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        false
    }
}

struct Shared {
    stop: StopSignal,
    /// A clone of every open connection's socket, to shut it down on stop.
    conns: Mutex<HashMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
}

/// A running server. Dropping it stops it.
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = a free port) and starts serving.
    pub fn start(port: u16, tls: Option<Arc<rustls::ServerConfig>>, service: Arc<dyn Service>) -> io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: StopSignal::new(),
            conns: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("sim-accept-{}", addr.port()))
                .spawn(move || accept_loop(listener, shared, tls, service))?
        };
        Ok(Server { addr, shared, acceptor: Some(acceptor) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes all connections, and joins all threads.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.shared.stop.trigger();
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = acceptor.join();
        for stream in lock(&self.shared.conns).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let workers: Vec<_> = lock(&self.shared.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A service being served on 127.0.0.1: what each simulator's public handle
/// holds. Dropping it stops the server.
pub(crate) struct Running<S> {
    server: Server,
    service: Arc<S>,
}

impl<S: Service> Running<S> {
    /// Serves `service` on `127.0.0.1:port` (0 = a free port), over TLS with
    /// `tls`.
    pub fn start(service: S, port: u16, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Running<S>> {
        let service = Arc::new(service);
        let server = Server::start(port, tls, service.clone())?;
        Ok(Running { server, service })
    }
}

impl<S> Running<S> {
    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn local_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// The service answering the requests.
    pub fn service(&self) -> &S {
        &self.service
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: Arc<dyn Service>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    for stream in listener.incoming() {
        if shared.stop.is_stopped() {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(_) => {
                // Out of file descriptors or similar: back off a little.
                shared.stop.sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let Ok(registered) = stream.try_clone() else { continue };
        lock(&shared.conns).insert(id, registered);
        let worker = {
            let shared = shared.clone();
            let tls = tls.clone();
            let service = service.clone();
            std::thread::Builder::new().name(format!("sim-conn-{port}-{id}")).spawn(move || {
                serve_connection(stream, tls, &*service, &shared.stop, port);
                lock(&shared.conns).remove(&id);
            })
        };
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        match worker {
            Ok(w) => workers.push(w),
            Err(_) => {
                if let Some(s) = lock(&shared.conns).remove(&id) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// Ends the connection: TLS close_notify, then FIN.
    fn close(&mut self) {
        match self {
            Stream::Plain(s) => {
                let _ = s.shutdown(Shutdown::Write);
            }
            Stream::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                let _ = s.sock.shutdown(Shutdown::Write);
            }
        }
    }
}

fn serve_connection(
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: &dyn Service,
    stop: &StopSignal,
    port: u16,
) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(raw) = tcp.try_clone() else { return };
    let is_tls = tls.is_some();
    let mut stream = match tls {
        Some(config) => match rustls::ServerConnection::new(config) {
            Ok(conn) => Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            Err(_) => return,
        },
        None => Stream::Plain(tcp),
    };
    let info = ConnInfo { tls: is_tls, port, stop };
    let mut reader = Reader::new();
    loop {
        if stop.is_stopped() {
            break;
        }
        let request = match reader.read_request(&mut stream) {
            Ok(r) => r,
            Err(ReadError::Closed) | Err(ReadError::Io(_)) => break,
            Err(ReadError::Bad(_)) => {
                let page = crate::http::nginx_page(400);
                let resp = Response::new(400, "text/html", page);
                let _ = stream.write_all(&resp.to_bytes(true, false));
                stream.close();
                break;
            }
            Err(ReadError::TooLarge) => {
                let resp = Response::new(413, "text/html", crate::http::nginx_page(413));
                let _ = stream.write_all(&resp.to_bytes(true, false));
                stream.close();
                break;
            }
        };
        let keep_alive = request.keep_alive();
        let head_only = request.method == "HEAD";
        match service.handle(request, &info) {
            Reply::Send(resp) => {
                if stream.write_all(&resp.to_bytes(!keep_alive, head_only)).and_then(|_| stream.flush()).is_err() {
                    break;
                }
                if !keep_alive {
                    stream.close();
                    break;
                }
            }
            Reply::Trickle(resp, bytes_per_sec) => {
                let bytes = resp.to_bytes(!keep_alive, head_only);
                if !trickle(&mut stream, &bytes, bytes_per_sec, stop) {
                    break;
                }
                if !keep_alive {
                    stream.close();
                    break;
                }
            }
            Reply::Hang => {
                hang(&raw, stop);
                break;
            }
            Reply::EndlessBody(resp) => {
                endless_body(&mut stream, &resp, stop);
                break;
            }
            Reply::CloseMidResponse(resp) => {
                let mut bytes = resp.head_bytes(Some(resp.body.len() as u64), false);
                bytes.extend_from_slice(&resp.body[..resp.body.len() / 2]);
                let _ = stream.write_all(&bytes).and_then(|_| stream.flush());
                // Give the client a moment to read what was sent before the
                // connection goes away.
                stop.sleep(Duration::from_millis(50));
                let _ = raw.shutdown(Shutdown::Both);
                break;
            }
            Reply::HugeContentLength(resp) => {
                let mut bytes = resp.head_bytes(Some(2_147_483_648), false);
                bytes.extend_from_slice(&resp.body);
                if stream.write_all(&bytes).and_then(|_| stream.flush()).is_ok() {
                    stop.sleep(Duration::from_millis(1500));
                }
                let _ = raw.shutdown(Shutdown::Both);
                break;
            }
            Reply::Garbage => {
                let garbage: &[u8] = b"\x16\x03\x01\x00\xffSSH-2.0-garbage\x00\xfe\xfa not http at all\r\n\x00\x00";
                let _ = raw.try_clone().and_then(|mut s| s.write_all(garbage));
                stop.sleep(Duration::from_millis(50));
                let _ = raw.shutdown(Shutdown::Both);
                break;
            }
        }
    }
}

/// Writes `bytes` at about `bytes_per_sec`. Returns `false` if the write
/// failed or the server stopped.
fn trickle(stream: &mut Stream, bytes: &[u8], bytes_per_sec: u32, stop: &StopSignal) -> bool {
    const TICK: Duration = Duration::from_millis(20);
    let bytes_per_sec = bytes_per_sec.max(1) as usize;
    let per_tick = (bytes_per_sec / 50).max(1);
    let pause = if bytes_per_sec >= 50 { TICK } else { Duration::from_secs(1) / bytes_per_sec as u32 };
    for piece in bytes.chunks(per_tick) {
        if stream.write_all(piece).and_then(|_| stream.flush()).is_err() {
            return false;
        }
        if !stop.sleep(pause) {
            return false;
        }
    }
    true
}

/// Reads and discards until the client closes or the server stops.
fn hang(raw: &TcpStream, stop: &StopSignal) {
    let Ok(mut raw) = raw.try_clone() else { return };
    let _ = raw.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    while !stop.is_stopped() {
        match raw.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Sends a chunked body that never ends, until the write fails or the server
/// stops.
fn endless_body(stream: &mut Stream, resp: &Response, stop: &StopSignal) {
    let mut head = Response { status: resp.status, headers: resp.headers.clone(), body: Vec::new() };
    head.headers.push(("Transfer-Encoding".into(), "chunked".into()));
    if stream.write_all(&head.head_bytes(None, false)).is_err() {
        return;
    }
    let item = br#"{"system_id": "endless", "hostname": "endless", "power_state": "on"}, "#;
    let mut payload = Vec::with_capacity(64 * 1024);
    while payload.len() + item.len() < 60 * 1024 {
        payload.extend_from_slice(item);
    }
    let mut chunk = format!("{:x}\r\n", payload.len() + 1).into_bytes();
    chunk.push(b'[');
    chunk.extend_from_slice(&payload);
    chunk.extend_from_slice(b"\r\n");
    let mut rest = format!("{:x}\r\n", payload.len()).into_bytes();
    rest.extend_from_slice(&payload);
    rest.extend_from_slice(b"\r\n");
    if stream.write_all(&chunk).is_err() {
        return;
    }
    while !stop.is_stopped() {
        if stream.write_all(&rest).and_then(|_| stream.flush()).is_err() {
            return;
        }
        // Pace a little so a slow reader does not make this spin.
        std::thread::yield_now();
    }
}
