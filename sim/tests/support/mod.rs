//! A tiny blocking HTTP/1.1 client for the simulator's tests: raw control of
//! the connection (keep-alive, raw bytes, read timeouts), optional TLS.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metal_sim::{MaasSim, SimUser};

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// A response as received.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One client connection.
pub struct Conn {
    pub stream: Box<dyn ReadWrite>,
    buf: Vec<u8>,
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A nonce never used before in this process.
pub fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{}{}", nanos, N.fetch_add(1, Ordering::Relaxed))
}

/// A fresh valid Authorization header for `user`.
pub fn auth(user: &SimUser) -> String {
    user.auth_header(&nonce(), now())
}

/// A fresh valid Authorization header for the simulator's first user.
pub fn admin_auth(sim: &MaasSim) -> String {
    auth(&sim.users()[0])
}

impl Conn {
    pub fn plain(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn { stream: Box::new(s), buf: Vec::new() }
    }

    pub fn tls(port: u16, ca_pem: Option<&str>, server_name: &str) -> io::Result<Conn> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName};
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.map_err(io::Error::other)?).map_err(io::Error::other)?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(server_name.to_string()).map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        // Complete the handshake now so certificate errors show here.
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Conn { stream: Box::new(stream), buf: Vec::new() })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
        self.stream.flush().expect("flush");
    }

    /// Sends a request (with `Host` and `Content-Length` added).
    pub fn send(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
    }

    pub fn request(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        self.send(method, target, headers, body);
        self.read_response().expect("response")
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads a response head: (status, headers).
    pub fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code.unwrap_or(0);
                    let hs = resp
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    self.buf.drain(..n);
                    if (100..200).contains(&status) {
                        continue;
                    }
                    return Ok((status, hs));
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {:?}", self.buf))),
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response head"));
            }
        }
    }

    pub fn read_exact_body(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("body cut at {}", self.buf.len())));
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..p]).into_owned();
                self.buf.drain(..p + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed in a chunked body"));
            }
        }
    }

    /// Reads one chunk of a chunked body; `None` at the last chunk.
    pub fn read_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        let size = usize::from_str_radix(self.read_line()?.trim(), 16).map_err(io::Error::other)?;
        if size == 0 {
            while !self.read_line()?.is_empty() {}
            return Ok(None);
        }
        let data = self.read_exact_body(size)?;
        self.read_line()?;
        Ok(Some(data))
    }

    /// Reads a whole response.
    pub fn read_response(&mut self) -> io::Result<Resp> {
        let (status, headers) = self.read_head()?;
        let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let body = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(chunk) = self.read_chunk()? {
                body.extend(chunk);
            }
            body
        } else if let Some(len) = find("content-length") {
            self.read_exact_body(len.trim().parse().map_err(io::Error::other)?)?
        } else {
            while self.fill()? > 0 {}
            std::mem::take(&mut self.buf)
        };
        Ok(Resp { status, headers, body })
    }

    /// Whether the server has closed the connection (reads EOF).
    pub fn at_eof(&mut self) -> bool {
        matches!(self.fill(), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn get(sim: &MaasSim, target: &str, auth: Option<&str>) -> Resp {
    let mut headers = vec![];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    Conn::plain(sim.port()).request("GET", target, &headers, b"")
}

/// One POST with a form body on a fresh connection.
pub fn post_form(sim: &MaasSim, target: &str, auth: Option<&str>, form: &str) -> Resp {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    Conn::plain(sim.port()).request("POST", target, &headers, form.as_bytes())
}
