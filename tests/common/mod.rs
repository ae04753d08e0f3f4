//! What the integration tests that start the real binary share: running a command on a folder,
//! starting a server and reading its address, making a token, asking over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_permledger"))
}

/// `permledger --data DATA ARGS...`, run to its end.
pub fn permledger(data: &Path, args: &[&str]) -> Output {
    bin().arg("--data").arg(data).args(args).output().unwrap()
}

/// Standard output then standard error, for assertions and their messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Starts `permledger --data DATA serve FLAGS... --listen 127.0.0.1:0` (its standard error kept
/// for `terminate`) and answers the process and the address it listens on.
pub fn serve_with(data: &Path, flags: &[&str]) -> (Child, String) {
    listening(
        bin()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .args(flags)
            .stderr(Stdio::piped()),
    )
}

/// Spawns `command`, a `serve`, on a free loopback port, and answers the process and the
/// address its first line says it listens on. Standard error goes where `command` says.
pub fn listening(command: &mut Command) -> (Child, String) {
    listening_on(command, "127.0.0.1:0", String::new)
}

/// The same on `listen` (a fixed address, for a server restarted where it was). Should the
/// first line not say where it listens, the panic adds what `more` tells (a server's log).
pub fn listening_on(
    command: &mut Command,
    listen: &str,
    more: impl FnOnce() -> String,
) -> (Child, String) {
    let mut child = command
        .args(["--listen", listen])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => (child, addr.to_string()),
        None => {
            let _ = child.wait();
            panic!("unexpected first line {line:?}\n{}", more())
        }
    }
}

/// A token of every org with `role`.
pub fn token(data: &Path, role: &str) -> String {
    let o = permledger(data, &["token", "create", "--all", "--role", role]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// (status, body) of one request.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("Authorization", format!("Bearer {token}"));
    if body.is_some() {
        req = req.header("Content-Type", "application/json");
    }
    let mut resp = agent
        .run(req.body(body.unwrap_or("").to_string()).unwrap())
        .unwrap();
    (
        resp.status().as_u16(),
        resp.body_mut().read_to_string().unwrap(),
    )
}

/// Sends SIGTERM (a clean stop) and waits for the process; answers what it wrote on stderr.
pub fn terminate(child: Child) -> String {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}
