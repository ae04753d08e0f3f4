//! The checkpoint stage: a checkpoint of the generated log written 10 events before its end,
//! a restart from it beside the restart without one, a whole `permledger check` process on the
//! folder, and the append's latency while checkpoints are written beside it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use permledger_domain::{OrgId, Timestamp, UserId};
use permledger_ledger::{checkpoint, Below, Checkpoints, Ledger, SystemClock};
use permledger_log::EventLog;
use permledger_rocks::RocksLog;

use crate::{append, fail, group, median, quantile, BenchError, Options, Report};

pub(crate) fn run(
    opts: &Options,
    log: &Arc<RocksLog>,
    log_dir: &Path,
    (org, owner): (OrgId, Option<UserId>),
    open_full_ms: f64,
    r: &mut Report,
    say: &mut impl FnMut(&str),
) -> Result<(), BenchError> {
    say("a checkpoint 10 events before the log's end, then a restart from it");
    let store = Checkpoints::of_folder(log_dir);
    let head = log.head().map_err(fail("checkpoint"))?.seq;
    let at = head.saturating_sub(10);
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let written = {
        let views =
            permledger_ledger::replay_until(&**log, at, |_, _| {}).map_err(fail("checkpoint"))?;
        let link = checkpoint::link_at(&**log, at).map_err(fail("checkpoint"))?;
        store
            .write_whole(&views, link, now)
            .map_err(fail("checkpoint"))?
    };
    r.add(
        "checkpoint_write_ms",
        written.took.as_secs_f64() * 1000.0,
        "ms",
        format!(
            "the views at event {} encoded on every core, written and synced",
            group(at as f64)
        ),
    );
    r.add(
        "checkpoint_bytes",
        written.bytes as f64,
        "bytes",
        format!(
            "{:.0} bytes an event",
            written.bytes as f64 / at.max(1) as f64
        ),
    );
    let (mut opens, mut settled) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let started = Instant::now();
        let (ledger, from) = Ledger::open_from(
            log.clone(),
            Arc::new(SystemClock),
            &store,
            Below::InBackground,
            &mut |w| say(&format!("warning: {w}")),
            |_, _| {},
        )
        .map_err(fail("open from a checkpoint"))?;
        opens.push(started.elapsed().as_secs_f64() * 1000.0);
        if from.map(|d| d.seq) != Some(at) {
            return Err(fail("open from a checkpoint")(
                "the checkpoint was not used",
            ));
        }
        // What the open left to the background (the links below rechecked, the orgs decoded)
        // ends before the next figure is taken.
        let settling = Instant::now();
        ledger.settle();
        settled.push(settling.elapsed().as_secs_f64() * 1000.0);
        ledger.shutdown();
    }
    let open = median(&opens);
    r.add(
        "open_checkpoint_ms",
        open,
        "ms",
        format!(
            "a restart from it (median of 3): {:.2} of the full open (target <= 0.10); its orgs \
             decoded at first use and in the background, and the links below it rechecked \
             there, in {:.0} ms more",
            open / open_full_ms.max(1e-9),
            median(&settled)
        ),
    );

    if let (Some(cli), Some(owner)) = (&opts.cli, owner) {
        say("a whole `permledger check` process on the folder, on its largest org");
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let out = std::process::Command::new(cli)
                .arg("--data")
                .arg(log_dir)
                .args(["check", "--org", org.as_str(), "--user", owner.as_str()])
                .args(["--permission", "org.members.view", "--scope", "org"])
                .output()
                .map_err(fail("cli check"))?;
            runs.push(started.elapsed().as_secs_f64() * 1000.0);
            if !matches!(out.status.code(), Some(0) | Some(2)) {
                return Err(fail("cli check")(String::from_utf8_lossy(&out.stderr)));
            }
        }
        r.add(
            "cli_check_ms",
            median(&runs),
            "ms",
            format!(
                "start to exit, org `{org}` (the largest), median of 5 (target < 300): its part \
                 of the checkpoint read and 10 events folded"
            ),
        );
    }

    say("the appends again, into the generated ledger, with checkpoints written behind them");
    // As a server run with `--checkpoint-events` writes them: behind the ledger, from the
    // newest checkpoint and the log, on a thread that yields the cores; each a delta on the
    // whole checkpoint above. (Fewer events apart in a small run, so that some are written.)
    let every: u64 = (opts.events / 20).clamp(1_000, 50_000);
    let (ledger, _) = Ledger::open_from(
        log.clone(),
        Arc::new(SystemClock),
        &store,
        Below::Now,
        &mut |w| say(&format!("warning: {w}")),
        |_, _| {},
    )
    .map_err(fail("open from a checkpoint"))?;
    ledger.settle();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, log, stop, ledger) = (store.clone(), log.clone(), stop.clone(), ledger.clone());
        checkpoint::spawn_background("bench-checkpoint", move || {
            let mut windows: Vec<(Instant, Instant, checkpoint::Written)> = Vec::new();
            let mut last = ledger.seq();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(10));
                let seq = ledger.seq();
                if seq < last + every {
                    continue;
                }
                let started = Instant::now();
                let now = Timestamp::from_chrono(chrono::Utc::now());
                match checkpoint::behind(&*log, &store, seq, now, &mut |_| {}) {
                    Ok(Some(w)) => windows.push((started, Instant::now(), w)),
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string()),
                }
                last = seq;
            }
            Ok(windows)
        })
        .map_err(fail("checkpoint thread"))?
    };
    let appended = append::run_on(ledger, opts.submitters, opts.write_time, false);
    stop.store(true, Ordering::Relaxed);
    let windows = writer
        .join()
        .map_err(|_| fail("checkpoint thread")("it panicked"))?
        .map_err(fail("checkpoint thread"))?;
    let a = appended?;
    // Each command sent or answered while a checkpoint was being written.
    let spans: Vec<(u64, u64)> = windows
        .iter()
        .map(|(from, to, _)| {
            let us = |t: &Instant| t.saturating_duration_since(a.started).as_micros() as u64;
            (us(from), us(to))
        })
        .collect();
    let (mut during, mut beside): (Vec<u64>, Vec<u64>) = (Vec::new(), Vec::new());
    for (sent, answered) in &a.spans_us {
        let overlaps = spans.iter().any(|(from, to)| sent < to && answered > from);
        if overlaps {
            during.push(answered - sent);
        } else {
            beside.push(answered - sent);
        }
    }
    if during.is_empty() {
        return Err(fail("append during checkpoints")(
            "no checkpoint was written while the appends ran",
        ));
    }
    during.sort_unstable();
    beside.sort_unstable();
    let p99 = quantile(&during, 0.99);
    let plain = r.get("append_p99_us").unwrap_or(0.0);
    let deltas: Vec<f64> = windows
        .iter()
        .map(|(_, _, w)| w.took.as_secs_f64() * 1000.0)
        .collect();
    let bytes: Vec<f64> = windows.iter().map(|(_, _, w)| w.bytes as f64).collect();
    let whole = windows
        .iter()
        .filter(|(_, _, w)| {
            // A delta's name is `{seq}-{base}.ckpt`.
            !w.path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains('-'))
        })
        .count();
    r.add(
        "append_p99_during_checkpoint_us",
        p99,
        "us",
        format!(
            "{:.2}x the append's p99 without (target <= 1.20), {:.2}x that of the same run's \
             commands while none was written ({} of {} commands overlap one); {} checkpoints \
             written, one every {} events ({whole} whole), each in {:.0} ms and {:.1} MB \
             (medians)",
            p99 / plain.max(1e-9),
            p99 / quantile(&beside, 0.99).max(1e-9),
            group(during.len() as f64),
            group(a.spans_us.len() as f64),
            windows.len(),
            group(every as f64),
            median(&deltas),
            median(&bytes) / 1e6
        ),
    );
    r.add(
        "checkpoint_delta_write_ms",
        median(&deltas),
        "ms",
        format!(
            "a checkpoint behind a ledger of {} events, {} events after the last one (median): \
             the changed orgs encoded, the rest left in the whole checkpoint",
            group(head as f64),
            group(every as f64)
        ),
    );
    Ok(())
}
