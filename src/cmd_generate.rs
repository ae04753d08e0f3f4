//! `permledger generate`: a deterministic, realistic ledger in an empty data folder.

use std::path::Path;

#[derive(clap::Args)]
pub struct Args {
    /// About how many events to generate.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// The same seed and size give the same log, link for link.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<u8> {
    let log = crate::data::open_log(data)?;
    let bar = crate::data::progress_bar(args.events, "generating");
    let started = std::time::Instant::now();
    let summary =
        permledger_workload::generate(&*log, args.events, args.seed, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    out!(
        "generated {} events in {} orgs (largest: {} users) from {} commands ({} refused by churn) in {:.1} s, head {}",
        summary.events,
        summary.orgs,
        summary.largest_org_users,
        summary.commands,
        summary.refused,
        secs,
        log.head()?
    );
    Ok(0)
}
