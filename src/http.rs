//! A small blocking HTTP/1.1 client for `--server` mode and the demo: one request per connection,
//! plain `http://` on the addresses the user names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context as _};

pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `base` is `http://HOST:PORT`; `path` starts with `/`.
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<Response> {
    let Some(authority) = base.trim_end_matches('/').strip_prefix("http://") else {
        bail!("server `{base}` is not an http:// address");
    };
    let mut stream =
        TcpStream::connect(authority).with_context(|| format!("cannot reach `{base}`"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .context("the server's answer has no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the server's answer has no status")?;
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

fn dechunk(mut s: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").context("a chunk has no size line")?;
        let n = usize::from_str_radix(size.trim(), 16).context("a chunk size is not hex")?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..n).context("a chunk is shorter than its size")?);
        s = rest.get(n + 2..).unwrap_or("");
    }
}
