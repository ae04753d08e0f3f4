//! The real binary serving HTTP on loopback: tokens from the CLI, commands and checks over a real
//! socket, SIGTERM drains and exits cleanly, and a restart serves the same answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{bin, http};

mod common;

/// A token bound to `org` (or to every org for `*`).
fn token(data: &Path, org: &str, role: &str) -> String {
    let bound = if org == "*" {
        vec!["--all"]
    } else {
        vec!["--org", org]
    };
    let o = bin()
        .args(["--data", data.to_str().unwrap(), "token", "create"])
        .args(bound)
        .args(["--role", role])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Starts `serve` on a free loopback port and returns it with its address.
fn start(data: &Path) -> (Child, String) {
    start_with(data, &[])
}

fn start_with(data: &Path, extra: &[&str]) -> (Child, String) {
    common::listening(
        bin()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .args(extra)
            .stderr(Stdio::null()),
    )
}

/// The CLI against a running server: (exit code, stdout, stderr).
fn cli(server: &str, token: &str, extra: &[&str], args: &[&str]) -> (i32, String, String) {
    let o = bin()
        .args(["--server", server, "--token", token])
        .args(extra)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/localhost.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls/localhost.key");

/// Reads `want` events of a change feed: (id, event type).
fn sse(
    addr: &str,
    path: &str,
    token: &str,
    last_id: Option<u64>,
    want: usize,
) -> Vec<(u64, String)> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let resume = last_id
        .map(|i| format!("Last-Event-ID: {i}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{resume}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut out = Vec::new();
    let (mut id, mut kind) = (None, None);
    let mut line = String::new();
    while out.len() < want {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim_end();
        if let Some(v) = l.strip_prefix("id: ") {
            id = v.parse().ok();
        } else if let Some(v) = l.strip_prefix("event: ") {
            kind = Some(v.to_string());
        } else if l.is_empty() {
            if let (Some(i), Some(k)) = (id.take(), kind.take()) {
                out.push((i, k));
            }
        }
    }
    out
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
    // The change feed: every event from a position, each with its position as id; resuming with
    // Last-Event-ID continues after it. The stream stays open, so read what is there.
    let feed = sse(&addr, "/v1/feed?from=1", &svc, None, 2);
    assert_eq!(
        feed,
        [
            (1, "org_created".to_string()),
            (2, "team_created".to_string())
        ]
    );
    let resumed = sse(&addr, "/v1/feed", &svc, Some(1), 1);
    assert_eq!(resumed, [(2, "team_created".to_string())]);
    // A feed left open does not keep the server from stopping.
    let mut open = TcpStream::connect(&addr).unwrap();
    write!(
        open,
        "GET /v1/feed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {svc}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(sigterm(&mut child), 0, "SIGTERM drains and exits cleanly");

    let (mut child, addr) = start(data);
    let (status, body) = http(&addr, "GET", check, &svc, None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""allowed":true"#), "{body}");
    // The CLI against the running server: a command, a refusal, a check now and in the past.
    let server = format!("http://{addr}");
    let cli = |args: &[&str]| {
        bin()
            .args(["--server", &server, "--token", &svc])
            .args(args)
            .output()
            .unwrap()
    };
    let o = cli(&[
        "run",
        "--as",
        "ann",
        r#"{"type":"create_team","org":"acme","team":"sales"}"#,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("team_created"));
    let o = cli(&[
        "run",
        "--as",
        "bob",
        r#"{"type":"create_team","org":"acme","team":"x"}"#,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(&[
        "check",
        "--org",
        "acme",
        "--user",
        "ann",
        "--permission",
        "team.view",
        "--scope",
        "team:sales",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = cli(&[
        "check",
        "--org",
        "acme",
        "--user",
        "ann",
        "--permission",
        "team.view",
        "--scope",
        "team:sales",
        "--at",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(&[
        "query",
        "who-can",
        "--org",
        "acme",
        "--permission",
        "team.view",
        "--scope",
        "team:sales",
        "--format",
        "csv",
    ]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "user\nann\n");
    let o = cli(&["query", "members", "--org", "acme", "--scope", "org"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ann   org_member  active"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = cli(&[
        "query", "diff", "--org", "acme", "--from", "2", "--user", "ann", "--format", "json",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("ann team.view team:sales"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = cli(&[
        "query",
        "audit",
        "--org",
        "acme",
        "--as",
        "ann",
        "--types",
        "team_created",
        "--at",
        "2",
        "--format",
        "csv",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        out.starts_with("seq,time,action,summary,actor,principal"),
        "{out}"
    );
    assert!(
        out.contains(",team_created,\"ann created the team support (\"\"support\"\")\",ann,token "),
        "{out}"
    );
    // The export ends with the digest it covers, as `verify --digest` takes it.
    assert!(
        out.lines().last().unwrap().starts_with("#digest,2:"),
        "{out}"
    );
    let o = cli(&["query", "audit", "--org", "acme", "--as", "bob"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a reader without org.audit.view is refused"
    );
    let (status, body) = http(&addr, "GET", "/healthz", "", None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""seq":3"#), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
    let v = bin()
        .args(["--data", data.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert!(v.status.success());
}

#[test]
fn sigterm_under_load_loses_no_acknowledged_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let svc = token(&data, "acme", "service");
    let (mut child, addr) = start(&data);
    let (status, _) = http(
        &addr,
        "POST",
        "/v1/commands",
        &svc,
        Some(r#"{"as":"ann","do":{"type":"create_org","org":"acme","preset":"blank"}}"#),
    );
    assert_eq!(status, 200);
    // Four clients send commands as fast as they can; each remembers what was acknowledged.
    let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (addr, svc, acks) = (addr.clone(), svc.clone(), acks.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..10_000 {
                    let team = format!("c{c}-{i}");
                    let body = format!(r#"{{"as":"ann","do":{{"type":"create_team","org":"acme","team":"{team}"}}}}"#);
                    let Ok(mut s) = TcpStream::connect(&addr) else { break };
                    let req = format!(
                        "POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {svc}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(req.as_bytes()).is_err() {
                        break;
                    }
                    let mut raw = String::new();
                    if s.read_to_string(&mut raw).is_err() || !raw.starts_with("HTTP/1.1 200") {
                        break;
                    }
                    acked.push(team);
                    acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                acked
            })
        })
        .collect();
    // Stop it in the middle of the load, once it is well under way.
    let started = std::time::Instant::now();
    while acks.load(std::sync::atomic::Ordering::SeqCst) < 50
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(sigterm(&mut child), 0);
    let acked: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        !acked.is_empty(),
        "no command was acknowledged before SIGTERM"
    );
    // Every acknowledged team is in the log after the drain.
    let o = bin()
        .args([
            "--data",
            data.to_str().unwrap(),
            "query",
            "scopes",
            "--org",
            "acme",
            "--user",
            "ann",
            "--permission",
            "team.view",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    for team in &acked {
        assert!(
            listed.contains(&format!("team:{team}\n")),
            "acknowledged `{team}` is missing after SIGTERM"
        );
    }
    let v = bin()
        .args(["--data", data.to_str().unwrap(), "verify"])
        .output()
        .unwrap();
    assert!(v.status.success());
}

#[test]
fn the_fixture_suite_passes_through_http_one_sandbox_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let op = token(dir.path(), "*", "operator");
    let (mut child, addr) = start_with(dir.path(), &["--sandboxes"]);
    let server = format!("http://{addr}");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let files = std::fs::read_dir(&fixtures)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    let o = bin()
        .args(["--server", &server, "--token", &op, "scenario", "run"])
        .arg(&fixtures)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.ends_with(&format!("{files} passed, 0 failed\n")),
        "{out}"
    );

    // A wrong expectation fails through HTTP too, naming the step and where it ran.
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"name": "wrong", "steps": [
            {"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}},
            {"check": {"org": "acme", "user": "bob", "permission": "org.audit.view", "scope": "org"}, "expect": true}
        ]}"#,
    )
    .unwrap();
    let o = bin()
        .args(["--server", &server, "--token", &op, "scenario", "run"])
        .arg(&wrong)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("step 2 (http): expected true, got false"),
        "{out}"
    );

    // Sandboxes never touch the server's own ledger.
    let (status, body) = http(&addr, "GET", "/healthz", &op, None);
    assert_eq!(status, 200);
    assert!(body.contains(r#""seq":0"#), "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_cli_reaches_an_https_server_with_its_certificate_and_typed_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let svc = token(data, "acme", "service");
    let (mut child, addr) = start_with(data, &["--tls-cert", CERT, "--tls-key", KEY]);
    let https = format!("https://{addr}");
    let trust = ["--ca-cert", CERT];

    let (code, out, err) = cli(
        &https,
        &svc,
        &trust,
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["events"][0]["payload"]["type"], "org_created");

    let check = [
        "check",
        "--org",
        "acme",
        "--user",
        "ann",
        "--permission",
        "org.members.invite",
        "--scope",
        "org",
    ];
    let (code, out, err) = cli(&https, &svc, &trust, &check);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"allowed\": true"), "{out}");
    let (code, out, _) = cli(
        &https,
        &svc,
        &trust,
        &[
            "check",
            "--org",
            "acme",
            "--user",
            "bob",
            "--permission",
            "team.view",
            "--scope",
            "org",
        ],
    );
    assert_eq!(code, 2, "a denied check exits 2: {out}");

    // The certificate is not one Mozilla's roots vouch for: without `--ca-cert` the CLI refuses.
    let (code, _, err) = cli(&https, &svc, &[], &check);
    assert_eq!(code, 1);
    assert!(err.contains("talking to"), "{err}");
    // Plain HTTP to the TLS port gets no answer the client takes for one.
    let (code, _, _) = cli(&format!("http://{addr}"), &svc, &[], &check);
    assert_eq!(code, 1);
    assert_eq!(sigterm(&mut child), 0);
}

#[test]
fn a_running_server_accepts_new_tokens_and_refuses_revoked_ones_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = token(data, "*", "operator");
    let (mut child, addr) = start(data);
    let health = |t: &str| http(&addr, "GET", "/v1/orgs/acme/roles", t, None).0;
    assert_eq!(
        health(&first),
        404,
        "the first token works: the org does not exist"
    );

    let later = token(data, "acme", "auditor");
    let until = |want: u16, t: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while health(t) != want {
            assert!(
                std::time::Instant::now() < deadline,
                "no {want} for {t} within 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    until(404, &later);

    let list = bin()
        .args(["--data", data.to_str().unwrap(), "token", "list", "--json"])
        .output()
        .unwrap();
    let listed: Vec<serde_json::Value> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|t| t.get("hash").is_none()),
        "hashes stay private"
    );
    let auditor = listed.iter().find(|t| t["role"] == "auditor").unwrap();
    assert_eq!(auditor["org"], "acme");

    let revoke = bin()
        .args(["--data", data.to_str().unwrap(), "token", "revoke"])
        .arg(auditor["id"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    until(401, &later);
    assert_eq!(health(&first), 404, "the other token still works");

    let unknown = bin()
        .args(["--data", data.to_str().unwrap(), "token", "revoke", "nope"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no token `nope`"));
    assert_eq!(sigterm(&mut child), 0);
}
