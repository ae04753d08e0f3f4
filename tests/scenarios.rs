//! The acceptance suite: every scenario file under `fixtures/scenarios/` passes against the
//! in-memory log and against RocksDB, with the three oracles; and the runner does fail files
//! whose expectations are wrong.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_fixture_scenario_passes() {
    let files = scenario_files();
    assert!(!files.is_empty());
    let results: Vec<_> = files
        .iter()
        .map(|f| permledger_scenario::run_file(f))
        .collect();
    let (report, ok) = permledger_scenario::report(&results);
    assert!(ok, "\n{report}");
}

#[test]
fn a_wrong_expectation_fails_its_file_once_for_both_logs() {
    let text = r#"{"name": "wrong", "steps": [
        {"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}},
        {"check": {"org": "acme", "user": "bob", "permission": "org.audit.view", "scope": "org"}, "expect": true},
        {"as": "bob", "do": {"type": "create_team", "org": "acme", "team": "x"}},
        {"as": "ann", "do": {"type": "create_team", "org": "acme", "team": "x"}, "expect_error": "forbidden"}
    ]}"#;
    let r = permledger_scenario::run_text("wrong.json", text).unwrap();
    let steps: Vec<_> = r
        .failures
        .iter()
        .map(|f| (f.step, f.backend.map(|b| b.to_string())))
        .collect();
    // Each step failed alike on the memory log and on RocksDB: one failure each, no log named.
    assert_eq!(
        steps,
        [(Some(2), None), (Some(3), None), (Some(4), None)],
        "{:?}",
        r.failures
    );
    assert!(r.failures[1].actual.contains("forbidden"));
    assert!(r.failures[2].expected.contains("forbidden"));
    let (report, ok) = permledger_scenario::report(&[r]);
    assert!(!ok);
    assert!(report.ends_with("0 passed, 1 failed\n"), "{report}");
}

#[test]
fn unknown_fields_anywhere_fail_the_file() {
    for text in [
        r#"{"name": "x", "steps": [], "extra": 1}"#,
        r#"{"name": "x", "steps": [{"clock": "2026-01-01T00:00:00Z", "note": "hi"}]}"#,
        r#"{"name": "x", "steps": [{"check": {"org": "a", "user": "u", "permission": "a.b", "scope": "org", "when": 1}, "expect": true}]}"#,
        r#"{"name": "x", "steps": [{"as": "u", "do": {"type": "create_org", "org": "a"}, "expect_eror": "invalid"}]}"#,
        r#"{"name": "x", "steps": [{"mark": "m", "clock": "2026-01-01T00:00:00Z"}]}"#,
    ] {
        assert!(
            permledger_scenario::run_text("x.json", text).is_err(),
            "{text}"
        );
    }
}
