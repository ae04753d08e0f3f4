//! The rule of a check (domain.md), its explanation, and the queries built on it. Every answer is
//! judged at a moment `at`, against which expiries are compared.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{is_administrative, is_billing, PermissionKey};
use crate::ids::{RoleId, Scope, ScopeKind, Seq, Timestamp, UserId};
use crate::state::{Member, Org, ScopeRef};

/// A fact that allows a check, with the event that created it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn live(expires_at: Option<Timestamp>, at: Timestamp) -> bool {
    expires_at.is_none_or(|e| at < e)
}

impl Org {
    fn active_member(&self, user: &UserId) -> Option<&Member> {
        self.members.get(user).filter(|m| m.is_active())
    }

    /// The mask on the scope or an ancestor that hides a product permission, if any.
    pub fn mask_hiding(
        &self,
        key: &PermissionKey,
        scope: ScopeRef<'_>,
    ) -> Option<(Scope, String, Seq)> {
        if self.masks.is_empty() || is_administrative(key) {
            return None;
        }
        for s in self.lineage(scope) {
            if let Some(masks) = self.masks.get(s) {
                for (pattern, seq) in masks {
                    if pattern.matches(key) {
                        return Some((s.to_scope(), pattern.to_string(), *seq));
                    }
                }
            }
        }
        None
    }

    /// Whether the member's roles or grants on the scope or its ancestors carry the permission,
    /// regardless of kinds and masks.
    fn carried(&self, m: &Member, key: &PermissionKey, scope: ScopeRef<'_>, at: Timestamp) -> bool {
        self.lineage(scope).any(|s| {
            m.roles.get(s).is_some_and(|a| {
                live(a.expires_at, at)
                    && self
                        .roles
                        .get(&a.role)
                        .is_some_and(|r| r.effective.contains(key))
            }) || m
                .grants
                .get(s)
                .and_then(|g| g.get(key))
                .is_some_and(|g| live(g.expires_at, at))
        })
    }

    /// domain.md's rule of a check.
    pub fn check(&self, user: &UserId, key: &PermissionKey, scope: &Scope, at: Timestamp) -> bool {
        let Some(m) = self.active_member(user) else {
            return false;
        };
        let sref = ScopeRef::of(scope);
        let Some(def) = self.catalog.get(key) else {
            return false;
        };
        if def.kind != scope.kind() || !self.scope_exists(sref) {
            return false;
        }
        if self.mask_hiding(key, sref).is_some() {
            return false;
        }
        if &self.owner == user {
            return true;
        }
        !is_billing(key) && self.carried(m, key, sref, at)
    }

    /// The check with every fact that decided it.
    pub fn explain(
        &self,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> Explanation {
        let Some(m) = self.members.get(user) else {
            return Explanation::denied(Denial::NotMember);
        };
        if !m.is_active() {
            return Explanation::denied(Denial::Suspended { seq: m.status_seq });
        }
        let sref = ScopeRef::of(scope);
        let Some(def) = self.catalog.get(key) else {
            return Explanation::denied(Denial::UnknownPermission);
        };
        if !self.scope_exists(sref) {
            return Explanation::denied(Denial::UnknownScope);
        }
        if def.kind != scope.kind() {
            return Explanation::denied(Denial::KindMismatch {
                permission_kind: def.kind,
            });
        }
        if let Some((scope, pattern, seq)) = self.mask_hiding(key, sref) {
            return Explanation::denied(Denial::Masked {
                scope,
                pattern,
                seq,
            });
        }
        let mut facts = Vec::new();
        let mut expired = Vec::new();
        if &self.owner == user {
            facts.push(Fact::Owner {
                seq: self.owner_seq,
            });
        }
        if !is_billing(key) {
            for s in self.lineage(sref) {
                if let Some(a) = m.roles.get(s) {
                    if self
                        .roles
                        .get(&a.role)
                        .is_some_and(|r| r.effective.contains(key))
                    {
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
                if let Some(g) = m.grants.get(s).and_then(|g| g.get(key)) {
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
    pub fn holds_at(
        &self,
        user: &UserId,
        key: &PermissionKey,
        scope: &Scope,
        at: Timestamp,
    ) -> bool {
        let Some(m) = self.active_member(user) else {
            return false;
        };
        if &self.owner == user {
            return true;
        }
        !is_billing(key) && self.carried(m, key, ScopeRef::of(scope), at)
    }

    /// Every catalog key the user holds on the scope.
    pub fn permissions(&self, user: &UserId, scope: &Scope, at: Timestamp) -> Vec<PermissionKey> {
        self.catalog
            .iter()
            .filter(|d| d.kind == scope.kind())
            .filter(|d| self.check(user, &d.key, scope, at))
            .map(|d| d.key.clone())
            .collect()
    }

    /// Every user holding the permission on the scope.
    pub fn who_can(&self, key: &PermissionKey, scope: &Scope, at: Timestamp) -> Vec<UserId> {
        self.members
            .keys()
            .filter(|u| self.check(u, key, scope, at))
            .cloned()
            .collect()
    }

    /// Every scope (optionally of one kind) where the user holds the permission.
    pub fn scopes(
        &self,
        user: &UserId,
        key: &PermissionKey,
        kind: Option<ScopeKind>,
        at: Timestamp,
    ) -> Vec<Scope> {
        self.all_scopes()
            .filter(|s| kind.is_none_or(|k| s.to_scope().kind() == k))
            .map(ScopeRef::to_scope)
            .filter(|s| self.check(user, key, s, at))
            .collect()
    }

    /// The members of a scope with their role there: every org member for the org (`None` when
    /// holding no org role), the holders of a role on a team or inbox otherwise.
    /// An assignment past its expiry no longer makes its holder a member of the team or inbox, and
    /// shows no org role.
    pub fn members_of(&self, scope: &Scope, at: Timestamp) -> BTreeMap<UserId, Option<RoleId>> {
        let sref = ScopeRef::of(scope);
        if !self.scope_exists(sref) {
            return BTreeMap::new();
        }
        self.members
            .iter()
            .filter_map(|(u, m)| match sref {
                ScopeRef::Org => Some((
                    u.clone(),
                    m.roles
                        .org
                        .as_ref()
                        .filter(|a| live(a.expires_at, at))
                        .map(|a| a.role.clone()),
                )),
                _ => m
                    .roles
                    .get(sref)
                    .filter(|a| live(a.expires_at, at))
                    .map(|a| (u.clone(), Some(a.role.clone()))),
            })
            .collect()
    }
}
