//! `multipart/form-data` request bodies (as python-libmaas posts MAAS
//! operations): the boundary of a content type, and the named parts of a
//! body, base64 transfer encoding decoded.

use crate::util::base64_decode;

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormPart {
    pub name: String,
    pub value: Vec<u8>,
}

/// The boundary parameter of a `multipart/form-data` content type.
pub(crate) fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            (!v.is_empty()).then(|| v.to_string())
        } else {
            None
        }
    })
}

/// Parses a `multipart/form-data` body. Parts with
/// `Content-Transfer-Encoding: base64` (as python-libmaas sends) are decoded.
/// `None` if the body is malformed.
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<FormPart>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        if from > hay.len() {
            return None;
        }
        hay[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
    };
    let mut next_delim = b"\r\n".to_vec();
    next_delim.extend_from_slice(&delimiter);
    let mut pos = find(body, &delimiter, 0)?;
    let mut parts = Vec::new();
    loop {
        let mut q = pos + delimiter.len();
        if body.get(q..)?.starts_with(b"--") {
            return Some(parts);
        }
        // Transport padding, then the line break after the delimiter.
        while matches!(body.get(q), Some(b' ' | b'\t')) {
            q += 1;
        }
        let rest = body.get(q..)?;
        if rest.starts_with(b"\r\n") {
            q += 2;
        } else if rest.starts_with(b"\n") {
            q += 1;
        } else {
            return None;
        }
        if body.get(q..)?.starts_with(&delimiter) {
            pos = q;
            continue;
        }
        let end = find(body, &next_delim, q)?;
        if let Some(part) = parse_part(&body[q..end]) {
            parts.push(part);
        }
        pos = end + 2;
    }
}

fn parse_part(part: &[u8]) -> Option<FormPart> {
    let (head, content) = match find_bytes(part, b"\r\n\r\n") {
        Some(i) => (&part[..i], &part[i + 4..]),
        None if part.starts_with(b"\r\n") => (&[][..], &part[2..]),
        None => (part, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut name = None;
    let mut base64 = false;
    for line in head.split("\r\n") {
        let Some((k, v)) = line.split_once(':') else { continue };
        let k = k.trim();
        if k.eq_ignore_ascii_case("content-disposition") {
            for param in v.split(';').skip(1) {
                if let Some((pk, pv)) = param.split_once('=') {
                    if pk.trim().eq_ignore_ascii_case("name") {
                        let pv = pv.trim();
                        name = Some(pv.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(pv).to_string());
                    }
                }
            }
        } else if k.eq_ignore_ascii_case("content-transfer-encoding") {
            base64 = v.trim().eq_ignore_ascii_case("base64");
        }
    }
    let name = name?;
    let value = if base64 { base64_decode(content)? } else { content.to_vec() };
    Some(FormPart { name, value })
}

fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies() {
        let body = b"--===b==\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"stop_mode\"\r\nMIME-Version: 1.0\r\n\r\naGFyZA==\r\n\r\n--===b==\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nx y\r\n--===b==--";
        let boundary = multipart_boundary("multipart/form-data; boundary=\"===b==\"").unwrap();
        let parts = parse_multipart(body, &boundary).unwrap();
        assert_eq!(
            parts,
            vec![
                FormPart { name: "stop_mode".into(), value: b"hard".to_vec() },
                FormPart { name: "comment".into(), value: b"x y".to_vec() }
            ]
        );
        let empty = b"--===b==\r\n\r\n--===b==--";
        assert_eq!(parse_multipart(empty, "===b==").unwrap(), vec![]);
        assert!(parse_multipart(b"nothing", "b").is_none());
        assert!(parse_multipart(b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\nunterminated", "b").is_none());
    }
}
