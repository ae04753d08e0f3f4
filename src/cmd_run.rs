//! `permledger run`: issue one command against the local data folder.

use std::path::Path;

use anyhow::Context as _;
use permledger_api as api;
use permledger_client::{Client, Refusal};
use permledger_domain::{Command, CommandMeta, Principal, UserId};
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
        principal: Principal::Local,
    };
    let ledger = crate::data::open_ledger(data)?;
    let result = ledger.submit_blocking(command, meta);
    ledger.shutdown();
    match result {
        Ok(out) => {
            let answer = api::CommandAnswer {
                seq: out.seq,
                replayed: out.replayed,
                token: out.link_token,
                events: out.events,
            };
            out!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(0)
        }
        Err(SubmitError::Rejected(r)) => {
            out!("{}", serde_json::to_string_pretty(&r)?);
            Ok(crate::EXIT_DENIED)
        }
        Err(e) => Err(e.into()),
    }
}

/// The same command through a running server. The command goes as the user wrote it, so that
/// the server's refusal of a malformed one is what the user sees.
pub fn remote(client: &Client, args: Args) -> anyhow::Result<u8> {
    let command: serde_json::Value =
        serde_json::from_str(&args.command).context("the command is not JSON")?;
    let body = api::CommandRequest {
        actor: UserId::new(args.actor)?,
        command,
        reason: args.reason,
        request_id: args.request_id,
        idempotency_key: args.idempotency_key,
        expect_version: args.expect_version,
    };
    match client.call_with::<api::SubmitCommand, api::CommandAnswer>(&api::NoPath {}, &(), &body)? {
        Ok(answer) => {
            out!("{}", serde_json::to_string_pretty(&answer)?);
            Ok(0)
        }
        Err(refusal) => print_refusal(&refusal),
    }
}

/// Prints a server's refusal as the local commands print a rejection (`{"code", "message"}`):
/// a refusal of the request exits 2; a refused token or a server failure is an error.
pub fn print_refusal(refusal: &Refusal) -> anyhow::Result<u8> {
    match refusal.status {
        401 => anyhow::bail!("the server refused the token: {}", refusal.error.message),
        400..=499 => {
            out!("{}", serde_json::to_string_pretty(&refusal.error)?);
            Ok(crate::EXIT_DENIED)
        }
        _ => anyhow::bail!("the server could not answer: {refusal}"),
    }
}
