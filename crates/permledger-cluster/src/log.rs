//! A node's log of record in a cluster: its own RocksDB log, written only through the stream.
//!
//! As the writer, an append publishes the group's batch to the stream first, fenced by the
//! stream's last position, and stores it in the local log only once a quorum of NATS servers
//! acknowledged it: the local log is always a prefix of the stream. As a replica, the node
//! receives the stream's batches (`receive`), checks every link against its own chain, stores
//! them and folds them. One lock orders both, so the local log and the node's place in the
//! stream move together. Neither local write waits for the disk: the stream is what a node
//! completes its log from.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use permledger_domain::{OrgId, Seq};
use permledger_ledger::Ledger;
use permledger_log::batch::{Batch, BatchError};
use permledger_log::{
    link_commits, Commit, Digest, EventLog, IdempotencyEntry, LogError, Record, Tamper,
};

use crate::stream::{Nats, Refused};
use crate::ClusterError;

/// The largest batch published as one message: well under NATS's default `max_payload` of
/// 1 MB. A larger group is published as several batches, one after another.
pub(crate) const MAX_BATCH_BYTES: usize = 512 * 1024;

pub struct ClusterLog {
    local: Arc<dyn EventLog>,
    nats: Nats,
    rt: tokio::runtime::Handle,
    /// How long an append retries a publish no quorum acknowledges.
    publish_bound: Duration,
    /// The stream position of the last batch the local log holds. The lock is held through an
    /// append (publish and local write) and through a received batch's check, store and fold,
    /// so that the two never interleave.
    place: Mutex<u64>,
    /// The same position, for readers that must not wait for an append in flight.
    position: AtomicU64,
    /// Whether this node may append; cleared without waiting for an append in flight (which
    /// the stream fences anyway).
    writing: AtomicBool,
    /// Why the log stopped writing by itself (fenced, no quorum), until the node reads it.
    stepped_down: Mutex<Option<String>>,
}

/// What became of a batch received from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The local log holds it already (the node wrote it).
    Held,
    /// Checked, stored and folded: the views are at `seq`.
    Folded { seq: Seq },
}

impl ClusterLog {
    /// The cluster's log over the node's local one, which ends at stream position `stream`
    /// (`Nats::position_of`).
    pub fn new(
        local: Arc<dyn EventLog>,
        nats: Nats,
        rt: tokio::runtime::Handle,
        stream: u64,
        publish_bound: Duration,
    ) -> ClusterLog {
        ClusterLog {
            local,
            nats,
            rt,
            publish_bound,
            place: Mutex::new(stream),
            position: AtomicU64::new(stream),
            writing: AtomicBool::new(false),
            stepped_down: Mutex::new(None),
        }
    }

    fn place(&self) -> MutexGuard<'_, u64> {
        match self.place.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn set_place(&self, place: &mut u64, at: u64) {
        *place = at;
        self.position.store(at, SeqCst);
    }

    /// The stream position of the last batch the local log holds.
    pub fn stream_position(&self) -> u64 {
        self.position.load(SeqCst)
    }

    pub fn writing(&self) -> bool {
        self.writing.load(SeqCst)
    }

    /// Takes the writer's role if the local log holds the stream up to `last`, its last
    /// position as read after the lease was won: the first publish is then fenced on it, so a
    /// batch stored meanwhile by the former writer refuses it rather than forks the chain.
    pub fn take_writing(&self, last: u64) -> bool {
        let place = self.place();
        if *place != last {
            return false;
        }
        self.writing.store(true, SeqCst);
        true
    }

    /// Stops writing (the lease was lost, or the node stops). An append in flight ends as it
    /// would have; none starts after.
    pub fn stop_writing(&self) {
        self.writing.store(false, SeqCst);
    }

    /// Why the log stopped writing by itself, once (for the node to stand the ledger by).
    pub fn take_stepped_down(&self) -> Option<String> {
        match self.stepped_down.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    fn step_down(&self, why: String) {
        self.writing.store(false, SeqCst);
        match self.stepped_down.lock() {
            Ok(mut g) => *g = Some(why),
            Err(p) => *p.into_inner() = Some(why),
        }
    }

    /// Checks a batch the stream holds at position `at` against the local chain, stores it
    /// and folds it into `ledger`'s views. A batch that does not extend the chain stops the
    /// node's following for good (`ClusterError::Broken`): it is never stored nor served.
    pub fn receive(
        &self,
        ledger: &Ledger,
        at: u64,
        batch: &Batch,
    ) -> Result<Received, ClusterError> {
        let mut place = self.place();
        if at <= *place {
            return Ok(Received::Held);
        }
        if at != *place + 1 {
            return Err(ClusterError::Nats(format!(
                "stream message {at} arrived after {}: a gap",
                *place
            )));
        }
        // Another node stored a batch after this one's last: it is the writer now, and this
        // node's ledger stands by before it folds the batch (a step down of the log itself, on
        // a refused publish, reaches the ledger only at the lease's next tick).
        if self.writing() {
            self.step_down(format!(
                "another node wrote stream message {at}; this node stopped writing"
            ));
        }
        if ledger.standing_by().is_none() {
            ledger.stand_by(Some("another node is the cluster's writer".into()));
        }
        let head = self.local.head()?;
        // The committer may still be folding this node's own last group into the views.
        let started = std::time::Instant::now();
        while ledger.seq() < head.seq {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(ClusterError::Nats(format!(
                    "the views stayed at event {} below the log's {}",
                    ledger.seq(),
                    head.seq
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let (commits, events) = batch
            .check(head, |org| self.local.org_version(org))
            .map_err(|e| match e {
                BatchError::Log(e) => ClusterError::Log(e),
                other => ClusterError::Broken {
                    at,
                    why: other.to_string(),
                },
            })?;
        // Not synced (`append_unsynced`): a quorum of the stream's servers holds the batch, and
        // a node whose last events a loss of power took finds them in the stream again.
        self.local.append_unsynced(&commits)?;
        // Checked above: the ledger stands by and its views hold the local log. Should the fold
        // fail all the same, the log holds a batch the views do not: the node stops.
        let seq = ledger
            .fold_replicated(&events)
            .map_err(|e| ClusterError::Broken {
                at,
                why: format!("stored here but not folded: {e}"),
            })?;
        self.set_place(&mut place, at);
        Ok(Received::Folded { seq })
    }
}

/// The batches a group is published as: one, unless it is larger than `MAX_BATCH_BYTES`;
/// never one command split across two.
fn batches(commits: &[Commit], links: &[permledger_log::Hash]) -> Vec<Batch> {
    let mut out = Vec::new();
    let (mut from, mut event, mut bytes) = (0, 0, 0);
    let mut first_event = 0;
    for (i, c) in commits.iter().enumerate() {
        let size: usize = c.events.iter().map(|e| e.bytes.len() + 64).sum();
        if i > from && bytes + size > MAX_BATCH_BYTES {
            out.push(Batch::new(&commits[from..i], &links[first_event..event]));
            from = i;
            first_event = event;
            bytes = 0;
        }
        bytes += size;
        event += c.events.len();
    }
    if from < commits.len() {
        out.push(Batch::new(&commits[from..], &links[first_event..event]));
    }
    out
}

/// A batch's identity for the stream's deduplication: its first position and its last link.
pub(crate) fn message_id(batch: &Batch) -> String {
    let last = batch.last();
    format!("{}-{}-{}", batch.first(), last.seq, last.hash)
}

impl EventLog for ClusterLog {
    fn append(&self, commits: &[Commit]) -> Result<(), LogError> {
        let mut place = self.place();
        if !self.writing() {
            return Err(LogError::NotWriter(
                "commands go to the cluster's writer".into(),
            ));
        }
        let head = self.local.head()?;
        let (links, _) = link_commits(head, |org| self.local.org_version(org), commits)?;
        let mut expected = *place;
        for batch in batches(commits, &links) {
            let id = message_id(&batch);
            let payload = Bytes::from(batch.encode());
            let published =
                self.rt.block_on(
                    self.nats
                        .publish(payload, &id, expected, self.publish_bound),
                );
            match published {
                Ok(at) => expected = at,
                // Batches published before this one stay in the stream, whole commands each,
                // unacknowledged: every node folds them from there, this one included.
                Err(Refused::Fenced(why)) => {
                    let why = format!("the stream refused this node's batch ({why})");
                    self.step_down(why.clone());
                    return Err(LogError::NotWriter(why));
                }
                Err(Refused::NoQuorum(why)) => {
                    self.step_down(format!("no quorum acknowledged a batch: {why}"));
                    return Err(LogError::NoQuorum(why));
                }
            }
        }
        // Not synced either: acknowledged means a quorum of NATS servers holds the group and the
        // writer's RocksDB has it, in a write its process's crash cannot undo. A synced write
        // here would add nothing a node could use after a loss of power (its log is a prefix of
        // the stream, completed from it) and cost the fsync on every group.
        if let Err(e) = self.local.append_unsynced(commits) {
            // The stream holds the group: this node cannot go on writing past it.
            self.step_down(format!("the local log failed: {e}"));
            return Err(e);
        }
        self.set_place(&mut place, expected);
        Ok(())
    }

    fn damage(&self) -> Option<Tamper> {
        self.local.damage()
    }

    fn read(&self, from: Seq, limit: usize) -> Result<Vec<Record>, LogError> {
        self.local.read(from, limit)
    }

    fn scan(
        &self,
        from: Seq,
        visit: &mut dyn FnMut(Seq, &permledger_log::Hash, &[u8]) -> bool,
    ) -> Result<(), LogError> {
        self.local.scan(from, visit)
    }

    fn read_org(
        &self,
        org: &OrgId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LogError> {
        self.local.read_org(org, from_version, limit)
    }

    fn head(&self) -> Result<Digest, LogError> {
        self.local.head()
    }

    fn org_version(&self, org: &OrgId) -> Result<u64, LogError> {
        self.local.org_version(org)
    }

    fn idempotency(&self, org: &OrgId, key: &str) -> Result<Option<IdempotencyEntry>, LogError> {
        self.local.idempotency(org, key)
    }

    fn watch(&self) -> tokio::sync::watch::Receiver<Seq> {
        self.local.watch()
    }
}
