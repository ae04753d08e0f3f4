//! `permledger verify` and `permledger digest`: prove the log has not been rewritten, on a data
//! folder or through a running server.

use std::path::Path;

use permledger_api as api;
use permledger_client::Client;
use permledger_log::Digest;

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A digest printed earlier by `permledger digest` (`SEQ:HASH`): prove the log still extends it.
    #[arg(long)]
    digest: Option<Digest>,
}

pub fn verify(data: &Path, args: VerifyArgs) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
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

/// The same through a server: the chain of the log it serves, and the digest when one is given
/// (`POST /v1/verify`, an operator's or auditor's token).
pub fn remote_verify(client: &Client, args: VerifyArgs) -> anyhow::Result<u8> {
    let req = api::VerifyRequest {
        chain: true,
        projections: false,
        past: Vec::new(),
        digest: args.digest.map(|d| d.to_string()),
    };
    let answer = match client.call::<api::Verify>(&api::NoPath {}, &(), &req)? {
        Ok(a) => a,
        Err(refusal) => return crate::cmd_run::print_refusal(&refusal),
    };
    let chain = answer
        .chain
        .ok_or_else(|| anyhow::anyhow!("the server answered no chain finding"))?;
    match (chain.ok, chain.head, chain.problem) {
        (true, Some(head), _) => {
            out!(
                "ok: {} events verified by {}, head {head}",
                chain.events.unwrap_or_default(),
                client.base()
            );
            if let Some(d) = chain.extends {
                out!("the log extends digest {d}");
            }
            Ok(0)
        }
        (_, _, problem) => {
            out!(
                "TAMPERED: {}",
                problem.unwrap_or_else(|| "the server found the chain broken".into())
            );
            Ok(crate::EXIT_TAMPERED)
        }
    }
}

pub fn digest(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    // The head must name the last stored event: a digest of a damaged end proves nothing.
    if let Some(t) = log.damage() {
        return Err(crate::data::Damaged(t).into());
    }
    out!("{}", log.head()?);
    Ok(0)
}

/// The head of the log a server serves (`GET /v1/digest`).
pub fn remote_digest(client: &Client) -> anyhow::Result<u8> {
    match client.call::<api::GetDigest>(&api::NoPath {}, &(), &())? {
        Ok(a) => {
            out!("{}", a.digest);
            Ok(0)
        }
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}

/// Projections live in memory and are rebuilt from the log on every start; this does it
/// explicitly, with a progress bar on a terminal, and prints the rate. The chain is checked as
/// the log is read, so the events folded are exactly positions 1 to the head.
pub fn rebuild(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "rebuilding");
    let started = std::time::Instant::now();
    let mut folded = 0;
    let views = permledger_ledger::replay(&*log, |done, _| {
        folded = done;
        bar.set_position(done)
    })
    .map_err(crate::data::damaged)?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let rate = folded as f64 / elapsed.as_secs_f64().max(1e-9);
    out!(
        "rebuilt {folded} events of {} orgs in {:.3} s ({rate:.0} events/s), every link checked",
        views.histories.len(),
        elapsed.as_secs_f64(),
    );
    Ok(0)
}
