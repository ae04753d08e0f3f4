//! The compliance console in a real browser: the real binary serves on loopback, a story is
//! built through the HTTP API, and `tests/browser/console.mjs` drives Debian's Chromium
//! (through playwright-core) over every page: sign in, the org at a moment moved by slider and
//! by time, people, a person's access and timeline, a scope, the filtered and paged trail and
//! its exports compared with the API's, an event, integrity, a live event, hostile ids and
//! reasons shown as text, sign out. Screenshots of each page land in `screenshots/console/`.
//!
//! `bash scripts/setup` installs what this needs (chromium, and playwright-core with `npm ci`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::bin;

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A token's secret, made with the CLI.
fn token(data: &Path, args: &[&str]) -> String {
    let o = bin()
        .args(["--data", data.to_str().unwrap(), "token", "create"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path) -> (Server, String) {
    let (child, addr) = common::listening(
        bin()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .stderr(Stdio::null()),
    );
    (Server(child), format!("http://{addr}"))
}

/// Submits one command; answers the position of its last event.
fn run(base: &str, token: &str, body: &str) -> u64 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(format!("{base}/v1/commands"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{body} answered {text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["seq"].as_u64().unwrap()
}

/// The story the browser reads: acme with two teams and two inboxes, people who joined by
/// invite (two of them with ids that are markup and a formula), a grant for cover, a
/// suspension with a hostile reason; and globex, which acme's tokens may not read.
fn story(base: &str, hr: &str, app: &str, globex: &str) -> serde_json::Value {
    let cmd = |tok: &str, actor: &str, reason: Option<&str>, request: Option<&str>, c: &str| {
        let mut body = serde_json::json!({"as": actor, "do": serde_json::from_str::<serde_json::Value>(c).unwrap()});
        if let Some(r) = reason {
            body["reason"] = r.into();
        }
        if let Some(r) = request {
            body["request_id"] = r.into();
        }
        run(base, tok, &body.to_string())
    };
    let ann = |c: &str| cmd(hr, "ann", None, None, c);
    ann(r#"{"type":"create_org","org":"acme","preset":"teaminbox","name":"Acme"}"#);
    ann(r#"{"type":"create_team","org":"acme","team":"support","name":"Support"}"#);
    ann(r#"{"type":"create_team","org":"acme","team":"sales","name":"Sales"}"#);
    ann(
        r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support","name":"Billing"}"#,
    );
    ann(r#"{"type":"create_inbox","org":"acme","inbox":"leads","team":"sales","name":"Leads"}"#);
    let invites = [
        ("i-mo", "mo@acme.test", r#""role":"org_moderator""#),
        (
            "i-ivy",
            "ivy@acme.test",
            r#""assignments":[{"scope":"inbox:billing","role":"inbox_member"}]"#,
        ),
        (
            "i-sam",
            "sam@acme.test",
            r#""assignments":[{"scope":"team:support","role":"team_member"},{"scope":"inbox:billing","role":"inbox_observer"}]"#,
        ),
        (
            "i-x",
            "x@acme.test",
            r#""assignments":[{"scope":"inbox:billing","role":"inbox_observer"}]"#,
        ),
        ("i-f", "f@acme.test", r#""role":"org_member""#),
    ];
    for (i, (id, email, what)) in invites.iter().enumerate() {
        let request = format!("HR-{}", 100 + i);
        cmd(
            hr,
            "ann",
            Some("new hire"),
            Some(&request),
            &format!(
                r#"{{"type":"invite","org":"acme","invite":"{id}","email":"{email}",{what}}}"#
            ),
        );
    }
    for (id, user) in [
        ("i-mo", "mo"),
        ("i-ivy", "ivy"),
        ("i-sam", "sam"),
        ("i-x", "<script>alert(1)</script>"),
        ("i-f", "=2+3"),
    ] {
        cmd(
            app,
            user,
            None,
            None,
            &format!(r#"{{"type":"accept_invite","org":"acme","invite":"{id}"}}"#),
        );
    }
    let before_grant =
        ann(r#"{"type":"create_inbox","org":"acme","inbox":"archive","name":"Archive"}"#);
    // A second between the two, so that a time picked to the second tells them apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let grant = cmd(
        app,
        "mo",
        Some("covering for Sam"),
        Some("HR-110"),
        r#"{"type":"grant","org":"acme","user":"ivy","scope":"inbox:leads","permission":"inbox.thread.reply","expires_at":"2099-01-01T00:00:00Z"}"#,
    );
    let suspended = cmd(
        hr,
        "ann",
        Some("<img src=x onerror=alert(2)> =HYPERLINK(\"http://x\")"),
        Some("HR-128"),
        r#"{"type":"suspend_member","org":"acme","user":"sam"}"#,
    );
    cmd(
        globex,
        "gus",
        None,
        None,
        r#"{"type":"create_org","org":"globex","preset":"teaminbox","name":"Globex"}"#,
    );
    serde_json::json!({
        "before_grant": before_grant,
        "grant": grant,
        "suspended": suspended,
    })
}

#[test]
fn the_console_in_chromium() {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "the browser tests need Debian's chromium: run `bash scripts/setup` (as root)"
    );
    let browser = repo().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "the browser tests need playwright-core: run `bash scripts/setup` (it runs `npm ci` in tests/browser)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hr = token(&data, &["--org", "acme", "--name", "hr-sync"]);
    let app = token(&data, &["--org", "acme", "--name", "support-app"]);
    let globex = token(&data, &["--org", "globex"]);
    let ann = token(
        &data,
        &[
            "--org",
            "acme",
            "--role",
            "auditor",
            "--user",
            "ann",
            "--name",
            "Ann's console",
        ],
    );
    let (_server, base) = serve(&data);
    let seqs = story(&base, &hr, &app, &globex);
    let shots = repo().join("screenshots/console");
    std::fs::create_dir_all(&shots).unwrap();
    let setup = serde_json::json!({
        "base": base,
        "tokens": {"ann": ann, "service": hr, "globex": globex},
        "seqs": seqs,
        "screenshots": shots,
        "downloads": dir.path().join("downloads"),
        "profile": dir.path().join("chromium-profile"),
    });
    let out = Command::new("node")
        .arg("console.mjs")
        .current_dir(&browser)
        .env("PERMLEDGER_CONSOLE_TEST", setup.to_string())
        .output()
        .expect("node runs (scripts/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
}
