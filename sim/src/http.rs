//! A small HTTP/1.1 layer: reading requests (heads with `httparse`, bodies
//! by `Content-Length` or chunked), writing responses, status reasons and
//! nginx's error pages. It is hand-made so the servers keep raw control of
//! the socket for fault injection.

use std::io::{self, Read, Write};

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Most header fields in one request.
const MAX_HEADERS: usize = 128;

/// One parsed HTTP request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The path part of the request target, still percent-encoded.
    pub path: String,
    /// The query string (after `?`), empty if none.
    pub query: String,
    /// The whole request target as received.
    pub target: String,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        let tokens = |value: &str, token: &str| value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token));
        let connection = self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("connection"));
        let mut close = false;
        let mut keep = false;
        for (_, v) in connection {
            close |= tokens(v, "close");
            keep |= tokens(v, "keep-alive");
        }
        if self.minor_version == 0 {
            keep && !close
        } else {
            !close
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection between requests.
    Closed,
    /// The bytes received are not a valid HTTP request (why, for debugging).
    Bad(#[allow(dead_code)] &'static str),
    /// The head or body is larger than allowed.
    TooLarge,
    /// A socket error, including a read timeout.
    Io(#[allow(dead_code)] io::Error),
}

/// A connection's read side: the stream plus bytes read ahead.
pub(crate) struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader { buf: Vec::with_capacity(8192) }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    fn fill<S: Read>(&mut self, stream: &mut S) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one whole request. A request with `Expect: 100-continue` gets
    /// `100 Continue` before its body is read.
    pub fn read_request<S: Read + Write>(&mut self, stream: &mut S) -> Result<Request, ReadError> {
        let (head_len, mut request) = loop {
            if !self.buf.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Request::new(&mut headers);
                match parsed.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => break (n, head_to_request(&parsed)?),
                    Ok(httparse::Status::Partial) => {}
                    Err(httparse::Error::TooManyHeaders) => return Err(ReadError::TooLarge),
                    Err(_) => return Err(ReadError::Bad("malformed request head")),
                }
                if self.buf.len() > MAX_HEAD {
                    return Err(ReadError::TooLarge);
                }
            }
            match self.fill(stream) {
                Ok(0) if self.buf.is_empty() => return Err(ReadError::Closed),
                Ok(0) => return Err(ReadError::Bad("connection closed inside a request head")),
                Ok(_) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        };
        self.buf.drain(..head_len);

        let chunked = match request.header("transfer-encoding") {
            Some(te) => {
                if te.rsplit(',').next().map(|t| t.trim().eq_ignore_ascii_case("chunked")) != Some(true) {
                    return Err(ReadError::Bad("unsupported transfer coding"));
                }
                true
            }
            None => false,
        };
        let length = if chunked {
            None
        } else {
            let mut length: Option<usize> = None;
            for (_, v) in request.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
                let v = v.trim();
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ReadError::Bad("invalid Content-Length"));
                }
                let n: usize = v.parse().map_err(|_| ReadError::TooLarge)?;
                if length.is_some_and(|l| l != n) {
                    return Err(ReadError::Bad("conflicting Content-Length"));
                }
                length = Some(n);
            }
            Some(length.unwrap_or(0))
        };
        if length.is_some_and(|n| n > MAX_BODY) {
            return Err(ReadError::TooLarge);
        }
        let expects_continue = request.header("expect").is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
        if expects_continue && request.minor_version == 1 && (chunked || length != Some(0)) && self.buf.is_empty() {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").map_err(ReadError::Io)?;
            stream.flush().map_err(ReadError::Io)?;
        }
        request.body = match length {
            Some(n) => self.take_exact(stream, n)?,
            None => self.read_chunked(stream)?,
        };
        Ok(request)
    }

    /// Takes exactly `n` bytes (reading more as needed).
    fn take_exact<S: Read>(&mut self, stream: &mut S, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            match self.fill(stream) {
                Ok(0) => return Err(ReadError::Bad("connection closed inside a request body")),
                Ok(_) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    fn take_line<S: Read>(&mut self, stream: &mut S) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..pos].to_vec();
                self.buf.drain(..pos + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::TooLarge);
            }
            match self.fill(stream) {
                Ok(0) => return Err(ReadError::Bad("connection closed inside a chunked body")),
                Ok(_) => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    fn read_chunked<S: Read>(&mut self, stream: &mut S) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line(stream)?;
            let line = String::from_utf8_lossy(&line);
            let size_text = line.split(';').next().unwrap_or("").trim();
            if size_text.is_empty() || size_text.len() > 8 {
                return Err(ReadError::Bad("invalid chunk size"));
            }
            let size = usize::from_str_radix(size_text, 16).map_err(|_| ReadError::Bad("invalid chunk size"))?;
            if size == 0 {
                // Trailers, up to an empty line.
                while !self.take_line(stream)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadError::TooLarge);
            }
            body.extend(self.take_exact(stream, size)?);
            if !self.take_line(stream)?.is_empty() {
                return Err(ReadError::Bad("chunk not followed by CRLF"));
            }
        }
    }
}

fn head_to_request(parsed: &httparse::Request<'_, '_>) -> Result<Request, ReadError> {
    let method = parsed.method.ok_or(ReadError::Bad("no method"))?.to_string();
    let target = parsed.path.ok_or(ReadError::Bad("no target"))?.to_string();
    // An absolute-form target ("http://host/path") is reduced to its path.
    let origin_form = match target.find("://") {
        Some(i) if !target.starts_with('/') => match target[i + 3..].find('/') {
            Some(j) => target[i + 3 + j..].to_string(),
            None => "/".to_string(),
        },
        _ => target.clone(),
    };
    let (path, query) = match origin_form.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (origin_form.clone(), String::new()),
    };
    let path = match path.split_once('#') {
        Some((p, _)) => p.to_string(),
        None => path,
    };
    let headers = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
        .collect();
    Ok(Request { method, path, query, target, minor_version: parsed.version.unwrap_or(1), headers, body: Vec::new() })
}

/// One HTTP response. `Content-Length` and `Connection` are added when it is
/// written.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The status line and headers, with `Content-Length: content_length`
    /// (if given) and `Connection: close` when `close`.
    pub fn head_bytes(&self, content_length: Option<u64>, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        if let Some(n) = content_length {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// The whole response as bytes (the body left out when `head_only`).
    pub fn to_bytes(&self, close: bool, head_only: bool) -> Vec<u8> {
        let mut out = self.head_bytes(Some(self.body.len() as u64), close);
        if !head_only && !no_body_status(self.status) {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn no_body_status(status: u16) -> bool {
    status == 204 || status == 304 || (100..200).contains(&status)
}

/// The standard reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// An nginx-style HTML error page.
pub(crate) fn nginx_page(status: u16) -> String {
    format!(
        "<html>\r\n<head><title>{status} {r}</title></head>\r\n<body>\r\n<center><h1>{status} {r}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        r = reason(status)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stream that reads from a fixed input and discards writes.
    struct Fake(Cursor<Vec<u8>>, Vec<u8>);
    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn fake(input: &[u8]) -> Fake {
        Fake(Cursor::new(input.to_vec()), Vec::new())
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let mut s = fake(
            b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1;x=y\r\n!\r\n0\r\nT: v\r\n\r\n",
        );
        let mut r = Reader::new();
        let a = r.read_request(&mut s).unwrap();
        assert_eq!(
            (a.method.as_str(), a.path.as_str(), a.query.as_str(), &a.body[..]),
            ("POST", "/a", "x=1", &b"abc"[..])
        );
        let b = r.read_request(&mut s).unwrap();
        assert_eq!((b.path.as_str(), &b.body[..]), ("/b", &b"hi!"[..]));
        assert!(matches!(r.read_request(&mut s), Err(ReadError::Closed)));
    }

    #[test]
    fn malformed_requests() {
        for input in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
        ] {
            let mut s = fake(input);
            assert!(matches!(Reader::new().read_request(&mut s), Err(ReadError::Bad(_))), "{input:?}");
        }
        let mut s = fake(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert!(matches!(Reader::new().read_request(&mut s), Err(ReadError::TooLarge)));
    }

    #[test]
    fn expect_continue() {
        let mut s = fake(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok");
        // The body is already buffered, so no 100 is needed.
        let r = Reader::new().read_request(&mut s).unwrap();
        assert_eq!(r.body, b"ok");
    }

    #[test]
    fn keep_alive_rules() {
        let mut s = fake(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nConnection: Close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        let mut r = Reader::new();
        assert!(!r.read_request(&mut s).unwrap().keep_alive());
        assert!(!r.read_request(&mut s).unwrap().keep_alive());
        assert!(r.read_request(&mut s).unwrap().keep_alive());
    }
}
