//! `permledger check`: one permission check with its explanation, now or at a past moment.
//! Exit 0 allowed, 2 denied.

use std::path::Path;

use permledger_api as api;
use permledger_client::Client;
use permledger_domain::check;
use permledger_domain::{Denial, Explanation, OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_views::At;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    org: OrgId,
    #[arg(long)]
    user: UserId,
    #[arg(long)]
    permission: PermissionKey,
    /// `org`, `team:<id>` or `inbox:<id>`.
    #[arg(long)]
    scope: Scope,
    /// A past moment: a log position (`1234`) or an RFC 3339 time (`2026-03-03T17:00:00Z`).
    #[arg(long, value_parser = parse_at)]
    at: Option<At>,
}

pub fn parse_at(s: &str) -> Result<At, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(At::Seq(n));
    }
    Timestamp::parse(s)
        .map(At::Time)
        .map_err(|_| format!("`{s}` is neither a log position nor an RFC 3339 time"))
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<u8> {
    let ledger = crate::data::open_ledger(data)?;
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let answer = {
        let views = ledger.views();
        views.moment(args.at.as_ref(), now).map(|moment| {
            let explanation = match views.org_at(&args.org, moment.seq) {
                Some(org) => {
                    check::explain(&org, &args.user, &args.permission, &args.scope, moment.time)
                }
                None => Explanation {
                    allowed: false,
                    facts: Vec::new(),
                    denial: Some(Denial::NotMember),
                },
            };
            (moment, explanation)
        })
    };
    ledger.shutdown();
    let (moment, explanation) = answer?;
    print(api::CheckAnswer::explained(explanation, moment))
}

fn print(answer: api::CheckAnswer) -> anyhow::Result<u8> {
    let allowed = answer.allowed;
    out!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(if allowed { 0 } else { crate::EXIT_DENIED })
}

/// The same check through a running server.
pub fn remote(client: &Client, args: Args) -> anyhow::Result<u8> {
    let q = api::CheckParams {
        user: args.user,
        permission: args.permission,
        scope: args.scope,
        at: args.at.map(Into::into),
        explain: Some(true),
        min_seq: None,
    };
    match client.call::<api::Check>(&api::OrgPath { org: args.org }, &q, &())? {
        Ok(answer) => print(answer),
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}
