//! The witness file of `permledger serve --witness FILE`: a signed digest of the log's head,
//! appended every so often while the head moves and once more at shutdown, one JSON line each,
//! to a file meant to live on another system. `permledger verify --witness FILE` later proves
//! the log extends every statement in it, naming the first it does not.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use permledger_domain::Timestamp;
use permledger_ledger::Ledger;
use permledger_log::{Digest, LedgerKey, SignedDigest};

pub struct Witness {
    path: PathBuf,
    key: Arc<LedgerKey>,
    /// The head last stated: a quiet ledger adds no line.
    last: Option<Digest>,
}

impl Witness {
    /// A witness appending to `path` (created if missing); refused at once when it cannot be
    /// written, so that a server never runs believing it is witnessed when it is not.
    pub fn open(path: &Path, key: Arc<LedgerKey>) -> anyhow::Result<Witness> {
        append(path, None)
            .with_context(|| format!("cannot write the witness file `{}`", path.display()))?;
        Ok(Witness {
            path: path.to_path_buf(),
            key,
            last: None,
        })
    }

    /// Appends a signed digest of the ledger's head, unless it is the one last stated. Returns
    /// the statement written.
    pub fn state(
        &mut self,
        ledger: &Ledger,
        now: Timestamp,
    ) -> anyhow::Result<Option<SignedDigest>> {
        let seq = ledger.seq();
        let covers = ledger.covers(seq)?;
        let hash = permledger_log::Hash::from_hex(&covers.hash)
            .ok_or_else(|| anyhow::anyhow!("the ledger's link `{}` is not a hash", covers.hash))?;
        let head = Digest { seq, hash };
        if self.last == Some(head) {
            return Ok(None);
        }
        let signed = self.key.sign(head, now);
        append(&self.path, Some(&signed)).with_context(|| {
            format!(
                "cannot append to the witness file `{}`",
                self.path.display()
            )
        })?;
        self.last = Some(head);
        Ok(Some(signed))
    }
}

/// Appends one line (or, with none, only checks the file opens for appending), synced.
fn append(path: &Path, line: Option<&SignedDigest>) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if let Some(line) = line {
        writeln!(file, "{line}")?;
        file.sync_data()?;
    }
    Ok(())
}

/// One statement read back from a witness file, with its line number.
pub struct Stated {
    pub line: usize,
    pub signed: SignedDigest,
}

/// Every statement of a witness file, in order; a line that is not one is an error naming it.
pub fn read(path: &Path) -> anyhow::Result<Vec<Stated>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the witness file `{}`", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let signed: SignedDigest = serde_json::from_str(line).with_context(|| {
            format!(
                "line {} of the witness file `{}` is not a signed digest",
                i + 1,
                path.display()
            )
        })?;
        out.push(Stated {
            line: i + 1,
            signed,
        });
    }
    if out.is_empty() {
        anyhow::bail!(
            "the witness file `{}` holds no signed digest: nothing to prove",
            path.display()
        );
    }
    Ok(out)
}
