//! A replica of a ledger's views inside a service's own process (issue 22; decision 0011): a
//! service that checks permissions on every request answers them from memory, in well under a
//! microsecond, instead of asking a server over the network.
//!
//! A [`Replica`] is fed the log's stored records in order, from whatever carries them (a
//! follower of a log in the same process, [`Replica::follow`]; a cluster's NATS stream,
//! [`Replica::follow_stream`]; a server's stored records over HTTP, [`Replica::follow_server`]). Every record's link, bytes and
//! org version are checked against the chain so far (`ChainCheck`, the check every open of the
//! log makes) before it is folded: a record that does not hold stops the replica at the last
//! good position, for good, with the reason (`Replica::broken`); it never answers from a forged
//! history. [`Replica::wait_for`] gives read-your-writes: a client that wrote and got a position
//! waits until the replica has folded it.
//!
//! Invariant: the replica's views at position `n` equal a fold of the log's first `n` events
//! (tested against a ledger's own views under concurrent writes).

mod server;
mod stream;

pub use stream::{messages_from, STREAM};

use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::Duration;

use permledger_domain::{OrgId, PermissionKey, Scope, Seq, Timestamp, UserId};
use permledger_log::{ChainCheck, EventLog, Follower, Record, Tamper};
use permledger_views::Views;
use tokio::sync::watch;

/// Why a replica stopped, or a wait ended without the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    /// A record did not hold against the chain: nothing from it on was folded.
    #[error("the log does not hold: {0}; the replica stays at event {1}")]
    Tampered(Tamper, Seq),
    /// A record's bytes did not decode.
    #[error("stored event {seq} does not decode: {reason}; the replica stays at event {at}")]
    Undecodable { seq: Seq, reason: String, at: Seq },
    /// Stopped earlier (the first reason).
    #[error("the replica stopped earlier: {0}")]
    Stopped(String),
    /// `wait_for` ran out of time.
    #[error("the replica reached event {reached}, not {wanted}, within {waited:?}")]
    Timeout {
        wanted: Seq,
        reached: Seq,
        waited: Duration,
    },
    /// The log it follows could not be read (`follow`).
    #[error("the log cannot be read: {0}")]
    Log(String),
}

/// A ledger's views kept in process, fed checked records. Cheap to clone: clones share it.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

struct Inner {
    views: RwLock<Views>,
    /// Held while a batch is checked and folded: records are folded in order, once.
    chain: Mutex<ChainCheck>,
    published: watch::Sender<Seq>,
    broken: OnceLock<ReplicaError>,
    /// Why the transport is not delivering now, if it is not (cleared when it resumes).
    trouble: Mutex<Option<String>>,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

impl Replica {
    /// An empty replica, expecting the log's first event.
    pub fn new() -> Replica {
        Replica {
            inner: Arc::new(Inner {
                views: RwLock::new(Views::new()),
                chain: Mutex::new(ChainCheck::new()),
                published: watch::Sender::new(0),
                broken: OnceLock::new(),
                trouble: Mutex::new(None),
            }),
        }
    }

    /// Checks each record against the chain and folds it, in order; answers the position
    /// reached. The records must follow the last one folded. One that does not hold stops the
    /// replica: the records before it are folded, it and all later ones never are.
    pub fn apply(&self, records: &[Record]) -> Result<Seq, ReplicaError> {
        if let Some(e) = self.inner.broken.get() {
            return Err(ReplicaError::Stopped(e.to_string()));
        }
        let mut chain = match self.inner.chain.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut good = Vec::with_capacity(records.len());
        let mut failed = None;
        for r in records {
            let at = chain.last().seq;
            let event = match r.decode() {
                Ok(e) => e,
                Err(e) => {
                    failed = Some(ReplicaError::Undecodable {
                        seq: r.seq,
                        reason: e.to_string(),
                        at,
                    });
                    break;
                }
            };
            match chain.check(r.seq, &r.hash, &r.bytes, &event) {
                Ok(_) => good.push(event),
                Err(t) => {
                    failed = Some(ReplicaError::Tampered(t, at));
                    break;
                }
            }
        }
        let reached = chain.last().seq;
        if !good.is_empty() {
            let mut views = match self.inner.views.write() {
                Ok(v) => v,
                Err(poisoned) => poisoned.into_inner(),
            };
            for e in &good {
                views.apply(e);
            }
            drop(views);
            self.inner.published.send_replace(reached);
        }
        match failed {
            Some(e) => {
                tracing::error!("the replica stopped: {e}");
                let _ = self.inner.broken.set(e.clone());
                // Wake every waiter: what they wait for will not come.
                self.inner.published.send_modify(|_| {});
                Err(e)
            }
            None => Ok(reached),
        }
    }

    /// The last position folded.
    pub fn seq(&self) -> Seq {
        *self.inner.published.borrow()
    }

    /// Why the replica stopped, if it did.
    pub fn broken(&self) -> Option<&ReplicaError> {
        self.inner.broken.get()
    }

    /// Why the replica's transport is not delivering right now (a lost connection, a refused
    /// token), while it tries again; `None` while it follows.
    pub fn trouble(&self) -> Option<String> {
        match self.inner.trouble.lock() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_trouble(&self, why: Option<String>) {
        match self.inner.trouble.lock() {
            Ok(mut t) => *t = why,
            Err(poisoned) => *poisoned.into_inner() = why,
        }
    }

    /// The views (read-locked: folding waits while they are held).
    pub fn views(&self) -> RwLockReadGuard<'_, Views> {
        match self.inner.views.read() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Whether the user may do `key` on the scope at the replica's position, expiries judged
    /// at `at`: the ledger's own check (`Views::check`).
    pub fn check(
        &self,
        org: &OrgId,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> bool {
        self.views().check(org, user, key, scope, at)
    }

    /// Waits until the replica has folded position `seq` (read-your-writes: pass the position a
    /// write answered), at most `timeout`.
    pub async fn wait_for(&self, seq: Seq, timeout: Duration) -> Result<Seq, ReplicaError> {
        let mut rx = self.inner.published.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                let now = *rx.borrow_and_update();
                if now >= seq {
                    return Ok(now);
                }
                if let Some(e) = self.inner.broken.get() {
                    return Err(ReplicaError::Stopped(e.to_string()));
                }
                if rx.changed().await.is_err() {
                    return Err(ReplicaError::Stopped("the replica is gone".into()));
                }
            }
        })
        .await;
        match reached {
            Ok(r) => r,
            Err(_) => Err(ReplicaError::Timeout {
                wanted: seq,
                reached: self.seq(),
                waited: timeout,
            }),
        }
    }

    /// A replica following `log` from its first event, on a task of the current tokio runtime,
    /// until the log is gone or a record does not hold (the task then ends with the reason).
    pub fn follow(log: Arc<dyn EventLog>) -> (Replica, tokio::task::JoinHandle<ReplicaError>) {
        let replica = Replica::new();
        let fed = replica.clone();
        let task = tokio::spawn(async move {
            let mut follower = Follower::new(log, 1);
            loop {
                let batch = match follower.next_batch(1024).await {
                    Ok(b) if b.is_empty() => return ReplicaError::Log("the log is gone".into()),
                    Ok(b) => b,
                    Err(e) => return ReplicaError::Log(e.to_string()),
                };
                if let Err(e) = fed.apply(&batch) {
                    return e;
                }
            }
        });
        (replica, task)
    }
}
