//! The real binary serving HTTP on loopback: tokens from the CLI, commands and checks over a real
//! socket, SIGTERM drains and exits cleanly, and a restart serves the same answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_permledger"))
}

fn token(data: &Path, org: &str, role: &str) -> String {
    let o = bin()
        .args([
            "--data",
            data.to_str().unwrap(),
            "token",
            "create",
            "--org",
            org,
            "--role",
            role,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Starts `serve` on a free loopback port and returns it with its address.
fn start(data: &Path) -> (Child, String) {
    let mut child = bin()
        .args([
            "--data",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, addr)
}

/// One HTTP/1.1 request over a fresh connection; returns (status, body).
fn http(addr: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status: u16 = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn sigterm(child: &mut Child) -> i32 {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn the_server_answers_over_http_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let svc = token(data, "acme", "service");
    let other = token(data, "globex", "service");
    let (mut child, addr) = start(data);
    for cmd in [
        r#"{"as":"ann","do":{"type":"create_org","org":"acme","preset":"teaminbox"}}"#,
        r#"{"as":"ann","do":{"type":"create_team","org":"acme","team":"support"}}"#,
    ] {
        let (status, body) = http(&addr, "POST", "/v1/commands", &svc, Some(cmd));
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/commands",
        &svc,
        Some(r#"{"as":"bob","do":{"type":"create_team","org":"acme","team":"x"}}"#),
    );
    assert_eq!(status, 403);
    assert!(body.contains(r#""code":"forbidden""#), "{body}");
    let (status, _) = http(
        &addr,
        "GET",
        "/v1/orgs/acme/check?user=ann&permission=team.view&scope=team:support",
        "nope",
        None,
    );
    assert_eq!(status, 401);
    let (status, _) = http(
        &addr,
        "GET",
        "/v1/orgs/acme/check?user=ann&permission=team.view&scope=team:support",
        &other,
        None,
    );
    assert_eq!(status, 403);
    let check = "/v1/orgs/acme/check?user=ann&permission=team.view&scope=team:support&min_seq=2";
    let (status, body) = http(&addr, "GET", check, &svc, None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""allowed":true"#), "{body}");
    assert_eq!(sigterm(&mut child), 0, "SIGTERM drains and exits cleanly");

    let (mut child, addr) = start(data);
    let (status, body) = http(&addr, "GET", check, &svc, None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""allowed":true"#), "{body}");
    let (status, body) = http(&addr, "GET", "/healthz", "", None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""seq":2"#), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
    let v = bin()
        .args(["--data", data.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert!(v.status.success());
}
