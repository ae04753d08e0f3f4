//! Folding the log into the views: at open, and for a verification of the past. Every fold
//! checks the chain as it reads (`ChainCheck`: each link, position and org version, and at the
//! end the stored head), so nothing is ever folded from a history that does not hold.

use permledger_domain::OrgId;
use permledger_log::{ChainCheck, Digest, Tamper};

use super::*;

/// Folds the whole log into the views (the live state and every org's history), reporting
/// progress as (events so far, total). A chain that does not hold, from its first event to the
/// stored head, is `OpenError::Tampered`, naming the first bad event.
pub fn replay(log: &dyn EventLog, progress: impl FnMut(Seq, Seq)) -> Result<Views, OpenError> {
    match replay_checked(log, progress)? {
        (views, None) => Ok(views),
        (_, Some(t)) => Err(OpenError::Tampered(t)),
    }
}

/// The same, stopping after the event at position `until` (the stored head is checked only when
/// the fold reaches it).
pub fn replay_until(
    log: &dyn EventLog,
    until: Seq,
    mut progress: impl FnMut(Seq, Seq),
) -> Result<Views, OpenError> {
    let total = log.head()?.seq.min(until);
    let mut state = Views::for_rebuild(usize::try_from(total).unwrap_or(0));
    fold_exactly(log, &mut state, ChainCheck::new(), total, |seq| {
        progress(seq, total)
    })?;
    state.index_checks();
    Ok(state)
}

/// Folds every event of the log whose chain holds, and stops before the first that does not:
/// the views up to the last good event, and what is wrong after it (`None` when nothing is).
/// For an operator's inspection of a damaged folder (`--read-only`); every other open refuses.
pub fn replay_checked(
    log: &dyn EventLog,
    progress: impl FnMut(Seq, Seq),
) -> Result<(Views, Option<Tamper>), OpenError> {
    fold_from(log, None, &|_| true, progress)
}

/// The same from a checkpoint's views (`None`: from the first event), folding the tail after
/// it with the chain checked from the checkpoint's link on. Only the orgs `wanted` keeps are
/// folded (a checkpoint restored for a few orgs holds no others); the others' events only move
/// the position on.
pub fn fold_from(
    log: &dyn EventLog,
    start: Option<crate::checkpoint::Restored>,
    wanted: &(dyn Fn(&OrgId) -> bool + Sync),
    mut progress: impl FnMut(Seq, Seq),
) -> Result<(Views, Option<Tamper>), OpenError> {
    let head = log.head()?;
    let (mut state, chain) = match start {
        Some(r) => {
            let (opened, chain) = r.resume();
            let tail = head.seq.saturating_sub(chain.last().seq);
            if tail <= DEFERRED_TAIL {
                return fold_tail_deferred(log, opened, chain, head, wanted, progress);
            }
            let mut views = opened.views(&[], wanted);
            views.reserve(usize::try_from(tail).unwrap_or(0));
            (views, chain)
        }
        None => (
            Views::for_rebuild(usize::try_from(head.seq).unwrap_or(0)),
            ChainCheck::new(),
        ),
    };
    let folded = fold_log(
        log,
        chain,
        Seq::MAX,
        Check::Chain,
        |event| {
            if wanted(&event.meta.org) {
                state.apply(event)
            } else {
                state.pass(event)
            }
        },
        |seq| progress(seq, head.seq),
    )?;
    let tamper = match folded.tamper {
        Some(t) => Some(t),
        None => folded.chain_end(head).err(),
    };
    let indexing = std::time::Instant::now();
    state.finish_rebuild();
    tracing::info!(
        seq = state.seq(),
        index_ms = indexing.elapsed().as_millis() as u64,
        "folded to the head"
    );
    Ok((state, tamper))
}

/// A checkpoint's tail up to this long is read, checked, and handed to the views whole
/// (`Opened::views`), each org's events folded when the org is first used; a longer one is
/// folded as it is read, decoding every org it touches.
const DEFERRED_TAIL: Seq = 100_000;

/// `fold_from` for a short tail: the tail's chain is checked as it is read, and no org is
/// decoded for it.
fn fold_tail_deferred(
    log: &dyn EventLog,
    opened: permledger_views::checkpoint::Opened,
    chain: ChainCheck,
    head: Digest,
    wanted: &(dyn Fn(&OrgId) -> bool + Sync),
    mut progress: impl FnMut(Seq, Seq),
) -> Result<(Views, Option<Tamper>), OpenError> {
    let mut tail = Vec::new();
    let folded = fold_log(
        log,
        chain,
        Seq::MAX,
        Check::Chain,
        |event| tail.push(event.clone()),
        |seq| progress(seq, head.seq),
    )?;
    let tamper = match folded.tamper {
        Some(t) => Some(t),
        None => folded.chain_end(head).err(),
    };
    let views = opened.views(&tail, wanted);
    tracing::info!(
        seq = views.seq(),
        tail = tail.len(),
        "opened from a checkpoint; its orgs are decoded when first used"
    );
    Ok((views, tamper))
}

/// Folds from a checkpoint's views (or the first event) up to the event at `upto`, and no
/// further, whatever is appended meanwhile: the views a background checkpoint is written from.
pub(crate) fn fold_until(
    log: &dyn EventLog,
    start: Option<crate::checkpoint::Restored>,
    upto: Seq,
) -> Result<Views, OpenError> {
    let (mut state, chain) = match start {
        Some(r) if r.at.seq <= upto => {
            let (opened, chain) = r.resume();
            (opened.views(&[], |_: &OrgId| true), chain)
        }
        _ => (
            Views::for_rebuild(usize::try_from(upto).unwrap_or(0)),
            ChainCheck::new(),
        ),
    };
    fold_exactly(log, &mut state, chain, upto, |_| {})?;
    // Written out, never asked: the check indexes are left unbuilt.
    Ok(state)
}

/// Folds the events after the chain's last one up to `until` into `views`, and no further,
/// whatever is appended meanwhile: the chain must hold and reach `until`. Answers the chain at
/// `until`, to go on from.
fn fold_exactly(
    log: &dyn EventLog,
    views: &mut Views,
    chain: ChainCheck,
    until: Seq,
    progress: impl FnMut(Seq),
) -> Result<ChainCheck, OpenError> {
    read_exactly(log, chain, until, |e| views.apply(e), progress)
}

/// The orgs with an event after the chain's last one up to `until`, the chain checked as an
/// open checks it (what a delta checkpoint encodes anew).
pub(crate) fn orgs_touched(
    log: &dyn EventLog,
    chain: ChainCheck,
    until: Seq,
) -> Result<std::collections::HashSet<OrgId>, OpenError> {
    let mut orgs = std::collections::HashSet::new();
    read_exactly(
        log,
        chain,
        until,
        |e| {
            if !orgs.contains(&e.meta.org) {
                orgs.insert(e.meta.org.clone());
            }
        },
        |_| {},
    )?;
    Ok(orgs)
}

/// Each event after the chain's last one up to `until` given to `apply`, and no further: the
/// chain must hold and reach `until`. Answers the chain at `until`.
fn read_exactly(
    log: &dyn EventLog,
    chain: ChainCheck,
    until: Seq,
    apply: impl FnMut(&Event),
    progress: impl FnMut(Seq),
) -> Result<ChainCheck, OpenError> {
    let folded = fold_log(log, chain, until, Check::Chain, apply, progress)?;
    if let Some(t) = folded.tamper {
        return Err(OpenError::Tampered(t));
    }
    if folded.last.seq < until {
        return Err(OpenError::Tampered(Tamper::Missing {
            seq: folded.last.seq + 1,
        }));
    }
    Ok(folded.chain.unwrap_or_default())
}

/// The whole log folded without checking a link: only for `permledger bench`, which measures
/// what the checks cost (`rebuild_unchecked_events_per_s` beside `rebuild_events_per_s`).
#[doc(hidden)]
pub fn replay_unchecked(
    log: &dyn EventLog,
    mut progress: impl FnMut(Seq, Seq),
) -> Result<Views, OpenError> {
    let head = log.head()?;
    let mut state = Views::for_rebuild(usize::try_from(head.seq).unwrap_or(0));
    let folded = fold_log(
        log,
        ChainCheck::new(),
        head.seq,
        Check::Nothing,
        |event| state.apply(event),
        |seq| progress(seq, head.seq),
    )?;
    if let Some(t) = folded.tamper {
        return Err(OpenError::Tampered(t));
    }
    state.index_checks();
    Ok(state)
}

/// What a fold checks as it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Every link, position and org version (`ChainCheck`).
    Chain,
    /// Only that the bytes decode (the benchmark's baseline).
    Nothing,
}

/// How a fold ended: the last event folded and, if the chain broke, how.
pub(crate) struct Folded {
    pub last: Digest,
    pub tamper: Option<Tamper>,
    chain: Option<ChainCheck>,
}

impl Folded {
    /// The stored head must name the last event folded, link included.
    fn chain_end(&self, head: Digest) -> Result<(), Tamper> {
        match &self.chain {
            Some(c) => c.end(head),
            None => Ok(()),
        }
    }
}

/// What the reader thread hands the folding one.
enum Item {
    Batch(Vec<Event>),
    /// The chain breaks after the events already sent.
    Tampered(Tamper),
    Failed(OpenError),
}

/// Hands every event after the chain's last one up to `until` to `apply`, in order, and each
/// batch's last position to `progress`, checking the chain as asked (from `chain`, a new one
/// or one resumed at a checkpoint); stops before the first event that breaks it. Two
/// threads: one scans the log, checks and decodes the stored bytes where they lie, the other
/// (the caller's) applies; a bounded channel between them keeps memory flat.
pub(crate) fn fold_log(
    log: &dyn EventLog,
    chain: ChainCheck,
    until: Seq,
    check: Check,
    mut apply: impl FnMut(&Event),
    mut progress: impl FnMut(Seq),
) -> Result<Folded, OpenError> {
    // Decoded events travel in batches small enough to stay in cache. Each batch goes back to
    // the reader once applied: its events are dropped on the thread that made them, and its
    // buffer is used again instead of asking the allocator for a fresh one.
    const BATCH: usize = 256;
    const IN_FLIGHT: usize = 16;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(IN_FLIGHT);
        let (give_back, spent) = std::sync::mpsc::sync_channel::<Vec<Event>>(IN_FLIGHT + 2);
        let from = chain.last();
        let reader = scope.spawn(move || {
            let mut chain = (check == Check::Chain).then_some(chain);
            let mut batch = Vec::with_capacity(BATCH);
            let mut tamper = None;
            let send = |batch: &mut Vec<Event>| {
                let empty = match spent.try_recv() {
                    Ok(mut b) => {
                        b.clear();
                        b
                    }
                    Err(_) => Vec::with_capacity(BATCH),
                };
                tx.send(Item::Batch(std::mem::replace(batch, empty)))
                    .is_ok()
            };
            let scanned = log.scan(from.seq + 1, &mut |seq, stored, bytes| {
                if seq > until {
                    return false;
                }
                let event = match envelope::decode(bytes) {
                    Ok(event) => event,
                    Err(e) => {
                        tamper = Some(Tamper::Undecodable {
                            seq,
                            reason: e.to_string(),
                        });
                        return false;
                    }
                };
                if let Some(chain) = chain.as_mut() {
                    if let Err(t) = chain.check(seq, stored, bytes, &event) {
                        tamper = Some(t);
                        return false;
                    }
                }
                batch.push(event);
                // A closed channel means the folder stopped on an error: stop reading too.
                (batch.len() < BATCH || send(&mut batch)) && seq < until
            });
            if !batch.is_empty() {
                send(&mut batch);
            }
            match (scanned, tamper) {
                (Err(e), _) => {
                    let _ = tx.send(Item::Failed(e.into()));
                }
                (Ok(()), Some(t)) => {
                    let _ = tx.send(Item::Tampered(t));
                }
                (Ok(()), None) => {}
            }
            chain
        });
        let mut last = from;
        let mut tamper = None;
        let mut failed = None;
        for item in rx {
            match item {
                Item::Batch(batch) => {
                    batch.iter().for_each(&mut apply);
                    if let Some(e) = batch.last() {
                        last.seq = e.meta.seq;
                        progress(e.meta.seq);
                    }
                    // The reader may be gone (it ended) or have enough buffers: then drop it here.
                    let _ = give_back.try_send(batch);
                }
                Item::Tampered(t) => tamper = Some(t),
                Item::Failed(e) => failed = Some(e),
            }
        }
        let chain = reader
            .join()
            .map_err(|_| OpenError::Thread("the log reader panicked".into()))?;
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(c) = &chain {
            last = c.last();
        }
        Ok(Folded {
            last,
            tamper,
            chain,
        })
    })
}

/// What `compare_checkpoints` found of one checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    pub path: std::path::PathBuf,
    pub seq: Seq,
    /// `Err` names the first difference from a fold of the log, or why it cannot be read.
    pub agrees: Result<(), String>,
}

/// Compares every checkpoint's views with a fold of the log up to its position: one fold from
/// the first event, stopping at each checkpoint in turn (the chain checked throughout). A chain
/// that does not hold up to the last checkpoint is `OpenError::Tampered`.
pub fn compare_checkpoints(
    log: &dyn EventLog,
    checkpoints: &crate::Checkpoints,
    mut progress: impl FnMut(Seq),
) -> Result<Vec<Compared>, OpenError> {
    let mut listed = checkpoints
        .list()
        .map_err(|e| LogError::Io(format!("the checkpoints cannot be listed: {e}")))?;
    listed.reverse();
    let head = log.head()?.seq;
    let mut views = Views::for_rebuild(0);
    let mut chain = ChainCheck::new();
    let mut found = Vec::with_capacity(listed.len());
    for (seq, path) in listed {
        let mut report = |agrees| {
            found.push(Compared {
                path: path.clone(),
                seq,
                agrees,
            })
        };
        if seq > head {
            report(Err(format!(
                "it stands at event {seq}, beyond the log's last event {head}"
            )));
            continue;
        }
        if seq > views.seq() {
            chain = fold_exactly(log, &mut views, chain, seq, &mut progress)?;
        }
        let agrees = match checkpoints.decode_file(&path) {
            Err(e) => Err(e),
            Ok((header, _)) if header.hash != chain.last().hash.0 => Err(format!(
                "the log's link at event {seq} is not the one it was taken at"
            )),
            Ok((_, theirs)) => match theirs.difference(&views) {
                Some(d) => Err(format!("it differs from a fold of the log: {d}")),
                None => Ok(()),
            },
        };
        report(agrees);
    }
    Ok(found)
}
