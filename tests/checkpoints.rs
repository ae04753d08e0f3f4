//! Checkpoints through the real binary: a server writes one at a clean stop and behind itself
//! every so many events; `permledger checkpoint` writes one beside it; every open starts from
//! the newest one the log agrees with, and says which it passed over and why; `verify` compares
//! each with a fold of the log; a server killed while writing one opens correctly; a change
//! below a checkpoint stops every writer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{http, permledger, serve_with, terminate, text, token};
use permledger_rocks::cf;

const CHECK: [&str; 9] = [
    "check",
    "--org",
    "acme",
    "--user",
    "ann",
    "--permission",
    "team.view",
    "--scope",
    "team:support",
];

fn run(data: &Path, cmd: &str) {
    let o = permledger(data, &["run", "--as", "ann", cmd]);
    assert!(o.status.success(), "{cmd}: {}", text(&o));
}

fn story(data: &Path) {
    for cmd in [
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        r#"{"type":"create_team","org":"acme","team":"support"}"#,
        r#"{"type":"create_inbox","org":"acme","inbox":"billing","team":"support"}"#,
        r#"{"type":"invite","org":"acme","invite":"i1","email":"bo@x.test","role":"org_member"}"#,
        r#"{"type":"create_inbox","org":"acme","inbox":"refunds","team":"support"}"#,
        r#"{"type":"rename_org","org":"acme","name":"Acme Inc"}"#,
    ] {
        run(data, cmd);
    }
}

fn checkpoints(data: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(data.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    // `{seq}.ckpt`, or `{seq}-{base}.ckpt` for a delta.
                    let stem = name.strip_suffix(".ckpt")?;
                    let seq = stem.split('-').next()?.parse().ok()?;
                    Some((seq, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Every read the CLI answers from a folder at position `at`, as text: what must not change
/// whichever way the folder is opened.
fn answers(data: &Path, at: &str) -> Vec<String> {
    let reads: [&[&str]; 5] = [
        &CHECK,
        &["query", "members", "--org", "acme", "--scope", "org"],
        &[
            "query", "audit", "--org", "acme", "--as", "ann", "--format", "json",
        ],
        &["query", "orgs"],
        &[
            "query",
            "who-can",
            "--org",
            "acme",
            "--permission",
            "team.view",
            "--scope",
            "org",
        ],
    ];
    reads
        .iter()
        .map(|args| {
            let o = permledger(data, &[args, &["--at", at][..]].concat());
            assert!(
                matches!(o.status.code(), Some(0 | 2)),
                "{args:?}: {}",
                text(&o)
            );
            String::from_utf8_lossy(&o.stdout).to_string()
        })
        .collect()
}

#[test]
fn a_server_checkpoints_at_a_clean_stop_and_every_open_starts_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    story(data);
    let service = token(data, "service");
    let (child, addr) = serve_with(data, &[]);
    for team in ["sales", "ops"] {
        let body =
            format!(r#"{{"as":"ann","do":{{"type":"create_team","org":"acme","team":"{team}"}}}}"#);
        let (status, answer) = http(&addr, "POST", "/v1/commands", &service, Some(&body));
        assert_eq!(status, 200, "{answer}");
    }
    let said = terminate(child);
    assert!(said.contains("checkpoint at event 8 written"), "{said}");
    assert_eq!(
        checkpoints(data).iter().map(|c| c.0).collect::<Vec<_>>(),
        [8]
    );

    // Opened from the checkpoint, the answers, now and in the past, are those of a fold of
    // the whole log.
    let with_checkpoint = [answers(data, "8"), answers(data, "3")];
    let aside = data.join("checkpoints-aside");
    std::fs::rename(data.join("checkpoints"), &aside).unwrap();
    assert_eq!([answers(data, "8"), answers(data, "3")], with_checkpoint);
    std::fs::rename(&aside, data.join("checkpoints")).unwrap();

    let o = permledger(data, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("checkpoint at event 8 agrees with a fold of the log"),
        "{}",
        text(&o)
    );

    // A command later, `permledger checkpoint` writes the next; again, nothing new: none.
    run(
        data,
        r#"{"type":"create_team","org":"acme","team":"legal"}"#,
    );
    let o = permledger(data, &["checkpoint"]);
    assert!(
        text(&o).contains("checkpoint at event 9 written"),
        "{}",
        text(&o)
    );
    let o = permledger(data, &["checkpoint"]);
    assert!(
        text(&o).contains("already at the log's head, event 9"),
        "{}",
        text(&o)
    );

    // A checkpoint damaged on disk is passed over, with a warning naming it; the answers hold.
    let answers_at_9 = answers(data, "9");
    let newest = checkpoints(data).pop().unwrap().1;
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x10;
    std::fs::write(&newest, bytes).unwrap();
    let o = permledger(data, &CHECK);
    assert!(
        text(&o).contains(&format!(
            "warning: checkpoint `{}` is passed over",
            newest.display()
        )),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("does not match its checksum"),
        "{}",
        text(&o)
    );
    assert_eq!(answers(data, "9"), answers_at_9);
    let o = permledger(data, &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("CHECKPOINT WRONG"), "{}", text(&o));
    assert!(
        text(&o).contains("checkpoint at event 8 agrees"),
        "{}",
        text(&o)
    );
    // Its header still reads, but `permledger checkpoint` judges it as an open does: it is
    // named, and written anew in its place; verify then passes.
    let o = permledger(data, &["checkpoint"]);
    assert!(
        text(&o).contains("is passed over") && text(&o).contains("checkpoint at event 9 written"),
        "{}",
        text(&o)
    );
    let o = permledger(data, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_server_writes_checkpoints_behind_itself_and_one_killed_meanwhile_opens_correctly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // A log big enough that a checkpoint takes a while to write.
    let o = permledger(data, &["generate", "--events", "60000"]);
    assert!(o.status.success(), "{}", text(&o));
    let service = token(data, "service");
    let o = permledger(data, &["checkpoint"]);
    assert!(o.status.success(), "{}", text(&o));
    let first = checkpoints(data)[0].0;
    let mut acknowledged = Vec::new();
    for round in 0..4u64 {
        let (mut child, addr) = serve_with(data, &["--checkpoint-events", "3"]);
        let started = Instant::now();
        // Commands until the kill: checkpoints are written, one after another, meanwhile.
        let kill_after = Duration::from_millis(400 + 350 * round);
        let mut n = 0;
        while started.elapsed() < kill_after {
            let org = format!("r{round}-{n}");
            let body = format!(
                r#"{{"as":"zed","do":{{"type":"create_org","org":"{org}","preset":"blank"}}}}"#
            );
            let (status, answer) = http(&addr, "POST", "/v1/commands", &service, Some(&body));
            assert_eq!(status, 200, "{answer}");
            acknowledged.push(org);
            n += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Whatever the kill interrupted, every checkpoint left agrees with the log...
        let o = permledger(data, &["verify"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", text(&o));
        // ...and the next open holds every acknowledged command.
        let o = permledger(data, &["query", "orgs"]);
        assert!(o.status.success(), "{}", text(&o));
        let orgs = String::from_utf8_lossy(&o.stdout);
        for org in &acknowledged {
            assert!(
                orgs.contains(&format!("\n{org} ")),
                "round {round}: {org} lost"
            );
        }
    }
    // The servers wrote checkpoints behind themselves (a checkpoint every 3 events, so that
    // one is nearly always being written when the kill comes), deltas on the first, and no
    // more than the few newest are kept, with the base they need.
    let kept = checkpoints(data);
    assert!(
        kept.last().unwrap().0 > first,
        "no server wrote a checkpoint: {kept:?}"
    );
    assert!(kept.len() <= 4, "{kept:?}");
    assert!(
        kept.iter().any(|(_, p)| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains('-'))
        }),
        "no delta: {kept:?}"
    );
}

#[test]
fn a_change_below_a_checkpoint_stops_every_writer_and_verify_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    story(data);
    let o = permledger(data, &["checkpoint"]);
    assert!(o.status.success(), "{}", text(&o));
    let operator = token(data, "operator");
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, data).unwrap();
        let db = rocksdb::DB::open_cf(&opts, data, cfs).unwrap();
        let events = db.cf_handle(cf::EVENTS).unwrap();
        let mut v = db.get_cf(events, 4u64.to_be_bytes()).unwrap().unwrap();
        let last = v.len() - 1;
        v[last] ^= 0x01;
        db.put_cf(events, 4u64.to_be_bytes(), v).unwrap();
    }
    // verify rereads everything; a writer on the command line proves the links first.
    let o = permledger(data, &["verify"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("event 4"), "{}", text(&o));
    let o = permledger(
        data,
        &[
            "run",
            "--as",
            "ann",
            r#"{"type":"create_team","org":"acme","team":"x"}"#,
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("event 4 was changed"), "{}", text(&o));
    // A server opens from the checkpoint, finds the change in the background, and from then
    // on refuses every command and says why.
    let (child, addr) = serve_with(data, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = http(&addr, "GET", "/healthz", &operator, None);
        let health: serde_json::Value = serde_json::from_str(&body).unwrap();
        if health["status"] == "read_only" {
            let why = health["read_only"].as_str().unwrap();
            assert!(why.contains("damaged below the checkpoint"), "{why}");
            assert!(why.contains("event 4 was changed"), "{why}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the damage was never found: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/commands",
        &operator,
        Some(r#"{"as":"ann","do":{"type":"create_team","org":"acme","team":"x"}}"#),
    );
    assert_eq!(status, 503, "{body}");
    terminate(child);
    assert!(
        permledger(data, &["digest"]).stdout.starts_with(b"6:"),
        "nothing was written"
    );
}
