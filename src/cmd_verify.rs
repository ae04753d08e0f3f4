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
            println!(
                "ok: {} events verified, head {}",
                report.events, report.head
            );
            if let Some(d) = report.extends {
                println!("the log extends digest {d}");
            }
            Ok(0)
        }
        Err(tamper) => {
            println!("TAMPERED: {tamper}");
            Ok(crate::EXIT_TAMPERED)
        }
    }
}

pub fn digest(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::open_log(data)?;
    println!("{}", log.head()?);
    Ok(0)
}
