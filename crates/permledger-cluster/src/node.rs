//! A node's two tasks, and what it says of itself.
//!
//! - **Follow**: an ordered push consumer of the stream from the batch after the local log's
//!   last, each batch handed to `ClusterLog::receive` (checked, stored, folded). The writer
//!   follows too: its own batches are already held; one it did not write means another node
//!   is the writer, and it stands by at once.
//! - **Lease**: every `TICK` the node reads the writer's lease (key `writer` of the bucket).
//!   The writer renews it every `renew_every` with compare-and-set on its revision, and stands
//!   by if it cannot (another node took it, or NATS did not answer for `lease_expiry`). Another
//!   node that has seen the same revision for `lease_expiry`, and holds the stream to its last
//!   position, takes the lease with compare-and-set on that revision (one node wins), reads the
//!   stream's last position again and becomes the writer only if it still holds all of it. The
//!   lease decides only who tries to write; the stream's fence decides who can: two nodes that
//!   both believe they are the writer never both append.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use permledger_ledger::Ledger;
use permledger_log::batch::Batch;
use permledger_log::EventLog;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::stream::{Nats, LEASE_KEY};
use crate::{ClusterError, ClusterLog, Options, Received};

/// How often the lease is looked at.
const TICK: Duration = Duration::from_millis(250);

/// What a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Catching up with the stream before it knows who writes.
    Joining,
    /// It holds the lease and appends.
    Writer,
    /// It follows the stream and serves reads; commands go to the writer.
    Replica,
    /// The stream held a batch that does not extend its chain: it serves what it had, follows
    /// no further and never writes.
    Stopped,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Joining => "joining",
            Role::Writer => "writer",
            Role::Replica => "replica",
            Role::Stopped => "stopped",
        }
    }
}

/// The value of the writer's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub node: String,
    /// Where the writer takes commands (`--advertise`).
    pub address: String,
    /// Counts the writers: one more at every takeover.
    pub term: u64,
    /// Counts the renewals within a term.
    pub beat: u64,
}

/// What a node says of itself on `/healthz` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub node: String,
    pub role: Role,
    /// Why it is not the writer, or why it stopped.
    pub why: Option<String>,
    /// The lease as last read: who writes, where.
    pub writer: Option<Lease>,
    /// Events the stream holds that this node has not folded yet (as of the last tick).
    pub lag_events: u64,
    /// For the last batch folded: from the stream's acknowledgement to its fold here.
    pub lag_ms: u64,
    /// Why NATS could not be asked lately, if it could not.
    pub nats_trouble: Option<String>,
}

/// A node joining a cluster: connected, its place in the stream found, its log ready to open
/// the ledger with.
pub struct Joining {
    opts: Options,
    nats: Nats,
    log: Arc<ClusterLog>,
}

/// A running node; clones share it.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    opts: Options,
    nats: Nats,
    log: Arc<ClusterLog>,
    ledger: Ledger,
    status: Mutex<Status>,
    /// Each folded batch's lag (stream acknowledgement to fold), in microseconds: the first
    /// `LAG_SAMPLES` of them, for a measurement (`bench --cluster`).
    lags_us: Mutex<Vec<u64>>,
}

const LAG_SAMPLES: usize = 1 << 20;

impl Joining {
    /// Connects to NATS (creating the stream and the bucket if this is the first node) and
    /// finds where the local log ends in the stream. A local log that is not a prefix of the
    /// stream is refused: a node never joins with a history the cluster does not hold. Called
    /// inside the runtime the node will run on.
    pub async fn connect(opts: Options, local: Arc<dyn EventLog>) -> Result<Joining, ClusterError> {
        let nats = Nats::connect(&opts).await?;
        let head = local.head()?;
        // A stream between leaders answers nothing for a few seconds: asked again, up to the
        // bound; a log that is not a prefix of the stream is refused at once.
        let started = Instant::now();
        let at = loop {
            match nats.position_of(head).await {
                Err(ClusterError::Nats(e)) if started.elapsed() < opts.connect_bound => {
                    tracing::warn!("finding this node's place in the stream: {e}; trying again");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => break other?,
            }
        };
        tracing::info!(node = %opts.node, seq = head.seq, stream = at, "joined the cluster's stream");
        let log = Arc::new(ClusterLog::new(
            local,
            nats.clone(),
            tokio::runtime::Handle::current(),
            at,
            opts.publish_bound,
        ));
        Ok(Joining { opts, nats, log })
    }

    /// The log to open the node's ledger with.
    pub fn log(&self) -> Arc<ClusterLog> {
        self.log.clone()
    }

    /// Starts following the stream and watching the lease, with `ledger` (opened on
    /// [`Joining::log`]) standing by until the node becomes the writer. Runs until `stopping`.
    pub fn start(self, ledger: Ledger, stopping: watch::Receiver<bool>) -> Node {
        ledger.stand_by(Some("this node is joining the cluster".into()));
        let node = Node {
            inner: Arc::new(Inner {
                status: Mutex::new(Status {
                    node: self.opts.node.clone(),
                    role: Role::Joining,
                    why: None,
                    writer: None,
                    lag_events: 0,
                    lag_ms: 0,
                    nats_trouble: None,
                }),
                lags_us: Mutex::new(Vec::new()),
                opts: self.opts,
                nats: self.nats,
                log: self.log,
                ledger,
            }),
        };
        tokio::spawn(follow(node.inner.clone(), stopping.clone()));
        tokio::spawn(lease(node.inner.clone(), stopping));
        node
    }
}

impl Node {
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// The writer's address when another node is the writer: where commands go.
    pub fn writer_address(&self) -> Option<String> {
        let s = self.status();
        match (s.role, s.writer) {
            (Role::Writer, _) => None,
            (_, Some(lease)) if lease.node != s.node => Some(lease.address),
            _ => None,
        }
    }

    /// The lag of each batch folded so far (the first million), in microseconds from the
    /// stream's acknowledgement to the fold here.
    pub fn lag_samples_us(&self) -> Vec<u64> {
        match self.inner.lags_us.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The ledger this node serves.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// Stops writing, for a clean shutdown: the lease is left to lapse.
    pub fn stop_writing(&self) {
        self.inner.log.stop_writing();
        self.inner
            .ledger
            .stand_by(Some("this node is stopping".into()));
    }
}

impl Inner {
    fn status(&self) -> Status {
        match self.status.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        match self.status.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Stands the ledger by (the node is a replica from now on), saying why.
    fn stand_by(&self, role: Role, why: String) {
        self.log.stop_writing();
        self.ledger.stand_by(Some(why.clone()));
        self.update(|s| {
            s.role = role;
            s.why = Some(why);
        });
    }

    fn stopped(&self) -> bool {
        self.status().role == Role::Stopped
    }
}

async fn follow(inner: Arc<Inner>, mut stopping: watch::Receiver<bool>) {
    loop {
        if *stopping.borrow() || inner.stopped() {
            return;
        }
        let from = inner.log.stream_position() + 1;
        let stream = match inner
            .nats
            .js
            .get_stream_no_info(&inner.nats.stream_name)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                retry_later(&inner, format!("the stream: {e}")).await;
                continue;
            }
        };
        let mut messages =
            match permledger_replica::messages_from(&stream, &inner.nats.client, from).await {
                Ok(m) => m,
                Err(e) => {
                    retry_later(&inner, e).await;
                    continue;
                }
            };
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = stopping.wait_for(|s| *s) => return,
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the stream's consumer failed; following again");
                    break;
                }
                None => break,
            };
            let (at, published) = match message.info() {
                Ok(info) => (info.stream_sequence, info.published),
                Err(e) => {
                    tracing::warn!(error = %e, "a stream message without its position");
                    break;
                }
            };
            let batch = match Batch::decode(&message.payload) {
                Ok(b) => b,
                Err(e) => {
                    stop(&inner, ClusterError::Batch(at, e));
                    return;
                }
            };
            let worker = inner.clone();
            let received =
                tokio::task::spawn_blocking(move || worker.log.receive(&worker.ledger, at, &batch))
                    .await;
            match received {
                Ok(Ok(Received::Folded { .. })) => {
                    let us = (chrono::Utc::now() - published)
                        .num_microseconds()
                        .unwrap_or(i64::MAX)
                        .max(0) as u64;
                    inner.update(|s| s.lag_ms = us / 1000);
                    if let Ok(mut lags) = inner.lags_us.lock() {
                        if lags.len() < LAG_SAMPLES {
                            lags.push(us);
                        }
                    }
                }
                Ok(Ok(Received::Held)) => {}
                Ok(Err(e @ (ClusterError::Broken { .. } | ClusterError::Diverged(_)))) => {
                    stop(&inner, e);
                    return;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, at, "a stream message was not folded; following again");
                    tokio::time::sleep(TICK).await;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the fold of a stream message failed");
                    break;
                }
            }
        }
    }
}

/// A batch that does not extend the chain: the node serves what it had and goes no further.
fn stop(inner: &Inner, e: ClusterError) {
    let why = format!("{e}; this node serves what it held before and follows no further");
    tracing::error!("{why}");
    inner.stand_by(Role::Stopped, why);
}

async fn retry_later(inner: &Inner, why: String) {
    tracing::warn!("{why}; trying again");
    inner.update(|s| s.nats_trouble = Some(why));
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// The lease as the node holds it.
struct Held {
    revision: u64,
    lease: Lease,
    renewed: Instant,
}

async fn lease(inner: Arc<Inner>, mut stopping: watch::Receiver<bool>) {
    let opts = inner.opts.clone();
    let kv = inner.nats.lease.clone();
    let mut held: Option<Held> = None;
    // The lease's revision as last seen by a node that does not hold it, and since when.
    let mut seen: Option<(u64, Instant)> = None;
    let mut answered = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        if inner.stopped() {
            return;
        }
        // The log stops writing by itself when the stream refuses it or no quorum answers.
        if let Some(why) = inner.log.take_stepped_down() {
            tracing::warn!("{why}; this node is a replica now");
            inner.stand_by(Role::Replica, why);
            held = None;
        }
        let entry = match tokio::time::timeout(Duration::from_secs(1), kv.entry(LEASE_KEY)).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                trouble(
                    &inner,
                    &mut held,
                    answered,
                    &opts,
                    format!("the lease: {e}"),
                );
                continue;
            }
            Err(_) => {
                trouble(
                    &inner,
                    &mut held,
                    answered,
                    &opts,
                    "the lease: no answer within 1 s".into(),
                );
                continue;
            }
        };
        answered = Instant::now();
        let current = entry.and_then(|e| {
            serde_json::from_slice::<Lease>(&e.value)
                .ok()
                .map(|l| (e.revision, l))
        });
        let lag = lag_events(&inner).await;
        inner.update(|s| {
            s.nats_trouble = None;
            s.writer = current.as_ref().map(|(_, l)| l.clone());
            if let Some(lag) = lag {
                s.lag_events = lag;
            }
        });
        if let Some(h) = &mut held {
            if current.as_ref().map(|(r, _)| *r) != Some(h.revision) {
                let who = current.map_or("no node".to_string(), |(_, l)| l.node);
                inner.stand_by(Role::Replica, format!("{who} took the writer's lease"));
                held = None;
                continue;
            }
            if h.renewed.elapsed() >= opts.renew_every {
                let mut next = h.lease.clone();
                next.beat += 1;
                match kv.update(LEASE_KEY, json(&next), h.revision).await {
                    Ok(revision) => {
                        *h = Held {
                            revision,
                            lease: next,
                            renewed: Instant::now(),
                        }
                    }
                    Err(e) => {
                        if h.renewed.elapsed() > opts.lease_expiry {
                            inner.stand_by(
                                Role::Replica,
                                format!("the writer's lease could not be renewed: {e}"),
                            );
                            held = None;
                        }
                    }
                }
            }
            continue;
        }
        // Not the writer: may it take the lease?
        let revision = current.as_ref().map(|(r, _)| *r);
        match seen {
            Some((r, _)) if Some(r) == revision => {}
            _ => seen = revision.map(|r| (r, Instant::now())),
        }
        let lapsed = match seen {
            None => true,
            Some((_, since)) => since.elapsed() >= opts.lease_expiry,
        };
        if !lapsed {
            if inner.status().role == Role::Joining && caught_up(&inner).await {
                let who = current.map_or("none".into(), |(_, l)| l.node);
                inner.stand_by(Role::Replica, format!("{who} is the cluster's writer"));
            }
            continue;
        }
        if !caught_up(&inner).await {
            continue;
        }
        let mine = Lease {
            node: opts.node.clone(),
            address: opts.advertise.clone(),
            term: current.as_ref().map_or(1, |(_, l)| l.term + 1),
            beat: 0,
        };
        let won = match revision {
            Some(r) => kv.update(LEASE_KEY, json(&mine), r).await.ok(),
            None => kv.create(LEASE_KEY, json(&mine)).await.ok(),
        };
        let Some(won) = won else {
            continue;
        };
        // Whatever the former writer stored before the lease changed hands is folded first.
        let last = match inner.nats.last().await {
            Ok(l) => l,
            Err(_) => continue,
        };
        if !inner.log.take_writing(last) {
            tracing::info!("won the lease behind the stream's end; letting it lapse");
            continue;
        }
        inner.ledger.stand_by(None);
        tracing::info!(node = %mine.node, term = mine.term, "this node is the cluster's writer");
        inner.update(|s| {
            s.role = Role::Writer;
            s.why = None;
            s.writer = Some(mine.clone());
            s.lag_events = 0;
            s.lag_ms = 0;
        });
        held = Some(Held {
            revision: won,
            lease: mine,
            renewed: Instant::now(),
        });
        seen = None;
    }
}

/// NATS did not answer: a writer that has not renewed for `lease_expiry` stands by (another
/// node may hold the lease by now).
fn trouble(inner: &Inner, held: &mut Option<Held>, answered: Instant, opts: &Options, why: String) {
    tracing::warn!("{why}");
    inner.update(|s| s.nats_trouble = Some(why.clone()));
    if held.is_some() && answered.elapsed() > opts.lease_expiry {
        inner.stand_by(
            Role::Replica,
            format!(
                "NATS has not answered for {} ms: {why}",
                answered.elapsed().as_millis()
            ),
        );
        *held = None;
    }
}

/// Whether the local log holds the stream to its last position.
async fn caught_up(inner: &Inner) -> bool {
    match inner.nats.last().await {
        Ok(last) => inner.log.stream_position() == last,
        Err(_) => false,
    }
}

/// Events the stream holds past this node's views (None when NATS did not say).
async fn lag_events(inner: &Inner) -> Option<u64> {
    let last = inner.nats.last().await.ok()?;
    if last <= inner.log.stream_position() {
        return Some(0);
    }
    let batch = inner.nats.batch(last).await.ok()?;
    Some(batch.last().seq.saturating_sub(inner.ledger.seq()))
}

fn json(lease: &Lease) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(lease).unwrap_or_default())
}
