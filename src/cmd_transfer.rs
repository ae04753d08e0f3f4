//! `permledger export` and `permledger import`: the whole log as JSON Lines. Each line holds the
//! event's position, its chain link, its stored bytes (hex, what the link covers) and the event
//! decoded for people. Import checks every link before it writes anything, and only into an empty
//! folder, so a broken or altered file is refused whole.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use permledger_log::chain::{link, Hash};
use permledger_log::{Commit, PendingEvent};
use serde::{Deserialize, Serialize};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Where to write (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A file written by `permledger export`.
    file: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    seq: u64,
    hash: String,
    bytes: String,
    event: serde_json::Value,
}

pub fn export(data: &Path, args: ExportArgs) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    let head = log.head()?;
    let total = head.seq;
    let bar = crate::data::progress_bar(total, "exporting");
    // The chain is checked as it is written out: a damaged log is never exported as if whole.
    let mut chain = permledger_log::ChainCheck::new();
    if let Some(t) = log.damage() {
        return Err(crate::data::Damaged(t).into());
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create `{}`", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let mut next = 1;
    loop {
        let page = log.read(next, 4096)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for r in &page {
            if r.seq > total {
                break;
            }
            let event = r.decode().map_err(|e| {
                crate::data::Damaged(permledger_log::Tamper::Undecodable {
                    seq: r.seq,
                    reason: e.to_string(),
                })
            })?;
            chain
                .check(r.seq, &r.hash, &r.bytes, &event)
                .map_err(crate::data::Damaged)?;
            let line = Line {
                seq: r.seq,
                hash: r.hash.to_hex(),
                bytes: hex::encode(&r.bytes),
                event: serde_json::to_value(&event)?,
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        bar.set_position(chain.last().seq);
    }
    chain.end(head).map_err(crate::data::Damaged)?;
    out.flush()?;
    bar.finish_and_clear();
    if args.out.is_some() {
        eprintln!("exported {} events", chain.last().seq);
    }
    Ok(0)
}

pub fn import(data: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open `{}`", args.file.display()))?;
    // First pass: parse and check every link; nothing is written unless the whole file holds.
    let mut prev = Hash::GENESIS;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line)
            .with_context(|| format!("line {n} is not an exported event"))?;
        let bytes =
            hex::decode(&l.bytes).with_context(|| format!("line {n}: `bytes` is not hex"))?;
        if l.seq != events.len() as u64 + 1 {
            bail!(
                "line {n}: event {} where {} was due: the file is not a whole log",
                l.seq,
                events.len() + 1
            );
        }
        let hash = link(&prev, l.seq, &bytes);
        if hash.to_hex() != l.hash {
            bail!("line {n}: event {} does not link the chain: the file was altered; nothing imported", l.seq);
        }
        let event = permledger_log::envelope::decode(&bytes)
            .with_context(|| format!("line {n}: event {} does not decode", l.seq))?;
        if event.meta.seq != l.seq {
            bail!(
                "line {n}: the event inside is recorded as {}, not {}",
                event.meta.seq,
                l.seq
            );
        }
        prev = hash;
        events.push((event, bytes));
    }
    let log = crate::data::open_log(data)?;
    if log.head()?.seq != 0 {
        bail!(
            "`{}` already holds a log: import only into an empty folder",
            data.display()
        );
    }
    let bar = crate::data::progress_bar(events.len() as u64, "importing");
    // Consecutive events of one org go in one commit; many commits in one synced append.
    for chunk in events.chunks(4096) {
        let mut commits: Vec<Commit> = Vec::new();
        for (event, bytes) in chunk {
            let pending = PendingEvent {
                seq: event.meta.seq,
                org_version: event.meta.org_version,
                bytes: bytes.clone(),
            };
            match commits.last_mut() {
                Some(c) if c.org == event.meta.org => c.events.push(pending),
                _ => commits.push(Commit {
                    org: event.meta.org.clone(),
                    expected_version: None,
                    events: vec![pending],
                    idempotency: None,
                }),
            }
        }
        log.append(&commits)?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let head = log.head()?;
    if head.hash != prev {
        bail!("the imported log's head {head} differs from the file's last link {prev}");
    }
    out!("imported {} events, head {head}", events.len());
    Ok(0)
}
