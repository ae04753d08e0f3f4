//! `permledger check`: one permission check with its explanation, now or at a past moment.
//! Exit 0 allowed, 2 denied.

use std::path::Path;

use permledger_api as api;
use permledger_client::Client;
use permledger_domain::check;
use permledger_domain::{Denial, Explanation, OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_views::{provenance, At};

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
    /// Say the answer in a sentence, with the event behind every fact (who, when, why, request),
    /// instead of JSON.
    #[arg(long)]
    explain: bool,
}

pub fn parse_at(s: &str) -> Result<At, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(At::Seq(n));
    }
    Timestamp::parse_human(s)
        .map(At::Time)
        .map_err(|e| format!("{e}, or a log position"))
}

pub fn run(data: &Path, args: Args, inspect: bool) -> anyhow::Result<u8> {
    let ledger = crate::data::read_ledger(data, inspect, Some(&args.org))?;
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
    let answer = answer.map_err(anyhow::Error::from).and_then(|(moment, e)| {
        let sources = ledger.sources(&provenance::cited(&e))?;
        Ok(api::CheckAnswer::explained(e, moment).with_provenance(&asked(&args), sources))
    });
    crate::data::leave(ledger);
    print(answer?, args.explain)
}

fn asked(args: &Args) -> provenance::Asked<'_> {
    provenance::Asked {
        org: &args.org,
        user: &args.user,
        permission: &args.permission,
        scope: &args.scope,
    }
}

/// The answer as JSON, or with `--explain` as its sentence and the events behind it. Exit 0
/// when allowed, 2 when denied.
fn print(answer: api::CheckAnswer, explain: bool) -> anyhow::Result<u8> {
    let allowed = answer.allowed;
    if explain {
        out!(
            "{} (at seq {}, {})",
            answer.because.as_deref().unwrap_or_default(),
            answer.at.seq,
            answer.at.time
        );
        for s in answer.sources.iter().flatten() {
            let via = s
                .principal
                .as_ref()
                .map_or(String::new(), |p| format!(" via {p}"));
            out!("  #{} {} {}{via}: {}", s.seq, s.time, s.actor, s.summary);
            if let Some(o) = &s.origin {
                out!("    from #{} {} {}: {}", o.seq, o.time, o.actor, o.summary);
            }
        }
    } else {
        out!("{}", serde_json::to_string_pretty(&answer)?);
    }
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
        Ok(answer) => print(answer, args.explain),
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}
