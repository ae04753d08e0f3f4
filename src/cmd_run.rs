//! `permledger run`: issue one command against the local data folder.

use std::path::Path;

use anyhow::Context as _;
use permledger_domain::{Command, CommandMeta, UserId};
use permledger_ledger::SubmitError;

#[derive(clap::Args)]
pub struct Args {
    /// The acting user.
    #[arg(long = "as")]
    actor: String,
    /// The command as scenario JSON, e.g. '{"type":"create_team","org":"acme","team":"support"}'.
    command: String,
    #[arg(long)]
    reason: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    #[arg(long)]
    idempotency_key: Option<String>,
    /// The org version the command requires.
    #[arg(long)]
    expect_version: Option<u64>,
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<u8> {
    let command: Command =
        serde_json::from_str(&args.command).context("the command is not valid")?;
    let actor = UserId::new(args.actor)?;
    let meta = CommandMeta {
        actor,
        reason: args.reason,
        request_id: args.request_id,
        idempotency_key: args.idempotency_key,
        expect_version: args.expect_version,
    };
    let ledger = crate::data::open_ledger(data)?;
    let result = ledger.submit_blocking(command, meta);
    ledger.shutdown();
    match result {
        Ok(out) => {
            let body = serde_json::json!({
                "seq": out.seq,
                "replayed": out.replayed,
                "token": out.link_token,
                "events": out.events,
            });
            println!("{}", serde_json::to_string_pretty(&body)?);
            Ok(0)
        }
        Err(SubmitError::Rejected(r)) => {
            println!("{}", serde_json::to_string_pretty(&r)?);
            Ok(crate::EXIT_DENIED)
        }
        Err(e) => Err(e.into()),
    }
}
