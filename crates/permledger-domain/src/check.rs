//! The rule of a check (domain.md), its explanation, and the queries built on it. Every answer is
//! judged at a moment `at`, against which expiries are compared.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::Pattern;
use crate::catalog::{is_administrative, is_billing, PermissionKey};
use crate::ids::{InboxId, TeamId};
use crate::ids::{RoleId, Scope, ScopeKind, Seq, Timestamp, UserId};
use crate::state::{Assignment, GrantFact, Lineage, MemberStatus, Org, ScopeRef};

/// A fact that allows a check, with the event that created it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case", tag = "fact")]
pub enum Fact {
    Owner {
        seq: Seq,
    },
    Role {
        role: RoleId,
        scope: Scope,
        seq: Seq,
        expires_at: Option<Timestamp>,
    },
    Grant {
        permission: PermissionKey,
        scope: Scope,
        seq: Seq,
        expires_at: Option<Timestamp>,
    },
}

/// Why a check answered false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "denial")]
pub enum Denial {
    /// The user is not a member of the org (or the org does not exist).
    NotMember,
    /// The user is a suspended member.
    Suspended { seq: Seq },
    /// The permission is not in the org's catalog.
    UnknownPermission,
    /// The scope does not exist.
    UnknownScope,
    /// The permission is of another kind than the scope.
    KindMismatch { permission_kind: ScopeKind },
    /// A mask on the scope or an ancestor hides the permission.
    Masked {
        scope: Scope,
        pattern: String,
        seq: Seq,
    },
    /// No role or grant carries the permission there (expired ones are listed).
    NoFact { expired: Vec<Fact> },
}

/// A check's answer with the facts that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Explanation {
    pub allowed: bool,
    /// Every fact that allows it (empty when denied).
    pub facts: Vec<Fact>,
    pub denial: Option<Denial>,
}

impl Explanation {
    fn denied(d: Denial) -> Self {
        Explanation {
            allowed: false,
            facts: Vec::new(),
            denial: Some(d),
        }
    }
}

/// Whether something with this expiry still holds at `at`: strictly before its expiry.
pub fn live(expires_at: Option<Timestamp>, at: Timestamp) -> bool {
    expires_at.is_none_or(|e| at < e)
}

/// What a check needs to read of an org. The live `Org` implements it, and so does a view of an
/// org's history at a past position, so that the rule of a check is written once.
pub trait AccessView {
    /// The owner, and the event that made them the owner.
    fn owner(&self) -> (&UserId, Seq);
    /// The member's status and the event that set it; None when not a member.
    fn member(&self, user: &UserId) -> Option<(MemberStatus, Seq)>;
    fn permission_kind(&self, key: &PermissionKey) -> Option<ScopeKind>;
    /// Every catalog key with its kind, in key order.
    fn catalog_keys(&self) -> impl Iterator<Item = (&PermissionKey, ScopeKind)>;
    fn team_exists(&self, team: &TeamId) -> bool;
    /// None when the inbox does not exist; `Some(None)` when it sits directly under the org.
    fn inbox_parent(&self, inbox: &InboxId) -> Option<Option<&TeamId>>;
    fn role_carries(&self, role: &RoleId, key: &PermissionKey) -> bool;
    fn assignment(&self, user: &UserId, scope: ScopeRef<'_>) -> Option<&Assignment>;
    fn grant(&self, user: &UserId, scope: ScopeRef<'_>, key: &PermissionKey) -> Option<&GrantFact>;
    fn has_masks(&self) -> bool;
    fn masks_on(&self, scope: ScopeRef<'_>) -> impl Iterator<Item = (&Pattern, Seq)>;
    /// Every member, in id order.
    fn user_ids(&self) -> impl Iterator<Item = &UserId>;
    fn team_ids(&self) -> impl Iterator<Item = &TeamId>;
    fn inbox_ids(&self) -> impl Iterator<Item = &InboxId>;
}

/// The scope and its ancestors, the scope first and the org last.
pub fn lineage<'a, V: AccessView>(v: &'a V, scope: ScopeRef<'a>) -> Lineage<'a> {
    match scope {
        ScopeRef::Org => Lineage::new([Some(ScopeRef::Org), None, None]),
        ScopeRef::Team(t) => Lineage::new([Some(ScopeRef::Team(t)), Some(ScopeRef::Org), None]),
        ScopeRef::Inbox(i) => match v.inbox_parent(i).flatten() {
            Some(t) => Lineage::new([
                Some(ScopeRef::Inbox(i)),
                Some(ScopeRef::Team(t)),
                Some(ScopeRef::Org),
            ]),
            None => Lineage::new([Some(ScopeRef::Inbox(i)), Some(ScopeRef::Org), None]),
        },
    }
}

pub fn scope_exists<V: AccessView>(v: &V, scope: ScopeRef<'_>) -> bool {
    match scope {
        ScopeRef::Org => true,
        ScopeRef::Team(t) => v.team_exists(t),
        ScopeRef::Inbox(i) => v.inbox_parent(i).is_some(),
    }
}

/// Every existing scope, the org first.
pub fn all_scopes<V: AccessView>(v: &V) -> impl Iterator<Item = ScopeRef<'_>> {
    std::iter::once(ScopeRef::Org)
        .chain(v.team_ids().map(ScopeRef::Team))
        .chain(v.inbox_ids().map(ScopeRef::Inbox))
}

fn active<V: AccessView>(v: &V, user: &UserId) -> bool {
    matches!(v.member(user), Some((MemberStatus::Active, _)))
}

/// The mask on the scope or an ancestor that hides a product permission, if any.
pub fn mask_hiding<V: AccessView>(
    v: &V,
    key: &PermissionKey,
    scope: ScopeRef<'_>,
) -> Option<(Scope, String, Seq)> {
    if !v.has_masks() || is_administrative(key) {
        return None;
    }
    for s in lineage(v, scope) {
        for (pattern, seq) in v.masks_on(s) {
            if pattern.matches(key) {
                return Some((s.to_scope(), pattern.to_string(), seq));
            }
        }
    }
    None
}

/// Whether the user's roles or grants on the scope or its ancestors carry the permission at `at`,
/// regardless of kinds and masks.
fn carried<V: AccessView>(
    v: &V,
    user: &UserId,
    key: &PermissionKey,
    scope: ScopeRef<'_>,
    at: Timestamp,
) -> bool {
    lineage(v, scope).any(|s| {
        v.assignment(user, s)
            .is_some_and(|a| live(a.expires_at, at) && v.role_carries(&a.role, key))
            || v.grant(user, s, key)
                .is_some_and(|g| live(g.expires_at, at))
    })
}

/// domain.md's rule of a check.
pub fn check<V: AccessView>(
    v: &V,
    user: &UserId,
    key: &PermissionKey,
    scope: &Scope,
    at: Timestamp,
) -> bool {
    if !active(v, user) {
        return false;
    }
    let sref = ScopeRef::of(scope);
    if v.permission_kind(key) != Some(scope.kind()) || !scope_exists(v, sref) {
        return false;
    }
    if mask_hiding(v, key, sref).is_some() {
        return false;
    }
    if v.owner().0 == user {
        return true;
    }
    !is_billing(key) && carried(v, user, key, sref, at)
}

/// The check with every fact that decided it.
pub fn explain<V: AccessView>(
    v: &V,
    user: &UserId,
    key: &PermissionKey,
    scope: &Scope,
    at: Timestamp,
) -> Explanation {
    let Some((status, status_seq)) = v.member(user) else {
        return Explanation::denied(Denial::NotMember);
    };
    if status != MemberStatus::Active {
        return Explanation::denied(Denial::Suspended { seq: status_seq });
    }
    let sref = ScopeRef::of(scope);
    let Some(kind) = v.permission_kind(key) else {
        return Explanation::denied(Denial::UnknownPermission);
    };
    if !scope_exists(v, sref) {
        return Explanation::denied(Denial::UnknownScope);
    }
    if kind != scope.kind() {
        return Explanation::denied(Denial::KindMismatch {
            permission_kind: kind,
        });
    }
    if let Some((scope, pattern, seq)) = mask_hiding(v, key, sref) {
        return Explanation::denied(Denial::Masked {
            scope,
            pattern,
            seq,
        });
    }
    let mut facts = Vec::new();
    let mut expired = Vec::new();
    let (owner, owner_seq) = v.owner();
    if owner == user {
        facts.push(Fact::Owner { seq: owner_seq });
    }
    if !is_billing(key) {
        for s in lineage(v, sref) {
            if let Some(a) = v.assignment(user, s) {
                if v.role_carries(&a.role, key) {
                    let fact = Fact::Role {
                        role: a.role.clone(),
                        scope: s.to_scope(),
                        seq: a.seq,
                        expires_at: a.expires_at,
                    };
                    if live(a.expires_at, at) {
                        facts.push(fact)
                    } else {
                        expired.push(fact)
                    }
                }
            }
            if let Some(g) = v.grant(user, s, key) {
                let fact = Fact::Grant {
                    permission: key.clone(),
                    scope: s.to_scope(),
                    seq: g.seq,
                    expires_at: g.expires_at,
                };
                if live(g.expires_at, at) {
                    facts.push(fact)
                } else {
                    expired.push(fact)
                }
            }
        }
    }
    if facts.is_empty() {
        Explanation::denied(Denial::NoFact { expired })
    } else {
        Explanation {
            allowed: true,
            facts,
            denial: None,
        }
    }
}

/// Whether an actor holds a permission at a scope for the purpose of authority: the owner
/// always; anyone else through a live role or grant on the scope or an ancestor. A permission of a
/// kind below the scope's is held "at" the scope when it reaches everything under it.
/// Administrative permissions are never masked, so masks play no part.
pub fn holds_at<V: AccessView>(
    v: &V,
    user: &UserId,
    key: &PermissionKey,
    scope: &Scope,
    at: Timestamp,
) -> bool {
    if !active(v, user) {
        return false;
    }
    if v.owner().0 == user {
        return true;
    }
    !is_billing(key) && carried(v, user, key, ScopeRef::of(scope), at)
}

/// Every catalog key the user holds on the scope.
pub fn permissions<V: AccessView>(
    v: &V,
    user: &UserId,
    scope: &Scope,
    at: Timestamp,
) -> Vec<PermissionKey> {
    v.catalog_keys()
        .filter(|(_, kind)| *kind == scope.kind())
        .filter(|(k, _)| check(v, user, k, scope, at))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Every user holding the permission on the scope.
pub fn who_can<V: AccessView>(
    v: &V,
    key: &PermissionKey,
    scope: &Scope,
    at: Timestamp,
) -> Vec<UserId> {
    v.user_ids()
        .filter(|u| check(v, u, key, scope, at))
        .cloned()
        .collect()
}

/// Every scope (optionally of one kind) where the user holds the permission.
pub fn scopes<V: AccessView>(
    v: &V,
    user: &UserId,
    key: &PermissionKey,
    kind: Option<ScopeKind>,
    at: Timestamp,
) -> Vec<Scope> {
    all_scopes(v)
        .map(ScopeRef::to_scope)
        .filter(|s| kind.is_none_or(|k| s.kind() == k))
        .filter(|s| check(v, user, key, s, at))
        .collect()
}

/// The members of a scope with their role there: every org member for the org (`None` when
/// holding no live org role), the holders of a live role on a team or inbox otherwise.
pub fn members_of<V: AccessView>(
    v: &V,
    scope: &Scope,
    at: Timestamp,
) -> BTreeMap<UserId, Option<RoleId>> {
    let sref = ScopeRef::of(scope);
    if !scope_exists(v, sref) {
        return BTreeMap::new();
    }
    v.user_ids()
        .filter_map(|u| {
            let role = v
                .assignment(u, sref)
                .filter(|a| live(a.expires_at, at))
                .map(|a| a.role.clone());
            match sref {
                ScopeRef::Org => Some((u.clone(), role)),
                _ => role.map(|r| (u.clone(), Some(r))),
            }
        })
        .collect()
}

impl AccessView for Org {
    fn owner(&self) -> (&UserId, Seq) {
        (&self.owner, self.owner_seq)
    }
    fn member(&self, user: &UserId) -> Option<(MemberStatus, Seq)> {
        self.members.get(user).map(|m| (m.status, m.status_seq))
    }
    fn permission_kind(&self, key: &PermissionKey) -> Option<ScopeKind> {
        self.catalog.get(key).map(|d| d.kind)
    }
    fn catalog_keys(&self) -> impl Iterator<Item = (&PermissionKey, ScopeKind)> {
        self.catalog.iter().map(|d| (&d.key, d.kind))
    }
    fn team_exists(&self, team: &TeamId) -> bool {
        self.teams.contains_key(team)
    }
    fn inbox_parent(&self, inbox: &InboxId) -> Option<Option<&TeamId>> {
        self.inboxes.get(inbox).map(|i| i.team.as_ref())
    }
    fn role_carries(&self, role: &RoleId, key: &PermissionKey) -> bool {
        self.roles
            .get(role)
            .is_some_and(|r| r.effective.contains(key))
    }
    fn assignment(&self, user: &UserId, scope: ScopeRef<'_>) -> Option<&Assignment> {
        self.members.get(user)?.roles.get(scope)
    }
    fn grant(&self, user: &UserId, scope: ScopeRef<'_>, key: &PermissionKey) -> Option<&GrantFact> {
        self.members.get(user)?.grants.get(scope)?.get(key)
    }
    fn has_masks(&self) -> bool {
        !self.masks.is_empty()
    }
    fn masks_on(&self, scope: ScopeRef<'_>) -> impl Iterator<Item = (&Pattern, Seq)> {
        self.masks
            .get(scope)
            .into_iter()
            .flat_map(|m| m.iter().map(|(p, s)| (p, *s)))
    }
    fn user_ids(&self) -> impl Iterator<Item = &UserId> {
        // Members are hashed; the trait promises id order.
        let mut ids: Vec<&UserId> = self.members.keys().collect();
        ids.sort_unstable();
        ids.into_iter()
    }
    fn team_ids(&self) -> impl Iterator<Item = &TeamId> {
        self.teams.keys()
    }
    fn inbox_ids(&self) -> impl Iterator<Item = &InboxId> {
        self.inboxes.keys()
    }
}

/// The queries as methods of the live org.
impl Org {
    pub fn check(&self, user: &UserId, key: &PermissionKey, scope: &Scope, at: Timestamp) -> bool {
        check(self, user, key, scope, at)
    }
    pub fn explain(
        &self,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> Explanation {
        explain(self, user, key, scope, at)
    }
    pub fn holds_at(
        &self,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> bool {
        holds_at(self, user, key, scope, at)
    }
    pub fn permissions(&self, user: &UserId, scope: &Scope, at: Timestamp) -> Vec<PermissionKey> {
        permissions(self, user, scope, at)
    }
    pub fn who_can(&self, key: &PermissionKey, scope: &Scope, at: Timestamp) -> Vec<UserId> {
        who_can(self, key, scope, at)
    }
    pub fn scopes(
        &self,
        user: &UserId,
        key: &PermissionKey,
        kind: Option<ScopeKind>,
        at: Timestamp,
    ) -> Vec<Scope> {
        scopes(self, user, key, kind, at)
    }
    pub fn members_of(&self, scope: &Scope, at: Timestamp) -> BTreeMap<UserId, Option<RoleId>> {
        members_of(self, scope, at)
    }
    pub fn mask_hiding(
        &self,
        key: &PermissionKey,
        scope: ScopeRef<'_>,
    ) -> Option<(Scope, String, Seq)> {
        mask_hiding(self, key, scope)
    }
}
