//! The read models besides checks: a user's whole standing in an org, the roles as defined, and
//! pending invites and links, each at any moment.

use std::collections::BTreeMap;

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::{InviteStatus, MemberStatus, ScopeRef};
use permledger_domain::{Explanation, PermissionKey, RoleId, Scope, ScopeKind, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::history::OrgAt;

/// One question of a batch check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckItem {
    pub user: UserId,
    pub permission: PermissionKey,
    pub scope: Scope,
}

/// Answers many checks at one moment, in order.
pub fn batch_check(org: &OrgAt<'_>, items: &[CheckItem], at: Timestamp) -> Vec<Explanation> {
    items
        .iter()
        .map(|i| check::explain(org, &i.user, &i.permission, &i.scope, at))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleHeld {
    pub scope: Scope,
    pub role: RoleId,
    pub expires_at: Option<Timestamp>,
    pub seq: u64,
    /// False once past its expiry: kept for the record, granting nothing.
    pub live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantHeld {
    pub scope: Scope,
    pub permission: PermissionKey,
    pub expires_at: Option<Timestamp>,
    pub seq: u64,
    pub live: bool,
}

/// A user's standing in an org: status, ownership, every role and direct grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    pub user: UserId,
    pub status: MemberStatus,
    pub owner: bool,
    pub roles: Vec<RoleHeld>,
    pub grants: Vec<GrantHeld>,
}

pub fn user_view(org: &OrgAt<'_>, user: &UserId, at: Timestamp) -> Option<UserView> {
    let (status, _) = org.member(user)?;
    let mut roles = Vec::new();
    let mut grants = Vec::new();
    // The user's own assignments and grants, not every scope times every permission: in an org
    // of a hundred thousand members and hundreds of scopes, the snapshot lists everyone. Both
    // maps are kept in the order `all_scopes` lists scopes (the org, teams, inboxes, each by id)
    // and keys in catalog order, so the lists read as they always did.
    let Some(m) = org.history().members.get(user) else {
        return Some(UserView {
            user: user.clone(),
            status,
            owner: org.owner().0 == user,
            roles,
            grants,
        });
    };
    let mut scopes: Vec<ScopeRef<'_>> = m
        .roles
        .iter()
        .map(|(s, _)| s)
        .chain(m.grants.iter().map(|(s, _)| s))
        .filter(|s| check::scope_exists(org, *s))
        .collect();
    scopes.sort_by_key(|s| scope_order(*s));
    scopes.dedup();
    for s in scopes {
        if let Some(a) = org.assignment(user, s) {
            roles.push(RoleHeld {
                scope: s.to_scope(),
                role: a.role.clone(),
                expires_at: a.expires_at,
                seq: a.seq,
                live: check::live(a.expires_at, at),
            });
        }
        let held = m.grants.get(s).into_iter().flat_map(|g| g.keys());
        for key in held {
            if let Some(g) = org.grant(user, s, key) {
                grants.push(GrantHeld {
                    scope: s.to_scope(),
                    permission: key.clone(),
                    expires_at: g.expires_at,
                    seq: g.seq,
                    live: check::live(g.expires_at, at),
                });
            }
        }
    }
    Some(UserView {
        user: user.clone(),
        status,
        owner: org.owner().0 == user,
        roles,
        grants,
    })
}

/// Where `all_scopes` lists a scope: the org, then teams, then inboxes, each kind by id.
fn scope_order(s: ScopeRef<'_>) -> (u8, &str) {
    match s {
        ScopeRef::Org => (0, ""),
        ScopeRef::Team(t) => (1, t.as_str()),
        ScopeRef::Inbox(i) => (2, i.as_str()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoleView {
    pub role: RoleId,
    pub name: String,
    pub kind: ScopeKind,
    pub patterns: Vec<String>,
    /// The catalog keys the patterns reach at that moment.
    pub permissions: Vec<PermissionKey>,
}

/// Every role as defined at the moment.
pub fn roles(org: &OrgAt<'_>) -> Vec<RoleView> {
    let n = org.position();
    org.history()
        .roles
        .iter()
        .filter_map(|(id, h)| {
            h.at(n).map(|r| RoleView {
                role: id.clone(),
                name: r.name.clone(),
                kind: r.kind,
                patterns: r.patterns.iter().map(|p| p.to_string()).collect(),
                permissions: r.effective.iter().cloned().collect(),
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingInvite {
    pub invite: String,
    pub email: String,
    pub role: Option<RoleId>,
    pub guest: bool,
    pub expires_at: Option<Timestamp>,
    pub issued_by: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenLink {
    pub link: String,
    pub role: Option<RoleId>,
    pub uses: u32,
    pub max_uses: Option<u32>,
    pub expires_at: Option<Timestamp>,
    pub created_by: UserId,
}

/// Invites still pending and links still usable at the moment (expired ones left out).
pub fn pending(org: &OrgAt<'_>, at: Timestamp) -> (Vec<PendingInvite>, Vec<OpenLink>) {
    let n = org.position();
    let h = org.history();
    let open = |e: Option<Timestamp>| e.is_none_or(|e| at < e);
    let invites = h
        .invites
        .iter()
        .filter_map(|(id, hist)| hist.at(n).map(|i| (id, i)))
        .filter(|(_, i)| i.status == InviteStatus::Pending && open(i.expires_at))
        .map(|(id, i)| PendingInvite {
            invite: id.to_string(),
            email: i.email.clone(),
            role: i.role.clone(),
            guest: i.guest,
            expires_at: i.expires_at,
            issued_by: i.issued_by.clone(),
        })
        .collect();
    let links = h
        .links
        .iter()
        .filter_map(|(id, hist)| hist.at(n).map(|l| (id, l)))
        .filter(|(_, l)| !l.revoked && open(l.expires_at) && l.max_uses.is_none_or(|m| l.uses < m))
        .map(|(id, l)| OpenLink {
            link: id.to_string(),
            role: l.role.clone(),
            uses: l.uses,
            max_uses: l.max_uses,
            expires_at: l.expires_at,
            created_by: l.created_by.clone(),
        })
        .collect();
    (invites, links)
}

/// Members of a scope with their role there and their status.
pub fn members(
    org: &OrgAt<'_>,
    scope: &Scope,
    at: Timestamp,
) -> BTreeMap<UserId, (Option<RoleId>, MemberStatus)> {
    check::members_of(org, scope, at)
        .into_iter()
        .filter_map(|(u, r)| org.member(&u).map(|(s, _)| (u, (r, s))))
        .collect()
}
