//! A small blocking HTTP/1.1 client for permledger's own API: one request per connection, plain
//! `http://` on the addresses the user names. It serves the CLI's `--server` mode, the demo and
//! `permledger scenario run --server`; it is not a general HTTP client (no TLS, no redirects).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server `{0}` is not an http:// address")]
    NotHttp(String),
    #[error("cannot reach `{base}`: {source}")]
    Connect {
        base: String,
        source: std::io::Error,
    },
    #[error("talking to the server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server's answer is malformed: {0}")]
    Malformed(&'static str),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `base` is `http://HOST:PORT`, optionally with a path prefix (`http://HOST:PORT/sandboxes/ID`);
/// `path` starts with `/`.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<Response, ClientError> {
    let Some(rest) = base.trim_end_matches('/').strip_prefix("http://") else {
        return Err(ClientError::NotHttp(base.to_string()));
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut stream = TcpStream::connect(authority).map_err(|source| ClientError::Connect {
        base: base.to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_nodelay(true)?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or(ClientError::Malformed("no end of headers"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Malformed("no status"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_string()
    };
    Ok(Response { status, body })
}

fn dechunk(mut s: &str) -> Result<String, ClientError> {
    let mut out = String::new();
    loop {
        let (size, rest) = s
            .split_once("\r\n")
            .ok_or(ClientError::Malformed("a chunk has no size line"))?;
        let n = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| ClientError::Malformed("a chunk size is not hex"))?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(
            rest.get(..n)
                .ok_or(ClientError::Malformed("a chunk is shorter than its size"))?,
        );
        s = rest.get(n + 2..).unwrap_or("");
    }
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass as they are).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `?k=v&...` from the pairs whose value is present, percent-encoded.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let parts: Vec<String> = pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(&v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            "abcde"
        );
        assert!(dechunk("zz\r\nabc").is_err());
    }

    #[test]
    fn query_strings_encode_and_skip_absent_values() {
        assert_eq!(
            query([
                ("scope", Some("inbox:a b".to_string())),
                ("at", None),
                ("t", Some("2026-03-01T09:00:00+01:00".into()))
            ]),
            "?scope=inbox%3Aa%20b&t=2026-03-01T09%3A00%3A00%2B01%3A00"
        );
        assert_eq!(query([("x", None)]), "");
    }

    #[test]
    fn only_http_addresses_are_taken() {
        assert!(matches!(
            request("https://example.test", "GET", "/", None, None),
            Err(ClientError::NotHttp(_))
        ));
    }
}
