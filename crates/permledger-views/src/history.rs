//! An org's history: every part of its state as validity intervals (`Hist`), kept in step with
//! the live fold. After each event the parts that event can touch are compared with the live
//! state and their changes recorded, so the rules of the fold live in one place (`State::apply`)
//! and the history can never disagree with it.

use std::collections::BTreeMap;
use std::hash::Hash;

use permledger_domain::catalog::{Catalog, Pattern, PermissionDef};
use permledger_domain::check::AccessView;
use permledger_domain::event::{Defaults, EventPayload};
use permledger_domain::state::{
    Assignment, GrantFact, Inbox, Invite, InviteLink, Member, MemberStatus, Org, Role, ScopeRef,
    ScopedMap, Team,
};
use permledger_domain::{
    Event, InboxId, InviteId, LinkId, OrgId, PermissionKey, PresetName, RoleId, ScopeKind, Seq,
    TeamId, UserId,
};

use crate::hist::Hist;
use permledger_domain::vecmap::VecMap;

/// A member's own facts besides its roles and grants.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberCore {
    pub status: MemberStatus,
    pub status_seq: Seq,
    pub guest: bool,
    pub joined_seq: Seq,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberHist {
    pub core: Hist<MemberCore>,
    pub roles: ScopedMap<Hist<Assignment>>,
    pub grants: ScopedMap<VecMap<PermissionKey, Hist<GrantFact>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgHistory {
    pub id: OrgId,
    pub preset: PresetName,
    /// The position of every event of the org, in order: the org's version at `n` is how many are <= n.
    pub events: Vec<Seq>,
    /// The positions of the events about each user (naming them: `subject_users`), in order:
    /// a trail filtered by user reads these, not the org's whole log.
    pub about: Hashed<UserId, Vec<Seq>>,
    pub name: Hist<String>,
    pub owner: Hist<(UserId, Seq)>,
    /// Permissions are never removed: each is known from the position that declared it.
    pub catalog: BTreeMap<PermissionKey, (Seq, PermissionDef)>,
    pub roles: BTreeMap<RoleId, Hist<Role>>,
    pub defaults: Hist<Defaults>,
    /// Hashed, not ordered: a check finds its member, team and inbox in one probe each, however
    /// large the org; the few views that list them in id order sort what they list.
    pub teams: Hashed<TeamId, Hist<Team>>,
    pub inboxes: Hashed<InboxId, Hist<Inbox>>,
    /// Boxed, as in the live state: growing the table moves a pointer per member.
    /// Not in the serde form: a checkpoint writes members in sections of their own.
    #[serde(skip)]
    pub members: Hashed<UserId, Box<MemberHist>>,
    pub masks: ScopedMap<VecMap<Pattern, Hist<Seq>>>,
    pub invites: BTreeMap<InviteId, Hist<Invite>>,
    pub links: BTreeMap<LinkId, Hist<InviteLink>>,
}

fn core_of(m: &Member) -> MemberCore {
    MemberCore {
        status: m.status,
        status_seq: m.status_seq,
        guest: m.guest,
        joined_seq: m.joined_seq,
    }
}

/// The hashed maps of the projections (foldhash: a check hashes a user id, a scope id and the
/// org id several times; SipHash made that a tenth of a check).
pub use permledger_domain::state::Hashed;

/// A map of histories, ordered or hashed.
pub trait HistMap<K, V> {
    fn each_mut(&mut self, f: impl FnMut(&K, &mut Hist<V>));
    fn has(&self, k: &K) -> bool;
    fn slot(&mut self, k: &K) -> &mut Hist<V>;
}

impl<K: Ord + Clone, V> HistMap<K, V> for BTreeMap<K, Hist<V>> {
    fn each_mut(&mut self, mut f: impl FnMut(&K, &mut Hist<V>)) {
        self.iter_mut().for_each(|(k, h)| f(k, h));
    }
    fn has(&self, k: &K) -> bool {
        self.contains_key(k)
    }
    fn slot(&mut self, k: &K) -> &mut Hist<V> {
        self.entry(k.clone()).or_default()
    }
}

impl<K: Eq + Hash + Clone, V> HistMap<K, V> for Hashed<K, Hist<V>> {
    fn each_mut(&mut self, mut f: impl FnMut(&K, &mut Hist<V>)) {
        self.iter_mut().for_each(|(k, h)| f(k, h));
    }
    fn has(&self, k: &K) -> bool {
        self.contains_key(k)
    }
    fn slot(&mut self, k: &K) -> &mut Hist<V> {
        // Look before inserting, so that the common case clones no key.
        if !self.contains_key(k) {
            self.insert(k.clone(), Hist::default());
        }
        match self.get_mut(k) {
            Some(h) => h,
            None => unreachable!("inserted above"),
        }
    }
}

impl<K: Ord + Clone, V> HistMap<K, V> for VecMap<K, Hist<V>> {
    fn each_mut(&mut self, mut f: impl FnMut(&K, &mut Hist<V>)) {
        self.iter_mut().for_each(|(k, h)| f(k, h));
    }
    fn has(&self, k: &K) -> bool {
        self.contains_key(k)
    }
    fn slot(&mut self, k: &K) -> &mut Hist<V> {
        self.get_or_insert_with(k, Hist::default)
    }
}

/// A map of the live state, ordered in a tree or in a vector.
pub trait LiveMap<K, V> {
    fn lookup(&self, k: &K) -> Option<&V>;
    fn each(&self, f: impl FnMut(&K, &V));
}

impl<K: Ord, V> LiveMap<K, V> for BTreeMap<K, V> {
    fn lookup(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn each(&self, mut f: impl FnMut(&K, &V)) {
        self.iter().for_each(|(k, v)| f(k, v));
    }
}

impl<K: Ord, V> LiveMap<K, V> for VecMap<K, V> {
    fn lookup(&self, k: &K) -> Option<&V> {
        self.get(k)
    }
    fn each(&self, mut f: impl FnMut(&K, &V)) {
        self.iter().for_each(|(k, v)| f(k, v));
    }
}

/// Records, for every key in the history or the live map, the live value.
fn sync_map<K: Ord + Clone, V: PartialEq + Clone>(
    hist: &mut impl HistMap<K, V>,
    live: &impl LiveMap<K, V>,
    seq: Seq,
) {
    hist.each_mut(|k, h| h.record(seq, live.lookup(k)));
    live.each(|k, v| {
        if !hist.has(k) {
            hist.slot(k).record(seq, Some(v));
        }
    });
}

fn sync_scoped<V: PartialEq + Clone>(
    hist: &mut ScopedMap<Hist<V>>,
    live: Option<&ScopedMap<V>>,
    seq: Seq,
) {
    let empty = ScopedMap::default();
    let live = live.unwrap_or(&empty);
    if hist.org.is_some() || live.org.is_some() {
        hist.org
            .get_or_insert_with(Hist::default)
            .record(seq, live.org.as_ref());
    }
    sync_map(&mut hist.teams, &live.teams, seq);
    sync_map(&mut hist.inboxes, &live.inboxes, seq);
}

fn sync_scoped_maps<K: Ord + Clone, V: PartialEq + Clone>(
    hist: &mut ScopedMap<VecMap<K, Hist<V>>>,
    live: Option<&ScopedMap<VecMap<K, V>>>,
    seq: Seq,
) {
    let empty_scoped = ScopedMap::default();
    let empty = VecMap::new();
    let live = live.unwrap_or(&empty_scoped);
    if hist.org.is_some() || live.org.is_some() {
        sync_map(
            hist.org.get_or_insert_with(VecMap::new),
            live.org.as_ref().unwrap_or(&empty),
            seq,
        );
    }
    for (t, h) in hist.teams.iter_mut() {
        sync_map(h, live.teams.get(t).unwrap_or(&empty), seq);
    }
    for (t, m) in &live.teams {
        if !hist.teams.contains_key(t) {
            sync_map(hist.teams.get_or_insert_with(t, VecMap::new), m, seq);
        }
    }
    for (i, h) in hist.inboxes.iter_mut() {
        sync_map(h, live.inboxes.get(i).unwrap_or(&empty), seq);
    }
    for (i, m) in &live.inboxes {
        if !hist.inboxes.contains_key(i) {
            sync_map(hist.inboxes.get_or_insert_with(i, VecMap::new), m, seq);
        }
    }
}

impl OrgHistory {
    pub fn new(org: &Org, seq: Seq) -> OrgHistory {
        let mut h = OrgHistory {
            id: org.id.clone(),
            preset: org.preset,
            events: Vec::new(),
            about: Hashed::default(),
            name: Hist::default(),
            owner: Hist::default(),
            catalog: BTreeMap::new(),
            roles: BTreeMap::new(),
            defaults: Hist::default(),
            teams: Hashed::default(),
            inboxes: Hashed::default(),
            members: Hashed::default(),
            masks: ScopedMap::default(),
            invites: BTreeMap::new(),
            links: BTreeMap::new(),
        };
        h.sync_all(org, seq);
        h
    }

    /// The position of the org's first event.
    pub fn created(&self) -> Seq {
        self.events.first().copied().unwrap_or(Seq::MAX)
    }

    /// Notes the event's position among the org's and among those about its users.
    pub fn note(&mut self, event: &Event) {
        let seq = event.meta.seq;
        self.events.push(seq);
        for u in event.payload.subject_users() {
            match self.about.get_mut(u) {
                Some(seqs) => seqs.push(seq),
                None => {
                    self.about.insert(u.clone(), vec![seq]);
                }
            }
        }
    }

    /// Records what one event changed. `org` is the live org after the event (None if absent).
    pub fn follow(&mut self, event: &Event, org: &Org) {
        let seq = event.meta.seq;
        self.note(event);
        use EventPayload::*;
        match &event.payload {
            OrgRenamed(_) => self.name.record(seq, Some(&org.name)),
            DefaultRoleSet(_) => self.defaults.record(seq, Some(&org.defaults)),
            RoleDefined(e) => self.sync_role(org, &e.role, seq),
            RoleChanged(e) => self.sync_role(org, &e.role, seq),
            RoleRenamed(e) => self.sync_role(org, &e.role, seq),
            TeamCreated(e) => self.sync_team(org, &e.team, seq),
            TeamRenamed(e) => self.sync_team(org, &e.team, seq),
            InboxCreated(e) => self.sync_inbox(org, &e.inbox, seq),
            InboxRenamed(e) => self.sync_inbox(org, &e.inbox, seq),
            InboxMoved(e) => self.sync_inbox(org, &e.inbox, seq),
            InviteIssued(e) => self.sync_invite(org, &e.invite, seq),
            InviteRevoked(e) => self.sync_invite(org, &e.invite, seq),
            InviteDeclined(e) => self.sync_invite(org, &e.invite, seq),
            InviteAccepted(e) => self.sync_invite(org, &e.invite, seq),
            InviteLinkCreated(e) => self.sync_link(org, &e.link, seq),
            InviteLinkRevoked(e) => self.sync_link(org, &e.link, seq),
            MemberJoined(e) => {
                self.sync_member(org, &e.user, seq);
                sync_map(&mut self.links, &org.links, seq);
            }
            RoleAssigned(e) => self.sync_member(org, &e.user, seq),
            Unassigned(e) => self.sync_member(org, &e.user, seq),
            PermissionGranted(e) => self.sync_member(org, &e.user, seq),
            PermissionRevoked(e) => self.sync_member(org, &e.user, seq),
            MemberSuspended(e) => self.sync_member(org, &e.user, seq),
            MemberReactivated(e) => self.sync_member(org, &e.user, seq),
            MemberRemoved(e) => self.sync_member(org, &e.user, seq),
            MemberLeft(e) => self.sync_member(org, &e.user, seq),
            PermissionMasked(_) | PermissionUnmasked(_) => {
                sync_scoped_maps(&mut self.masks, Some(&org.masks), seq)
            }
            OwnershipTransferred(e) => {
                self.owner
                    .record(seq, Some(&(org.owner.clone(), org.owner_seq)));
                self.sync_member(org, &e.from, seq);
                self.sync_member(org, &e.to, seq);
            }
            // Rare events whose effects spread (a declared permission widens roles; deletions
            // take assignments, grants, masks and defaults with them): compare everything.
            OrgCreated(_)
            | PermissionDeclared(_)
            | RoleDeleted(_)
            | TeamDeleted(_)
            | InboxDeleted(_) => self.sync_all(org, seq),
        }
    }

    fn sync_role(&mut self, org: &Org, role: &RoleId, seq: Seq) {
        self.roles
            .entry(role.clone())
            .or_default()
            .record(seq, org.roles.get(role));
    }
    fn sync_team(&mut self, org: &Org, team: &TeamId, seq: Seq) {
        self.teams.slot(team).record(seq, org.teams.get(team));
    }
    fn sync_inbox(&mut self, org: &Org, inbox: &InboxId, seq: Seq) {
        self.inboxes.slot(inbox).record(seq, org.inboxes.get(inbox));
    }
    fn sync_invite(&mut self, org: &Org, invite: &InviteId, seq: Seq) {
        self.invites
            .entry(invite.clone())
            .or_default()
            .record(seq, org.invites.get(invite));
    }
    fn sync_link(&mut self, org: &Org, link: &LinkId, seq: Seq) {
        self.links
            .entry(link.clone())
            .or_default()
            .record(seq, org.links.get(link));
    }

    fn sync_member(&mut self, org: &Org, user: &UserId, seq: Seq) {
        let live = org.members.get(user);
        // One probe; cloning an id of up to 24 bytes for the entry is a copy, not an allocation.
        let h = self.members.entry(user.clone()).or_default();
        h.core.record(seq, live.map(|m| core_of(m)).as_ref());
        sync_scoped(&mut h.roles, live.map(|m| &m.roles), seq);
        sync_scoped_maps(&mut h.grants, live.map(|m| &m.grants), seq);
    }

    fn sync_all(&mut self, org: &Org, seq: Seq) {
        self.name.record(seq, Some(&org.name));
        self.owner
            .record(seq, Some(&(org.owner.clone(), org.owner_seq)));
        for def in org.catalog.iter() {
            self.catalog
                .entry(def.key.clone())
                .or_insert_with(|| (seq, def.clone()));
        }
        sync_map(&mut self.roles, &org.roles, seq);
        self.defaults.record(seq, Some(&org.defaults));
        sync_map(&mut self.teams, &org.teams, seq);
        sync_map(&mut self.inboxes, &org.inboxes, seq);
        let users: Vec<UserId> = self
            .members
            .keys()
            .chain(org.members.keys())
            .cloned()
            .collect();
        for u in users {
            self.sync_member(org, &u, seq);
        }
        sync_scoped_maps(&mut self.masks, Some(&org.masks), seq);
        sync_map(&mut self.invites, &org.invites, seq);
        sync_map(&mut self.links, &org.links, seq);
    }

    /// The org as it was after every event up to position `n`, or None before its creation.
    pub fn at(&self, n: Seq) -> Option<OrgAt<'_>> {
        let (owner, owner_seq) = self.owner.at(n)?;
        Some(OrgAt {
            h: self,
            n,
            owner: (owner, *owner_seq),
        })
    }
}

/// An org at a past position: answers every query as the org was then.
#[derive(Debug, Clone, Copy)]
pub struct OrgAt<'a> {
    h: &'a OrgHistory,
    n: Seq,
    owner: (&'a UserId, Seq),
}

impl<'a> OrgAt<'a> {
    pub fn position(&self) -> Seq {
        self.n
    }
    pub fn history(&self) -> &'a OrgHistory {
        self.h
    }
    pub fn version(&self) -> u64 {
        self.h.events.partition_point(|s| *s <= self.n) as u64
    }

    /// Rebuilds the whole org as it was: for tests and for views that list everything.
    pub fn materialize(&self) -> Org {
        let n = self.n;
        let h = self.h;
        let mut catalog = Catalog::default();
        for (seq, def) in h.catalog.values() {
            if *seq <= n {
                catalog.insert(def.clone());
            }
        }
        let members = h
            .members
            .iter()
            .filter_map(|(u, m)| {
                let core = m.core.at(n)?;
                Some((
                    u.clone(),
                    Box::new(Member {
                        status: core.status,
                        status_seq: core.status_seq,
                        guest: core.guest,
                        joined_seq: core.joined_seq,
                        roles: scoped_at(&m.roles, n),
                        grants: scoped_maps_at(&m.grants, n),
                    }),
                ))
            })
            .collect();
        let (owner, owner_seq) = (self.owner.0.clone(), self.owner.1);
        Org {
            id: h.id.clone(),
            name: h.name.at(n).cloned().unwrap_or_default(),
            preset: h.preset,
            version: self.version(),
            owner,
            owner_seq,
            catalog,
            roles: map_at(&h.roles, n),
            defaults: h.defaults.at(n).cloned().unwrap_or_default(),
            teams: map_at(&h.teams, n),
            inboxes: map_at(&h.inboxes, n),
            members,
            masks: scoped_maps_at(&h.masks, n),
            invites: map_at(&h.invites, n),
            links: map_at(&h.links, n),
        }
    }
}

fn map_at<'m, K: Ord + Clone + 'm, V: PartialEq + Clone + 'm, C: FromIterator<(K, V)>>(
    m: impl IntoIterator<Item = (&'m K, &'m Hist<V>)>,
    n: Seq,
) -> C {
    m.into_iter()
        .filter_map(|(k, h)| h.at(n).map(|v| (k.clone(), v.clone())))
        .collect()
}

fn scoped_at<V: PartialEq + Clone>(s: &ScopedMap<Hist<V>>, n: Seq) -> ScopedMap<V> {
    ScopedMap {
        org: s.org.as_ref().and_then(|h| h.at(n)).cloned(),
        teams: map_at(&s.teams, n),
        inboxes: map_at(&s.inboxes, n),
    }
}

/// Nested maps at `n`, leaving out scopes whose map is empty then (as the live fold does).
fn scoped_maps_at<K: Ord + Clone, V: PartialEq + Clone>(
    s: &ScopedMap<VecMap<K, Hist<V>>>,
    n: Seq,
) -> ScopedMap<VecMap<K, V>> {
    let nonempty = |m: VecMap<K, V>| (!m.is_empty()).then_some(m);
    ScopedMap {
        org: s.org.as_ref().and_then(|m| nonempty(map_at(m, n))),
        teams: s
            .teams
            .iter()
            .filter_map(|(k, m)| nonempty(map_at(m, n)).map(|m| (k.clone(), m)))
            .collect(),
        inboxes: s
            .inboxes
            .iter()
            .filter_map(|(k, m)| nonempty(map_at(m, n)).map(|m| (k.clone(), m)))
            .collect(),
    }
}

impl AccessView for OrgAt<'_> {
    fn owner(&self) -> (&UserId, Seq) {
        self.owner
    }
    fn member(&self, user: &UserId) -> Option<(MemberStatus, Seq)> {
        self.h
            .members
            .get(user)?
            .core
            .at(self.n)
            .map(|c| (c.status, c.status_seq))
    }
    fn permission_kind(&self, key: &PermissionKey) -> Option<ScopeKind> {
        self.h
            .catalog
            .get(key)
            .filter(|(s, _)| *s <= self.n)
            .map(|(_, d)| d.kind)
    }
    fn catalog_keys(&self) -> impl Iterator<Item = (&PermissionKey, ScopeKind)> {
        self.h
            .catalog
            .iter()
            .filter(|(_, (s, _))| *s <= self.n)
            .map(|(k, (_, d))| (k, d.kind))
    }
    fn team_exists(&self, team: &TeamId) -> bool {
        self.h.teams.get(team).and_then(|h| h.at(self.n)).is_some()
    }
    fn inbox_parent(&self, inbox: &InboxId) -> Option<Option<&TeamId>> {
        self.h
            .inboxes
            .get(inbox)?
            .at(self.n)
            .map(|i| i.team.as_ref())
    }
    fn role_carries(&self, role: &RoleId, key: &PermissionKey) -> bool {
        self.h
            .roles
            .get(role)
            .and_then(|h| h.at(self.n))
            .is_some_and(|r| r.effective.contains(key))
    }
    fn assignment(&self, user: &UserId, scope: ScopeRef<'_>) -> Option<&Assignment> {
        self.h.members.get(user)?.roles.get(scope)?.at(self.n)
    }
    fn grant(&self, user: &UserId, scope: ScopeRef<'_>, key: &PermissionKey) -> Option<&GrantFact> {
        self.h
            .members
            .get(user)?
            .grants
            .get(scope)?
            .get(key)?
            .at(self.n)
    }
    fn has_masks(&self) -> bool {
        !self.h.masks.is_empty()
    }
    fn masks_on(&self, scope: ScopeRef<'_>) -> impl Iterator<Item = (&Pattern, Seq)> {
        let n = self.n;
        self.h
            .masks
            .get(scope)
            .into_iter()
            .flat_map(move |m| m.iter().filter_map(move |(p, h)| h.at(n).map(|s| (p, *s))))
    }
    fn user_ids(&self) -> impl Iterator<Item = &UserId> {
        let n = self.n;
        sorted(
            self.h
                .members
                .iter()
                .filter(move |(_, m)| m.core.at(n).is_some())
                .map(|(u, _)| u),
        )
    }
    fn team_ids(&self) -> impl Iterator<Item = &TeamId> {
        let n = self.n;
        sorted(
            self.h
                .teams
                .iter()
                .filter(move |(_, h)| h.at(n).is_some())
                .map(|(t, _)| t),
        )
    }
    fn inbox_ids(&self) -> impl Iterator<Item = &InboxId> {
        let n = self.n;
        sorted(
            self.h
                .inboxes
                .iter()
                .filter(move |(_, h)| h.at(n).is_some())
                .map(|(i, _)| i),
        )
    }
}

/// Ids in order (the hashed maps hold them in none).
fn sorted<'a, K: Ord + ?Sized + 'a>(ids: impl Iterator<Item = &'a K>) -> std::vec::IntoIter<&'a K> {
    let mut v: Vec<&K> = ids.collect();
    v.sort_unstable();
    v.into_iter()
}
