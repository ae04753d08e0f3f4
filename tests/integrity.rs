//! A tampered folder is never served silently. An intruder with write access to the data folder
//! alters it through RocksDB's own API (a payload byte, a deleted event, two swapped events, the
//! last events cut with and without the head, the head moved, the chain rewritten); `serve`,
//! `rebuild`, `check` and `verify` each refuse with exit 3 naming the first bad event, and
//! `--read-only` serves reads up to the last good one and refuses every command. A live server
//! proves itself against a digest kept earlier, through HTTP and the CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{bin, permledger, text, token};
use permledger_rocks::cf;

mod common;

/// Eight commands, eight events: acme with two teams and two inboxes, renamed.
fn story(data: &Path) {
    for cmd in [
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
        r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        r#"{"type":"create_inbox","org":"acme","inbox":"refunds","team":"support"}"#,
        r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
        r#"{"type":"create_team","org":"acme","team":"sales"}"#,
        r#"{"type":"rename_team","org":"acme","team":"sales","name":"Sales"}"#,
        r#"{"type":"rename_team","org":"acme","team":"support","name":"Support"}"#,
    ] {
        let o = permledger(data, &["run", "--as", "ann", cmd]);
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }
}

fn head_of(data: &Path) -> u64 {
    let d = text(&permledger(data, &["digest"]));
    d.trim().split(':').next().unwrap().parse().unwrap()
}

/// The folder opened with RocksDB itself, as an intruder would.
fn with_rocksdb(data: &Path, change: impl FnOnce(&rocksdb::DB)) {
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, data).unwrap();
    let db = rocksdb::DB::open_cf(&opts, data, cfs).unwrap();
    change(&db);
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Writes the stored head: `seq` and the link stored with that event.
fn set_head(db: &rocksdb::DB, seq: u64) {
    let events = db.cf_handle(cf::EVENTS).unwrap();
    let link = db.get_cf(events, key(seq)).unwrap().unwrap()[..32].to_vec();
    let mut head = seq.to_be_bytes().to_vec();
    head.extend_from_slice(&link);
    db.put_cf(db.cf_handle(cf::META).unwrap(), cf::HEAD, head)
        .unwrap();
}

/// An intruder's change to the folder, given the log's head.
type Alteration = Box<dyn Fn(&rocksdb::DB, u64)>;

/// Each alteration and the first event (or the words) the refusal must name.
fn alterations() -> Vec<(&'static str, Alteration, String)> {
    vec![
        (
            "a payload byte",
            Box::new(|db: &rocksdb::DB, _| {
                let events = db.cf_handle(cf::EVENTS).unwrap();
                let mut v = db.get_cf(events, key(4)).unwrap().unwrap();
                let last = v.len() - 1;
                v[last] ^= 0x01;
                db.put_cf(events, key(4), v).unwrap();
            }),
            "event 4".into(),
        ),
        (
            "a deleted event",
            Box::new(|db: &rocksdb::DB, _| {
                let events = db.cf_handle(cf::EVENTS).unwrap();
                db.delete_cf(events, key(5)).unwrap();
            }),
            "event 5 is missing".into(),
        ),
        (
            "two swapped events",
            Box::new(|db: &rocksdb::DB, _| {
                let events = db.cf_handle(cf::EVENTS).unwrap();
                let a = db.get_cf(events, key(6)).unwrap().unwrap();
                let b = db.get_cf(events, key(7)).unwrap().unwrap();
                db.put_cf(events, key(6), b).unwrap();
                db.put_cf(events, key(7), a).unwrap();
            }),
            "event 6".into(),
        ),
        (
            "the last events cut, the head left",
            Box::new(|db: &rocksdb::DB, head| {
                let events = db.cf_handle(cf::EVENTS).unwrap();
                db.delete_cf(events, key(head)).unwrap();
                db.delete_cf(events, key(head - 1)).unwrap();
            }),
            "truncated after event 6".into(),
        ),
        (
            "the head moved back",
            Box::new(|db: &rocksdb::DB, head| set_head(db, head - 1)),
            "stored after the head".into(),
        ),
    ]
}

#[test]
fn every_open_of_a_tampered_folder_refuses_with_exit_3_naming_the_first_bad_event() {
    for (what, alter, named) in alterations() {
        let dir = tempfile::tempdir().unwrap();
        story(dir.path());
        let head = head_of(dir.path());
        assert_eq!(head, 8, "the story's length");
        with_rocksdb(dir.path(), |db| alter(db, head));
        for args in [
            &["verify"][..],
            &["rebuild"],
            &[
                "check",
                "--org",
                "acme",
                "--user",
                "ann",
                "--permission",
                "team.view",
                "--scope",
                "team:support",
            ],
            &["serve", "--listen", "127.0.0.1:0"],
            &[
                "run",
                "--as",
                "ann",
                r#"{"type":"create_team","org":"acme","team":"x"}"#,
            ],
        ] {
            let o = permledger(dir.path(), args);
            assert_eq!(o.status.code(), Some(3), "{what}: {args:?}: {}", text(&o));
            assert!(text(&o).contains(&named), "{what}: {args:?}: {}", text(&o));
        }
        // Nothing was written by any of them: the damage reads the same afterwards.
        let again = permledger(dir.path(), &["verify"]);
        assert!(text(&again).contains(&named), "{what}: {}", text(&again));
    }
}

#[test]
fn a_cut_with_its_head_rewritten_or_a_recomputed_chain_fails_the_kept_digest() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let digest = text(&permledger(dir.path(), &["digest"]))
        .trim()
        .to_string();
    // The last two events cut and the head moved onto the new last one: a whole chain, shorter.
    with_rocksdb(dir.path(), |db| {
        let events = db.cf_handle(cf::EVENTS).unwrap();
        db.delete_cf(events, key(8)).unwrap();
        db.delete_cf(events, key(7)).unwrap();
        set_head(db, 6);
    });
    assert_eq!(permledger(dir.path(), &["verify"]).status.code(), Some(0));
    let o = permledger(dir.path(), &["verify", "--digest", &digest]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
}

/// Starts `serve` with global flags `extra` and answers (process, address).
fn serve(data: &Path, extra: &[&str]) -> (Child, String) {
    start(
        bin()
            .args(["--data", data.to_str().unwrap()])
            .args(extra)
            .args(["serve"]),
    )
}

/// Starts `serve` with its own flags `flags`.
fn serve_with(data: &Path, flags: &[&str]) -> (Child, String) {
    start(
        bin()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .args(flags),
    )
}

fn start(command: &mut Command) -> (Child, String) {
    common::listening(command.stderr(Stdio::null()))
}

/// (status, the read-only header, body)
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Option<String>, String) {
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
    let header = resp
        .headers()
        .get("permledger-read-only")
        .map(|v| v.to_str().unwrap().to_string());
    (
        resp.status().as_u16(),
        header,
        resp.body_mut().read_to_string().unwrap(),
    )
}

#[test]
fn read_only_serves_a_damaged_folder_up_to_its_last_good_event_and_takes_no_command() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let op = token(dir.path(), "operator");
    with_rocksdb(dir.path(), |db| {
        let events = db.cf_handle(cf::EVENTS).unwrap();
        db.delete_cf(events, key(7)).unwrap();
    });
    let (mut child, addr) = serve(dir.path(), &["--read-only"]);
    let (status, header, body) = http(&addr, "GET", "/healthz", &op, None);
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "read_only", "{body}");
    assert_eq!(health["seq"], 6, "{body}");
    assert!(
        health["read_only"]
            .as_str()
            .unwrap()
            .contains("event 7 is missing"),
        "{body}"
    );
    assert!(header.unwrap().contains("event 7 is missing"));
    // Reads answer from the events before the damage: the inbox made at event 4 is there.
    let (status, header, body) = http(
        &addr,
        "GET",
        "/v1/orgs/acme/scopes?user=ann&permission=inbox.view",
        &op,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(header.is_some());
    assert!(body.contains("inbox:refunds"), "{body}");
    let (status, header, body) = http(
        &addr,
        "POST",
        "/v1/commands",
        &op,
        Some(r#"{"as":"ann","do":{"type":"create_team","org":"acme","team":"x"}}"#),
    );
    assert_eq!(status, 503, "{body}");
    assert!(header.is_some());
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["code"], "read_only", "{body}");
    child.kill().unwrap();
    child.wait().unwrap();
    // The CLI's reads inspect the same way, with a warning; nothing was written meanwhile.
    let o = permledger(
        dir.path(),
        &[
            "--read-only",
            "check",
            "--org",
            "acme",
            "--user",
            "ann",
            "--permission",
            "team.view",
            "--scope",
            "team:support",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("warning: the log is damaged"),
        "{}",
        text(&o)
    );
    assert_eq!(permledger(dir.path(), &["verify"]).status.code(), Some(3));
}

#[test]
fn a_live_server_proves_it_extends_a_kept_digest_and_the_cli_reads_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let op = token(dir.path(), "operator");
    let auditor = token(dir.path(), "auditor");
    let (mut child, addr) = serve(dir.path(), &[]);
    let server = format!("http://{addr}");
    let cli = |t: &str, args: &[&str]| {
        bin()
            .args(["--server", &server, "--token", t])
            .args(args)
            .output()
            .unwrap()
    };
    let kept = cli(&auditor, &["digest"]);
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept));
    let kept = String::from_utf8(kept.stdout).unwrap().trim().to_string();
    assert!(kept.starts_with("8:"), "{kept}");
    let (_, _, body) = http(&addr, "GET", "/v1/digest", &auditor, None);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["digest"], kept.as_str());
    // The ledger moves on; it still extends what was kept.
    let o = cli(
        &op,
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","team":"ops"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = cli(&auditor, &["verify", "--digest", &kept]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("extends digest {kept}")),
        "{}",
        text(&o)
    );
    let (status, _, body) = http(
        &addr,
        "POST",
        "/v1/verify",
        &auditor,
        Some(&format!(r#"{{"digest":"{kept}","projections":false}}"#)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""extends":"8:"#), "{body}");
    // A digest of another history is not extended: exit 3, not a false "ok".
    let forged = format!("8:{}", "ab".repeat(32));
    let o = cli(&auditor, &["verify", "--digest", &forged]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // A digest beyond the head is a truncation only if the server's log is shorter: say so.
    let o = cli(
        &auditor,
        &["verify", "--digest", &format!("99:{}", "ab".repeat(32))],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));

    // The CLI reads the folder the server holds, read-only, instead of failing on its lock.
    let o = permledger(
        dir.path(),
        &[
            "check",
            "--org",
            "acme",
            "--user",
            "ann",
            "--permission",
            "team.view",
            "--scope",
            "team:ops",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(permledger(dir.path(), &["verify"]).status.code(), Some(0));
    // A command that writes is refused in words, not with RocksDB's lock error.
    let o = permledger(
        dir.path(),
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","team":"y"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("held by another permledger process"),
        "{}",
        text(&o)
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn commands_that_cannot_go_through_a_server_refuse_it_and_reads_create_no_folder() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    for args in [
        &["export"][..],
        &["import", "x.jsonl"],
        &["rebuild"],
        &["token", "list"],
        &["generate", "--events", "10"],
    ] {
        let o = bin()
            .args(["--server", "http://127.0.0.1:9", "--data"])
            .arg(&missing)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("not through a server"),
            "{args:?}: {}",
            text(&o)
        );
    }
    for args in [
        &["digest"][..],
        &["verify"],
        &["rebuild"],
        &["export"],
        &["query", "orgs"],
    ] {
        let o = permledger(&missing, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains("there is no ledger in"),
            "{args:?}: {}",
            text(&o)
        );
    }
    assert!(!missing.exists(), "a read created the folder");
}

#[test]
fn a_folder_rewritten_with_rocksdb_s_default_compression_opens() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let digest = text(&permledger(dir.path(), &["digest"]))
        .trim()
        .to_string();
    // What another RocksDB tool does: open with RocksDB's defaults (Snappy) and compact
    // every column family, rewriting its files.
    {
        let mut opts = rocksdb::Options::default();
        opts.set_compression_type(rocksdb::DBCompressionType::Snappy);
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let descriptors = cfs.iter().map(|name| {
            let mut o = rocksdb::Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::Snappy);
            rocksdb::ColumnFamilyDescriptor::new(name, o)
        });
        let db = rocksdb::DB::open_cf_descriptors(&opts, dir.path(), descriptors).unwrap();
        for name in &cfs {
            let cf = db.cf_handle(name).unwrap();
            db.flush_cf(cf).unwrap();
            db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
    }
    let o = permledger(dir.path(), &["verify", "--digest", &digest]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = permledger(
        dir.path(),
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","team":"ops"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// Waits until `path` holds at least `n` lines (the witness writes on its own clock).
fn lines_of(path: &Path, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the witness file never held {n} lines");
}

#[test]
fn signed_digests_and_a_witness_prove_a_live_ledger_and_catch_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    // The key was made with the folder; showing it again shows the same key.
    let shown = text(&permledger(dir.path(), &["key", "show"]));
    let public = shown.trim().to_string();
    assert!(
        public.starts_with("ed25519:") && public.len() == 72,
        "{shown}"
    );
    assert_eq!(
        text(&permledger(dir.path(), &["key", "show"])).trim(),
        public
    );

    let witness_dir = tempfile::tempdir().unwrap();
    let witness = witness_dir.path().join("witness.jsonl");
    let witness_arg = witness.to_str().unwrap();
    let op = token(dir.path(), "operator");
    let auditor = token(dir.path(), "auditor");
    let (mut child, addr) = serve_with(
        dir.path(),
        &["--witness", witness_arg, "--witness-every", "1"],
    );
    let server = format!("http://{addr}");
    let cli = |t: &str, args: &[&str]| {
        bin()
            .args(["--server", &server, "--token", t])
            .args(args)
            .output()
            .unwrap()
    };
    // The first statement is written as the server starts.
    let first = lines_of(&witness, 1);
    let stated: serde_json::Value = serde_json::from_str(&first[0]).unwrap();
    assert_eq!(stated["seq"], 8);
    assert_eq!(stated["key"], public.as_str());

    // A signed digest kept from the live server proves itself against the kept public key.
    let signed = cli(&auditor, &["digest", "--signed"]);
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed));
    let signed = String::from_utf8(signed.stdout).unwrap().trim().to_string();
    let (_, _, body) = http(&addr, "GET", "/v1/digest", &auditor, None);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["signed"]["key"], public.as_str(), "{body}");
    let o = cli(
        &op,
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","team":"ops"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = cli(&auditor, &["verify", "--digest", &signed, "--key", &public]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("the log extends digest 8:"),
        "{}",
        text(&o)
    );
    // The statement edited (its time moved) no longer verifies: exit 3, saying so.
    let mut edited: serde_json::Value = serde_json::from_str(&signed).unwrap();
    edited["time"] = "2020-01-01T00:00:00Z".into();
    let o = cli(
        &auditor,
        &["verify", "--digest", &edited.to_string(), "--key", &public],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("signature does not verify"),
        "{}",
        text(&o)
    );

    // The witness states the new head within a second; the server proves it extends both.
    let lines = lines_of(&witness, 2);
    assert!(lines[1].contains(r#""seq":9"#), "{lines:?}");
    let o = cli(
        &auditor,
        &["verify", "--witness", witness_arg, "--key", &public],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("extends all 2 digests"), "{}", text(&o));

    // A clean stop states nothing new (the head did not move) and leaves every line provable.
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
    let lines = lines_of(&witness, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let o = permledger(
        dir.path(),
        &["verify", "--witness", witness_arg, "--key", &public],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Another ledger's key is not this one's: every signature is refused.
    let other = tempfile::tempdir().unwrap();
    story(other.path());
    let other_key = text(&permledger(other.path(), &["key", "show"]))
        .trim()
        .to_string();
    let o = permledger(
        dir.path(),
        &["verify", "--witness", witness_arg, "--key", &other_key],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("witness line 1") && text(&o).contains("not by the trusted key"),
        "{}",
        text(&o)
    );

    // The log rewritten into a whole, shorter chain: the witness names the first line it breaks.
    with_rocksdb(dir.path(), |db| {
        let events = db.cf_handle(cf::EVENTS).unwrap();
        db.delete_cf(events, key(9)).unwrap();
        set_head(db, 8);
    });
    // The server's shutdown checkpoint stands at event 9, beyond the new head: verify says so.
    let o = permledger(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("stands at event 9, beyond the log's last event 8"),
        "{}",
        text(&o)
    );
    // An intruder removes the checkpoints too: the chain alone holds...
    std::fs::remove_dir_all(dir.path().join("checkpoints")).unwrap();
    assert_eq!(permledger(dir.path(), &["verify"]).status.code(), Some(0));
    let o = permledger(
        dir.path(),
        &["verify", "--witness", witness_arg, "--key", &public],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("does not extend witness line 2 (digest 9:"),
        "{}",
        text(&o)
    );
}

#[test]
fn an_export_closes_with_its_signed_digest_and_an_edited_or_cut_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    story(dir.path());
    let public = text(&permledger(dir.path(), &["key", "show"]))
        .trim()
        .to_string();
    let file = dir.path().join("log.jsonl");
    let o = permledger(dir.path(), &["export", "--out", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 9, "eight events and the closing digest");
    let end: serde_json::Value = serde_json::from_str(&lines[8]).unwrap();
    let head = text(&permledger(dir.path(), &["digest"]))
        .trim()
        .to_string();
    assert_eq!(
        format!(
            "{}:{}",
            end["covers"]["seq"],
            end["covers"]["hash"].as_str().unwrap()
        ),
        head
    );
    assert_eq!(end["covers"]["key"], public.as_str());

    let import = |lines: &[String], extra: &[&str]| {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), lines.join("\n")).unwrap();
        let into = tempfile::tempdir().unwrap();
        let mut args = vec!["import", f.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = permledger(into.path(), &args);
        // Whatever the answer, a refused file leaves no log behind.
        if !o.status.success() {
            assert!(
                !into.path().join("CURRENT").exists(),
                "a refused import wrote a log"
            );
        }
        o
    };
    // The file as written imports, and with the key of the ledger it came from.
    let o = import(&lines, &["--key", &public]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // A readable field edited, its bytes left alone: refused, naming the event and the field.
    let mut edited = lines.clone();
    let mut fifth: serde_json::Value = serde_json::from_str(&edited[4]).unwrap();
    fifth["event"]["meta"]["reason"] = "approved by CFO".into();
    edited[4] = fifth.to_string();
    let o = import(&edited, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("event 5's readable `meta.reason` says \"approved by CFO\" but its stored bytes say null"),
        "{}",
        text(&o)
    );
    // Cut before its closing line (or anywhere, at a line's end): refused as cut short.
    let o = import(&lines[..6], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("cut short"), "{}", text(&o));
    // Closed with a digest that is not its last link: refused.
    let mut shifted = lines[..7].to_vec();
    shifted.push(lines[8].clone());
    let o = import(&shifted, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not the file's last link"),
        "{}",
        text(&o)
    );
    // Signed by another ledger than the one expected: refused.
    let other = tempfile::tempdir().unwrap();
    story(other.path());
    let other_key = text(&permledger(other.path(), &["key", "show"]))
        .trim()
        .to_string();
    let o = import(&lines, &["--key", &other_key]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not by the trusted key"), "{}", text(&o));

    // An export of the first version (unsigned, its readable copies as that version wrote
    // them) is refused whole, and imports by its bytes when asked to.
    let golden: Vec<String> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden/log-v1.jsonl"),
    )
    .unwrap()
    .lines()
    .map(String::from)
    .collect();
    let o = import(&golden, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = import(&golden, &["--bytes-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("only its chain was checked"),
        "{}",
        text(&o)
    );
}
