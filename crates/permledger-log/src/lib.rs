//! permledger's event log: the storage trait, the envelope events are stored in, the hash chain
//! and its verifier, a follower that never skips or repeats, an in-memory log, and the
//! conformance suite every implementation runs. This crate does not depend on RocksDB.

pub mod batch;
pub mod chain;
pub mod conformance;
pub mod envelope;
pub mod follow;
pub mod memory;
pub mod sign;
pub mod transfer;
pub mod verify;

use permledger_domain::{OrgId, Seq};
use serde::{Deserialize, Serialize};

pub use chain::{Digest, Hash};
pub use follow::Follower;
pub use memory::MemoryLog;
pub use sign::{LedgerKey, PublicKey, SignedDigest};
pub use verify::{verify, ChainCheck, Tamper, VerifyReport};

/// One event as stored: its position, its chain link and its envelope bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

impl Record {
    pub fn decode(&self) -> Result<permledger_domain::Event, envelope::CodecError> {
        envelope::decode(&self.bytes)
    }

    /// The same, for a reader of the log of record: bytes that do not decode are corruption of
    /// the log at this position.
    pub fn decode_stored(&self) -> Result<permledger_domain::Event, LogError> {
        self.decode().map_err(|e| LogError::Corruption {
            seq: self.seq,
            reason: e.to_string(),
        })
    }
}

/// An event the writer has positioned but not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub seq: Seq,
    pub org_version: u64,
    pub bytes: Vec<u8>,
}

/// What an idempotency key maps to: the command it was used with and the events it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyEntry {
    /// Hash of the command and its actor, so that reusing the key for another command is a conflict.
    pub fingerprint: Hash,
    pub first_seq: Seq,
    pub last_seq: Seq,
}

/// One command's events for one org, stored atomically with its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub org: OrgId,
    /// The org's version the commit requires, if the caller named one.
    pub expected_version: Option<u64>,
    pub events: Vec<PendingEvent>,
    pub idempotency: Option<(String, IdempotencyEntry)>,
}

/// Failures of the log itself; a refused command is not one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("storage failed: {0}")]
    Io(String),
    #[error("stored event {seq} is corrupt: {reason}")]
    Corruption { seq: Seq, reason: String },
    #[error("org `{org}` is at version {actual}, not the expected {expected}")]
    Conflict {
        org: OrgId,
        expected: u64,
        actual: u64,
    },
    #[error("event positioned at {got} does not follow {expected_prev}")]
    OutOfOrder { expected_prev: Seq, got: Seq },
    #[error("writes are stopped after an earlier storage failure: {0}")]
    Stopped(String),
    /// A cluster node that is not the writer (or has just stopped being it) appends nothing;
    /// nothing was acknowledged, and the command may be sent again.
    #[error("this node is not the cluster's writer: {0}")]
    NotWriter(String),
    /// The cluster's stream did not take the events with a quorum's acknowledgement in time;
    /// nothing was acknowledged, and the command may be sent again (with the same idempotency
    /// key: a batch the stream stored late is then found, not recorded twice).
    #[error("the cluster's stream has no quorum: {0}")]
    NoQuorum(String),
}

/// The log of record. Appends are atomic per call and durable when they return; reads see only
/// whole appends, never a position before everything below it is visible.
pub trait EventLog: Send + Sync + 'static {
    /// Stores the commits, in order, as one atomic and durable write. Fails without writing anything
    /// if any commit's expected version is not met or any position does not follow the head.
    fn append(&self, commits: &[Commit]) -> Result<(), LogError>;
    /// Appends like `append`, atomically and in order, but may return before the write is on
    /// disk: it survives this process's crash, not the machine's loss of power. For a copy
    /// whose durability rests elsewhere: a cluster node storing what a quorum of the stream's
    /// servers holds, whose log is a prefix of the stream and catches up from it. By default
    /// `append`.
    fn append_unsynced(&self, commits: &[Commit]) -> Result<(), LogError> {
        self.append(commits)
    }
    /// What the store found wrong with its own records when it opened (a stored head that does
    /// not name the last stored event), for readers that check the chain; `None` by default.
    fn damage(&self) -> Option<Tamper> {
        None
    }
    /// Up to `limit` records from `from` on, in sequence order.
    fn read(&self, from: Seq, limit: usize) -> Result<Vec<Record>, LogError>;
    /// Lends every stored record from `from` on to `visit`, in sequence order, until `visit`
    /// answers false or the log ends: a reader that decodes the bytes (a rebuild, a verifier)
    /// needs no buffer of its own. This default reads pages through `read`; a store that can
    /// lend its bytes where they lie (`RocksLog`) overrides it.
    fn scan(
        &self,
        from: Seq,
        visit: &mut dyn FnMut(Seq, &Hash, &[u8]) -> bool,
    ) -> Result<(), LogError> {
        const PAGE: usize = 4096;
        let mut next = from.max(1);
        loop {
            let page = self.read(next, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            next = last.seq + 1;
            for r in &page {
                if !visit(r.seq, &r.hash, &r.bytes) {
                    return Ok(());
                }
            }
        }
    }
    /// Up to `limit` records of one org from its version `from_version` on.
    fn read_org(
        &self,
        org: &OrgId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LogError>;
    /// The last stored position and its link (`0` and the genesis link when empty).
    fn head(&self) -> Result<Digest, LogError>;
    /// The org's version: how many events it has (0 when unknown).
    fn org_version(&self, org: &OrgId) -> Result<u64, LogError>;
    fn idempotency(&self, org: &OrgId, key: &str) -> Result<Option<IdempotencyEntry>, LogError>;
    /// A channel that holds the head position and changes after every append.
    fn watch(&self) -> tokio::sync::watch::Receiver<Seq>;
}

/// Checks a group of commits against the head and the orgs' versions and links every event into
/// the chain: answers each event's link, in order, and the new head. Shared by every
/// implementation so that they refuse the same things.
pub fn link_commits(
    head: Digest,
    mut org_version: impl FnMut(&OrgId) -> Result<u64, LogError>,
    commits: &[Commit],
) -> Result<(Vec<Hash>, Digest), LogError> {
    let mut prev = head;
    let mut links = Vec::with_capacity(commits.iter().map(|c| c.events.len()).sum());
    let mut versions: permledger_domain::state::Hashed<&OrgId, u64> = Default::default();
    for c in commits {
        let current = match versions.get(&c.org) {
            Some(v) => *v,
            None => org_version(&c.org)?,
        };
        if let Some(expected) = c.expected_version {
            if expected != current {
                return Err(LogError::Conflict {
                    org: c.org.clone(),
                    expected,
                    actual: current,
                });
            }
        }
        let mut v = current;
        for e in &c.events {
            if e.seq != prev.seq + 1 {
                return Err(LogError::OutOfOrder {
                    expected_prev: prev.seq,
                    got: e.seq,
                });
            }
            if e.org_version != v + 1 {
                return Err(LogError::Conflict {
                    org: c.org.clone(),
                    expected: e.org_version - 1,
                    actual: v,
                });
            }
            v = e.org_version;
            let hash = chain::link(&prev.hash, e.seq, &e.bytes);
            links.push(hash);
            prev = Digest { seq: e.seq, hash };
        }
        versions.insert(&c.org, v);
    }
    Ok((links, prev))
}
