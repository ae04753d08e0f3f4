//! `permledger demo`: from nothing, build a realistic org from the fixture story, and print
//! answers with their explanations, the verified log head, and the next commands to try.

use std::path::PathBuf;

use anyhow::Context as _;
use permledger_domain::check;
use permledger_domain::{Command, CommandMeta, OrgId, PermissionKey, Scope, Timestamp, UserId};

#[derive(clap::Args)]
pub struct Args {
    /// Where to build the demo ledger (a fresh folder; default: a new temporary one).
    #[arg(long)]
    into: Option<PathBuf>,
}

const STORY: &str = include_str!("../fixtures/demo/story.jsonl");

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(rename = "as")]
    actor: UserId,
    #[serde(default)]
    reason: Option<String>,
    #[serde(rename = "do")]
    command: Command,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let dir = match args.into {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("permledger-demo-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        anyhow::bail!(
            "`{}` is not empty: the demo builds its ledger from nothing",
            dir.display()
        );
    }
    let ledger = crate::data::open_ledger(&dir)?;
    let mut n = 0;
    for (i, line) in STORY
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let step: Step =
            serde_json::from_str(line).with_context(|| format!("demo story line {}", i + 1))?;
        let mut meta = CommandMeta::new(step.actor);
        meta.reason = step.reason;
        ledger
            .submit_blocking(step.command, meta)
            .with_context(|| format!("demo story line {}", i + 1))?;
        n += 1;
    }
    println!(
        "Built org `acme` (Zoho TeamInbox roles, seed 004) from {n} commands in {}\n",
        dir.display()
    );
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let questions = [
        (
            "ann",
            "inbox.thread.view",
            "inbox:billing",
            "the owner reads every inbox",
        ),
        (
            "mo",
            "inbox.thread.view",
            "inbox:billing",
            "a moderator administers but reads no inbox without membership",
        ),
        (
            "mo",
            "inbox.thread.view",
            "inbox:escalations",
            "...unless it is a member of that inbox",
        ),
        (
            "tina",
            "team.inboxes.create",
            "team:support",
            "a team admin creates inboxes in its team",
        ),
        (
            "ivy",
            "inbox.thread.delete_permanently",
            "inbox:billing",
            "only inbox admins delete permanently",
        ),
        (
            "mo",
            "org.billing.manage",
            "org",
            "billing is the owner's alone",
        ),
    ];
    let before = {
        let views = ledger.views();
        let org = views
            .org_at(&OrgId::new("acme")?, views.seq())
            .context("the demo org is missing")?;
        for (user, perm, scope, why) in questions {
            let e = check::explain(
                &org,
                &UserId::new(user)?,
                &PermissionKey::new(perm)?,
                &scope.parse::<Scope>()?,
                now,
            );
            let verdict = if e.allowed { "ALLOWED" } else { "denied " };
            println!("{verdict} {user:<5} {perm:<32} {scope:<18} ({why})");
            let detail = if e.allowed {
                serde_json::to_string(&e.facts)?
            } else {
                serde_json::to_string(&e.denial)?
            };
            println!("        because {detail}");
        }
        // The past: the moment before mo was made an observer of escalations.
        let before = views.seq().saturating_sub(1);
        if let Some(past) = views.org_at(&OrgId::new("acme")?, before) {
            let time = views
                .moment(Some(&permledger_views::At::Seq(before)), now)?
                .time;
            let (mo, view, esc) = (
                UserId::new("mo")?,
                PermissionKey::new("inbox.thread.view")?,
                "inbox:escalations".parse::<Scope>()?,
            );
            let then = check::check(&past, &mo, &view, &esc, time);
            println!(
                "\nIn the past, at position {before} ({time}), just before mo became an observer: mo {} read inbox:escalations.",
                if then { "could" } else { "could NOT" }
            );
        }
        before
    };
    let log = ledger.log().clone();
    let report = permledger_log::verify(&*log, None, |_| {})?;
    ledger.shutdown();
    match report {
        Ok(r) => println!("\nLog verified: {} events, head {}", r.events, r.head),
        Err(t) => println!("\nLog TAMPERED: {t}"),
    }
    let d = dir.display();
    println!("\nTry next:");
    println!("  permledger --data {d} check --org acme --user ivy --permission inbox.thread.reply --scope inbox:billing");
    println!("  permledger --data {d} run --as ann '{{\"type\":\"suspend_member\",\"org\":\"acme\",\"user\":\"ivy\"}}'");
    println!("  permledger --data {d} check --org acme --user mo --permission inbox.thread.view --scope inbox:escalations --at {before}");
    println!("  permledger --data {d} digest");
    println!("  permledger --data {d} verify");
    Ok(0)
}
