//! `permledger scenario run|coverage FILE...`: the acceptance contract of scenarios.md.

use std::path::PathBuf;

use permledger_scenario::coverage::Seen;
use permledger_scenario::Backend;

#[derive(clap::Subcommand)]
pub enum Args {
    /// Run scenario files against the in-memory log and RocksDB (or, with `--server URL --token T`,
    /// through the HTTP API of a server started with `--sandboxes`, one sandbox per file); one
    /// line per failed step, then `N passed, M failed`. Exit 1 when any file failed.
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Which commands, event types, error codes, query kinds and presets the files exercise, and
    /// which they never do.
    Coverage {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Files, with folders expanded to the `.json` files inside them, in name order.
fn expand(paths: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            inner.sort();
            out.extend(inner);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn run(args: Args, backend: &Backend) -> anyhow::Result<u8> {
    match args {
        Args::Run { files } => {
            let results: Vec<_> = expand(files)?
                .iter()
                .map(|f| permledger_scenario::run_file_on(f, backend))
                .collect();
            let (text, ok) = permledger_scenario::report(&results);
            out_raw!("{text}");
            Ok(if ok { 0 } else { 1 })
        }
        Args::Coverage { files } => {
            let mut seen = Seen::default();
            let results: Vec<_> = expand(files)?
                .iter()
                .map(|f| permledger_scenario::run_file_on(f, backend))
                .collect();
            for r in &results {
                seen.merge(&r.seen);
            }
            out_raw!("{}", seen.report());
            let complete = seen.missing().iter().all(|(_, m)| m.is_empty());
            out!(
                "{}",
                if complete {
                    "nothing of the spec is left unexercised"
                } else {
                    "some of the spec is never exercised"
                }
            );
            Ok(0)
        }
    }
}
