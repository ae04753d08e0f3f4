//! permledger's projections. `Views` folds every event into the live state and, beside it, into
//! each org's history of validity intervals, so that any query can be answered at any past
//! position as fast as at the present, without replaying the log.
//!
//! Beside them, each org's present numbered for the check asked on every request
//! (`permledger_domain::index::CheckIndex`, behind `Views::check`).
//!
//! Invariants: the history at position `n` equals a fresh fold of the events up to `n` (tested by
//! property); the live state, the check index and the history are fed the same events in the
//! same order; the check index answers as the rule of a check does on the live state (tested by
//! property after every event).

pub mod hist;
pub mod history;

use std::sync::OnceLock;

use permledger_domain::index::CheckIndex;
use permledger_domain::lazy::{Lazy, LazyMap, Loader};
use permledger_domain::state::Org;
use permledger_domain::{Event, OrgId, PermissionKey, Scope, Seq, State, Timestamp, UserId};

pub use history::{OrgAt, OrgHistory};

/// A moment to answer at: after the event at `seq`, judging expiries at `time`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct Moment {
    pub seq: Seq,
    pub time: Timestamp,
}

/// How a caller names a moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum At {
    /// After the event with this global position.
    Seq(Seq),
    /// After every event recorded at or before this time.
    Time(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MomentError {
    #[error("position {asked} is beyond the log's head {head}")]
    Future { asked: Seq, head: Seq },
}

#[derive(Debug, Clone, Default)]
pub struct Views {
    /// The present, as the domain folds it.
    pub live: State,
    /// Lazy, as the live orgs are: an org restored from a checkpoint is decoded when first
    /// used (`checkpoint::Opened::views`).
    pub histories: LazyMap<OrgId, OrgHistory>,
    /// Each org's present numbered for checks (`Views::check`), built from the present when
    /// first asked for where the org was restored from a checkpoint, and following every event
    /// once built.
    checks: history::Hashed<OrgId, OnceLock<CheckIndex>>,
    /// During a rebuild the check indexes wait for its end (`index_checks`): building each once
    /// costs less than following every event.
    checks_deferred: bool,
    /// (position, recorded time) of every event, in order.
    times: Vec<(Seq, Timestamp)>,
}

impl Views {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty views for a rebuild of `events` events: room for their positions, and the check
    /// indexes left until `index_checks` (`check` answers from the live state meanwhile).
    pub fn for_rebuild(events: usize) -> Self {
        let mut v = Self::default();
        v.times.reserve_exact(events);
        v.checks_deferred = true;
        v
    }

    /// Room for `events` more events' positions (a fold of a checkpoint's tail).
    pub fn reserve(&mut self, events: usize) {
        self.times.reserve(events);
    }

    /// Builds every org's check index from the live state, and follows events from now on, each
    /// org's index built on one of the machine's cores (`map_orgs`).
    pub fn index_checks(&mut self) {
        self.checks = self
            .map_orgs(|_, org| OnceLock::from(CheckIndex::build(org)))
            .into_iter()
            .collect();
        self.checks_deferred = false;
    }

    /// Builds the check indexes a rebuild (or a decoded checkpoint) left for its end; nothing
    /// when they already follow events.
    pub fn finish_rebuild(&mut self) {
        if self.checks_deferred {
            self.index_checks();
        }
    }

    /// A copy of the live state (the writer's own, at a restart), its orgs copied on every core;
    /// an org not yet decoded stays so in the copy, which decodes its own when first used.
    pub fn copy_live(&self) -> State {
        let slots: Vec<(&OrgId, &Lazy<Org>)> = self.live.orgs.slots().collect();
        State {
            orgs: in_shares(
                &slots,
                |(_, o)| weight(o),
                |(id, o)| ((*id).clone(), (*o).clone()),
            )
            .into_iter()
            .collect(),
            seq: self.live.seq,
            last_time: self.live.last_time,
        }
    }

    /// `f` of every live org, the orgs shared out by size among the machine's cores (the largest
    /// org alone can be a third of the members), no more threads than orgs; each org not yet
    /// decoded is decoded on the core it falls to.
    pub fn map_orgs<R: Send>(&self, f: impl Fn(&OrgId, &Org) -> R + Sync) -> Vec<(OrgId, R)> {
        let slots: Vec<(&OrgId, &Lazy<Org>)> = self.live.orgs.slots().collect();
        in_shares(
            &slots,
            |(_, o)| weight(o),
            |(id, o)| ((*id).clone(), f(id, o.get())),
        )
    }

    /// The orgs not yet decoded, largest first, with what decodes them: for a thread that warms
    /// them while the views serve (`Cold::make`, then `offer`).
    pub fn cold(&self) -> Vec<Cold> {
        let mut cold: Vec<Cold> = self
            .live
            .orgs
            .slots()
            .filter_map(|(id, live)| {
                let live = live.loader();
                let history = self.histories.slot(id).and_then(Lazy::loader);
                (live.is_some() || history.is_some()).then(|| Cold {
                    org: id.clone(),
                    live,
                    history,
                })
            })
            .collect();
        cold.sort_unstable_by_key(|c| std::cmp::Reverse(c.weight()));
        cold
    }

    /// Takes what a `Cold` made, for each part not decoded meanwhile (a part decoded since was
    /// made from the same bytes and events, or has followed events since: either way it stays).
    /// Called under a shared borrow of the views: no event can be folded in meanwhile.
    pub fn offer(&self, warm: Warm) {
        if let (Some(live), Some(made)) = (self.live.orgs.slot(&warm.org), warm.live) {
            let (org, index) = made;
            // Taken only if no one decoded the present before: then no event followed it since
            // it was made, and no check index was built from it.
            if live.offer(org).is_ok() {
                if let Some(cell) = self.checks.get(&warm.org) {
                    let _ = cell.set(index);
                }
            }
        }
        if let (Some(slot), Some(history)) = (self.histories.slot(&warm.org), warm.history) {
            let _ = slot.offer(history);
        }
    }

    /// How many orgs are not yet decoded (for a log line once warming ends).
    pub fn cold_orgs(&self) -> usize {
        self.live.orgs.pending().max(self.histories.pending())
    }

    /// The last position folded in.
    pub fn seq(&self) -> Seq {
        self.live.seq
    }

    /// Folds one event in; events must come in position order.
    pub fn apply(&mut self, event: &Event) {
        self.live.apply(event);
        self.times.push((event.meta.seq, event.meta.recorded_at));
        let Some(org) = self.live.orgs.get(&event.meta.org) else {
            return;
        };
        if !self.checks_deferred {
            match self.checks.get_mut(&event.meta.org) {
                Some(c) => {
                    // One not built yet is built from the present when first asked for.
                    if let Some(c) = c.get_mut() {
                        c.follow(org, event);
                    }
                }
                None => {
                    self.checks.insert(
                        event.meta.org.clone(),
                        OnceLock::from(CheckIndex::build(org)),
                    );
                }
            }
        }
        match self.histories.get_mut(&event.meta.org) {
            Some(h) => h.follow(event, org),
            None => {
                let mut h = OrgHistory::new(org, event.meta.seq);
                h.note(event);
                self.histories.insert(event.meta.org.clone(), h);
            }
        }
    }

    /// Records an event's position and time without folding it into its org: for views that hold
    /// some orgs only (`checkpoint::decode_some`), which pass over the others' events.
    pub fn pass(&mut self, event: &Event) {
        self.live.pass(&event.meta);
        self.times.push((event.meta.seq, event.meta.recorded_at));
    }

    /// Whether the user may do `key` on the scope at the present (the last position folded in),
    /// with expiries judged at `at`: the answer of `check::check` on the org at its head, from
    /// the check index. False when the org does not exist.
    pub fn check(
        &self,
        org: &OrgId,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> bool {
        match self.check_index(org) {
            Some(c) => c.check(user, key, scope, at),
            None => self
                .live
                .orgs
                .get(org)
                .is_some_and(|o| o.check(user, key, scope, at)),
        }
    }

    /// The org's check index, built now from its present if it was not yet; None during a
    /// rebuild and for an unknown org.
    fn check_index(&self, org: &OrgId) -> Option<&CheckIndex> {
        let cell = self.checks.get(org)?;
        if let Some(c) = cell.get() {
            return Some(c);
        }
        let live = self.live.orgs.get(org)?;
        Some(cell.get_or_init(|| CheckIndex::build(live)))
    }

    /// Whether `check` answers for the org from its check index (false for an unknown org, and
    /// during a rebuild until `index_checks`), rather than through the rule over the live state.
    pub fn indexes_checks(&self, org: &OrgId) -> bool {
        self.checks.contains_key(org)
    }

    /// When the event at `seq` was recorded, if there is one.
    pub fn recorded_at(&self, seq: Seq) -> Option<Timestamp> {
        self.times
            .get(self.times.partition_point(|(s, _)| *s < seq))
            .filter(|(s, _)| *s == seq)
            .map(|(_, t)| *t)
    }

    /// Resolves a moment. `now` judges expiries at the present.
    pub fn moment(&self, at: Option<&At>, now: Timestamp) -> Result<Moment, MomentError> {
        let head = self.seq();
        let last_time = self.times.last().map(|(_, t)| *t);
        match at {
            None => Ok(Moment {
                seq: head,
                time: last_time.map_or(now, |t| t.max(now)),
            }),
            Some(At::Seq(n)) if *n > head => Err(MomentError::Future { asked: *n, head }),
            Some(At::Seq(n)) => {
                let time = self
                    .times
                    .get(self.times.partition_point(|(s, _)| s < n))
                    .filter(|(s, _)| s == n)
                    .map_or(Timestamp::MIN, |(_, t)| *t);
                Ok(Moment { seq: *n, time })
            }
            Some(At::Time(t)) => {
                let i = self.times.partition_point(|(_, rt)| rt <= t);
                let seq = i.checked_sub(1).map_or(0, |i| self.times[i].0);
                Ok(Moment { seq, time: *t })
            }
        }
    }

    /// An org as it was at a moment; None when it did not exist then.
    pub fn org_at(&self, org: &OrgId, seq: Seq) -> Option<OrgAt<'_>> {
        self.histories.get(org)?.at(seq)
    }
}

/// One org's parts not yet decoded, and what decodes them.
pub struct Cold {
    org: OrgId,
    live: Option<Loader<Org>>,
    history: Option<Loader<OrgHistory>>,
}

/// One org's parts decoded apart from the views (`Cold::make`), for `Views::offer`.
pub struct Warm {
    org: OrgId,
    live: Option<(Org, CheckIndex)>,
    history: Option<OrgHistory>,
}

impl Cold {
    pub fn org(&self) -> &OrgId {
        &self.org
    }

    fn weight(&self) -> u64 {
        self.live.as_ref().map_or(0, Loader::weight)
            + self.history.as_ref().map_or(0, Loader::weight)
    }

    /// Decodes the parts, and builds the present's check index, holding nothing of the views.
    pub fn make(&self) -> Warm {
        Warm {
            org: self.org.clone(),
            live: self.live.as_ref().map(|l| {
                let org = l.make();
                let index = CheckIndex::build(&org);
                (org, index)
            }),
            history: self.history.as_ref().map(Loader::make),
        }
    }
}

/// What decoding or copying an org costs, roughly: its members.
fn weight(org: &Lazy<Org>) -> u64 {
    org.weight(|o| o.members.len() as u64)
}

/// `f` of every item, the items shared out by weight among the machine's cores (the largest org
/// alone can be a third of the members), no more threads than items; in no particular order.
pub(crate) fn in_shares<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len())
        .max(1);
    let mut order: Vec<&T> = items.iter().collect();
    order.sort_unstable_by_key(|t| std::cmp::Reverse(weight(t)));
    let mut shares: Vec<(u64, Vec<&T>)> = vec![(0, Vec::new()); threads];
    for t in order {
        if let Some(lightest) = shares.iter_mut().min_by_key(|(load, _)| *load) {
            lightest.0 += weight(t) + 1;
            lightest.1.push(t);
        }
    }
    let f = &f;
    let work = move |share: Vec<&T>| share.into_iter().map(f).collect::<Vec<R>>();
    std::thread::scope(|scope| {
        let mut shares = shares.into_iter().map(|(_, share)| share);
        let first = shares.next().unwrap_or_default();
        let others: Vec<_> = shares
            .map(|share| scope.spawn(move || work(share)))
            .collect();
        let mut done = work(first);
        // A thread that panicked re-raises here, as the same work on this thread would.
        for h in others {
            match h.join() {
                Ok(d) => done.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    })
}

pub mod audit;
pub mod checkpoint;
pub mod describe;
pub mod diff;
pub mod export;
pub mod provenance;
pub mod read;
pub mod snapshot;
pub mod timeline;
