//! The engine. One writer thread takes commands in arrival order, decides each against the state
//! that includes every command before it, positions the events, and commits a whole group of
//! commands in one durable append (group commit). Only then is the group published to readers,
//! one whole command at a time, each answered as soon as its events are in: a reader never sees
//! an event that is not durable, nor a position before everything below it, nor part of a
//! command, and a caller's next read holds its write. Idempotency keys are checked against the
//! log itself, so they survive restarts.
//!
//! # The commit protocol
//!
//! Two threads and two channels (`writer.rs`, `committer.rs`; `Shared` is what they and the
//! readers share):
//!
//! 1. Callers send `Msg::Command` into the writer's queue (`Ledger::submit`).
//! 2. The writer decides each command into the group it is gathering (`Writer::add`), against
//!    its private state, which runs ahead of the published views by at most the two groups in
//!    flight. It drains what is waiting, up to `MAX_GROUP` commands.
//! 3. The committer is free when `Shared::finished` equals the number of groups the writer has
//!    handed over. Only then does the writer hand its group over (`Writer::hand_over`, a channel
//!    of one): at most one group is being committed while the next is gathered.
//! 4. The committer appends the group's commits in one durable write (`EventLog::append`), then
//!    publishes them one command at a time under the views' write lock, answering each caller as
//!    its events are in, then announces the last position (`Shared::published`, for `wait_for`),
//!    answers refusals and idempotent replays, counts the group in `Shared::finished`, and wakes
//!    the writer with `Msg::Free` (a weak sender, so the queue still closes with the last handle).
//! 5. If an append fails, nothing of the group is recorded: the committer counts the failure in
//!    `Shared::failures` and answers every caller with the error; a group decided after it (its
//!    `failures` differs) is void and answered so; the writer, seeing the count change, waits for
//!    the committer and restarts its private state from the published one.
//! 6. When every handle is gone the queue closes; the writer hands over what it has decided,
//!    waits for the committer, and both threads end (`Ledger::shutdown` joins them).

pub mod checkpoint;
mod committer;
mod replay;
mod stats;
mod writer;

pub mod clock;
mod selfcheck;

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use permledger_domain::{
    decide, Command, CommandMeta, Context, Event, OrgId, Rejection, Seq, State, Timestamp,
};
use permledger_log::{
    envelope, Commit, Digest, EventLog, Hash, IdempotencyEntry, LogError, PendingEvent,
};
use permledger_views::Views;
use tokio::sync::{mpsc, oneshot, watch};

pub use checkpoint::{Checkpoints, Restored, Written};
pub use clock::{Clock, ManualClock, SystemClock};
pub use replay::{
    compare_checkpoints, fold_from, replay, replay_checked, replay_unchecked, replay_until,
    Compared,
};
pub use selfcheck::Mismatch;
pub use stats::GroupStats;
pub use writer::fingerprint;

use committer::Committer;
use replay::fold_log;
use stats::*;
use writer::Writer;

/// How many waiting commands the writer drains at once. A group gathered while the committer is
/// busy can grow past it by what arrives, one command at a time, during that one sync.
pub const MAX_GROUP: usize = 512;

/// What a committed (or idempotently replayed) command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Event>,
    /// The position of the command's last event: ask for reads at least this fresh.
    pub seq: Seq,
    /// True when an idempotency key matched an earlier identical command and nothing was appended.
    pub replayed: bool,
    /// The secret token of a newly created invite link, shown once and never stored.
    pub link_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the log failed: {0}")]
    Log(#[from] LogError),
    #[error("the ledger is shut down")]
    Closed,
    /// Opened for reading only (an inspection): no command is taken.
    #[error("the ledger is open for reading only: {0}")]
    ReadOnly(String),
}

/// When an open from a checkpoint proves the events below it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Below {
    /// Before the open answers (a writer on the command line: it appends to that chain).
    Now,
    /// On a thread of its own while the ledger serves (a server, which opens as fast as the
    /// tail allows); damage found then stops every command.
    InBackground,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the log failed: {0}")]
    Log(#[from] LogError),
    /// The chain does not hold: nothing may be served from this log as it is.
    #[error("the log is damaged: {0}")]
    Tampered(permledger_log::Tamper),
    #[error("cannot start the writer thread: {0}")]
    Thread(String),
}

struct Request {
    command: Command,
    meta: CommandMeta,
    reply: oneshot::Sender<Result<Outcome, SubmitError>>,
}

/// What the writer's queue carries: commands, and the committer's word that it is free. Nearly
/// every message is a command, so boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Command(Request),
    Free,
}

struct Shared {
    log: Arc<dyn EventLog>,
    views: RwLock<Views>,
    published: watch::Sender<Seq>,
    /// Groups the writer has taken, the commands in them, and the time spent in each phase.
    stats: [std::sync::atomic::AtomicU64; 6],
    /// Appends that have failed: a group decided before the latest failure is void.
    failures: std::sync::atomic::AtomicU64,
    /// Why the latest append failed: what the groups voided by it are answered (a cluster's
    /// `NotWriter` or `NoQuorum` says the command may be sent again).
    last_failure: std::sync::Mutex<Option<LogError>>,
    /// Groups the committer has finished (committed, failed or void).
    finished: std::sync::atomic::AtomicU64,
    /// Why commands are refused, when the ledger was opened for reading only, or its log was
    /// found damaged below the checkpoint it was opened from (`check_below_in_background`).
    read_only: std::sync::OnceLock<String>,
    /// Why commands are refused for now: a cluster node that is not the writer, whose views are
    /// fed from the cluster's stream (`Ledger::stand_by`, `Ledger::fold_replicated`).
    standby: RwLock<Option<String>>,
    /// Threads an open started that run on after it (`check_below_in_background`,
    /// `warm_in_background`), for `settle`.
    background: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a background thread for as long as it lives (without holding the ledger up).
struct Running(Arc<std::sync::atomic::AtomicUsize>);

impl Running {
    fn new(shared: &Shared) -> Running {
        use std::sync::atomic::Ordering::SeqCst;
        shared.background.fetch_add(1, SeqCst);
        Running(shared.background.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A handle on the running ledger; clone it freely.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
    writer: Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
}

impl Ledger {
    /// Rebuilds the state from the log and starts the writer.
    pub fn open(log: Arc<dyn EventLog>, clock: Arc<dyn Clock>) -> Result<Ledger, OpenError> {
        Self::open_with_progress(log, clock, |_, _| {})
    }

    pub fn open_with_progress(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        progress: impl FnMut(Seq, Seq),
    ) -> Result<Ledger, OpenError> {
        let views = replay(&*log, progress)?;
        Self::start(log, clock, views)
    }

    /// Opens from the newest checkpoint the log agrees with (`Checkpoints::restore`; each one
    /// passed over is `warn`ed), folding only the tail after it, with its chain checked as every
    /// open checks it; with none, the whole log. `below` says when the events the checkpoint
    /// covers are proven unchanged (their links recomputed, `links_hold`). Answers the ledger
    /// and the checkpoint's position, if one was used.
    pub fn open_from(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        checkpoints: &Checkpoints,
        below: Below,
        warn: &mut dyn FnMut(String),
        progress: impl FnMut(Seq, Seq),
    ) -> Result<(Ledger, Option<Digest>), OpenError> {
        let restored = checkpoints.restore(&*log, &|_| true, warn)?;
        let at = restored.as_ref().map(|r| r.at);
        if let (Some(at), Below::Now) = (at, below) {
            permledger_log::verify::links_hold(&*log, at, |_| {})?.map_err(OpenError::Tampered)?;
        }
        let views = match fold_from(&*log, restored, &|_| true, progress)? {
            (views, None) => views,
            (_, Some(t)) => return Err(OpenError::Tampered(t)),
        };
        let ledger = Self::start(log, clock, views)?;
        if let (Some(at), Below::InBackground) = (at, below) {
            ledger.check_below_in_background(at)?;
        }
        if at.is_some() {
            ledger.warm_in_background()?;
        }
        Ok((ledger, at))
    }

    /// Waits for the work an open left running in the background (the links below its
    /// checkpoint rechecked, the checkpoint's orgs decoded) to end: for a measurement or a test
    /// that wants the ledger as it is once settled.
    pub fn settle(&self) {
        while self
            .shared
            .background
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Decodes, on a thread that yields the cores to every other, the orgs a checkpoint left to
    /// be decoded when first used, each apart from the views and handed to them under a shared
    /// lock (`Views::offer`), so that neither the writer nor a reader waits for one it did not
    /// ask about. The writer's own copy decodes each org at its first command. Ends with the
    /// ledger.
    fn warm_in_background(&self) -> Result<(), OpenError> {
        let shared = Arc::downgrade(&self.shared);
        let running = Running::new(&self.shared);
        checkpoint::spawn_background("permledger-warm", move || {
            let _running = running;
            let started = std::time::Instant::now();
            let cold = match shared.upgrade() {
                Some(s) => s.views.read().map(|v| v.cold()).unwrap_or_default(),
                None => return,
            };
            let orgs = cold.len();
            for c in cold {
                let warm = c.make();
                let Some(s) = shared.upgrade() else {
                    return;
                };
                if let Ok(views) = s.views.read() {
                    views.offer(warm);
                };
            }
            tracing::info!(
                orgs,
                ms = started.elapsed().as_millis() as u64,
                "every org of the checkpoint decoded"
            );
        })
        .map(|_| ())
        .map_err(|e| OpenError::Thread(e.to_string()))
    }

    /// Recomputes the links below a checkpoint on a thread of its own while the ledger serves;
    /// if they do not hold, the ledger refuses every command from then on, saying why
    /// (`read_only`), and the error is logged.
    fn check_below_in_background(&self, at: Digest) -> Result<(), OpenError> {
        let shared = self.shared.clone();
        let running = Running::new(&shared);
        std::thread::Builder::new()
            .name("permledger-below".into())
            .spawn(move || {
                let _running = running;
                let why = match permledger_log::verify::links_hold(&*shared.log, at, |_| {}) {
                    Ok(Ok(())) => {
                        tracing::info!(seq = at.seq, "the log below the checkpoint holds");
                        return;
                    }
                    Ok(Err(t)) => format!(
                        "the log is damaged below the checkpoint it was opened from ({t}); \
                         `permledger verify` checks the whole chain"
                    ),
                    Err(e) => format!("the log below the checkpoint cannot be read ({e})"),
                };
                tracing::error!("{why}; every command is refused from now on");
                let _ = shared.read_only.set(why);
            })
            .map(|_| ())
            .map_err(|e| OpenError::Thread(e.to_string()))
    }

    /// Starts the writer over views folded to the log's head.
    fn start(
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        views: Views,
    ) -> Result<Ledger, OpenError> {
        let seq = views.seq();
        // The writer's own copy, made on every core: at ten million events a plain clone took
        // 3.2 to 7.3 s (into reused or fresh memory), this copy 2.0 to 4.4 s.
        let working = views.copy_live();
        let shared = Arc::new(Shared {
            log,
            views: RwLock::new(views),
            published: watch::Sender::new(seq),
            stats: Default::default(),
            failures: Default::default(),
            last_failure: Default::default(),
            finished: Default::default(),
            read_only: Default::default(),
            standby: Default::default(),
            background: Default::default(),
        });
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let (handoff, groups) = std::sync::mpsc::sync_channel::<Group>(1);
        let committer = Committer {
            shared: shared.clone(),
            wake: tx.downgrade(),
        };
        let committer = std::thread::Builder::new()
            .name("permledger-commit".into())
            .spawn(move || committer.run(groups))
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        let writer = Writer {
            shared: shared.clone(),
            clock,
            state: working,
            failures_seen: 0,
            handed: 0,
            previous_keys: Vec::new(),
            handoff,
            committer: Some(committer),
        };
        let handle = std::thread::Builder::new()
            .name("permledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| OpenError::Thread(e.to_string()))?;
        Ok(Ledger {
            shared,
            tx,
            writer: Arc::new(std::sync::Mutex::new(Some(handle))),
        })
    }

    /// Opens the ledger for reading only, for an operator inspecting a folder: the views hold
    /// every event up to the last one whose chain holds, and what is wrong after it is answered
    /// beside them (`None` when nothing is). No writer runs; every command is refused with
    /// `SubmitError::ReadOnly`.
    pub fn open_read_only(
        log: Arc<dyn EventLog>,
        progress: impl FnMut(Seq, Seq),
    ) -> Result<(Ledger, Option<permledger_log::Tamper>), OpenError> {
        let (views, damage) = replay_checked(&*log, progress)?;
        Ok(Self::reading(log, views, damage))
    }

    /// The same from the newest checkpoint the log agrees with, holding only the orgs `wanted`
    /// keeps (a question about one org reads that org's part of the checkpoint and the tail):
    /// the answers about those orgs are those of a whole fold. The events below the checkpoint
    /// are trusted as they were when it was written (`permledger verify` rereads them).
    pub fn open_read_only_from(
        log: Arc<dyn EventLog>,
        checkpoints: &Checkpoints,
        wanted: &(dyn Fn(&OrgId) -> bool + Sync),
        warn: &mut dyn FnMut(String),
        progress: impl FnMut(Seq, Seq),
    ) -> Result<(Ledger, Option<permledger_log::Tamper>), OpenError> {
        let restored = checkpoints.restore(&*log, wanted, warn)?;
        let (views, damage) = fold_from(&*log, restored, wanted, progress)?;
        Ok(Self::reading(log, views, damage))
    }

    fn reading(
        log: Arc<dyn EventLog>,
        views: Views,
        damage: Option<permledger_log::Tamper>,
    ) -> (Ledger, Option<permledger_log::Tamper>) {
        let seq = views.seq();
        let reason = match &damage {
            Some(t) => format!("the log is damaged ({t}); reads are served up to event {seq}"),
            None => "it was opened with --read-only".to_string(),
        };
        let shared = Arc::new(Shared {
            log,
            views: RwLock::new(views),
            published: watch::Sender::new(seq),
            stats: Default::default(),
            failures: Default::default(),
            last_failure: Default::default(),
            finished: Default::default(),
            read_only: std::sync::OnceLock::from(reason),
            standby: Default::default(),
            background: Default::default(),
        });
        // No writer: the queue's receiving end is dropped at once.
        let (tx, _) = mpsc::channel(1);
        (
            Ledger {
                shared,
                tx,
                writer: Arc::new(std::sync::Mutex::new(None)),
            },
            damage,
        )
    }

    /// Writes a checkpoint of the published views. The writer waits for the views meanwhile:
    /// for a ledger nothing is written to (one opened for reading, or stopping); a running
    /// server writes them behind itself (`checkpoint::behind`).
    pub fn write_checkpoint(
        &self,
        checkpoints: &Checkpoints,
        now: Timestamp,
    ) -> Result<Written, checkpoint::Failed> {
        let views = self.views();
        checkpoints.write(&*self.shared.log, &views, now)
    }

    /// Why commands are refused, when the ledger was opened for reading only.
    pub fn read_only(&self) -> Option<&str> {
        self.shared.read_only.get().map(String::as_str)
    }

    fn refusal(&self) -> Result<(), SubmitError> {
        if let Some(why) = self.shared.read_only.get() {
            return Err(SubmitError::ReadOnly(why.clone()));
        }
        if let Some(why) = self.standing_by() {
            return Err(SubmitError::Log(LogError::NotWriter(why)));
        }
        Ok(())
    }

    /// Makes a cluster node's ledger stand by (`Some(why)`): commands are refused with
    /// `LogError::NotWriter(why)`, and its views are fed from the cluster's stream
    /// (`fold_replicated`). `None` makes it take commands again, once the node holds the
    /// writer's role and has folded the whole stream: the writer's private state then restarts
    /// from the published views (as after a failed append), so that nothing it decides rests on
    /// a state older than what was folded meanwhile.
    pub fn stand_by(&self, why: Option<String>) {
        let mut standby = match self.shared.standby.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if why.is_none() && standby.is_some() {
            self.shared
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        *standby = why;
    }

    /// Why the ledger stands by, if it does (`stand_by`).
    pub fn standing_by(&self) -> Option<String> {
        match self.shared.standby.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Folds events another node wrote, already checked against this node's chain and stored
    /// in its log, into the published views, and announces their last position. Only while
    /// standing by (the writer publishes its own events), and only the events right after the
    /// views' position.
    pub fn fold_replicated(&self, events: &[Event]) -> Result<Seq, LogError> {
        if self.standing_by().is_none() {
            return Err(LogError::Stopped(
                "a ledger that takes commands folds only its own events".into(),
            ));
        }
        let mut views = match self.shared.views.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let from = views.seq();
        if let Some((i, e)) = (1..).zip(events).find(|(i, e)| e.meta.seq != from + i) {
            return Err(LogError::OutOfOrder {
                expected_prev: from + i - 1,
                got: e.meta.seq,
            });
        }
        for event in events {
            views.apply(event);
        }
        let at = views.seq();
        drop(views);
        self.shared.published.send_replace(at);
        Ok(at)
    }

    /// Submits a command and waits until it is durable (or refused).
    pub async fn submit(
        &self,
        command: Command,
        meta: CommandMeta,
    ) -> Result<Outcome, SubmitError> {
        self.refusal()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Command(Request {
                command,
                meta,
                reply,
            }))
            .await
            .map_err(|_| SubmitError::Closed)?;
        rx.await.map_err(|_| SubmitError::Closed)?
    }

    /// The same from synchronous code (never from inside an async runtime's worker).
    pub fn submit_blocking(
        &self,
        command: Command,
        meta: CommandMeta,
    ) -> Result<Outcome, SubmitError> {
        self.refusal()?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Msg::Command(Request {
                command,
                meta,
                reply,
            }))
            .map_err(|_| SubmitError::Closed)?;
        rx.blocking_recv().map_err(|_| SubmitError::Closed)?
    }

    /// The published views: every durable event, and nothing more. Hold the guard briefly: the
    /// writer waits for it to publish.
    pub fn views(&self) -> RwLockReadGuard<'_, Views> {
        match self.shared.views.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The last published position. Read under the views' lock, as a read is: a caller whose
    /// command was answered sees its position here at once.
    pub fn seq(&self) -> Seq {
        self.views().seq()
    }

    /// Waits until every event up to `seq` is published (read-your-writes).
    pub async fn wait_for(&self, seq: Seq) {
        let mut rx = self.shared.published.subscribe();
        let _ = rx.wait_for(|s| *s >= seq).await;
    }

    /// One page of an org's audit log, read by `reader` (who needs `org.audit.view`, or
    /// `team.audit.view` for a team's subtree). Event details come from the log.
    pub fn audit(
        &self,
        org: &permledger_domain::OrgId,
        reader: &permledger_domain::UserId,
        query: &permledger_views::audit::AuditQuery,
        now: Timestamp,
    ) -> Result<permledger_views::audit::AuditPage, permledger_views::audit::AuditError> {
        let views = self.views();
        let log = &self.shared.log;
        permledger_views::audit::audit(&views, org, reader, query, now, |from, limit| {
            log.read_org(org, from, limit)?
                .iter()
                .map(permledger_log::Record::decode_stored)
                .collect::<Result<Vec<_>, LogError>>()
        })
    }

    /// The events at these positions, described as the source of a fact (`Source`), in the
    /// order asked; a position not in the log is left out.
    pub fn sources(
        &self,
        seqs: &[Seq],
    ) -> Result<Vec<permledger_views::provenance::Source>, LogError> {
        use permledger_views::provenance::{origin, Source};
        let get = |seq: Seq| -> Result<Option<Event>, LogError> {
            match self
                .shared
                .log
                .read(seq, 1)?
                .into_iter()
                .find(|r| r.seq == seq)
            {
                Some(r) => r.decode_stored().map(Some),
                None => Ok(None),
            }
        };
        let mut found = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let Some(event) = get(seq)? else { continue };
            // The event whose authority stands behind it; the views are let go before it is read.
            let from = {
                let views = self.views();
                match views.histories.get(&event.meta.org) {
                    Some(h) => origin(h, &event, &mut |s| get(s))?,
                    None => None,
                }
            };
            let from = match from {
                Some(s) => get(s)?,
                None => None,
            };
            found.push((event, from));
        }
        let views = self.views();
        Ok(found
            .iter()
            .map(|(e, from)| Source {
                origin: from.as_ref().map(|o| Box::new(Source::of(&views, o))),
                ..Source::of(&views, e)
            })
            .collect())
    }

    /// The events at these positions (ascending), read a run of consecutive positions at a time.
    pub fn events_at(&self, seqs: &[Seq]) -> Result<Vec<Event>, LogError> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut rest = seqs;
        while let Some(&first) = rest.first() {
            let run = rest
                .iter()
                .enumerate()
                .take_while(|(i, s)| **s == first + *i as u64 && *i < 4096)
                .count();
            for r in self.shared.log.read(first, run)? {
                out.push(r.decode_stored()?);
            }
            rest = &rest[run..];
        }
        Ok(out)
    }

    /// The org's events after position `after` and up to `until`, in order (from the log).
    pub fn org_events(
        &self,
        org: &permledger_domain::OrgId,
        after: Seq,
        until: Seq,
    ) -> Result<Vec<Event>, LogError> {
        let (first, count) = {
            let views = self.views();
            let Some(h) = views.histories.get(org) else {
                return Ok(Vec::new());
            };
            let skip = h.events.partition_point(|s| *s <= after);
            let end = h.events.partition_point(|s| *s <= until);
            (skip as u64 + 1, end.saturating_sub(skip))
        };
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let page = self.shared.log.read_org(
                org,
                first + out.len() as u64,
                (count - out.len()).min(4096),
            )?;
            if page.is_empty() {
                break;
            }
            for r in &page {
                out.push(r.decode_stored()?);
            }
        }
        Ok(out)
    }

    /// Every interval of access from `a` to `b` (`a` the earlier), for a user or within a
    /// scope, each start and end with its cause (`permledger_views::timeline`).
    pub fn timeline(
        &self,
        org: &permledger_domain::OrgId,
        a: permledger_views::Moment,
        b: permledger_views::Moment,
        user: Option<&permledger_domain::UserId>,
        scope: Option<&permledger_domain::Scope>,
    ) -> Result<Vec<permledger_views::timeline::Interval>, LogError> {
        use permledger_views::timeline::{positions, timeline_in, Focus};
        // Only the events that can change access there, when the history can tell which.
        let (focus, wanted) = {
            let views = self.views();
            let focus = Focus::new(&views, org, user, scope);
            let wanted = positions(&views, org, a.seq, b.seq, &focus);
            (focus, wanted)
        };
        let events = match wanted {
            Some(seqs) => self.events_at(&seqs)?,
            None => self.org_events(org, a.seq, b.seq)?,
        };
        let views = self.views();
        Ok(timeline_in(&views, org, a, b, focus, &events))
    }

    /// Every gain and loss from `from` to `to`, each with its cause. A window given backwards
    /// is the forward one with gains and losses swapped.
    pub fn caused_diff(
        &self,
        org: &permledger_domain::OrgId,
        from: permledger_views::Moment,
        to: permledger_views::Moment,
        user: Option<&permledger_domain::UserId>,
        scope: Option<&permledger_domain::Scope>,
    ) -> Result<Vec<permledger_views::timeline::DiffRow>, LogError> {
        use permledger_views::timeline::caused_diff;
        if (from.seq, from.time) <= (to.seq, to.time) {
            return Ok(caused_diff(&self.timeline(org, from, to, user, scope)?));
        }
        let rows = caused_diff(&self.timeline(org, to, from, user, scope)?);
        Ok(rows
            .into_iter()
            .map(|mut r| {
                r.change = if r.change == "gained" {
                    "lost"
                } else {
                    "gained"
                }
                .into();
                r
            })
            .collect())
    }

    /// What an export up to `seq` covers: the position and its chain link, for `verify --digest`
    /// (the genesis link at 0).
    pub fn covers(&self, seq: Seq) -> Result<permledger_views::export::Covers, LogError> {
        let hash = match seq {
            0 => permledger_log::Hash::GENESIS,
            _ => self
                .shared
                .log
                .read(seq, 1)?
                .into_iter()
                .find(|r| r.seq == seq)
                .map(|r| r.hash)
                .ok_or_else(|| LogError::Io(format!("position {seq} is not in the log")))?,
        };
        Ok(permledger_views::export::Covers {
            seq,
            hash: hash.to_hex(),
        })
    }

    /// What the writer has done since the ledger opened.
    pub fn group_stats(&self) -> GroupStats {
        use std::sync::atomic::Ordering::Relaxed;
        let get = |i: usize| self.shared.stats[i].load(Relaxed);
        let nanos = |i: usize| std::time::Duration::from_nanos(get(i));
        GroupStats {
            groups: get(GROUPS),
            commands: get(COMMANDS),
            decide: nanos(DECIDE_NS),
            append: nanos(APPEND_NS),
            publish: nanos(PUBLISH_NS),
            idle: nanos(IDLE_NS),
        }
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.shared.log
    }

    /// Stops taking commands, lets the writer finish every command already submitted, and waits
    /// for it when this is the last handle (the writer ends once every handle is gone).
    pub fn shutdown(self) {
        self.stop();
    }

    /// Stops as `shutdown` does and then, when this was the last handle (every command is in),
    /// writes a checkpoint of the final views: the next open folds nothing.
    pub fn shutdown_with_checkpoint(
        self,
        checkpoints: &Checkpoints,
        now: Timestamp,
    ) -> Option<Result<Written, checkpoint::Failed>> {
        let shared = self.stop()?;
        let views = match shared.views.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if shared.read_only.get().is_some() {
            return None;
        }
        Some(checkpoints.write(&*shared.log, &views, now))
    }

    /// Closes the queue and joins the writer when this is the last handle: then the views are
    /// final, and answered.
    fn stop(self) -> Option<Arc<Shared>> {
        let Ledger { writer, tx, shared } = self;
        drop(tx);
        let handle = match Arc::try_unwrap(writer) {
            Ok(m) => m.into_inner().ok().flatten(),
            Err(_) => None,
        }?;
        let _ = handle.join();
        Some(shared)
    }
}

/// A decided group on its way to the log.
struct Group {
    requests: Vec<Request>,
    pending: Vec<Pending>,
    commits: Vec<Commit>,
    keys: Vec<(OrgId, String, IdempotencyEntry)>,
    now: Timestamp,
    /// `Shared::failures` when its first command was decided.
    failures: u64,
}

enum Pending {
    Done(Result<Outcome, SubmitError>),
    /// Committed in this group: events and token are known.
    Written(Outcome),
    /// Same key, same command as one already committed: answer its events once durable.
    Replay(IdempotencyEntry),
}
