//! `permledger load` (hidden): many tasks submit commands at once and print each acknowledgement
//! as soon as it is durable. The crash test kills this process at random moments and checks that
//! every acknowledged command survived exactly once.

use std::io::Write;
use std::path::Path;

use permledger_domain::{Command, CommandMeta, OrgId, TeamId, UserId};

#[derive(clap::Args)]
pub struct Args {
    /// Concurrent submitting tasks.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Commands per task.
    #[arg(long, default_value_t = 1000)]
    commands: usize,
    /// Prefix of this run's request ids and team ids.
    #[arg(long, default_value = "run")]
    tag: String,
}

pub fn run(data: &Path, args: Args) -> anyhow::Result<u8> {
    let ledger = crate::data::open_ledger(data)?;
    let org = OrgId::new("load")?;
    let ann = UserId::new("ann")?;
    if ledger.views().live.org(&org).is_none() {
        let create = Command::CreateOrg {
            org: org.clone(),
            name: None,
            preset: permledger_domain::PresetName::Blank,
        };
        ledger.submit_blocking(create, CommandMeta::new(ann.clone()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    rt.block_on(async {
        let mut handles = Vec::new();
        for t in 0..args.tasks {
            let (ledger, org, ann, out, tag) = (
                ledger.clone(),
                org.clone(),
                ann.clone(),
                out.clone(),
                args.tag.clone(),
            );
            handles.push(tokio::spawn(async move {
                for i in 0..args.commands {
                    let id = format!("{tag}-{t}-{i}");
                    let team = TeamId::new(id.clone())?;
                    let mut meta = CommandMeta::new(ann.clone());
                    meta.request_id = Some(id.clone());
                    let cmd = Command::CreateTeam {
                        org: org.clone(),
                        team,
                        name: None,
                    };
                    let outcome = ledger.submit(cmd, meta).await?;
                    if let Ok(mut o) = out.lock() {
                        writeln!(o, "ack {} {id}", outcome.seq)?;
                        o.flush()?;
                    }
                }
                anyhow::Ok(())
            }));
        }
        for h in handles {
            h.await??;
        }
        anyhow::Ok(())
    })?;
    drop(rt);
    ledger.shutdown();
    Ok(0)
}
