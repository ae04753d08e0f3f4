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

/// The same command through a running server.
pub fn remote(server: &str, token: Option<&str>, args: Args) -> anyhow::Result<u8> {
    let command: serde_json::Value =
        serde_json::from_str(&args.command).context("the command is not JSON")?;
    let mut body = serde_json::json!({"as": args.actor, "do": command});
    for (k, v) in [
        ("reason", args.reason),
        ("request_id", args.request_id),
        ("idempotency_key", args.idempotency_key),
    ] {
        if let Some(v) = v {
            body[k] = serde_json::Value::String(v);
        }
    }
    if let Some(v) = args.expect_version {
        body["expect_version"] = v.into();
    }
    let resp = permledger_client::request(
        server,
        "POST",
        "/v1/commands",
        token,
        Some(&body.to_string()),
    )?;
    print_remote(resp)
}

/// Prints a server's JSON answer; 2xx exits 0, a refusal (4xx with a code) exits 2.
pub fn print_remote(resp: permledger_client::Response) -> anyhow::Result<u8> {
    let value: serde_json::Value = serde_json::from_str(&resp.body)
        .with_context(|| format!("the server answered {} without JSON", resp.status))?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    match resp.status {
        200..=299 => Ok(0),
        401 => anyhow::bail!("the server refused the token: {}", value["message"]),
        400..=499 => Ok(crate::EXIT_DENIED),
        s => anyhow::bail!("the server failed ({s})"),
    }
}
