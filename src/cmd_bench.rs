//! `permledger bench [--quick] [--json]`: the figures of issue "Benchmarks", each beside the
//! physical limit or target it is read against, measured in this one run.

use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// About a minute: a 1,000,000-event log and short timed stages (the full run uses ten times
    /// the data, so that how each figure grows is seen).
    #[arg(long)]
    quick: bool,
    /// Print one JSON object of every figure instead of the table.
    #[arg(long)]
    json: bool,
    /// Generate a log of this many events instead.
    #[arg(long)]
    events: Option<u64>,
    /// Measure the cluster instead (decision 0011): the replicated append beside the single
    /// node's, replica lag, an in-service replica's checks, failover. Starts its own three
    /// NATS servers (Debian's `nats-server`).
    #[arg(long)]
    cluster: bool,
    /// Where the temporary databases go (default: the system's temporary folder). Put it on the
    /// disk whose speed you want to know.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let dir = args.dir.unwrap_or_else(permledger_bench::default_dir);
    let mut opts = if args.quick {
        permledger_bench::Options::quick(dir)
    } else {
        permledger_bench::Options::full(dir)
    };
    // `cli_check_ms` times this very binary as a whole `check` process.
    opts.cli = std::env::current_exe().ok();
    if let Some(n) = args.events {
        anyhow::ensure!(n >= 1_000, "`--events` must be at least 1,000");
        opts.events = n;
    }
    if permledger_bench::on_tmpfs(&opts.dir) {
        eprintln!(
            "warning: `{}` is in memory (tmpfs): synced writes cost nothing there; pass --dir on a disk",
            opts.dir.display()
        );
    }
    let chatty = std::io::stderr().is_terminal() || !args.json;
    let started = std::time::Instant::now();
    let say = |what: &str| {
        if chatty {
            eprintln!("[{:>5.1} s] {what}", started.elapsed().as_secs_f64());
        }
    };
    let report = if args.cluster {
        permledger_bench::cluster::run(&opts, say)?
    } else {
        permledger_bench::run(&opts, say)?
    };
    if args.json {
        out!("{}", report.json());
    } else {
        out!(
            "permledger bench{} ({}, {} cores), {:.0} s:\n",
            if args.cluster { " --cluster" } else { "" },
            if args.quick { "quick" } else { "full" },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            started.elapsed().as_secs_f64()
        );
        out_raw!("{}", report.table());
    }
    Ok(0)
}
