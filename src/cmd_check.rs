//! `permledger check`: one permission check with its explanation. Exit 0 allowed, 2 denied.

use std::path::Path;

use permledger_domain::{OrgId, PermissionKey, Scope, Timestamp, UserId};

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
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<u8> {
    let ledger = crate::data::open_ledger(data)?;
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let explanation = {
        let state = ledger.state();
        state
            .org(&args.org)
            .map(|o| o.explain(&args.user, &args.permission, &args.scope, now))
    };
    ledger.shutdown();
    let explanation = explanation.unwrap_or(permledger_domain::Explanation {
        allowed: false,
        facts: Vec::new(),
        denial: Some(permledger_domain::Denial::NotMember),
    });
    println!("{}", serde_json::to_string_pretty(&explanation)?);
    Ok(if explanation.allowed {
        0
    } else {
        crate::EXIT_DENIED
    })
}
