//! Access over a window of time: every interval in which a user (or anyone, within a scope) held
//! each effective permission, each start and end attributed to its cause (an event, or an
//! expiry passing), and the diff between two moments with the cause of each gain and loss.
//!
//! Both walk the org's events inside the window (which the caller reads from the log), and
//! between two events the expiries of the facts then held: access can end without an event.
//!
//! A walk judges only what can change. The org's history tells who can hold anything within
//! the filter ([`concerned`]) and which events touched what their access depends on
//! ([`positions`]): a person's page on an org of 100,000 members reads that person's events and
//! the org's structure, not the org's whole log. Each event is judged only for the users and
//! scopes it can reach ([`Reach`]): creating an inbox changes access on that inbox alone.

use std::collections::{BTreeMap, BTreeSet};

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::{Hashed, Role, ScopeRef};
use permledger_domain::{
    Event, EventPayload, InboxId, OrgId, PermissionKey, RoleId, Scope, Seq, TeamId, Timestamp,
    UserId,
};
use serde::{Deserialize, Serialize};

use crate::hist::Hist;
use crate::history::OrgHistory;
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

/// Every (user, permission, scope) held at a moment by the users named (None: every member),
/// on the scopes named (None: every scope), within the subtree of `within`. `under` lists the
/// inboxes each team ever held.
fn held_among(
    views: &Views,
    org: &OrgId,
    at: Moment,
    users: Option<&BTreeSet<UserId>>,
    (within, under): (Option<&Scope>, &Under<'_>),
    scopes: Option<&[Scope]>,
) -> BTreeSet<Triple> {
    let mut out = BTreeSet::new();
    let Some(o) = views.org_at(org, at.seq) else {
        return out;
    };
    let inside = |s: ScopeRef<'_>| {
        check::scope_exists(&o, s)
            && within.is_none_or(|f| check::lineage(&o, s).any(|x| x == ScopeRef::of(f)))
    };
    // A team's or an inbox's subtree is among the scopes ever under it: no walk over them all.
    let scopes = scopes
        .map(<[Scope]>::to_vec)
        .or_else(|| subtree(under, within?));
    let scopes: Vec<Scope> = match scopes {
        Some(list) => list
            .into_iter()
            .filter(|s| inside(ScopeRef::of(s)))
            .collect(),
        None => check::all_scopes(&o)
            .filter(|s| inside(*s))
            .map(ScopeRef::to_scope)
            .collect(),
    };
    if scopes.is_empty() {
        return out;
    }
    let mut judge = |u: &UserId| {
        for s in &scopes {
            for p in check::permissions(&o, u, s, at.time) {
                out.insert((u.clone(), p, s.clone()));
            }
        }
    };
    match users {
        Some(users) => users.iter().for_each(&mut judge),
        None => o.user_ids().for_each(&mut judge),
    }
    out
}

/// Who and where an event can change access: `None` is anyone, or anywhere.
#[derive(Debug, Default)]
struct Reach {
    users: Option<BTreeSet<UserId>>,
    scopes: Option<Vec<Scope>>,
}

impl Reach {
    fn nobody() -> Self {
        Reach {
            users: Some(BTreeSet::new()),
            scopes: None,
        }
    }
}

/// Every inbox each team ever held.
type Under<'h> = BTreeMap<&'h TeamId, Vec<Scope>>;

/// Every inbox each team ever held: a team's subtree at any moment is among them.
fn ever_under(h: &OrgHistory) -> Under<'_> {
    let mut out: BTreeMap<&TeamId, Vec<Scope>> = BTreeMap::new();
    for (i, hist) in &h.inboxes {
        let teams: BTreeSet<&TeamId> = hist.values().filter_map(|x| x.team.as_ref()).collect();
        for t in teams {
            out.entry(t).or_default().push(Scope::Inbox(i.clone()));
        }
    }
    out
}

/// The scope and everything ever under it (None for the org: everywhere).
fn subtree(under: &Under<'_>, scope: &Scope) -> Option<Vec<Scope>> {
    match scope {
        Scope::Org => None,
        Scope::Team(t) => Some(
            std::iter::once(scope.clone())
                .chain(under.get(t).into_iter().flatten().cloned())
                .collect(),
        ),
        Scope::Inbox(_) => Some(vec![scope.clone()]),
    }
}

/// What an event can change. A role or grant given or taken reaches its user under its scope; a status change or a transfer, its users anywhere; a
/// scope created, moved or deleted, everyone on that scope alone (a new team has no inboxes
/// yet); a rename or an invite's comings and goings, no one. Anything else (a role redefined,
/// a team deleted, a mask, a permission declared) can change anyone's access anywhere.
fn reach(payload: &EventPayload, under: &Under<'_>) -> Reach {
    use EventPayload::*;
    let users = || Some(payload.subject_users().into_iter().cloned().collect());
    match payload {
        RoleAssigned(_) | Unassigned(_) | PermissionGranted(_) | PermissionRevoked(_) => Reach {
            users: users(),
            scopes: subtree(under, &payload.scope()),
        },
        MemberJoined(_)
        | MemberSuspended(_)
        | MemberReactivated(_)
        | MemberRemoved(_)
        | MemberLeft(_)
        | OwnershipTransferred(_) => Reach {
            users: users(),
            scopes: None,
        },
        TeamCreated(_) | InboxCreated(_) | InboxMoved(_) | InboxDeleted(_) => Reach {
            users: None,
            scopes: Some(vec![payload.scope()]),
        },
        OrgRenamed(_) | RoleRenamed(_) | TeamRenamed(_) | InboxRenamed(_) | InviteIssued(_)
        | InviteRevoked(_) | InviteDeclined(_) | InviteAccepted(_) | InviteLinkCreated(_)
        | InviteLinkRevoked(_) => Reach::nobody(),
        _ => Reach::default(),
    }
}

/// The scopes whose facts bear on access within a team's or an inbox's subtree at some moment:
/// the scope, the org, and the team an inbox ever sat in or the inboxes a team ever held.
struct Bearing<'h> {
    teams: Hashed<&'h TeamId, ()>,
    inboxes: Hashed<&'h InboxId, ()>,
}

impl<'h> Bearing<'h> {
    /// None for the org: everything bears on it.
    fn new(h: &'h OrgHistory, scope: &'h Scope) -> Option<Self> {
        let mut b = Bearing {
            teams: Hashed::default(),
            inboxes: Hashed::default(),
        };
        match scope {
            Scope::Org => return None,
            Scope::Team(t) => {
                b.teams.insert(t, ());
                for (i, hist) in &h.inboxes {
                    if hist.values().any(|inbox| inbox.team.as_ref() == Some(t)) {
                        b.inboxes.insert(i, ());
                    }
                }
            }
            Scope::Inbox(i) => {
                b.inboxes.insert(i, ());
                if let Some(hist) = h.inboxes.get(i) {
                    b.teams.extend(
                        hist.values()
                            .filter_map(|x| x.team.as_ref())
                            .map(|t| (t, ())),
                    );
                }
            }
        }
        Some(b)
    }

    fn bears(&self, s: ScopeRef<'_>) -> bool {
        match s {
            ScopeRef::Org => true,
            ScopeRef::Team(t) => self.teams.contains_key(t),
            ScopeRef::Inbox(i) => self.inboxes.contains_key(i),
        }
    }
}

/// The users whose access within the filter can differ from nothing at some moment: the user
/// asked about; or, for a team or inbox, every owner the org had and every member with a grant,
/// or a role whose patterns were ever non-empty, on a scope bearing on it. None: anyone.
pub fn concerned(
    h: &OrgHistory,
    user: Option<&UserId>,
    scope: Option<&Scope>,
) -> Option<BTreeSet<UserId>> {
    if let Some(u) = user {
        return Some(BTreeSet::from([u.clone()]));
    }
    let bearing = Bearing::new(h, scope?)?;
    let carrying: Hashed<&RoleId, bool> = h
        .roles
        .iter()
        .map(|(id, r)| (id, r.values().any(|r: &Role| !r.patterns.is_empty())))
        .collect();
    let carries = |role: &RoleId| carrying.get(role).copied().unwrap_or(true);
    let mut out: BTreeSet<UserId> = h.owner.values().map(|(u, _)| u.clone()).collect();
    for (u, m) in &h.members {
        let roles = m
            .roles
            .iter()
            .any(|(s, a)| bearing.bears(s) && a.values().any(|a| carries(&a.role)));
        let grants = || {
            m.grants
                .iter()
                .any(|(s, g)| bearing.bears(s) && !g.is_empty())
        };
        if roles || grants() {
            out.insert(u.clone());
        }
    }
    Some(out)
}

/// The positions after `from` and up to `to` of the events a walk for `user` or within `scope`
/// must judge: every change of what access depends on (the owner, the catalog, roles, masks,
/// the scopes bearing on the filter) and of the concerned members. Any other event of the org
/// changes no access there. None: every event of the org.
pub fn positions(
    views: &Views,
    org: &OrgId,
    from: Seq,
    to: Seq,
    focus: &Focus<'_>,
) -> Option<Vec<Seq>> {
    let h = views.histories.get(org)?;
    let concerned = focus.concerned.as_ref()?;
    let scope = focus.scope;
    let bearing = scope.and_then(|s| Bearing::new(h, s));
    let bears = |s: ScopeRef<'_>| bearing.as_ref().is_none_or(|b| b.bears(s));
    let mut all: Vec<Seq> = h.owner.positions().collect();
    all.extend(h.catalog.values().map(|(s, _)| *s));
    for r in h.roles.values() {
        all.extend(r.positions());
    }
    for (_, m) in h.masks.iter() {
        m.values().for_each(|p| all.extend(p.positions()));
    }
    for (t, hist) in &h.teams {
        if bears(ScopeRef::Team(t)) {
            all.extend(hist.positions());
        }
    }
    for (i, hist) in &h.inboxes {
        if bears(ScopeRef::Inbox(i)) {
            all.extend(hist.positions());
        }
    }
    for m in concerned.iter().filter_map(|u| h.members.get(u)) {
        all.extend(m.core.positions());
        for (_, a) in m.roles.iter() {
            all.extend(a.positions());
        }
        for (_, g) in m.grants.iter() {
            g.values().for_each(|g| all.extend(g.positions()));
        }
    }
    let out: BTreeSet<Seq> = all.into_iter().filter(|s| *s > from && *s <= to).collect();
    Some(out.into_iter().collect())
}

/// The times after `from` and up to `to` at which a role or grant of the concerned users (None:
/// every member) expires, each with the users concerned: a superset of the expiries a walk
/// meets (judging one that no longer applies finds nothing changed).
fn expiries(
    h: &OrgHistory,
    concerned: Option<&BTreeSet<UserId>>,
    from: Timestamp,
    to: Timestamp,
) -> BTreeMap<Timestamp, BTreeSet<UserId>> {
    let mut out: BTreeMap<Timestamp, BTreeSet<UserId>> = BTreeMap::new();
    let mut note = |u: &UserId, m: &crate::history::MemberHist| {
        let roles = m
            .roles
            .iter()
            .flat_map(|(_, a)| a.values())
            .filter_map(|a| a.expires_at);
        let grants = m
            .grants
            .iter()
            .flat_map(|(_, g)| g.values())
            .flat_map(Hist::values)
            .filter_map(|g| g.expires_at);
        for t in roles.chain(grants).filter(|t| *t > from && *t <= to) {
            out.entry(t).or_default().insert(u.clone());
        }
    };
    match concerned {
        Some(users) => {
            for u in users {
                if let Some(m) = h.members.get(u) {
                    note(u, m);
                }
            }
        }
        None => {
            for (u, m) in &h.members {
                note(u, m);
            }
        }
    }
    out
}

/// The walk through a window: the intervals still open (by user), and those closed.
struct Walk<'v> {
    views: &'v Views,
    org: &'v OrgId,
    scope: Option<&'v Scope>,
    under: &'v Under<'v>,
    /// None: anyone.
    concerned: Option<BTreeSet<UserId>>,
    open: BTreeMap<UserId, BTreeMap<(PermissionKey, Scope), Point>>,
    closed: Vec<Interval>,
}

impl Walk<'_> {
    /// Judges access at `now` for what `reach` covers: what is no longer held ends there, what
    /// is newly held starts there, both attributed to `cause`.
    fn step(&mut self, now: Moment, cause: Cause, reach: &Reach) {
        let users: Option<BTreeSet<UserId>> = match (&reach.users, &self.concerned) {
            (Some(r), Some(c)) => Some(r.intersection(c).cloned().collect()),
            (Some(r), None) => Some(r.clone()),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        };
        if users.as_ref().is_some_and(BTreeSet::is_empty) {
            return;
        }
        let scopes = reach.scopes.as_deref();
        let next = held_among(
            self.views,
            self.org,
            now,
            users.as_ref(),
            (self.scope, self.under),
            scopes,
        );
        let point = Point {
            seq: now.seq,
            time: now.time,
            cause,
        };
        let judged: Vec<&UserId> = match &users {
            Some(users) => users
                .iter()
                .filter(|u| self.open.contains_key(*u))
                .collect(),
            None => self.open.keys().collect(),
        };
        let mut lost: Vec<Triple> = Vec::new();
        for u in judged {
            for (p, s) in self.open[u].keys() {
                let key = (u.clone(), p.clone(), s.clone());
                if scopes.is_none_or(|ss| ss.contains(s)) && !next.contains(&key) {
                    lost.push(key);
                }
            }
        }
        for (u, p, s) in lost {
            let held = self.open.get_mut(&u);
            if let Some(start) = held.and_then(|h| h.remove(&(p.clone(), s.clone()))) {
                self.closed.push(Interval {
                    user: u,
                    permission: p,
                    scope: s,
                    from: start,
                    to: Some(point.clone()),
                });
            }
        }
        for (u, p, s) in next {
            self.open
                .entry(u)
                .or_default()
                .entry((p, s))
                .or_insert_with(|| point.clone());
        }
    }
}

/// Every interval of access between two moments, in order of their start. `events` are the
/// org's events (from the log): every one after `from` and up to `to`, or at least those at
/// [`positions`]; the answer is the same.
pub fn timeline<'e>(
    views: &Views,
    org: &OrgId,
    from: Moment,
    to: Moment,
    user: Option<&UserId>,
    scope: Option<&Scope>,
    events: impl IntoIterator<Item = &'e Event>,
) -> Vec<Interval> {
    let focus = Focus::new(views, org, user, scope);
    timeline_in(views, org, from, to, focus, events)
}

/// Whom and where a walk looks: the user or the scope asked about, and the users whose access
/// there can change ([`concerned`], found once for [`positions`] and the walk).
#[derive(Debug, Clone)]
pub struct Focus<'a> {
    pub user: Option<&'a UserId>,
    pub scope: Option<&'a Scope>,
    concerned: Option<BTreeSet<UserId>>,
}

impl<'a> Focus<'a> {
    pub fn new(
        views: &Views,
        org: &OrgId,
        user: Option<&'a UserId>,
        scope: Option<&'a Scope>,
    ) -> Focus<'a> {
        let concerned = views
            .histories
            .get(org)
            .and_then(|h| concerned(h, user, scope));
        Focus {
            user,
            scope,
            concerned,
        }
    }
}

/// [`timeline`] with its focus already found.
pub fn timeline_in<'e>(
    views: &Views,
    org: &OrgId,
    from: Moment,
    to: Moment,
    focus: Focus<'_>,
    events: impl IntoIterator<Item = &'e Event>,
) -> Vec<Interval> {
    let Some(h) = views.histories.get(org) else {
        return Vec::new();
    };
    let Focus {
        scope, concerned, ..
    } = focus;
    let under = ever_under(h);
    let mut expiring = expiries(h, concerned.as_ref(), from.time, to.time)
        .into_iter()
        .peekable();
    // An expiry is judged at the last of the org's events before it (walked or not).
    let window = {
        let lo = h.events.partition_point(|s| *s <= from.seq);
        let hi = h.events.partition_point(|s| *s <= to.seq);
        &h.events[lo..hi.max(lo)]
    };
    let in_force = |x: Timestamp| {
        let i = window.partition_point(|s| views.recorded_at(*s).is_some_and(|t| t < x));
        i.checked_sub(1).map_or(from.seq, |i| window[i])
    };
    let before = Point {
        seq: from.seq,
        time: from.time,
        cause: Cause::Before,
    };
    let mut open: BTreeMap<UserId, BTreeMap<(PermissionKey, Scope), Point>> = BTreeMap::new();
    for (u, p, s) in held_among(views, org, from, concerned.as_ref(), (scope, &under), None) {
        open.entry(u).or_default().insert((p, s), before.clone());
    }
    let mut walk = Walk {
        views,
        org,
        scope,
        under: &under,
        concerned,
        open,
        closed: Vec::new(),
    };
    let mut expire_until = |walk: &mut Walk<'_>, until: Timestamp| {
        while let Some((x, users)) = expiring.next_if(|(x, _)| *x <= until) {
            let at = Moment {
                seq: in_force(x),
                time: x,
            };
            let reach = Reach {
                users: Some(users),
                scopes: None,
            };
            walk.step(at, Cause::Expired { at: x }, &reach);
        }
    };
    let mut time = from.time;
    for e in events
        .into_iter()
        .filter(|e| e.meta.seq > from.seq && e.meta.seq <= to.seq)
    {
        time = e.meta.recorded_at.max(time);
        expire_until(&mut walk, time);
        let now = Moment {
            seq: e.meta.seq,
            time,
        };
        let reach = reach(&e.payload, &under);
        if reach.users.as_ref().is_some_and(BTreeSet::is_empty) {
            continue;
        }
        walk.step(
            now,
            Cause::Event {
                event: Source::of(views, e),
            },
            &reach,
        );
    }
    // A moment's time is never before its position's event: `to.time` ends the walk.
    expire_until(&mut walk, to.time);
    let mut all = walk.closed;
    for (u, held) in walk.open {
        all.extend(held.into_iter().map(|((p, s), start)| Interval {
            user: u.clone(),
            permission: p,
            scope: s,
            from: start,
            to: None,
        }));
    }
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
