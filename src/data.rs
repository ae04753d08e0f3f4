//! The data folder: where the RocksDB log lives, with a default that needs no setup, and the
//! ways a command opens it. Commands that write hold the folder (and create it); commands that
//! read open it read-only, never create it, and work beside a server that holds it. Every open
//! starts from the newest checkpoint the log agrees with (`DATA/checkpoints`) and folds the tail
//! after it, checking its chain: a damaged log stops the command with exit 3, unless
//! `--read-only` asks to inspect it up to its last good event. A writer proves the events below
//! the checkpoint unchanged before it appends; a reader trusts them as the checkpoint found them
//! (`verify` rereads everything).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use permledger_domain::OrgId;
use permledger_ledger::{Below, Checkpoints, Ledger, OpenError, SystemClock};
use permledger_log::sign::KEY_FILE;
use permledger_log::{EventLog, LedgerKey};
use permledger_rocks::RocksLog;

/// `$XDG_DATA_HOME/permledger`, else `~/.local/share/permledger`, else `./permledger-data`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("permledger");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/permledger");
    }
    PathBuf::from("permledger-data")
}

/// The log, for writing: this process holds the folder, creating it if needed, with the
/// ledger's signing key beside the log (made once, with the folder).
pub fn open_log(dir: &Path) -> anyhow::Result<Arc<dyn EventLog>> {
    let log = RocksLog::open(dir)
        .with_context(|| format!("cannot open the log in `{}`", dir.display()))?;
    signing_key(dir)?;
    Ok(Arc::new(log))
}

/// The ledger's signing key, kept in the folder beside the log (never in it); made the first
/// time a writer opens the folder. The folder must exist.
pub fn signing_key(dir: &Path) -> anyhow::Result<LedgerKey> {
    if !dir.is_dir() {
        anyhow::bail!("there is no ledger in `{}`", dir.display());
    }
    Ok(LedgerKey::load_or_create(&dir.join(KEY_FILE))?)
}

/// The key of a folder opened for reading, if it has one yet (a folder no writer opened since
/// signing came has none, and its digests go unsigned).
pub fn existing_key(dir: &Path) -> anyhow::Result<Option<LedgerKey>> {
    Ok(LedgerKey::load(&dir.join(KEY_FILE))?)
}

/// The log, for reading: read-only, beside a server that may hold it; a missing folder is an
/// error, never created.
pub fn read_log(dir: &Path) -> anyhow::Result<Arc<dyn EventLog>> {
    let log = RocksLog::open_read_only(dir)
        .with_context(|| format!("cannot read the log in `{}`", dir.display()))?;
    Ok(Arc::new(log))
}

/// Opens the ledger over the folder's log for writing, from its newest checkpoint, with a
/// progress bar when the fold is long. A damaged log is refused (`OpenError::Tampered`, exit 3),
/// below the checkpoint too (its links are recomputed first).
pub fn open_ledger(dir: &Path) -> anyhow::Result<Ledger> {
    open_writer(dir, Below::Now)
}

/// The same, for a server: the links below the checkpoint are recomputed while it serves, and
/// if they do not hold it refuses every command from then on.
pub fn open_server(dir: &Path) -> anyhow::Result<Ledger> {
    open_writer(dir, Below::InBackground)
}

/// The same over a log wrapping the folder's own (a cluster node's, which writes through the
/// cluster's stream).
pub fn open_server_on(dir: &Path, log: Arc<dyn EventLog>) -> anyhow::Result<Ledger> {
    open_writer_on(dir, log, Below::InBackground)
}

fn open_writer(dir: &Path, below: Below) -> anyhow::Result<Ledger> {
    open_writer_on(dir, open_log(dir)?, below)
}

fn open_writer_on(dir: &Path, log: Arc<dyn EventLog>, below: Below) -> anyhow::Result<Ledger> {
    let total = log.head()?.seq;
    let bar = progress_bar(total, "folding");
    let (ledger, _) = Ledger::open_from(
        log,
        Arc::new(SystemClock),
        &Checkpoints::of_folder(dir),
        below,
        &mut |w| bar.suspend(|| eprintln!("warning: {w}")),
        |done, _| bar.set_position(done),
    )
    .map_err(damaged)?;
    bar.finish_and_clear();
    Ok(ledger)
}

/// Opens the ledger for reading only, from the newest checkpoint, holding only `org` when the
/// question is about one org (its part of the checkpoint and the tail are read). A damaged tail
/// is refused, unless `inspect`: then the ledger holds every event up to the last good one, and
/// a warning says what is wrong after it.
pub fn read_ledger(dir: &Path, inspect: bool, org: Option<&OrgId>) -> anyhow::Result<Ledger> {
    let log = read_log(dir)?;
    let total = log.head()?.seq;
    let bar = progress_bar(total, "folding");
    let wanted = |o: &OrgId| org.is_none_or(|one| one == o);
    let (ledger, damage) = Ledger::open_read_only_from(
        log,
        &Checkpoints::of_folder(dir),
        &wanted,
        &mut |w| bar.suspend(|| eprintln!("warning: {w}")),
        |done, _| bar.set_position(done),
    )
    .map_err(damaged)?;
    bar.finish_and_clear();
    match damage {
        None => Ok(ledger),
        Some(t) if inspect => {
            eprintln!(
                "warning: the log is damaged: {t}; reading up to event {}, the last good one",
                ledger.seq()
            );
            Ok(ledger)
        }
        Some(t) => Err(damaged(OpenError::Tampered(t))),
    }
}

/// A log whose chain does not hold: the command stops with exit 3, saying what to do.
#[derive(Debug)]
pub struct Damaged(pub permledger_log::Tamper);

impl std::fmt::Display for Damaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the log is damaged: {}. Nothing was served or written; `permledger verify` checks \
             the whole chain, and `--read-only` reads the folder up to its last good event",
            self.0
        )
    }
}

impl std::error::Error for Damaged {}

/// A refused open; a damaged log becomes `Damaged` (exit 3).
pub fn damaged(e: OpenError) -> anyhow::Error {
    match e {
        OpenError::Tampered(t) => Damaged(t).into(),
        other => other.into(),
    }
}

/// True when the error is a damaged log (exit 3).
pub fn is_damage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Damaged>().is_some())
}

/// A progress bar on a terminal for long work, hidden otherwise.
pub fn progress_bar(total: u64, what: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if total < 50_000 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {pos}/{len} events ({per_sec}, {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

/// Lets a read-only ledger go at the end of a command without freeing its views one small map
/// at a time: the process ends right after and its memory goes with it (on the largest org of
/// the 1,000,000-event log, freeing took about a tenth of a `check`).
pub fn leave(ledger: Ledger) {
    std::mem::forget(ledger);
}
