//! `permledger export` and `permledger import`: the whole log as JSON Lines
//! (`permledger_log::transfer`). Each line holds the event's position, its chain link, its
//! stored bytes (hex, what the link covers) and the event decoded for people; the last line is
//! the digest the file covers, signed with the ledger's key. Import checks every link, every
//! readable copy against its bytes and the closing signature before it writes anything, and
//! only into an empty folder, so a broken, edited or cut file is refused whole.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use permledger_log::transfer::{end_line, event_line, read_export, Check};
use permledger_log::{Commit, PendingEvent, PublicKey};

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
    /// The public key of the ledger the file must come from (`permledger key show` there):
    /// its closing digest must be signed with it. Without it, the signature is checked against
    /// the key the file names.
    #[arg(long, value_name = "ed25519:HEX", conflicts_with = "bytes_only")]
    key: Option<PublicKey>,
    /// Check only the chain of the stored bytes, ignoring the readable copies and a missing
    /// closing digest: for exports written before exports were signed.
    #[arg(long)]
    bytes_only: bool,
}

pub fn export(data: &Path, args: ExportArgs) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    let key = crate::data::signing_key(data)?;
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
            out.write_all(event_line(r.seq, r.hash, &r.bytes, &event).as_bytes())?;
            out.write_all(b"\n")?;
        }
        bar.set_position(chain.last().seq);
    }
    chain.end(head).map_err(crate::data::Damaged)?;
    let covers = key.sign(
        chain.last(),
        permledger_ledger::Clock::now(&permledger_ledger::SystemClock),
    );
    out.write_all(end_line(&covers).as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    bar.finish_and_clear();
    if args.out.is_some() {
        eprintln!(
            "exported {} events, closed with digest {} signed by {}",
            chain.last().seq,
            chain.last(),
            key.public()
        );
    }
    Ok(0)
}

pub fn import(data: &Path, args: ImportArgs) -> anyhow::Result<u8> {
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open `{}`", args.file.display()))?;
    // Everything is checked before anything is written.
    let check = match args.bytes_only {
        true => Check::BytesOnly,
        false => Check::Whole {
            trusted: args.key.as_ref(),
        },
    };
    let read = read_export(std::io::BufReader::new(file), check)
        .map_err(|e| anyhow::anyhow!("{e}; nothing imported"))?;
    match (&read.covers, &args.key) {
        (Some(c), None) => eprintln!(
            "note: the file's closing digest is signed by {}; give `--key` to require the key of \
             the ledger you expect",
            c.key
        ),
        (None, _) => eprintln!(
            "note: the file has no closing digest; only its chain was checked (`--bytes-only`)"
        ),
        _ => {}
    }
    let events = read.events;
    let prev = read.head.hash;
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
