//! The binary from the outside: a tampered event is named by `verify` (exit 3), a digest kept
//! earlier proves the log still extends it, refusals exit 2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn permledger(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_permledger"))
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn story(data: &Path) {
    for (actor, cmd) in [
        (
            "ann",
            r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_inbox","org":"acme","inbox":"refunds","team":"support"}"#,
        ),
        (
            "ann",
            r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
        ),
        (
            "ann",
            r#"{"type":"create_team","org":"acme","team":"sales"}"#,
        ),
    ] {
        let o = permledger(data, &["run", "--as", actor, cmd]);
        assert!(o.status.success(), "{cmd}: {}", stdout(&o));
    }
}

#[test]
fn refusals_exit_2_with_the_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let before = stdout(&permledger(dir.path(), &["digest"]));
    let o = permledger(
        dir.path(),
        &[
            "run",
            "--as",
            "bob",
            r#"{"type":"create_team","org":"acme","team":"x"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("\"forbidden\""));
    let o = permledger(
        dir.path(),
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","tema":"x"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tema"));
    assert_eq!(stdout(&permledger(dir.path(), &["digest"])), before);
}

#[test]
fn verify_names_the_event_an_intruder_changed_through_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let digest = stdout(&permledger(dir.path(), &["digest"]))
        .trim()
        .to_string();
    let ok = permledger(dir.path(), &["verify", "--digest", &digest]);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains(&format!("extends digest {digest}")));

    // The intruder: a valid RocksDB write of altered content, through RocksDB's own API.
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(false);
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        let events = db.cf_handle(permledger_rocks::cf::EVENTS).unwrap();
        let key = 4u64.to_be_bytes();
        let mut value = db.get_cf(events, key).unwrap().unwrap();
        let last = value.len() - 1;
        value[last] ^= 0x01;
        db.put_cf(events, key, value).unwrap();
    }
    let tampered = permledger(dir.path(), &["verify"]);
    assert_eq!(tampered.status.code(), Some(3));
    assert!(
        stdout(&tampered).contains("event 4"),
        "{}",
        stdout(&tampered)
    );
    let tampered = permledger(dir.path(), &["verify", "--digest", &digest]);
    assert_eq!(tampered.status.code(), Some(3));
}

#[test]
fn a_rewritten_history_no_longer_extends_the_kept_digest() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let digest = stdout(&permledger(dir.path(), &["digest"]))
        .trim()
        .to_string();
    // A second ledger with another history of the same length.
    let other = tempfile::tempdir().unwrap();
    story(other.path());
    let o = permledger(other.path(), &["verify", "--digest", &digest]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("no longer extends"));
    let bad = permledger(dir.path(), &["verify", "--digest", "12:zz"]);
    assert_eq!(
        bad.status.code(),
        Some(64),
        "a malformed digest is a usage error, not a denial"
    );
}

#[test]
fn rebuild_and_past_checks_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let o = permledger(dir.path(), &["rebuild"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with("rebuilt 6 events of 1 orgs"),
        "{}",
        stdout(&o)
    );
    // ann owned the org all along; `sales` did not exist at position 5.
    let args = |at: &'static str| {
        [
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
            at,
        ]
    };
    assert_eq!(permledger(dir.path(), &args("6")).status.code(), Some(0));
    let past = permledger(dir.path(), &args("5"));
    assert_eq!(past.status.code(), Some(2));
    assert!(stdout(&past).contains("unknown_scope"), "{}", stdout(&past));
    let future = permledger(dir.path(), &args("7"));
    assert_eq!(future.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&future.stderr).contains("beyond the log's head 6"));
}

#[test]
fn the_demo_runs_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("demo");
    let o = Command::new(env!("CARGO_BIN_EXE_permledger"))
        .args(["demo", "--exit", "--into", into.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("ALLOWED ann"));
    assert!(out.contains("denied  mo    inbox.thread.view                inbox:billing"));
    assert!(out.contains("Log verified"));
    assert!(out.contains("Serving it at http://127.0.0.1:"), "{out}");
    assert!(
        out.contains(
            "denied  mo    inbox.thread.view                inbox:escalations  at position 15"
        ),
        "{out}"
    );
    // The console's sign-in token is an auditor's, reading as acme's owner.
    assert!(
        out.contains("open http://127.0.0.1:")
            && out.contains("/console and sign in with the auditor token "),
        "{out}"
    );
    let tokens = permledger(&into, &["token", "list"]);
    let listed = stdout(&tokens);
    let console = listed
        .lines()
        .find(|l| l.contains("demo console"))
        .unwrap_or_else(|| panic!("no console token in {listed}"));
    assert!(
        console.contains("auditor") && console.contains("ann"),
        "{console}"
    );
    // The lines to try next run as printed: the binary is named by its path, as it is not on
    // PATH after `cargo run`.
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_permledger")).unwrap();
    let verify = out
        .lines()
        .find(|l| l.trim_start().ends_with(" verify"))
        .unwrap_or_else(|| panic!("no verify line in {out}"));
    let words: Vec<&str> = verify.split_whitespace().collect();
    assert_eq!(Path::new(words[0]), exe, "{verify}");
    let again = Command::new(words[0]).args(&words[1..]).output().unwrap();
    assert!(again.status.success(), "{verify}: {}", stdout(&again));
}

#[test]
fn scenario_run_reports_and_exits_by_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let bad = dir.path().join("bad.json");
    std::fs::write(&good, r#"{"name": "g", "steps": [{"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}}, {"verify": {}, "expect": "ok"}]}"#).unwrap();
    std::fs::write(&bad, r#"{"name": "b", "steps": [{"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}}, {"check": {"org": "acme", "user": "zed", "permission": "org.audit.view", "scope": "org"}, "expect": true}]}"#).unwrap();
    let run = |files: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_permledger"))
            .arg("scenario")
            .arg("run")
            .args(files)
            .output()
            .unwrap()
    };
    let ok = run(&[&good]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(stdout(&ok), "1 passed, 0 failed\n");
    let mixed = run(&[&good, &bad]);
    assert_ne!(mixed.status.code(), Some(0));
    let out = stdout(&mixed);
    assert!(
        out.contains("bad.json: step 2: expected true, got false"),
        "{out}"
    );
    assert_eq!(
        out.matches("step 2").count(),
        1,
        "a step failing alike on both logs is one line: {out}"
    );
    assert!(out.ends_with("1 passed, 1 failed\n"), "{out}");
}

#[test]
fn export_and_import_keep_the_log_and_refuse_an_altered_file() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let file = dir.path().join("log.jsonl");
    let o = permledger(dir.path(), &["export", "--out", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let digest = stdout(&permledger(dir.path(), &["digest"]));

    let copy = tempfile::tempdir().unwrap();
    let o = permledger(copy.path(), &["import", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&permledger(copy.path(), &["digest"])), digest);
    assert_eq!(permledger(copy.path(), &["verify"]).status.code(), Some(0));
    let again = permledger(copy.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a log"));

    // An altered event: its bytes change, its stored link does not.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut third: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    let bytes = third["bytes"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        &bytes[..bytes.len() - 2],
        if bytes.ends_with("00") { "01" } else { "00" }
    );
    third["bytes"] = serde_json::Value::String(flipped);
    lines[2] = third.to_string();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = permledger(empty.path(), &["import", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("event 3 does not link the chain"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Nothing was imported: the folder holds an empty log, or none at all.
    let after = permledger(empty.path(), &["digest"]);
    assert!(
        stdout(&after).trim() == format!("0:{}", "0".repeat(64))
            || String::from_utf8_lossy(&after.stderr).contains("there is no ledger"),
        "{}",
        stdout(&after)
    );
}

#[test]
fn queries_print_tables_json_and_csv_now_and_in_the_past() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let o = permledger(
        dir.path(),
        &[
            "query",
            "who-can",
            "--org",
            "acme",
            "--permission",
            "team.view",
            "--scope",
            "team:sales",
        ],
    );
    assert!(o.status.success());
    // A table says first which moment it shows.
    let table = stdout(&o);
    let (moment, rows) = table.split_once('\n').unwrap();
    assert!(moment.starts_with("# at seq 6, "), "{moment}");
    assert_eq!(rows, "user\nann\n");
    let past = permledger(
        dir.path(),
        &[
            "query",
            "who-can",
            "--org",
            "acme",
            "--permission",
            "team.view",
            "--scope",
            "team:sales",
            "--at",
            "5",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        stdout(&past).trim(),
        "[]",
        "team:sales did not exist at position 5"
    );
    let csv = permledger(
        dir.path(),
        &[
            "query", "members", "--org", "acme", "--scope", "org", "--format", "csv",
        ],
    );
    // The owner is listed, and marked.
    assert_eq!(
        stdout(&csv),
        "user,role,status,owner\nann,org_member,active,owner\n"
    );
    let audit = permledger(
        dir.path(),
        &[
            "query",
            "audit",
            "--org",
            "acme",
            "--as",
            "ann",
            "--types",
            "team_created,org_renamed",
            "--format",
            "csv",
        ],
    );
    // A header, three entries, and the digest the file covers.
    let csv = stdout(&audit);
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines().last().unwrap().starts_with("#digest,6:"),
        "{csv}"
    );
    let refused = permledger(
        dir.path(),
        &["query", "audit", "--org", "acme", "--as", "zed"],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(stdout(&refused).contains("\"forbidden\""));
    let diff = permledger(
        dir.path(),
        &[
            "query",
            "diff",
            "--org",
            "acme",
            "--from",
            "5",
            "--scope",
            "team:sales",
            "--format",
            "csv",
        ],
    );
    assert!(
        stdout(&diff).starts_with(
            "change,user,permission,scope,when,because\ngained,ann,team.audit.view,team:sales,"
        ),
        "{}",
        stdout(&diff)
    );
}

#[test]
fn generate_is_deterministic_and_yields_a_valid_log() {
    let gen = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let o = permledger(
            dir.path(),
            &["generate", "--events", "3000", "--seed", seed],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout(&o).starts_with("generated 3"), "{}", stdout(&o));
        assert_eq!(permledger(dir.path(), &["verify"]).status.code(), Some(0));
        assert!(permledger(dir.path(), &["rebuild"]).status.success());
        let digest = stdout(&permledger(dir.path(), &["digest"]));
        (dir, digest)
    };
    let (dir, a) = gen("7");
    let (_, b) = gen("7");
    let (_, c) = gen("8");
    assert_eq!(a, b, "the same seed gives the same log");
    assert_ne!(a, c);
    let again = permledger(dir.path(), &["generate", "--events", "10"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a folder with a log is refused"
    );
    let members = permledger(
        dir.path(),
        &[
            "query", "members", "--org", "org0", "--scope", "org", "--format", "csv",
        ],
    );
    assert!(
        stdout(&members).lines().count() > 100,
        "the largest org has its users"
    );
}

#[test]
fn output_piped_into_head_ends_quietly_and_usage_errors_have_their_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let o = permledger(
        dir.path(),
        &["generate", "--events", "20000", "--seed", "3"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The reader takes one line and goes away, as `head -1` does; the answer (about 160 KB) is
    // more than the pipe holds, so the writer meets the closed pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_permledger"))
        .arg("--data")
        .arg(dir.path())
        .args([
            "query", "members", "--org", "org0", "--scope", "org", "--format", "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first.trim(), "[");
    let done = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let usage = permledger(dir.path(), &["check", "--org", "org0"]);
    assert_eq!(
        usage.status.code(),
        Some(64),
        "a command line that does not parse"
    );
    assert!(String::from_utf8_lossy(&usage.stderr).contains("--user"));
    let help = permledger(dir.path(), &["check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let denied = permledger(
        dir.path(),
        &[
            "check",
            "--org",
            "org0",
            "--user",
            "nobody",
            "--permission",
            "team.view",
            "--scope",
            "org",
        ],
    );
    assert_eq!(denied.status.code(), Some(2), "a denied check");
}
