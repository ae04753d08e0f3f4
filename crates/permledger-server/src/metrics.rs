//! Counters for `/metrics`, in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the commit latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0];

#[derive(Debug, Default)]
pub struct Metrics {
    commands: AtomicU64,
    refused: AtomicU64,
    checks: AtomicU64,
    latency_us_sum: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    /// Refused commands by their error code.
    refusals: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn command(&self, took: Duration, committed: bool) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if !committed {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        let secs = took.as_secs_f64();
        self.latency_us_sum.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A command refused with `code`.
    pub fn refusal(&self, code: &str) {
        let mut r = match self.refusals.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *r.entry(code.to_string()).or_default() += 1;
    }

    pub fn checks(&self, n: u64) {
        self.checks.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self, published_seq: u64, lag: u64) -> String {
        let mut out = String::new();
        let n = self.commands.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP permledger_commands_total Commands received over HTTP."
        );
        let _ = writeln!(out, "# TYPE permledger_commands_total counter");
        let _ = writeln!(out, "permledger_commands_total {n}");
        let _ = writeln!(
            out,
            "# HELP permledger_commands_refused_total Commands refused (nothing recorded)."
        );
        let _ = writeln!(out, "# TYPE permledger_commands_refused_total counter");
        let _ = writeln!(
            out,
            "permledger_commands_refused_total {}",
            self.refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP permledger_refusals_total Commands refused, by error code."
        );
        let _ = writeln!(out, "# TYPE permledger_refusals_total counter");
        let refusals = match self.refusals.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (code, n) in refusals {
            let _ = writeln!(out, "permledger_refusals_total{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP permledger_commit_latency_seconds Time from receipt to durable answer."
        );
        let _ = writeln!(out, "# TYPE permledger_commit_latency_seconds histogram");
        for (b, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "permledger_commit_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "permledger_commit_latency_seconds_bucket{{le=\"+Inf\"}} {n}"
        );
        let sum = self.latency_us_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "permledger_commit_latency_seconds_sum {sum}");
        let _ = writeln!(out, "permledger_commit_latency_seconds_count {n}");
        let _ = writeln!(
            out,
            "# HELP permledger_checks_total Permission checks answered over HTTP."
        );
        let _ = writeln!(out, "# TYPE permledger_checks_total counter");
        let _ = writeln!(
            out,
            "permledger_checks_total {}",
            self.checks.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP permledger_published_seq Last log position folded into the views."
        );
        let _ = writeln!(out, "# TYPE permledger_published_seq gauge");
        let _ = writeln!(out, "permledger_published_seq {published_seq}");
        let _ = writeln!(
            out,
            "# HELP permledger_projection_lag_events Durable events not yet in the views."
        );
        let _ = writeln!(out, "# TYPE permledger_projection_lag_events gauge");
        let _ = writeln!(out, "permledger_projection_lag_events {lag}");
        out
    }
}

/// A cluster node's part of `/metrics`: its role, and how far behind the stream it is.
pub fn render_cluster(out: &mut String, health: &permledger_api::ClusterHealth) {
    let _ = writeln!(
        out,
        "# HELP permledger_cluster_role This node's role in the cluster (1 for the one it has)."
    );
    let _ = writeln!(out, "# TYPE permledger_cluster_role gauge");
    for role in ["writer", "replica", "joining", "stopped"] {
        let on = u8::from(health.role == role);
        let _ = writeln!(out, "permledger_cluster_role{{role=\"{role}\"}} {on}");
    }
    let _ = writeln!(
        out,
        "# HELP permledger_replica_lag_events Events the stream holds that this node has not folded."
    );
    let _ = writeln!(out, "# TYPE permledger_replica_lag_events gauge");
    let _ = writeln!(out, "permledger_replica_lag_events {}", health.lag_events);
    let _ = writeln!(
        out,
        "# HELP permledger_replica_lag_ms For the last batch folded, milliseconds from the stream's acknowledgement to its fold here."
    );
    let _ = writeln!(out, "# TYPE permledger_replica_lag_ms gauge");
    let _ = writeln!(out, "permledger_replica_lag_ms {}", health.lag_ms);
}
