//! The audit log: one entry per event, with what it changed (before and after), read through
//! filters and stable pagination, and itself authorized. Entries are built from the events (which
//! the caller fetches from the log) and the org's history just before each event.

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::ScopeRef;
use permledger_domain::{
    Event, EventPayload, OrgId, PermissionKey, Rejection, Scope, Seq, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::history::OrgAt;
use crate::Views;

/// Which entries to read, and who reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<UserId>,
    /// The person the event is about.
    pub user: Option<UserId>,
    /// Events about this scope or any scope below it.
    pub scope: Option<Scope>,
    pub types: Option<Vec<String>>,
    /// Recorded at or after (inclusive).
    pub from: Option<Timestamp>,
    /// Recorded at or before (inclusive).
    pub to: Option<Timestamp>,
    /// Only events up to this log position (an `at` moment).
    pub until: Option<Seq>,
    /// Pagination cursor: entries after this position.
    pub after: Option<Seq>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: Seq,
    pub org_version: u64,
    pub event_id: String,
    pub time: Timestamp,
    pub actor: UserId,
    pub action: String,
    pub user: Option<UserId>,
    pub scope: Scope,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// What the event changed, as it was before; null where nothing stood before.
    pub before: Value,
    /// The event's own content.
    pub after: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The cursor for the next page, when there may be more.
    pub next: Option<Seq>,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

impl AuditQuery {
    fn validate(&self) -> Result<usize, Rejection> {
        if let Some(types) = &self.types {
            if let Some(t) = types
                .iter()
                .find(|t| !EventPayload::TYPE_NAMES.contains(&t.as_str()))
            {
                return Err(Rejection::invalid(format!("`{t}` is not an event type")));
            }
        }
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                return Err(Rejection::invalid(format!(
                    "`from` `{f}` is after `to` `{t}`"
                )));
            }
        }
        match self.limit {
            Some(0) => Err(Rejection::invalid("`limit` must be at least 1")),
            Some(n) if n > MAX_LIMIT => Err(Rejection::invalid(format!(
                "`limit` is at most {MAX_LIMIT}"
            ))),
            Some(n) => Ok(n),
            None => Ok(DEFAULT_LIMIT),
        }
    }

    fn matches(
        &self,
        event: &Event,
        before: Option<&OrgAt<'_>>,
        after: Option<&OrgAt<'_>>,
    ) -> bool {
        let m = &event.meta;
        if self.actor.as_ref().is_some_and(|a| *a != m.actor)
            || self.from.is_some_and(|f| m.recorded_at < f)
            || self.to.is_some_and(|t| m.recorded_at > t)
            || self
                .types
                .as_ref()
                .is_some_and(|ts| !ts.iter().any(|t| t == event.payload.type_name()))
            || self
                .user
                .as_ref()
                .is_some_and(|u| !event.payload.subject_users().contains(&u))
        {
            return false;
        }
        match &self.scope {
            None | Some(Scope::Org) => true,
            Some(filter) => {
                let s = event.payload.scope();
                // Judge "below" where the scope existed: after a creation, before a deletion.
                let view = [after, before]
                    .into_iter()
                    .flatten()
                    .find(|v| check::scope_exists(*v, ScopeRef::of(&s)));
                match view {
                    Some(v) => {
                        check::lineage(v, ScopeRef::of(&s)).any(|x| x == ScopeRef::of(filter))
                    }
                    None => &s == filter,
                }
            }
        }
    }
}

/// The permission that lets `reader` read the entries a query names, judged at the present.
fn authorize(
    views: &Views,
    org: &OrgId,
    reader: &UserId,
    scope: Option<&Scope>,
    now: Timestamp,
) -> Result<(), Rejection> {
    let present = views
        .org_at(org, views.seq())
        .ok_or_else(|| Rejection::not_found(format!("org `{org}` does not exist")))?;
    let key = |k: &str| PermissionKey::new(k).map_err(|e| Rejection::invalid(e.to_string()));
    if check::check(&present, reader, &key("org.audit.view")?, &Scope::Org, now) {
        return Ok(());
    }
    // A team's activity log (the team and its inboxes) is open to holders of team.audit.view.
    let team = match scope {
        Some(Scope::Team(t)) => Some(t.clone()),
        Some(Scope::Inbox(i)) => present.inbox_parent(i).flatten().cloned(),
        _ => None,
    };
    if let Some(t) = team {
        if check::check(
            &present,
            reader,
            &key("team.audit.view")?,
            &Scope::Team(t.clone()),
            now,
        ) {
            return Ok(());
        }
        return Err(Rejection::forbidden(format!(
            "`{reader}` lacks `org.audit.view` on `org` and `team.audit.view` on `team:{t}` in org `{org}`"
        )));
    }
    Err(Rejection::forbidden(format!(
        "`{reader}` lacks `org.audit.view` on `org` in org `{org}`"
    )))
}

/// Reads one page of an org's audit log. `fetch(from_version, limit)` returns the org's events
/// from that version on, in order (from the log).
pub fn audit<E: std::fmt::Display>(
    views: &Views,
    org: &OrgId,
    reader: &UserId,
    query: &AuditQuery,
    now: Timestamp,
    mut fetch: impl FnMut(u64, usize) -> Result<Vec<Event>, E>,
) -> Result<AuditPage, AuditError> {
    let limit = query.validate()?;
    authorize(views, org, reader, query.scope.as_ref(), now)?;
    let history = views
        .histories
        .get(org)
        .ok_or_else(|| Rejection::not_found(format!("org `{org}` does not exist")))?;
    let until = query.until.unwrap_or(Seq::MAX);
    // Versions are 1-based: the first event after the cursor.
    let mut version = history
        .events
        .partition_point(|s| *s <= query.after.unwrap_or(0)) as u64
        + 1;
    let mut entries = Vec::new();
    loop {
        let batch = fetch(version, 512).map_err(|e| AuditError::Log(e.to_string()))?;
        if batch.is_empty() {
            return Ok(AuditPage {
                entries,
                next: None,
            });
        }
        for event in batch {
            version = event.meta.org_version + 1;
            if event.meta.seq > until {
                return Ok(AuditPage {
                    entries,
                    next: None,
                });
            }
            let before = history.at(event.meta.seq.saturating_sub(1));
            let after = history.at(event.meta.seq);
            if !query.matches(&event, before.as_ref(), after.as_ref()) {
                continue;
            }
            if entries.len() == limit {
                let next = entries.last().map(|e: &AuditEntry| e.seq);
                return Ok(AuditPage { entries, next });
            }
            entries.push(entry(&event, before.as_ref()));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("reading the log failed: {0}")]
    Log(String),
}

fn entry(event: &Event, before: Option<&OrgAt<'_>>) -> AuditEntry {
    let m = &event.meta;
    AuditEntry {
        seq: m.seq,
        org_version: m.org_version,
        event_id: m.event_id.to_string(),
        time: m.recorded_at,
        actor: m.actor.clone(),
        action: event.payload.type_name().to_string(),
        user: event.payload.subject_user().cloned(),
        scope: event.payload.scope(),
        reason: m.reason.clone(),
        request_id: m.request_id.clone(),
        before: before.map_or(Value::Null, |b| before_value(&event.payload, b)),
        after: serde_json::to_value(&event.payload).unwrap_or(Value::Null),
    }
}

/// What the event's subject was just before it.
fn before_value(payload: &EventPayload, b: &OrgAt<'_>) -> Value {
    use EventPayload::*;
    let h = b.history();
    let n = b.position();
    let role_json = |r: &permledger_domain::RoleId| {
        h.roles.get(r).and_then(|x| x.at(n)).map_or(Value::Null, |role| {
            json!({"role": r, "name": role.name, "kind": role.kind, "permissions": &*role.patterns})
        })
    };
    let assignment = |u: &UserId, s: &Scope| {
        b.assignment(u, ScopeRef::of(s)).map_or(
            Value::Null,
            |a| json!({"role": a.role, "expires_at": a.expires_at}),
        )
    };
    let member = |u: &UserId| match b.member(u) {
        None => Value::Null,
        Some((status, _)) => json!({
            "status": status,
            "org_role": b.assignment(u, ScopeRef::Org).map(|a| a.role.clone()),
        }),
    };
    match payload {
        OrgRenamed(_) => json!({"name": h.name.at(n)}),
        DefaultRoleSet(e) => {
            json!({"kind": e.kind, "role": h.defaults.at(n).and_then(|d| d.get(e.kind).cloned())})
        }
        RoleChanged(e) => role_json(&e.role),
        RoleRenamed(e) => role_json(&e.role),
        RoleDeleted(e) => role_json(&e.role),
        TeamRenamed(e) => {
            json!({"team": e.team, "name": h.teams.get(&e.team).and_then(|t| t.at(n)).map(|t| t.name.clone())})
        }
        TeamDeleted(e) => {
            json!({"team": e.team, "name": h.teams.get(&e.team).and_then(|t| t.at(n)).map(|t| t.name.clone())})
        }
        InboxRenamed(e) => inbox_json(b, &e.inbox),
        InboxMoved(e) => inbox_json(b, &e.inbox),
        InboxDeleted(e) => inbox_json(b, &e.inbox),
        RoleAssigned(e) => assignment(&e.user, &e.scope),
        Unassigned(e) => assignment(&e.user, &e.scope),
        PermissionGranted(e) => grant_json(b, &e.user, &e.scope, &e.permission),
        PermissionRevoked(e) => grant_json(b, &e.user, &e.scope, &e.permission),
        MemberSuspended(e) => member(&e.user),
        MemberReactivated(e) => member(&e.user),
        MemberRemoved(e) => member(&e.user),
        MemberLeft(e) => member(&e.user),
        MemberJoined(e) => member(&e.user),
        OwnershipTransferred(_) => json!({"owner": b.owner().0}),
        InviteRevoked(e) => invite_json(b, &e.invite),
        InviteDeclined(e) => invite_json(b, &e.invite),
        InviteAccepted(e) => invite_json(b, &e.invite),
        InviteLinkRevoked(e) => {
            json!({"link": e.link, "revoked": h.links.get(&e.link).and_then(|l| l.at(n)).map(|l| l.revoked)})
        }
        PermissionMasked(e) => json!({"masked": mask_at(b, &e.scope, &e.pattern)}),
        PermissionUnmasked(e) => json!({"masked": mask_at(b, &e.scope, &e.pattern)}),
        OrgCreated(_)
        | PermissionDeclared(_)
        | RoleDefined(_)
        | TeamCreated(_)
        | InboxCreated(_)
        | InviteIssued(_)
        | InviteLinkCreated(_) => Value::Null,
    }
}

fn inbox_json(b: &OrgAt<'_>, inbox: &permledger_domain::InboxId) -> Value {
    let h = b.history();
    h.inboxes
        .get(inbox)
        .and_then(|i| i.at(b.position()))
        .map_or(
            Value::Null,
            |i| json!({"inbox": inbox, "name": i.name, "team": i.team}),
        )
}

fn grant_json(b: &OrgAt<'_>, user: &UserId, scope: &Scope, key: &PermissionKey) -> Value {
    b.grant(user, ScopeRef::of(scope), key).map_or(
        Value::Null,
        |g| json!({"permission": key, "expires_at": g.expires_at}),
    )
}

fn invite_json(b: &OrgAt<'_>, invite: &permledger_domain::InviteId) -> Value {
    b.history()
        .invites
        .get(invite)
        .and_then(|i| i.at(b.position()))
        .map_or(
            Value::Null,
            |i| json!({"invite": invite, "status": i.status}),
        )
}

fn mask_at(b: &OrgAt<'_>, scope: &Scope, pattern: &permledger_domain::Pattern) -> bool {
    b.masks_on(ScopeRef::of(scope)).any(|(p, _)| p == pattern)
}
