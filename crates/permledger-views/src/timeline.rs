//! Access over a window of time: every interval in which a user (or anyone, within a scope) held
//! each effective permission, each start and end attributed to its cause (an event, or an
//! expiry passing), and the diff between two moments with the cause of each gain and loss.
//!
//! Both walk the org's events inside the window (which the caller reads from the log), and
//! between two events the expiries of the facts then held: access can end without an event.

use std::collections::{BTreeMap, BTreeSet};

use permledger_domain::check::AccessView;
use permledger_domain::{Event, EventPayload, OrgId, PermissionKey, Scope, Seq, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::diff::held;
use crate::provenance::Source;
use crate::{Moment, Views};

/// What began or ended an interval of access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// Already held when the window began.
    Before,
    /// An event: a role or grant given or taken, a suspension, a role redefined, a mask...
    Event { event: Source },
    /// An expiry passing, with no event.
    Expired { at: Timestamp },
}

/// One end of an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Point {
    /// The log position the change is judged at (the event's, or the one in force when an
    /// expiry passed).
    pub seq: Seq,
    pub time: Timestamp,
    pub cause: Cause,
}

/// A stretch of time in which a user held a permission on a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Interval {
    pub user: UserId,
    pub permission: PermissionKey,
    pub scope: Scope,
    pub from: Point,
    /// None: still held at the window's end.
    pub to: Option<Point>,
}

type Triple = (UserId, PermissionKey, Scope);

/// The expiries after `after` and at or before `until` of every role and grant held at `seq` by
/// the users concerned, in order, each with the users whose facts expire then.
fn expiries(
    views: &Views,
    org: &OrgId,
    seq: Seq,
    user: Option<&UserId>,
    after: Timestamp,
    until: Timestamp,
) -> BTreeMap<Timestamp, BTreeSet<UserId>> {
    let mut out: BTreeMap<Timestamp, BTreeSet<UserId>> = BTreeMap::new();
    let Some(o) = views.org_at(org, seq) else {
        return out;
    };
    let users: Vec<UserId> = match user {
        Some(u) => vec![u.clone()],
        None => o.user_ids().cloned().collect(),
    };
    for u in &users {
        if let Some(v) = crate::read::user_view(&o, u, after) {
            let ends = v
                .roles
                .iter()
                .filter_map(|r| r.expires_at)
                .chain(v.grants.iter().filter_map(|g| g.expires_at));
            for t in ends.filter(|t| *t > after && *t <= until) {
                out.entry(t).or_default().insert(u.clone());
            }
        }
    }
    out
}

/// The users whose access an event can change, when they are fewer than everyone: the user a
/// role, grant or status change names (both sides of a transfer), and no one for a rename or
/// an invite's comings and goings. None for events that can change anyone's (a role redefined,
/// a scope created or deleted, a mask, a permission declared, a default role).
fn affects_only(payload: &EventPayload) -> Option<BTreeSet<UserId>> {
    use EventPayload::*;
    match payload {
        RoleAssigned(_)
        | Unassigned(_)
        | PermissionGranted(_)
        | PermissionRevoked(_)
        | MemberJoined(_)
        | MemberSuspended(_)
        | MemberReactivated(_)
        | MemberRemoved(_)
        | MemberLeft(_)
        | OwnershipTransferred(_) => Some(payload.subject_users().into_iter().cloned().collect()),
        OrgRenamed(_) | RoleRenamed(_) | TeamRenamed(_) | InboxRenamed(_) | InviteIssued(_)
        | InviteRevoked(_) | InviteDeclined(_) | InviteAccepted(_) | InviteLinkCreated(_)
        | InviteLinkRevoked(_) => Some(BTreeSet::new()),
        _ => None,
    }
}

/// The walk through a window: the intervals still open, and those closed.
struct Walk<'v> {
    views: &'v Views,
    org: &'v OrgId,
    user: Option<&'v UserId>,
    scope: Option<&'v Scope>,
    open: BTreeMap<Triple, Point>,
    closed: Vec<Interval>,
}

impl Walk<'_> {
    /// Judges access at `now` (of the users in `only`, or of everyone concerned): what is no
    /// longer held ends there, what is newly held starts there, both attributed to `cause`.
    fn step(&mut self, now: Moment, cause: Cause, only: Option<&BTreeSet<UserId>>) {
        let judged: Option<BTreeSet<&UserId>> = only.map(|users| {
            users
                .iter()
                .filter(|u| self.user.is_none_or(|f| f == *u))
                .collect()
        });
        let next = match &judged {
            None => held(self.views, self.org, now, self.user, self.scope),
            Some(users) => users
                .iter()
                .flat_map(|u| held(self.views, self.org, now, Some(*u), self.scope))
                .collect(),
        };
        let point = Point {
            seq: now.seq,
            time: now.time,
            cause,
        };
        let lost: Vec<Triple> = self
            .open
            .keys()
            .filter(|t| judged.as_ref().is_none_or(|users| users.contains(&t.0)))
            .filter(|t| !next.contains(*t))
            .cloned()
            .collect();
        for t in lost {
            if let Some(start) = self.open.remove(&t) {
                self.closed.push(Interval {
                    user: t.0,
                    permission: t.1,
                    scope: t.2,
                    from: start,
                    to: Some(point.clone()),
                });
            }
        }
        for t in next {
            self.open.entry(t).or_insert_with(|| point.clone());
        }
    }

    /// Lets time pass at position `at.seq` from `at.time` to `until`: every expiry on the way
    /// ends what it ends, for the users whose facts expire.
    fn pass(&mut self, at: Moment, until: Timestamp) {
        for (x, users) in expiries(self.views, self.org, at.seq, self.user, at.time, until) {
            self.step(
                Moment {
                    seq: at.seq,
                    time: x,
                },
                Cause::Expired { at: x },
                Some(&users),
            );
        }
    }
}

/// Every interval of access between two moments, in order of their start. `events` are the
/// org's events (from the log); those after `from` and up to `to` are walked.
pub fn timeline<'e>(
    views: &Views,
    org: &OrgId,
    from: Moment,
    to: Moment,
    user: Option<&UserId>,
    scope: Option<&Scope>,
    events: impl IntoIterator<Item = &'e Event>,
) -> Vec<Interval> {
    let before = Point {
        seq: from.seq,
        time: from.time,
        cause: Cause::Before,
    };
    let mut walk = Walk {
        views,
        org,
        user,
        scope,
        open: held(views, org, from, user, scope)
            .into_iter()
            .map(|t| (t, before.clone()))
            .collect(),
        closed: Vec::new(),
    };
    let mut at = from;
    for e in events
        .into_iter()
        .filter(|e| e.meta.seq > from.seq && e.meta.seq <= to.seq)
    {
        let time = e.meta.recorded_at.max(at.time);
        walk.pass(at, time);
        let now = Moment {
            seq: e.meta.seq,
            time,
        };
        let only = affects_only(&e.payload);
        if only.as_ref().is_some_and(|users| users.is_empty()) {
            at = now;
            continue;
        }
        walk.step(
            now,
            Cause::Event {
                event: Source::of(views, e),
            },
            only.as_ref(),
        );
        at = now;
    }
    // A moment's time is never before its position's event: `to.time` ends the walk.
    walk.pass(at, to.time);
    let mut all = walk.closed;
    all.extend(walk.open.into_iter().map(|(t, start)| Interval {
        user: t.0,
        permission: t.1,
        scope: t.2,
        from: start,
        to: None,
    }));
    all.sort_by(|a, b| {
        (a.from.seq, a.from.time, &a.user, &a.permission, &a.scope).cmp(&(
            b.from.seq,
            b.from.time,
            &b.user,
            &b.permission,
            &b.scope,
        ))
    });
    all
}

/// One gain or loss between two moments, and what caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DiffRow {
    /// `gained` or `lost`.
    pub change: String,
    pub user: UserId,
    pub permission: PermissionKey,
    pub scope: Scope,
    /// The last change of that access inside the window: the event or expiry that left it as
    /// it stands at the end.
    pub cause: Point,
}

/// What was gained and lost between two moments, each with its cause: the end points compared,
/// and the window's timeline telling what made each difference.
pub fn caused_diff(intervals: &[Interval]) -> Vec<DiffRow> {
    let mut at_start: BTreeSet<(&UserId, &PermissionKey, &Scope)> = BTreeSet::new();
    let mut at_end: BTreeMap<(&UserId, &PermissionKey, &Scope), &Point> = BTreeMap::new();
    let mut last_end: BTreeMap<(&UserId, &PermissionKey, &Scope), &Point> = BTreeMap::new();
    for i in intervals {
        let key = (&i.user, &i.permission, &i.scope);
        if i.from.cause == Cause::Before {
            at_start.insert(key);
        }
        match &i.to {
            None => {
                at_end.insert(key, &i.from);
            }
            Some(end) => {
                let later = last_end
                    .get(&key)
                    .is_none_or(|p| (p.seq, p.time) <= (end.seq, end.time));
                if later {
                    last_end.insert(key, end);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (key, start) in &at_end {
        if !at_start.contains(key) {
            rows.push(DiffRow {
                change: "gained".into(),
                user: key.0.clone(),
                permission: key.1.clone(),
                scope: key.2.clone(),
                cause: (*start).clone(),
            });
        }
    }
    for key in &at_start {
        if !at_end.contains_key(key) {
            if let Some(end) = last_end.get(key) {
                rows.push(DiffRow {
                    change: "lost".into(),
                    user: key.0.clone(),
                    permission: key.1.clone(),
                    scope: key.2.clone(),
                    cause: (*end).clone(),
                });
            }
        }
    }
    rows
}
