//! `permledger demo`: from nothing, build a realistic org from the fixture story, serve it over
//! HTTP on loopback, ask it a few questions through that server (one about the past), verify the
//! log, and print the exact commands a newcomer can try next. It keeps serving until Ctrl-C unless
//! `--exit` is given.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use permledger_api as api;
use permledger_domain::{Command, CommandMeta, UserId};
use permledger_ledger::SystemClock;
use permledger_server::{AppState, TokenRole, Tokens};

#[derive(clap::Args)]
pub struct Args {
    /// Where to build the demo ledger (a fresh folder; default: a new temporary one).
    #[arg(long)]
    into: Option<PathBuf>,
    /// Address to serve on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Stop after answering instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
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
    let head = ledger.seq();
    out!(
        "Built org `acme` (Zoho TeamInbox roles, seed 004) from {n} commands ({head} events) in {}",
        dir.display()
    );

    let new = permledger_server::tokens::NewToken {
        org: Some("acme".parse()?),
        role: TokenRole::Service,
        name: Some("demo service".into()),
        user: None,
    };
    let (_, token) = permledger_server::tokens::create(&dir, new)?;
    // The console reads as ann, acme's owner, who holds org.audit.view.
    let console = permledger_server::tokens::NewToken {
        org: Some("acme".parse()?),
        role: TokenRole::Auditor,
        name: Some("demo console".into()),
        user: Some("ann".parse()?),
    };
    let (_, console_token) = permledger_server::tokens::create(&dir, console)?;
    let state = AppState {
        ledger: ledger.clone(),
        tokens: Arc::new(Tokens::load(&dir)?),
        clock: Arc::new(SystemClock),
        metrics: Default::default(),
        stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        sandboxes: None,
        console: Default::default(),
        signer: Some(Arc::new(crate::data::signing_key(&dir)?)),
        cluster: None,
    };
    let stopping = state.stopping.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(&args.listen))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(permledger_server::serve(state, listener, async move {
        let _ = stop_rx.await;
        stopping.send_replace(true);
    }));
    out!("Serving it at {base}\n");

    let questions: [(&str, &str, &str, Option<u64>, &str); 7] = [
        (
            "ann",
            "inbox.thread.view",
            "inbox:billing",
            None,
            "the owner reads every inbox",
        ),
        (
            "mo",
            "inbox.thread.view",
            "inbox:billing",
            None,
            "a moderator administers but reads no inbox without membership",
        ),
        (
            "mo",
            "inbox.thread.view",
            "inbox:escalations",
            None,
            "...unless it is a member of that inbox",
        ),
        (
            "mo",
            "inbox.thread.view",
            "inbox:escalations",
            Some(head - 1),
            "the past: just before mo became an observer",
        ),
        (
            "tina",
            "team.inboxes.create",
            "team:support",
            None,
            "a team admin creates inboxes in its team",
        ),
        (
            "ivy",
            "inbox.thread.delete_permanently",
            "inbox:billing",
            None,
            "only inbox admins delete permanently",
        ),
        (
            "mo",
            "org.billing.manage",
            "org",
            None,
            "billing is the owner's alone",
        ),
    ];
    let client = permledger_client::Client::new(&base, Some(&token), None)?;
    let acme = api::OrgPath {
        org: "acme".parse()?,
    };
    for (user, perm, scope, at, why) in questions {
        let q = api::CheckParams {
            user: user.parse()?,
            permission: perm.parse()?,
            scope: scope.parse()?,
            at: at.map(api::At::Seq),
            explain: Some(true),
            min_seq: None,
        };
        let answer = client
            .call::<api::Check>(&acme, &q, &())?
            .map_err(|r| anyhow::anyhow!("the demo server refused a check: {r}"))?;
        let verdict = if answer.allowed { "ALLOWED" } else { "denied " };
        let when = at.map(|n| format!(" at position {n}")).unwrap_or_default();
        out!("{verdict} {user:<5} {perm:<32} {scope:<18}{when} ({why})");
        let detail = if answer.allowed {
            serde_json::to_string(&answer.facts)?
        } else {
            serde_json::to_string(&answer.denial)?
        };
        out!("        because {detail}");
    }
    let report = permledger_log::verify(&**ledger.log(), &[], |_| {})?;
    match report {
        Ok(r) => out!("\nLog verified: {} events, head {}", r.events, r.head),
        Err(t) => out!("\nLog TAMPERED: {t}"),
    }

    let d = dir.display();
    let permledger = invocation();
    out!("\nTry next (a service token for org acme was created: {token}):");
    out!("  curl -H 'Authorization: Bearer {token}' '{base}/v1/orgs/acme/who_can?permission=inbox.thread.view&scope=inbox:billing'");
    out!("  curl -H 'Authorization: Bearer {token}' '{base}/v1/orgs/acme/audit?as=ann&limit=5'");
    out!("  {permledger} --server {base} --token {token} check --org acme --user mo --permission inbox.thread.view --scope inbox:escalations --at {}", head - 1);
    out!("  {permledger} --data {d} query members --org acme --scope inbox:billing   (once the server is stopped)");
    out!("  {permledger} --data {d} verify");
    out!("\nThe compliance console: open {base}/console and sign in with the auditor token {console_token} (it reads as ann).");
    if !args.exit {
        out!("\nServing until Ctrl-C.");
        rt.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop_tx.send(());
    rt.block_on(server)??;
    drop(rt);
    ledger.shutdown();
    Ok(0)
}

/// How to run this binary again from a shell: `permledger` when that name on PATH is this binary,
/// else its full path (after `cargo run` it lives in the target folder, not on PATH).
fn invocation() -> String {
    let Ok(me) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "permledger".to_string();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .filter_map(|dir| dir.join("permledger").canonicalize().ok())
            .next()
            .is_some_and(|found| found == me)
    });
    if on_path {
        return "permledger".to_string();
    }
    let path = me.display().to_string();
    if path.contains(|c: char| c.is_whitespace() || c == '\'') {
        format!("'{}'", path.replace('\'', r"'\''"))
    } else {
        path
    }
}
