//! The state that events fold into: every org with its catalog, roles, scopes, members and
//! invites. `State::apply` is the only way it changes, and it never fails: events are facts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::catalog::{is_billing, Catalog, Pattern, PermissionDef, PermissionKey};
use crate::command::{InviteAssignment, InviteGrant, PresetName};
use crate::event::{Defaults, Event, EventPayload, JoinedVia, RoleDef};
use crate::ids::{
    InboxId, InviteId, LinkId, OrgId, RoleId, Scope, ScopeKind, Seq, TeamId, Timestamp, UserId,
};
use crate::lazy::LazyMap;
use crate::vecmap::VecMap;

/// The projections' hashed maps: foldhash, seeded per process.
pub type Hashed<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Every org the ledger knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Lazy: an org restored from a checkpoint is decoded when first used.
    pub orgs: LazyMap<OrgId, Org>,
    /// The last global sequence number folded in.
    pub seq: Seq,
    /// The time of the last event folded in: recorded time never goes back.
    pub last_time: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub preset: PresetName,
    pub version: u64,
    pub owner: UserId,
    /// The sequence number of the event that made the current owner the owner.
    pub owner_seq: Seq,
    pub catalog: Catalog,
    pub roles: BTreeMap<RoleId, Role>,
    pub defaults: Defaults,
    pub teams: BTreeMap<TeamId, Team>,
    pub inboxes: BTreeMap<InboxId, Inbox>,
    /// Hashed: the largest orgs hold a hundred thousand members, found by id on every command,
    /// event and check; the views that list them sort what they list. Each member is boxed, so
    /// that growing the table moves a pointer per member instead of the whole member.
    /// Not in the org's serde form: a checkpoint writes members in sections of their own, so
    /// that a large org decodes on every core.
    #[serde(skip)]
    pub members: Hashed<UserId, Box<Member>>,
    pub masks: ScopedMap<VecMap<Pattern, Seq>>,
    pub invites: BTreeMap<InviteId, Invite>,
    pub links: BTreeMap<LinkId, InviteLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Role {
    pub name: String,
    pub kind: ScopeKind,
    /// Shared, as `effective`: the history records the role after every change, and a copy of
    /// the role then copies two pointers, not two trees (every org starts with its preset's roles).
    pub patterns: Arc<BTreeSet<Pattern>>,
    /// The catalog keys the patterns reach, limited to the role's kind and the kinds below it and
    /// never billing. Recomputed whenever the role or the catalog changes.
    pub effective: Arc<BTreeSet<PermissionKey>>,
    /// The event that last defined or changed the role.
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Team {
    pub name: String,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inbox {
    pub name: String,
    /// None: directly under the org (an SMS line).
    pub team: Option<TeamId>,
    pub seq: Seq,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub status: MemberStatus,
    /// The event that set the status (the join, or the last suspension or reactivation).
    pub status_seq: Seq,
    pub guest: bool,
    pub joined_seq: Seq,
    pub roles: ScopedMap<Assignment>,
    pub grants: ScopedMap<VecMap<PermissionKey, GrantFact>>,
}

/// A role held on one scope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assignment {
    pub role: RoleId,
    pub expires_at: Option<Timestamp>,
    pub seq: Seq,
}

/// A direct grant of one permission on one scope.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantFact {
    pub expires_at: Option<Timestamp>,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "user")]
pub enum InviteStatus {
    Pending,
    Revoked,
    Declined(UserId),
    Accepted(UserId),
}

/// `InviteStatus` as an externally tagged enum, the form every format can read.
mod plain_status {
    use super::{InviteStatus, UserId};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    enum Plain {
        Pending,
        Revoked,
        Declined(UserId),
        Accepted(UserId),
    }

    pub fn serialize<S: Serializer>(status: &InviteStatus, s: S) -> Result<S::Ok, S::Error> {
        match status.clone() {
            InviteStatus::Pending => Plain::Pending,
            InviteStatus::Revoked => Plain::Revoked,
            InviteStatus::Declined(u) => Plain::Declined(u),
            InviteStatus::Accepted(u) => Plain::Accepted(u),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InviteStatus, D::Error> {
        Ok(match Plain::deserialize(d)? {
            Plain::Pending => InviteStatus::Pending,
            Plain::Revoked => InviteStatus::Revoked,
            Plain::Declined(u) => InviteStatus::Declined(u),
            Plain::Accepted(u) => InviteStatus::Accepted(u),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Invite {
    pub email: String,
    pub role: Option<RoleId>,
    pub assignments: Vec<InviteAssignment>,
    pub grants: Vec<InviteGrant>,
    pub expires_at: Option<Timestamp>,
    pub guest: bool,
    /// Stored in checkpoints as a plain enum: the JSON form's tag and content fields need a
    /// self-describing format.
    #[serde(with = "plain_status")]
    pub status: InviteStatus,
    pub issued_by: UserId,
    pub seq: Seq,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InviteLink {
    pub token_hash: String,
    pub role: Option<RoleId>,
    pub max_uses: Option<u32>,
    pub uses: u32,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
    pub created_by: UserId,
    pub seq: Seq,
}

/// A scope seen by reference, for lookups that must not allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRef<'a> {
    Org,
    Team(&'a TeamId),
    Inbox(&'a InboxId),
}

impl<'a> ScopeRef<'a> {
    pub fn of(scope: &'a Scope) -> Self {
        match scope {
            Scope::Org => ScopeRef::Org,
            Scope::Team(t) => ScopeRef::Team(t),
            Scope::Inbox(i) => ScopeRef::Inbox(i),
        }
    }
    pub fn to_scope(self) -> Scope {
        match self {
            ScopeRef::Org => Scope::Org,
            ScopeRef::Team(t) => Scope::Team(t.clone()),
            ScopeRef::Inbox(i) => Scope::Inbox(i.clone()),
        }
    }
}

/// One value per scope, split by kind so that lookups take a borrowed id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScopedMap<T> {
    pub org: Option<T>,
    pub teams: VecMap<TeamId, T>,
    pub inboxes: VecMap<InboxId, T>,
}

impl<T> Default for ScopedMap<T> {
    fn default() -> Self {
        ScopedMap {
            org: None,
            teams: VecMap::new(),
            inboxes: VecMap::new(),
        }
    }
}

impl<T> ScopedMap<T> {
    pub fn get(&self, scope: ScopeRef<'_>) -> Option<&T> {
        match scope {
            ScopeRef::Org => self.org.as_ref(),
            ScopeRef::Team(t) => self.teams.get(t),
            ScopeRef::Inbox(i) => self.inboxes.get(i),
        }
    }
    pub fn get_mut(&mut self, scope: ScopeRef<'_>) -> Option<&mut T> {
        match scope {
            ScopeRef::Org => self.org.as_mut(),
            ScopeRef::Team(t) => self.teams.get_mut(t),
            ScopeRef::Inbox(i) => self.inboxes.get_mut(i),
        }
    }
    pub fn insert(&mut self, scope: &Scope, value: T) -> Option<T> {
        match scope {
            Scope::Org => self.org.replace(value),
            Scope::Team(t) => self.teams.insert(t.clone(), value),
            Scope::Inbox(i) => self.inboxes.insert(i.clone(), value),
        }
    }
    pub fn remove(&mut self, scope: ScopeRef<'_>) -> Option<T> {
        match scope {
            ScopeRef::Org => self.org.take(),
            ScopeRef::Team(t) => self.teams.remove(t),
            ScopeRef::Inbox(i) => self.inboxes.remove(i),
        }
    }
    pub fn entry_or_default(&mut self, scope: &Scope) -> &mut T
    where
        T: Default,
    {
        match scope {
            Scope::Org => self.org.get_or_insert_with(T::default),
            Scope::Team(t) => self.teams.get_or_insert_with(t, T::default),
            Scope::Inbox(i) => self.inboxes.get_or_insert_with(i, T::default),
        }
    }
    /// Every (scope, value), org first, then teams, then inboxes.
    pub fn iter(&self) -> impl Iterator<Item = (ScopeRef<'_>, &T)> {
        self.org
            .iter()
            .map(|v| (ScopeRef::Org, v))
            .chain(self.teams.iter().map(|(t, v)| (ScopeRef::Team(t), v)))
            .chain(self.inboxes.iter().map(|(i, v)| (ScopeRef::Inbox(i), v)))
    }
    pub fn is_empty(&self) -> bool {
        self.org.is_none() && self.teams.is_empty() && self.inboxes.is_empty()
    }
}

impl Role {
    pub fn new(def: &RoleDef, catalog: &Catalog, seq: Seq) -> Role {
        let mut role = Role {
            name: def.name.clone(),
            kind: def.kind,
            patterns: Arc::new(def.permissions.iter().cloned().collect()),
            effective: Arc::default(),
            seq,
        };
        role.recompute(catalog);
        role
    }

    pub fn recompute(&mut self, catalog: &Catalog) {
        let effective = effective_permissions(self.kind, self.patterns.iter(), catalog);
        // A catalog change recomputes every role; most keep what they had, and their sharing.
        if *self.effective != effective {
            self.effective = Arc::new(effective);
        }
    }
}

/// The catalog keys that a role of `kind` listing `patterns` carries.
pub fn effective_permissions<'a>(
    kind: ScopeKind,
    patterns: impl Iterator<Item = &'a Pattern>,
    catalog: &Catalog,
) -> BTreeSet<PermissionKey> {
    let mut out = BTreeSet::new();
    for p in patterns {
        for def in catalog.matching(p) {
            if def.kind.depth() >= kind.depth() && !is_billing(&def.key) {
                out.insert(def.key.clone());
            }
        }
    }
    out
}

impl Member {
    fn new(role: Option<RoleId>, guest: bool, seq: Seq) -> Member {
        let roles = ScopedMap {
            org: role.map(|role| Assignment {
                role,
                expires_at: None,
                seq,
            }),
            ..ScopedMap::default()
        };
        Member {
            status: MemberStatus::Active,
            status_seq: seq,
            guest,
            joined_seq: seq,
            roles,
            grants: ScopedMap::default(),
        }
    }
    pub fn is_active(&self) -> bool {
        self.status == MemberStatus::Active
    }
}

impl Org {
    /// The parent team of an inbox (None for the org or an inbox directly under it).
    pub fn inbox_team(&self, inbox: &InboxId) -> Option<&TeamId> {
        self.inboxes.get(inbox).and_then(|i| i.team.as_ref())
    }

    pub fn scope_exists(&self, scope: ScopeRef<'_>) -> bool {
        match scope {
            ScopeRef::Org => true,
            ScopeRef::Team(t) => self.teams.contains_key(t),
            ScopeRef::Inbox(i) => self.inboxes.contains_key(i),
        }
    }

    /// The scope and its ancestors, the scope first and the org last.
    pub fn lineage<'a>(&'a self, scope: ScopeRef<'a>) -> Lineage<'a> {
        crate::check::lineage(self, scope)
    }

    /// True when `inner` is `outer` or lies below it.
    pub fn is_within(&self, inner: ScopeRef<'_>, outer: ScopeRef<'_>) -> bool {
        self.lineage(inner).any(|s| s == outer)
    }

    /// Every existing scope, the org first.
    pub fn all_scopes(&self) -> impl Iterator<Item = ScopeRef<'_>> {
        std::iter::once(ScopeRef::Org)
            .chain(self.teams.keys().map(ScopeRef::Team))
            .chain(self.inboxes.keys().map(ScopeRef::Inbox))
    }

    /// Number of assignments (on any scope) of a role.
    pub fn role_holders(&self, role: &RoleId) -> Vec<(UserId, Scope)> {
        let mut out = Vec::new();
        for (user, m) in &self.members {
            for (scope, a) in m.roles.iter() {
                if &a.role == role {
                    out.push((user.clone(), scope.to_scope()));
                }
            }
        }
        // In user then scope order (org, teams, inboxes): events made from it must not depend on
        // how members are hashed.
        out.sort();
        out
    }

    fn forget_scope(&mut self, scope: ScopeRef<'_>) {
        for m in self.members.values_mut() {
            m.roles.remove(scope);
            m.grants.remove(scope);
        }
        self.masks.remove(scope);
    }

    fn recompute_roles(&mut self) {
        for role in self.roles.values_mut() {
            role.recompute(&self.catalog);
        }
    }
}

/// Up to three scopes from a scope up to the org.
#[derive(Debug, Clone)]
pub struct Lineage<'a> {
    items: [Option<ScopeRef<'a>>; 3],
    next: usize,
}

impl<'a> Lineage<'a> {
    pub(crate) fn new(items: [Option<ScopeRef<'a>>; 3]) -> Self {
        Lineage { items, next: 0 }
    }
}

impl<'a> Iterator for Lineage<'a> {
    type Item = ScopeRef<'a>;
    fn next(&mut self) -> Option<ScopeRef<'a>> {
        let item = self.items.get(self.next).copied().flatten();
        self.next += 1;
        item
    }
}

impl State {
    pub fn org(&self, id: &OrgId) -> Option<&Org> {
        self.orgs.get(id)
    }

    /// Moves the position and the last time past an event without folding it (`apply` does
    /// this first; a reader holding some orgs only does this alone for the others' events).
    pub fn pass(&mut self, meta: &crate::EventMeta) {
        self.seq = meta.seq;
        self.last_time = Some(
            self.last_time
                .map_or(meta.recorded_at, |t| t.max(meta.recorded_at)),
        );
    }

    /// Folds one recorded event in. Events are facts already decided, so this never refuses;
    /// an event that names something absent changes nothing about it.
    pub fn apply(&mut self, event: &Event) {
        let meta = &event.meta;
        self.pass(meta);
        if let EventPayload::OrgCreated(e) = &event.payload {
            let mut catalog = Catalog::default();
            for def in &e.catalog {
                catalog.insert(def.clone());
            }
            let roles = e
                .roles
                .iter()
                .map(|r| (r.role.clone(), Role::new(r, &catalog, meta.seq)))
                .collect();
            let mut members = Hashed::default();
            members.insert(
                e.owner.clone(),
                Box::new(Member::new(e.owner_role.clone(), false, meta.seq)),
            );
            self.orgs.insert(
                meta.org.clone(),
                Org {
                    id: meta.org.clone(),
                    name: e.name.clone(),
                    preset: e.preset,
                    version: meta.org_version,
                    owner: e.owner.clone(),
                    owner_seq: meta.seq,
                    catalog,
                    roles,
                    defaults: e.defaults.clone(),
                    teams: BTreeMap::new(),
                    inboxes: BTreeMap::new(),
                    members,
                    masks: ScopedMap::default(),
                    invites: BTreeMap::new(),
                    links: BTreeMap::new(),
                },
            );
            return;
        }
        if let Some(org) = self.orgs.get_mut(&meta.org) {
            org.apply(event);
        }
    }
}

impl Org {
    /// Folds in one event of this org (not its creation, which makes the org).
    pub fn apply(&mut self, event: &Event) {
        self.version = event.meta.org_version;
        apply_to_org(self, event);
    }
}

fn apply_to_org(org: &mut Org, event: &Event) {
    let seq = event.meta.seq;
    match &event.payload {
        EventPayload::OrgCreated(_) => {}
        EventPayload::OrgRenamed(e) => org.name = e.name.clone(),
        EventPayload::DefaultRoleSet(e) => org.defaults.set(e.kind, Some(e.role.clone())),
        EventPayload::PermissionDeclared(e) => {
            org.catalog.insert(PermissionDef {
                key: e.key.clone(),
                kind: e.kind,
                description: e.description.clone(),
            });
            org.recompute_roles();
        }
        EventPayload::RoleDefined(def) => {
            let role = Role::new(def, &org.catalog, seq);
            org.roles.insert(def.role.clone(), role);
        }
        EventPayload::RoleChanged(e) => {
            if let Some(role) = org.roles.get_mut(&e.role) {
                let patterns = Arc::make_mut(&mut role.patterns);
                for p in &e.removed {
                    patterns.remove(p);
                }
                patterns.extend(e.added.iter().cloned());
                role.seq = seq;
                role.recompute(&org.catalog);
            }
        }
        EventPayload::RoleRenamed(e) => {
            if let Some(role) = org.roles.get_mut(&e.role) {
                role.name = e.name.clone();
            }
        }
        EventPayload::RoleDeleted(e) => {
            org.roles.remove(&e.role);
            for kind in [ScopeKind::Org, ScopeKind::Team, ScopeKind::Inbox] {
                if org.defaults.get(kind) == Some(&e.role) {
                    org.defaults.set(kind, e.moved_to.clone());
                }
            }
            // Holders were moved by the role_assigned events before this one; any left lose it.
            for m in org.members.values_mut() {
                if m.roles.org.as_ref().is_some_and(|a| a.role == e.role) {
                    m.roles.org = None;
                }
                m.roles.teams.retain(|_, a| a.role != e.role);
                m.roles.inboxes.retain(|_, a| a.role != e.role);
            }
        }
        EventPayload::TeamCreated(e) => {
            org.teams.insert(
                e.team.clone(),
                Team {
                    name: e.name.clone(),
                    seq,
                },
            );
        }
        EventPayload::TeamRenamed(e) => {
            if let Some(t) = org.teams.get_mut(&e.team) {
                t.name = e.name.clone();
            }
        }
        EventPayload::TeamDeleted(e) => {
            let inboxes: Vec<InboxId> = org
                .inboxes
                .iter()
                .filter(|(_, i)| i.team.as_ref() == Some(&e.team))
                .map(|(id, _)| id.clone())
                .collect();
            for inbox in &inboxes {
                org.inboxes.remove(inbox);
                org.forget_scope(ScopeRef::Inbox(inbox));
            }
            org.teams.remove(&e.team);
            org.forget_scope(ScopeRef::Team(&e.team));
        }
        EventPayload::InboxCreated(e) => {
            org.inboxes.insert(
                e.inbox.clone(),
                Inbox {
                    name: e.name.clone(),
                    team: e.team.clone(),
                    seq,
                },
            );
        }
        EventPayload::InboxRenamed(e) => {
            if let Some(i) = org.inboxes.get_mut(&e.inbox) {
                i.name = e.name.clone();
            }
        }
        EventPayload::InboxMoved(e) => {
            if let Some(i) = org.inboxes.get_mut(&e.inbox) {
                i.team = e.to.clone();
            }
        }
        EventPayload::InboxDeleted(e) => {
            org.inboxes.remove(&e.inbox);
            org.forget_scope(ScopeRef::Inbox(&e.inbox));
        }
        EventPayload::InviteIssued(e) => {
            org.invites.insert(
                e.invite.clone(),
                Invite {
                    email: e.email.clone(),
                    role: e.role.clone(),
                    assignments: e.assignments.clone(),
                    grants: e.grants.clone(),
                    expires_at: e.expires_at,
                    guest: e.guest,
                    status: InviteStatus::Pending,
                    issued_by: event.meta.actor.clone(),
                    seq,
                },
            );
        }
        EventPayload::InviteRevoked(e) => set_invite_status(org, &e.invite, InviteStatus::Revoked),
        EventPayload::InviteDeclined(e) => {
            set_invite_status(org, &e.invite, InviteStatus::Declined(e.user.clone()))
        }
        EventPayload::InviteAccepted(e) => {
            set_invite_status(org, &e.invite, InviteStatus::Accepted(e.user.clone()))
        }
        EventPayload::InviteLinkCreated(e) => {
            org.links.insert(
                e.link.clone(),
                InviteLink {
                    token_hash: e.token_hash.clone(),
                    role: e.role.clone(),
                    max_uses: e.max_uses,
                    uses: 0,
                    expires_at: e.expires_at,
                    revoked: false,
                    created_by: event.meta.actor.clone(),
                    seq,
                },
            );
        }
        EventPayload::InviteLinkRevoked(e) => {
            if let Some(l) = org.links.get_mut(&e.link) {
                l.revoked = true;
            }
        }
        EventPayload::MemberJoined(e) => {
            if let JoinedVia::Link(link) = &e.via {
                if let Some(l) = org.links.get_mut(link) {
                    l.uses = l.uses.saturating_add(1);
                }
            }
            org.members.insert(
                e.user.clone(),
                Box::new(Member::new(e.role.clone(), e.guest, seq)),
            );
        }
        EventPayload::RoleAssigned(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                m.roles.insert(
                    &e.scope,
                    Assignment {
                        role: e.role.clone(),
                        expires_at: e.expires_at,
                        seq,
                    },
                );
            }
        }
        EventPayload::Unassigned(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                m.roles.remove(ScopeRef::of(&e.scope));
            }
        }
        EventPayload::PermissionGranted(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                m.grants.entry_or_default(&e.scope).insert(
                    e.permission.clone(),
                    GrantFact {
                        expires_at: e.expires_at,
                        seq,
                    },
                );
            }
        }
        EventPayload::PermissionRevoked(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                let scope = ScopeRef::of(&e.scope);
                if let Some(g) = m.grants.get_mut(scope) {
                    g.remove(&e.permission);
                    if g.is_empty() {
                        m.grants.remove(scope);
                    }
                }
            }
        }
        EventPayload::PermissionMasked(e) => {
            org.masks
                .entry_or_default(&e.scope)
                .insert(e.pattern.clone(), seq);
        }
        EventPayload::PermissionUnmasked(e) => {
            let scope = ScopeRef::of(&e.scope);
            if let Some(m) = org.masks.get_mut(scope) {
                m.remove(&e.pattern);
                if m.is_empty() {
                    org.masks.remove(scope);
                }
            }
        }
        EventPayload::MemberSuspended(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                m.status = MemberStatus::Suspended;
                m.status_seq = seq;
            }
        }
        EventPayload::MemberReactivated(e) => {
            if let Some(m) = org.members.get_mut(&e.user) {
                m.status = MemberStatus::Active;
                m.status_seq = seq;
            }
        }
        EventPayload::MemberRemoved(e) => {
            org.members.remove(&e.user);
        }
        EventPayload::MemberLeft(e) => {
            org.members.remove(&e.user);
        }
        EventPayload::OwnershipTransferred(e) => {
            org.owner = e.to.clone();
            org.owner_seq = seq;
            if let Some(m) = org.members.get_mut(&e.from) {
                m.roles.org = e.former_owner_role.clone().map(|role| Assignment {
                    role,
                    expires_at: None,
                    seq,
                });
            }
        }
    }
}

fn set_invite_status(org: &mut Org, invite: &InviteId, status: InviteStatus) {
    if let Some(i) = org.invites.get_mut(invite) {
        i.status = status;
    }
}
