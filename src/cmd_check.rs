//! `permledger check`: one permission check with its explanation, now or at a past moment.
//! Exit 0 allowed, 2 denied.

use std::path::Path;

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
    let body = serde_json::json!({
        "at": {"seq": moment.seq, "time": moment.time},
        "allowed": explanation.allowed,
        "facts": explanation.facts,
        "denial": explanation.denial,
    });
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if explanation.allowed {
        0
    } else {
        crate::EXIT_DENIED
    })
}

/// The same check through a running server.
pub fn remote(server: &str, token: Option<&str>, args: Args) -> anyhow::Result<u8> {
    let mut path = format!(
        "/v1/orgs/{}/check?user={}&permission={}&scope={}",
        args.org,
        permledger_client::encode(args.user.as_str()),
        args.permission,
        permledger_client::encode(&args.scope.to_string())
    );
    match &args.at {
        Some(At::Seq(n)) => path.push_str(&format!("&at_seq={n}")),
        Some(At::Time(t)) => path.push_str(&format!(
            "&at_time={}",
            permledger_client::encode(&t.to_string())
        )),
        None => {}
    }
    let resp = permledger_client::request(server, "GET", &path, token, None)?;
    let allowed = serde_json::from_str::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v["allowed"].as_bool());
    let code = crate::cmd_run::print_remote(resp)?;
    Ok(if code == 0 && allowed != Some(true) {
        crate::EXIT_DENIED
    } else {
        code
    })
}
