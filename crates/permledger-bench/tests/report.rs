//! The bench end to end on a small log and short stages: every figure the benchmarks issue asks
//! for is in the report, as a positive number, in the JSON object and in the table. Nothing here
//! judges a figure's size: that is what the printed targets are for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use permledger_bench::{run, Options};

const REQUIRED: [&str; 22] = [
    "raw_synced_batch_events_per_s",
    "append_events_per_s",
    "append_p99_us",
    "raw_scan_events_per_s",
    "rebuild_events_per_s",
    "rebuild_unchecked_events_per_s",
    "check_p50_ns",
    "check_p99_ns",
    "checks_per_s",
    "asof_check_p99_us",
    "full_replay_ms",
    "http_floor_rps",
    "http_floor_p99_us",
    "http_check_rps",
    "http_check_p99_us",
    "projection_bytes_per_grant",
    "events",
    "open_full_ms",
    "open_checkpoint_ms",
    "checkpoint_write_ms",
    "checkpoint_bytes",
    "append_p99_during_checkpoint_us",
];

#[test]
fn a_small_run_reports_every_figure_the_issue_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        events: 20_000,
        write_time: Duration::from_millis(300),
        http_time: Duration::from_millis(300),
        checks: 5_000,
        asof_checks: 1_000,
        rounds: 2,
        submitters: 8,
        connections: 2,
        ..Options::quick(dir.path().to_path_buf())
    };
    let mut stages = Vec::new();
    let report = run(&opts, |s| stages.push(s.to_string())).unwrap();
    let json = report.json();
    for key in REQUIRED {
        let v = json[key]
            .as_f64()
            .unwrap_or_else(|| panic!("`{key}` is not a number in {json}"));
        assert!(v > 0.0, "`{key}` is {v}");
    }
    assert_eq!(json["events"], 20_000);
    // Beyond the issue's list: what a check waits for while the appends run.
    let under_writes = json["check_under_writes_p99_ns"].as_f64().unwrap_or(0.0);
    assert!(under_writes > 0.0, "no checks under writes in {json}");
    let table = report.table();
    for key in REQUIRED {
        assert!(table.contains(key), "the table lacks `{key}`:\n{table}");
    }
    // The scan and the rebuild ran the rounds asked for, and say so beside their medians.
    let rebuild = report
        .figures
        .iter()
        .find(|f| f.key == "rebuild_events_per_s")
        .unwrap();
    assert!(
        rebuild.against.contains("median of 2"),
        "{}",
        rebuild.against
    );
    assert!(
        stages.iter().any(|s| s.contains("8 concurrent submitters")),
        "{stages:?}"
    );
    // Its databases live in a folder of their own, gone once the run ends.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
