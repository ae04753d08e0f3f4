//! The data folder: where the RocksDB log lives, with a default that needs no setup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use permledger_ledger::{Ledger, SystemClock};
use permledger_log::EventLog;
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

pub fn open_log(dir: &Path) -> anyhow::Result<Arc<dyn EventLog>> {
    let log = RocksLog::open(dir)
        .with_context(|| format!("cannot open the log in `{}`", dir.display()))?;
    Ok(Arc::new(log))
}

/// Opens the ledger over the folder's log, with a progress bar when the rebuild is long.
pub fn open_ledger(dir: &Path) -> anyhow::Result<Ledger> {
    let log = open_log(dir)?;
    let total = log.head()?.seq;
    let bar = progress_bar(total, "rebuilding");
    let ledger =
        Ledger::open_with_progress(log, Arc::new(SystemClock), |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    Ok(ledger)
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
