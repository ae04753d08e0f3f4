//! `permledger bench`: permledger's figures, each beside the physical limit it is read against,
//! measured in one process and one run on this machine. Nothing here asserts a time; the figures
//! are printed (a table, or one JSON object) for people and for the README.
//!
//! The stages, in order: RocksDB alone writing synced batches; permledger appending under 64
//! concurrent submitters, then again with a reader asking checks in process meanwhile; a
//! generated, realistic log (`permledger-workload`) scanned raw by RocksDB and rebuilt into every
//! projection; checks in process on the largest org, at the present and at random past moments;
//! checks over HTTP on loopback from a keep-alive client; and checkpoints of the generated log:
//! written, opened from, a `check` process started on them, and appends while one is written.

mod append;
mod checkpoints;
pub mod cluster;
mod http;
mod reads;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use permledger_ledger::{Ledger, SystemClock};
use permledger_rocks::RocksLog;

/// How much work a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events in the generated log (1,000,000 quick, 10,000,000 full).
    pub events: u64,
    pub seed: u64,
    /// How long each timed write stage runs.
    pub write_time: Duration,
    /// How long the HTTP stage runs.
    pub http_time: Duration,
    /// Checks timed one by one (present), and at past moments.
    pub checks: usize,
    pub asof_checks: usize,
    /// How many times the raw scan and the rebuild each run, in turn: their figures are the
    /// medians, so that one slow moment of this machine does not make the figure.
    pub rounds: usize,
    /// Concurrent submitters of the append stage, and connections of the HTTP client.
    pub submitters: usize,
    pub connections: usize,
    /// Where the temporary databases go (the same disk as the data they stand for).
    pub dir: PathBuf,
    /// The `permledger` binary, for `cli_check_ms` (a whole `check` process); none: not timed.
    pub cli: Option<PathBuf>,
}

impl Options {
    pub fn quick(dir: PathBuf) -> Options {
        Options {
            events: 1_000_000,
            seed: 1,
            write_time: Duration::from_secs(3),
            http_time: Duration::from_secs(4),
            checks: 200_000,
            asof_checks: 20_000,
            rounds: 3,
            submitters: 64,
            connections: 16,
            dir,
            cli: None,
        }
    }

    /// Ten times the data of the quick run, and longer timed stages.
    pub fn full(dir: PathBuf) -> Options {
        Options {
            events: 10_000_000,
            write_time: Duration::from_secs(10),
            http_time: Duration::from_secs(10),
            checks: 1_000_000,
            asof_checks: 100_000,
            ..Options::quick(dir)
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{stage}: {reason}")]
pub struct BenchError {
    pub stage: &'static str,
    pub reason: String,
}

pub(crate) fn fail<E: std::fmt::Display>(stage: &'static str) -> impl Fn(E) -> BenchError {
    move |e| BenchError {
        stage,
        reason: e.to_string(),
    }
}

/// One figure of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub key: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// What it is read against (a target, or the limit measured beside it).
    pub against: String,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub figures: Vec<Figure>,
}

impl Report {
    fn add(
        &mut self,
        key: &'static str,
        value: f64,
        unit: &'static str,
        against: impl Into<String>,
    ) {
        self.figures.push(Figure {
            key,
            value,
            unit,
            against: against.into(),
        });
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.iter().find(|f| f.key == key).map(|f| f.value)
    }

    /// One JSON object: every key with its number.
    pub fn json(&self) -> serde_json::Value {
        let map: BTreeMap<&str, serde_json::Value> = self
            .figures
            .iter()
            .map(|f| {
                let v = if f.value.fract() == 0.0 && f.value.abs() < 9e15 {
                    serde_json::json!(f.value as i64)
                } else {
                    serde_json::json!((f.value * 100.0).round() / 100.0)
                };
                (f.key, v)
            })
            .collect();
        serde_json::json!(map)
    }

    /// A table: figure, value, unit, what it is read against.
    pub fn table(&self) -> String {
        let width = self.figures.iter().map(|f| f.key.len()).max().unwrap_or(0);
        let mut out = String::new();
        for f in &self.figures {
            out.push_str(&format!(
                "{:<width$}  {:>14}  {:<8}  {}\n",
                f.key,
                group(f.value),
                f.unit,
                f.against
            ));
        }
        out
    }
}

/// 1234567.8 -> "1,234,568"; small values keep two decimals.
pub fn group(v: f64) -> String {
    if v.abs() < 100.0 && v.fract() != 0.0 {
        return format!("{v:.2}");
    }
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The value at quantile `q` of sorted samples.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64
}

/// Resident memory of this process, from /proc (Linux); None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The middle value (the mean of the two middle ones for an even count; 0 for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn per_s(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs every stage; `say` hears what is being done (for a progress line on stderr).
pub fn run(opts: &Options, mut say: impl FnMut(&str)) -> Result<Report, BenchError> {
    let mut r = Report::default();
    std::fs::create_dir_all(&opts.dir).map_err(fail("work folder"))?;
    let work = tempfile::Builder::new()
        .prefix("permledger-bench-")
        .tempdir_in(&opts.dir)
        .map_err(fail("work folder"))?;

    let mut synced = |folder: &str, per_batch: usize| -> Result<f64, BenchError> {
        say(&format!(
            "RocksDB alone: synced batches of {per_batch} small values"
        ));
        let (n, d) = permledger_rocks::raw::synced_batches(
            &work.path().join(folder),
            per_batch,
            100,
            opts.write_time,
        )
        .map_err(fail("raw synced batches"))?;
        Ok(per_s(n, d))
    };
    let raw = synced("raw", 256)?;
    r.add(
        "raw_synced_batch_events_per_s",
        raw,
        "events/s",
        "the disk's limit: RocksDB alone, synced WriteBatch of 256 x 100 B",
    );
    // What one sync can carry from the submitters below: each has one command in flight.
    let raw_group = synced("raw-group", opts.submitters)?;
    r.add(
        "raw_synced_group_events_per_s",
        raw_group,
        "events/s",
        format!(
            "RocksDB alone, synced WriteBatch of {} x 100 B: the bound for {} callers with one command each in flight",
            opts.submitters, opts.submitters
        ),
    );

    say(&format!(
        "permledger: appending from {} concurrent submitters",
        opts.submitters
    ));
    let a = append::run(
        &work.path().join("append"),
        opts.submitters,
        opts.write_time,
        false,
    )?;
    let appended = per_s(a.events, a.elapsed);
    r.add(
        "append_events_per_s",
        appended,
        "events/s",
        format!(
            "target >= 1/4 of raw synced groups ({}): {:.2} of them; every command acknowledged \
             once durable",
            group(raw_group / 4.0),
            appended / raw_group.max(1.0)
        ),
    );
    r.add(
        "append_commands_per_s",
        per_s(a.commands, a.elapsed),
        "cmds/s",
        format!("{} submitters, one command in flight each", opts.submitters),
    );
    let st = a.stats;
    let per_group = |d: Duration| d.as_secs_f64() * 1e6 / st.groups.max(1) as f64;
    r.add(
        "append_group_avg",
        st.commands as f64 / st.groups.max(1) as f64,
        "cmds",
        format!(
            "commands per synced append; per group {:.0} us deciding, {:.0} us appending, {:.0} us publishing and answering, {:.0} us waiting for the next group",
            per_group(st.decide),
            per_group(st.append),
            per_group(st.publish),
            per_group(st.idle)
        ),
    );
    r.add(
        "append_p99_us",
        quantile(&a.latencies_us, 0.99),
        "us",
        format!(
            "one command at that load (p50 {} us)",
            group(quantile(&a.latencies_us, 0.5))
        ),
    );

    say("the same appends, with a reader asking checks in process meanwhile");
    let mixed = append::run(
        &work.path().join("append-read"),
        opts.submitters,
        opts.write_time,
        true,
    )?;
    r.add(
        "check_under_writes_p99_ns",
        quantile(&mixed.checks_ns, 0.99),
        "ns",
        format!(
            "a check on a small org while the appends run (p50 {}, p999 {}, {} checks); a read waits while a group is published",
            group(quantile(&mixed.checks_ns, 0.5)),
            group(quantile(&mixed.checks_ns, 0.999)),
            group(mixed.checks_ns.len() as f64)
        ),
    );

    say(&format!(
        "generating a realistic log of {} events",
        group(opts.events as f64)
    ));
    let log_dir = work.path().join("log");
    let generated = {
        let log = RocksLog::open(&log_dir).map_err(fail("generate"))?;
        let started = Instant::now();
        let summary = permledger_workload::generate(&log, opts.events, opts.seed, |_| {})
            .map_err(fail("generate"))?;
        say(&format!(
            "generated {} events in {} orgs in {:.1} s; compacting",
            group(summary.events as f64),
            summary.orgs,
            started.elapsed().as_secs_f64()
        ));
        // Measured as a restarted server finds its log: settled, no compaction running.
        log.compact().map_err(fail("compact"))?;
        summary
    };

    say(&format!(
        "RocksDB alone scanning the log's stored bytes, then rebuilding every projection from \
         them, {} times in turn",
        opts.rounds.max(1)
    ));
    let log = Arc::new(RocksLog::open(&log_dir).map_err(fail("reopen"))?);
    // Once to warm the page cache as the rebuild will find it, then measured.
    log.raw_scan().map_err(fail("raw scan"))?;
    let (mut scans, mut rebuilds, mut unchecked) = (Vec::new(), Vec::new(), Vec::new());
    let (mut bytes, mut events, mut memory) = (0, 0, None);
    for round in 0..opts.rounds.max(1) {
        let started = Instant::now();
        let (scanned, b) = log.raw_scan().map_err(fail("raw scan"))?;
        scans.push(per_s(scanned, started.elapsed()));
        bytes = b;
        let before = resident_bytes();
        let started = Instant::now();
        let views = permledger_ledger::replay(&*log, |_, _| {}).map_err(fail("rebuild"))?;
        rebuilds.push(started.elapsed());
        // The first rebuild grows the process from its size before any projection existed.
        if round == 0 {
            memory = before
                .zip(resident_bytes())
                .map(|(b, a)| (a.saturating_sub(b), reads::live_facts(&views)));
        }
        events = views.seq();
        drop(views);
        // The same fold without the chain's checks, in turn with the checked one: what
        // verifying every link on open costs.
        let started = Instant::now();
        let views =
            permledger_ledger::replay_unchecked(&*log, |_, _| {}).map_err(fail("rebuild"))?;
        unchecked.push(started.elapsed());
        drop(views);
    }
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        format!("median of {}, {}-{}", v.len(), group(lo), group(hi))
    };
    let raw_scan = median(&scans);
    r.add(
        "raw_scan_events_per_s",
        raw_scan,
        "events/s",
        format!(
            "the read limit: RocksDB iterating {} MB of stored events ({})",
            group(bytes as f64 / 1e6),
            spread(&scans)
        ),
    );
    let rates: Vec<f64> = rebuilds.iter().map(|d| per_s(events, *d)).collect();
    let replay_ms: Vec<f64> = rebuilds.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    r.add(
        "rebuild_events_per_s",
        median(&rates),
        "events/s",
        format!(
            "every link checked; target >= 1/4 of raw scan ({}): {:.2} of it; {}",
            group(raw_scan / 4.0),
            median(&rates) / raw_scan.max(1.0),
            spread(&rates)
        ),
    );
    let unchecked_rates: Vec<f64> = unchecked.iter().map(|d| per_s(events, *d)).collect();
    r.add(
        "rebuild_unchecked_events_per_s",
        median(&unchecked_rates),
        "events/s",
        format!(
            "the same fold checking no link; the checked rebuild is {:.2} of it (target >= 0.85); {}",
            median(&rates) / median(&unchecked_rates).max(1.0),
            spread(&unchecked_rates)
        ),
    );
    r.add(
        "full_replay_ms",
        median(&replay_ms),
        "ms",
        "answering a past question by replaying everything",
    );
    if let Some((grown, held)) = memory {
        r.add(
            "projection_bytes_per_grant",
            grown as f64 / held.max(1) as f64,
            "bytes",
            format!(
                "target < 1,000; resident memory of the projections / {} live assignments and grants",
                group(held as f64)
            ),
        );
    }

    say("restarting the ledger over the log (rebuild and the writer's working state)");
    let started = Instant::now();
    let ledger = Ledger::open(log.clone(), Arc::new(SystemClock)).map_err(fail("open"))?;
    let open_full = started.elapsed().as_secs_f64() * 1000.0;
    r.add(
        "open_full_ms",
        open_full,
        "ms",
        "a restart without a checkpoint: the whole fold plus a copy of the live state for the writer",
    );

    say("checks in process on the largest org");
    let c = reads::checks(&ledger, opts.checks, opts.seed)?;
    r.add(
        "check_p50_ns",
        c.p50_ns,
        "ns",
        format!("org `{}`: {} members", c.org, group(c.members as f64)),
    );
    r.add(
        "check_p99_ns",
        c.p99_ns,
        "ns",
        format!(
            "target < 1,000 (p90 {}; timer and lock alone: {} at p99)",
            group(c.p90_ns),
            group(c.floor_ns)
        ),
    );
    r.add("checks_per_s", c.per_s, "checks/s", "one core");
    let asof = reads::asof_checks(&ledger, opts.asof_checks, opts.seed)?;
    r.add(
        "asof_check_p99_us",
        asof.p99_us,
        "us",
        format!(
            "target < 1,000 and 1,000x under a full replay (p50 {:.1} us)",
            asof.p50_us
        ),
    );

    say("checks over HTTP on loopback, and a bare route of the same shape");
    // The floor and the check alternate, three rounds each, and each figure is the median of
    // its rounds: this machine's speed drifts from minute to minute, and a ratio of two figures
    // measured at different moments would carry that drift.
    let round = opts.http_time / 2;
    let run_http = |target| http::run(&ledger, &c.org, target, opts.connections, round, opts.seed);
    let (mut floors, mut checks) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        floors.push(run_http(http::Target::Floor)?);
        checks.push(run_http(http::Target::Permledger)?);
    }
    let median_of = |runs: &[http::Served], f: &dyn Fn(&http::Served) -> f64| {
        median(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let rps_of = |h: &http::Served| per_s(h.requests, h.elapsed);
    let p99_of = |h: &http::Served| quantile(&h.latencies_us, 0.99);
    let p50_of = |h: &http::Served| quantile(&h.latencies_us, 0.5);
    let (rps, floor_rps) = (median_of(&checks, &rps_of), median_of(&floors, &rps_of));
    let (p99, floor_p99) = (median_of(&checks, &p99_of), median_of(&floors, &p99_of));
    let (p50, floor_p50) = (median_of(&checks, &p50_of), median_of(&floors, &p50_of));
    r.add(
        "http_floor_rps",
        floor_rps,
        "req/s",
        "a bare axum route of the same shape, same client: what HTTP costs here (median of 3 \
         rounds, alternating with the check's)",
    );
    r.add(
        "http_floor_p99_us",
        floor_p99,
        "us",
        format!("(p50 {} us)", group(floor_p50)),
    );
    r.add(
        "http_check_rps",
        rps,
        "req/s",
        format!(
            "target >= 0.85 of the floor: {:.2}; {} keep-alive connections, client and server \
             on these cores (median of 3 rounds)",
            rps / floor_rps.max(1.0),
            opts.connections
        ),
    );
    r.add(
        "http_check_p99_us",
        p99,
        "us",
        format!(
            "target <= 1.2x the floor: {:.2}x (p50 {} us)",
            p99 / floor_p99.max(1.0),
            group(p50)
        ),
    );
    r.add(
        "events",
        events as f64,
        "events",
        "the generated log's size",
    );
    r.add(
        "generated_orgs",
        generated.orgs as f64,
        "orgs",
        format!(
            "largest: {} users",
            group(generated.largest_org_users as f64)
        ),
    );
    let largest = (
        c.org.clone(),
        ledger.views().live.org(&c.org).map(|o| o.owner.clone()),
    );
    ledger.shutdown();
    checkpoints::run(opts, &log, &log_dir, largest, open_full, &mut r, &mut say)?;
    Ok(r)
}

/// The folder benchmarks work in unless told: the system's temporary folder.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir()
}

/// Whether `dir` is on a RAM-backed file system, where synced writes cost nothing and the write
/// figures would mean little (Linux only; false when unknown).
pub fn on_tmpfs(dir: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let _dev = f.next()?;
            let mount = f.next()?;
            let fs = f.next()?;
            Some((PathBuf::from(mount), fs == "tmpfs" || fs == "ramfs"))
        })
        .filter(|(m, _)| dir.starts_with(m))
        .max_by_key(|(m, _)| m.as_os_str().len())
        .is_some_and(|(_, ram)| ram)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_group_and_quantiles_pick_the_right_sample() {
        assert_eq!(group(1_234_567.8), "1,234,568");
        assert_eq!(group(999.0), "999");
        assert_eq!(group(12.345), "12.35");
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&s, 0.5), 51.0);
        assert_eq!(quantile(&s, 0.99), 99.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_json_report_holds_every_figure_as_a_number() {
        let mut r = Report::default();
        r.add("events", 1000.0, "events", "");
        r.add("check_p99_ns", 812.345, "ns", "");
        let j = r.json();
        assert_eq!(j["events"], 1000);
        assert_eq!(j["check_p99_ns"], 812.35);
        assert!(r.table().contains("check_p99_ns"));
    }
}
