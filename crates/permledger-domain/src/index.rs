//! The check index: one org's present compiled for the question asked on every request, "may this
//! user do this here, now?".
//!
//! `check::check` over the live `Org` follows about ten pointers per question (the member's slot,
//! then a map per scope for roles and another per scope for grants, the inbox, the role and its
//! set of keys), each a cache miss in an org of a hundred thousand members; on a virtual machine a
//! miss costs 200 to 300 ns. Here ids are numbered once: permissions, roles and scopes by small
//! integers, each role's keys as a bit set, and a member's roles and grants sit together in one
//! short array, inline in the member's slot of the hash table when there are one or two. A check
//! then reads that slot and tables small enough to stay in cache.
//!
//! The index is derived from the live `Org` after each event (`follow`), never from the event's
//! details alone: whatever the event changed, the index copies it from the state that the rule of
//! a check is written against. Numbers are never reused: a deleted role's or scope's number stays
//! dead, so a fact left pointing at it can never match again, exactly as the live state drops it.
//! `CheckIndex::check` answers as `check::check` does (tested by property against it, after every
//! event of random histories).

use smallvec::SmallVec;

use crate::catalog::{is_administrative, is_billing};
use crate::event::{Event, EventPayload};
use crate::ids::{InboxId, RoleId, Scope, ScopeKind, TeamId, Timestamp, UserId};
use crate::state::{Hashed, MemberStatus, Org, ScopeRef};
use crate::PermissionKey;

/// The org's own scope.
const ORG: u32 = 0;
/// No scope: an unused place in a lineage.
const NONE: u32 = u32::MAX;
/// A fact's `what` with this bit set is a grant of a permission, otherwise a role.
const GRANT: u32 = 1 << 31;
/// A fact's `what` with this bit set expires (at `expires`).
const EXPIRES: u32 = 1 << 30;
/// What remains of `what` once the flags are off: a role's or a permission's number (numbered
/// from 0 as they first appear; an org would need a billion role definitions to reach the flags).
const NUMBER: u32 = EXPIRES - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Perm {
    n: u32,
    kind: ScopeKind,
    administrative: bool,
    billing: bool,
}

/// A role held or a permission granted on a scope, until an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexedFact {
    scope: u32,
    /// A role's or a permission's number, with the flags `GRANT` and `EXPIRES`.
    what: u32,
    /// Microseconds since the epoch, read only with `EXPIRES`.
    expires: i64,
}

impl IndexedFact {
    fn new(scope: u32, what: u32, expires_at: Option<Timestamp>) -> IndexedFact {
        match expires_at {
            Some(t) => IndexedFact {
                scope,
                what: what | EXPIRES,
                expires: t.micros(),
            },
            None => IndexedFact {
                scope,
                what,
                expires: 0,
            },
        }
    }
}

/// Most members hold one or two roles or grants: those sit in the member's own slot of the hash
/// table, so that a check reads no memory beyond it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberFacts {
    active: bool,
    facts: SmallVec<[IndexedFact; 2]>,
}

/// A set of permission numbers (inline up to 128 of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Bits(SmallVec<[u64; 2]>);

impl Bits {
    fn set(&mut self, n: u32) {
        let (word, bit) = ((n / 64) as usize, n % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }
    fn has(&self, n: u32) -> bool {
        self.0
            .get((n / 64) as usize)
            .is_some_and(|w| w & (1 << (n % 64)) != 0)
    }
}

/// One org's present, numbered for checks. See the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIndex {
    owner: UserId,
    members: Hashed<UserId, MemberFacts>,
    perms: Hashed<PermissionKey, Perm>,
    role_numbers: Hashed<RoleId, u32>,
    /// By role number: the permission numbers the role carries (empty once deleted).
    roles: Vec<Bits>,
    teams: Hashed<TeamId, u32>,
    /// An inbox's number and its parent's (a team's, or the org's).
    inboxes: Hashed<InboxId, (u32, u32)>,
    /// The next scope number (0 is the org).
    next_scope: u32,
    /// By scope number: the permissions masked there. Empty when the org masks nothing.
    masked: Hashed<u32, Bits>,
}

impl CheckIndex {
    /// The index of an org as it stands.
    pub fn build(org: &Org) -> CheckIndex {
        let mut index = CheckIndex {
            owner: org.owner.clone(),
            members: Hashed::default(),
            perms: Hashed::default(),
            role_numbers: Hashed::default(),
            roles: Vec::new(),
            teams: Hashed::default(),
            inboxes: Hashed::default(),
            next_scope: ORG + 1,
            masked: Hashed::default(),
        };
        index.sync_catalog_and_roles(org);
        for team in org.teams.keys() {
            index.add_team(team);
        }
        for (inbox, i) in &org.inboxes {
            index.place_inbox(inbox, i.team.as_ref());
        }
        index.sync_masks(org);
        index.members.reserve(org.members.len());
        for user in org.members.keys() {
            index.sync_member(org, user);
        }
        index
    }

    /// Follows one event of the org, already folded into `org`.
    pub fn follow(&mut self, org: &Org, event: &Event) {
        use EventPayload as P;
        match &event.payload {
            P::PermissionDeclared(_) => {
                self.sync_catalog_and_roles(org);
                self.sync_masks(org);
            }
            P::RoleDefined(_) | P::RoleChanged(_) | P::RoleDeleted(_) => {
                // A deleted role's holders lose it: its number carries nothing any more.
                self.sync_catalog_and_roles(org);
            }
            P::TeamCreated(e) => self.add_team(&e.team),
            P::InboxCreated(e) => self.place_inbox(&e.inbox, e.team.as_ref()),
            P::InboxMoved(e) => self.place_inbox(&e.inbox, e.to.as_ref()),
            P::InboxDeleted(e) => {
                self.inboxes.remove(&e.inbox);
                self.sync_masks(org);
            }
            P::TeamDeleted(e) => {
                // Its inboxes went with it.
                if let Some(team) = self.teams.remove(&e.team) {
                    self.inboxes.retain(|_, (_, parent)| *parent != team);
                }
                self.sync_masks(org);
            }
            P::PermissionMasked(_) | P::PermissionUnmasked(_) => self.sync_masks(org),
            P::MemberJoined(e) => self.sync_member(org, &e.user),
            P::RoleAssigned(e) => self.sync_member(org, &e.user),
            P::Unassigned(e) => self.sync_member(org, &e.user),
            P::PermissionGranted(e) => self.sync_member(org, &e.user),
            P::PermissionRevoked(e) => self.sync_member(org, &e.user),
            P::MemberSuspended(e) => self.sync_member(org, &e.user),
            P::MemberReactivated(e) => self.sync_member(org, &e.user),
            P::MemberRemoved(e) => self.sync_member(org, &e.user),
            P::MemberLeft(e) => self.sync_member(org, &e.user),
            P::OwnershipTransferred(e) => {
                // The former owner may keep an org role; the new one's facts stay as they were.
                self.owner = org.owner.clone();
                self.sync_member(org, &e.from);
            }
            P::OrgCreated(_)
            | P::OrgRenamed(_)
            | P::DefaultRoleSet(_)
            | P::RoleRenamed(_)
            | P::TeamRenamed(_)
            | P::InboxRenamed(_)
            | P::InviteIssued(_)
            | P::InviteRevoked(_)
            | P::InviteDeclined(_)
            | P::InviteAccepted(_)
            | P::InviteLinkCreated(_)
            | P::InviteLinkRevoked(_) => {}
        }
    }

    /// domain.md's rule of a check, as `check::check` states it, at the org's present.
    pub fn check(&self, user: &UserId, key: &PermissionKey, scope: &Scope, at: Timestamp) -> bool {
        let Some(member) = self.members.get(user) else {
            return false;
        };
        if !member.active {
            return false;
        }
        let Some(perm) = self.perms.get(key) else {
            return false;
        };
        if perm.kind != scope.kind() {
            return false;
        }
        let Some(lineage) = self.lineage(scope) else {
            return false;
        };
        if !perm.administrative
            && !self.masked.is_empty()
            && lineage
                .iter()
                .any(|s| self.masked.get(s).is_some_and(|m| m.has(perm.n)))
        {
            return false;
        }
        if self.owner == *user {
            return true;
        }
        if perm.billing {
            return false;
        }
        let at = at.micros();
        member.facts.iter().any(|f| {
            lineage.contains(&f.scope)
                && (f.what & EXPIRES == 0 || at < f.expires)
                && if f.what & GRANT != 0 {
                    f.what & NUMBER == perm.n
                } else {
                    self.roles[(f.what & NUMBER) as usize].has(perm.n)
                }
        })
    }

    /// The scope and its ancestors by number; None when the scope does not exist.
    fn lineage(&self, scope: &Scope) -> Option<[u32; 3]> {
        Some(match scope {
            Scope::Org => [ORG, NONE, NONE],
            Scope::Team(t) => [*self.teams.get(t)?, ORG, NONE],
            Scope::Inbox(i) => {
                let (inbox, parent) = *self.inboxes.get(i)?;
                [inbox, parent, ORG]
            }
        })
    }

    fn scope_number(&self, scope: ScopeRef<'_>) -> Option<u32> {
        match scope {
            ScopeRef::Org => Some(ORG),
            ScopeRef::Team(t) => self.teams.get(t).copied(),
            ScopeRef::Inbox(i) => self.inboxes.get(i).map(|(n, _)| *n),
        }
    }

    fn new_scope(&mut self) -> u32 {
        let n = self.next_scope;
        self.next_scope += 1;
        n
    }

    fn add_team(&mut self, team: &TeamId) {
        let n = self.new_scope();
        self.teams.insert(team.clone(), n);
    }

    /// Numbers a new inbox, or moves one, under `team` (the org when None).
    fn place_inbox(&mut self, inbox: &InboxId, team: Option<&TeamId>) {
        let parent = team.and_then(|t| self.teams.get(t).copied()).unwrap_or(ORG);
        let n = match self.inboxes.get(inbox) {
            Some((n, _)) => *n,
            None => self.new_scope(),
        };
        self.inboxes.insert(inbox.clone(), (n, parent));
    }

    /// Numbers new permissions (the catalog only grows) and copies every role's keys.
    fn sync_catalog_and_roles(&mut self, org: &Org) {
        for def in org.catalog.iter() {
            if !self.perms.contains_key(&def.key) {
                let n = self.perms.len() as u32;
                self.perms.insert(
                    def.key.clone(),
                    Perm {
                        n,
                        kind: def.kind,
                        administrative: is_administrative(&def.key),
                        billing: is_billing(&def.key),
                    },
                );
            }
        }
        let gone: Vec<RoleId> = self
            .role_numbers
            .keys()
            .filter(|r| !org.roles.contains_key(*r))
            .cloned()
            .collect();
        for role in gone {
            if let Some(n) = self.role_numbers.remove(&role) {
                self.roles[n as usize] = Bits::default();
            }
        }
        for (id, role) in &org.roles {
            let n = match self.role_numbers.get(id) {
                Some(n) => *n,
                None => {
                    let n = self.roles.len() as u32;
                    self.roles.push(Bits::default());
                    self.role_numbers.insert(id.clone(), n);
                    n
                }
            };
            let mut bits = Bits::default();
            for key in role.effective.iter() {
                if let Some(p) = self.perms.get(key) {
                    bits.set(p.n);
                }
            }
            self.roles[n as usize] = bits;
        }
    }

    fn sync_masks(&mut self, org: &Org) {
        self.masked.clear();
        for (scope, patterns) in org.masks.iter() {
            let Some(n) = self.scope_number(scope) else {
                continue;
            };
            let mut bits = Bits::default();
            for def in org.catalog.iter() {
                if patterns.iter().any(|(p, _)| p.matches(&def.key)) {
                    if let Some(p) = self.perms.get(&def.key) {
                        bits.set(p.n);
                    }
                }
            }
            self.masked.insert(n, bits);
        }
    }

    /// Copies one member's status, roles and grants from the live org (or forgets a former member).
    fn sync_member(&mut self, org: &Org, user: &UserId) {
        let Some(m) = org.members.get(user) else {
            self.members.remove(user);
            return;
        };
        let mut facts = SmallVec::new();
        for (scope, a) in m.roles.iter() {
            if let (Some(scope), Some(role)) =
                (self.scope_number(scope), self.role_numbers.get(&a.role))
            {
                facts.push(IndexedFact::new(scope, *role, a.expires_at));
            }
        }
        for (scope, grants) in m.grants.iter() {
            let Some(scope) = self.scope_number(scope) else {
                continue;
            };
            for (key, g) in grants.iter() {
                if let Some(p) = self.perms.get(key) {
                    facts.push(IndexedFact::new(scope, GRANT | p.n, g.expires_at));
                }
            }
        }
        self.members.insert(
            user.clone(),
            MemberFacts {
                active: m.status == MemberStatus::Active,
                facts,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn bit_sets_hold_numbers_past_their_inline_words() {
        let held = [0, 63, 64, 127, 128, 300];
        let mut bits = Bits::default();
        for n in held {
            bits.set(n);
        }
        for n in held {
            assert!(bits.has(n), "{n}");
        }
        for n in [1, 62, 65, 129, 299, 301, 10_000] {
            assert!(!bits.has(n), "{n}");
        }
    }
}
