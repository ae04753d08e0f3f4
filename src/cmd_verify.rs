//! `permledger verify` and `permledger digest`: prove the log has not been rewritten.

use std::path::Path;

use permledger_log::Digest;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A digest printed earlier by `permledger digest` (`SEQ:HASH`): prove the log still extends it.
    #[arg(long)]
    digest: Option<Digest>,
}

pub fn verify(data: &Path, args: VerifyArgs) -> anyhow::Result<u8> {
    let log = crate::data::open_log(data)?;
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "verifying");
    let result = permledger_log::verify(&*log, args.digest, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            out!(
                "ok: {} events verified, head {}",
                report.events,
                report.head
            );
            if let Some(d) = report.extends {
                out!("the log extends digest {d}");
            }
            Ok(0)
        }
        Err(tamper) => {
            out!("TAMPERED: {tamper}");
            Ok(crate::EXIT_TAMPERED)
        }
    }
}

pub fn digest(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::open_log(data)?;
    out!("{}", log.head()?);
    Ok(0)
}

/// Projections live in memory and are rebuilt from the log on every start; this does it
/// explicitly, with a progress bar on a terminal, and prints the rate.
pub fn rebuild(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::open_log(data)?;
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "rebuilding");
    let started = std::time::Instant::now();
    let views = permledger_ledger::replay(&*log, |done, _| bar.set_position(done))?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let rate = views.seq() as f64 / elapsed.as_secs_f64().max(1e-9);
    out!(
        "rebuilt {} events of {} orgs in {:.3} s ({:.0} events/s)",
        views.seq(),
        views.histories.len(),
        elapsed.as_secs_f64(),
        rate
    );
    Ok(0)
}
