//! What changed in effective permissions between two moments: for every user and scope (or the
//! ones named), the permissions gained and lost, as `"USER PERMISSION SCOPE"` strings.

use std::collections::BTreeSet;

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::ScopeRef;
use permledger_domain::{OrgId, PermissionKey, Scope, UserId};
use serde::{Deserialize, Serialize};

use crate::{Moment, Views};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub gained: Vec<String>,
    pub lost: Vec<String>,
}

/// Every (user, permission, scope) held at a moment, optionally for one user or within one scope.
pub fn held(
    views: &Views,
    org: &OrgId,
    at: Moment,
    user: Option<&UserId>,
    scope: Option<&Scope>,
) -> BTreeSet<(UserId, PermissionKey, Scope)> {
    let mut out = BTreeSet::new();
    let Some(o) = views.org_at(org, at.seq) else {
        return out;
    };
    let users: Vec<&UserId> = match user {
        Some(u) => vec![u],
        None => o.user_ids().collect(),
    };
    let scopes: Vec<Scope> = check::all_scopes(&o)
        .filter(|s| scope.is_none_or(|f| check::lineage(&o, *s).any(|x| x == ScopeRef::of(f))))
        .map(ScopeRef::to_scope)
        .collect();
    for u in users {
        for s in &scopes {
            for p in check::permissions(&o, u, s, at.time) {
                out.insert((u.clone(), p, s.clone()));
            }
        }
    }
    out
}

/// `held`, each as the string `"USER PERMISSION SCOPE"`.
pub fn holdings(
    views: &Views,
    org: &OrgId,
    at: Moment,
    user: Option<&UserId>,
    scope: Option<&Scope>,
) -> BTreeSet<String> {
    held(views, org, at, user, scope)
        .into_iter()
        .map(|(u, p, s)| format!("{u} {p} {s}"))
        .collect()
}

/// Permissions gained and lost from `from` to `to`.
pub fn diff(
    views: &Views,
    org: &OrgId,
    from: Moment,
    to: Moment,
    user: Option<&UserId>,
    scope: Option<&Scope>,
) -> Diff {
    let a = holdings(views, org, from, user, scope);
    let b = holdings(views, org, to, user, scope);
    Diff {
        gained: b.difference(&a).cloned().collect(),
        lost: a.difference(&b).cloned().collect(),
    }
}

/// One event that changed what a user (or the holders of a scope) effectively hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: permledger_domain::Seq,
    pub time: permledger_domain::Timestamp,
    pub action: String,
    pub actor: UserId,
    #[serde(flatten)]
    pub change: Diff,
}

/// The events that changed the effective permissions of a user, or of anyone within a scope,
/// with what each one gained and lost: a role redefined or a mask set counts as much as an
/// assignment. `events` are the org's events in order (from the log). Changes that no event made
/// (an expiry passing) show in `diff`, not here.
pub fn history<'e>(
    views: &Views,
    org: &OrgId,
    user: Option<&UserId>,
    scope: Option<&Scope>,
    events: impl IntoIterator<Item = &'e permledger_domain::Event>,
) -> Vec<HistoryEntry> {
    let mut out = Vec::new();
    for e in events {
        let at = |seq| Moment {
            seq,
            time: e.meta.recorded_at,
        };
        let d = diff(
            views,
            org,
            at(e.meta.seq.saturating_sub(1)),
            at(e.meta.seq),
            user,
            scope,
        );
        if !d.gained.is_empty() || !d.lost.is_empty() {
            out.push(HistoryEntry {
                seq: e.meta.seq,
                time: e.meta.recorded_at,
                action: e.payload.type_name().to_string(),
                actor: e.meta.actor.clone(),
                change: d,
            });
        }
    }
    out
}
