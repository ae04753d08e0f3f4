//! The audit log: one entry per event, saying what it changed in typed fields and in words, who
//! submitted it and what it follows from, read through filters and stable pagination, and
//! itself authorized. Entries are built from the events (which the caller fetches from the log)
//! and the org's history just before each event (`describe`).

use std::collections::BTreeSet;

use permledger_domain::check::{self, AccessView};
use permledger_domain::state::{InviteStatus, ScopeRef};
use permledger_domain::{
    Event, EventPayload, OrgId, PermissionKey, Principal, Rejection, RoleId, Scope, Seq, Timestamp,
    UserId,
};
use serde::{Deserialize, Serialize};

use crate::describe::describe;
pub use crate::describe::Change;
use crate::history::{OrgAt, OrgHistory};
pub use crate::provenance::Source;
use crate::{Moment, Views};

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
    /// Whether `user` and `scope` also reach what concerns them without naming them: the
    /// invites sent to an address the user answered one at, and the events that changed the
    /// user's access (or anyone's within the scope) indirectly. Off, they reach the events
    /// about the user or the scope, as scenarios.md defines the filters.
    #[serde(default)]
    pub indirect: bool,
}

/// One audit entry: what one event did, in typed fields and in words, who did it and through
/// which principal, and the event it follows from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: Seq,
    pub org_version: u64,
    pub event_id: String,
    pub time: Timestamp,
    /// The event type, as in scenarios.md's vocabulary.
    pub action: String,
    /// What happened, in a sentence.
    pub summary: String,
    /// The user the command named as acting.
    pub actor: UserId,
    /// Who submitted the command; absent for events recorded before principals were kept.
    pub principal: Option<Principal>,
    /// The user the event is about.
    pub user: Option<UserId>,
    /// The email an invite was sent to.
    pub email: Option<String>,
    pub scope: Scope,
    pub role: Option<RoleId>,
    /// The permission key, or the pattern of a mask.
    pub permission: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// Every value the event changed, from what to what.
    pub changes: Vec<Change>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// The event this one follows from: the invite that promised a role taken on acceptance,
    /// the deletion that moved a role's holders.
    pub cause: Option<Source>,
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

    /// Whether the entry of `event` is one the query asks for. A user filter reaches the events
    /// about the user and, `indirect`, the invites sent to an address they accepted or declined
    /// one at (`emails`) and the events that changed what they could do without naming them
    /// (their role redefined, their team deleted, a mask); a scope filter reaches the events on
    /// the scope or below it and, `indirect`, those that changed what anyone could do there (a
    /// member's suspension, a role redefined).
    fn matches(
        &self,
        views: &Views,
        event: &Event,
        before: Option<&OrgAt<'_>>,
        after: Option<&OrgAt<'_>>,
        emails: &BTreeSet<String>,
    ) -> bool {
        let m = &event.meta;
        if self.actor.as_ref().is_some_and(|a| *a != m.actor)
            || self.from.is_some_and(|f| m.recorded_at < f)
            || self.to.is_some_and(|t| m.recorded_at > t)
            || self
                .types
                .as_ref()
                .is_some_and(|ts| !ts.iter().any(|t| t == event.payload.type_name()))
        {
            return false;
        }
        let changed_access = |user: Option<&UserId>, scope: Option<&Scope>| {
            self.indirect && indirect(&event.payload) && {
                let at = |seq| Moment {
                    seq,
                    time: m.recorded_at,
                };
                let d = crate::diff::diff(
                    views,
                    &m.org,
                    at(m.seq.saturating_sub(1)),
                    at(m.seq),
                    user,
                    scope,
                );
                !d.gained.is_empty() || !d.lost.is_empty()
            }
        };
        if let Some(u) = &self.user {
            let about = event.payload.subject_users().contains(&u)
                || (self.indirect
                    && invite_email(&event.payload, before).is_some_and(|e| emails.contains(e)));
            if !about && !changed_access(Some(u), None) {
                return false;
            }
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
                let within = match view {
                    Some(v) => {
                        check::lineage(v, ScopeRef::of(&s)).any(|x| x == ScopeRef::of(filter))
                    }
                    None => &s == filter,
                };
                within || changed_access(self.user.as_ref(), Some(filter))
            }
        }
    }
}

/// Events that can change what someone may do without naming them or their scope: these are
/// judged by comparing access before and after them.
fn indirect(payload: &EventPayload) -> bool {
    use EventPayload::*;
    matches!(
        payload,
        RoleChanged(_)
            | RoleDeleted(_)
            | TeamDeleted(_)
            | InboxDeleted(_)
            | InboxMoved(_)
            | PermissionMasked(_)
            | PermissionUnmasked(_)
            | MemberSuspended(_)
            | MemberReactivated(_)
            | MemberRemoved(_)
            | MemberLeft(_)
            | OwnershipTransferred(_)
    )
}

/// The address an invite event concerns: the one it was sent to.
fn invite_email<'a>(payload: &'a EventPayload, before: Option<&'a OrgAt<'_>>) -> Option<&'a str> {
    let sent_to = |i: &permledger_domain::InviteId| {
        let b = before?;
        b.history()
            .invites
            .get(i)?
            .at(b.position())
            .map(|x| x.email.as_str())
    };
    match payload {
        EventPayload::InviteIssued(e) => Some(e.email.as_str()),
        EventPayload::InviteRevoked(e) => sent_to(&e.invite),
        _ => None,
    }
}

/// Every position a user filter can match, in order: the events about the user and,
/// `indirect`, those sent to their addresses and every change of what their access depends on
/// beside their own standing (a role redefined or deleted, a team or inbox deleted or moved, a
/// mask): the history records each of these as a change of a role, a scope or a mask. Another
/// member's suspension or a transfer between others cannot change the user's access. Each
/// position is still judged by `matches`.
fn user_positions(
    h: &OrgHistory,
    user: &UserId,
    indirect: bool,
    emails: &BTreeSet<String>,
) -> Vec<Seq> {
    let mut out: Vec<Seq> = h.about.get(user).cloned().unwrap_or_default();
    if indirect {
        for r in h.roles.values() {
            out.extend(r.positions());
        }
        for t in h.teams.values() {
            out.extend(t.positions());
        }
        for i in h.inboxes.values() {
            out.extend(i.positions());
        }
        for (_, m) in h.masks.iter() {
            for p in m.values() {
                out.extend(p.positions());
            }
        }
        for i in h.invites.values() {
            let sent_here = i.values().any(|v| emails.contains(&v.email));
            if sent_here {
                out.extend(i.positions());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The addresses `user` accepted or declined an invite of the org at.
fn emails_of(history: &OrgHistory, user: &UserId) -> BTreeSet<String> {
    history
        .invites
        .values()
        .filter_map(|h| h.current())
        .filter(|i| {
            matches!(&i.status, InviteStatus::Accepted(u) | InviteStatus::Declined(u) if u == user)
        })
        .map(|i| i.email.clone())
        .collect()
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
    let emails = match (&query.user, query.indirect) {
        (Some(u), true) => emails_of(history, u),
        _ => BTreeSet::new(),
    };
    let mut page = Page {
        query,
        views,
        history,
        emails: &emails,
        limit,
        entries: Vec::new(),
    };
    // A user filter reads only the positions that can match it.
    if let Some(u) = &query.user {
        let seqs = user_positions(history, u, query.indirect, &emails);
        let from = seqs.partition_point(|s| *s <= query.after.unwrap_or(0));
        for &seq in seqs[from..].iter().take_while(|s| **s <= until) {
            let version = history.events.partition_point(|s| *s < seq) as u64 + 1;
            let batch = fetch(version, 1).map_err(|e| AuditError::Log(e.to_string()))?;
            let Some(event) = batch.first().filter(|e| e.meta.seq == seq) else {
                return Err(AuditError::Log(format!(
                    "event {seq} of org `{org}` is missing"
                )));
            };
            if let Some(full) = page.take(event, &batch, &mut fetch)? {
                return Ok(full);
            }
        }
        return Ok(page.last());
    }
    // Versions are 1-based: the first event after the cursor.
    let mut version = history
        .events
        .partition_point(|s| *s <= query.after.unwrap_or(0)) as u64
        + 1;
    loop {
        let batch = fetch(version, 512).map_err(|e| AuditError::Log(e.to_string()))?;
        if batch.is_empty() {
            return Ok(page.last());
        }
        for event in &batch {
            version = event.meta.org_version + 1;
            if event.meta.seq > until {
                return Ok(page.last());
            }
            if let Some(full) = page.take(event, &batch, &mut fetch)? {
                return Ok(full);
            }
        }
    }
}

/// A page being filled.
struct Page<'a> {
    query: &'a AuditQuery,
    views: &'a Views,
    history: &'a OrgHistory,
    emails: &'a BTreeSet<String>,
    limit: usize,
    entries: Vec<AuditEntry>,
}

impl Page<'_> {
    /// Judges one event (`batch` holds it, for finding its cause): the page, once it is full
    /// and another entry matches (its cursor then names the last entry).
    fn take<E: std::fmt::Display>(
        &mut self,
        event: &Event,
        batch: &[Event],
        fetch: &mut impl FnMut(u64, usize) -> Result<Vec<Event>, E>,
    ) -> Result<Option<AuditPage>, AuditError> {
        let before = self.history.at(event.meta.seq.saturating_sub(1));
        let after = self.history.at(event.meta.seq);
        let q = self.query;
        if !q.matches(
            self.views,
            event,
            before.as_ref(),
            after.as_ref(),
            self.emails,
        ) {
            return Ok(None);
        }
        if self.entries.len() == self.limit {
            let next = self.entries.last().map(|e| e.seq);
            return Ok(Some(AuditPage {
                entries: std::mem::take(&mut self.entries),
                next,
            }));
        }
        let cause = cause(self.views, self.history, event, batch, fetch)?;
        self.entries.push(entry(event, before.as_ref(), cause));
        Ok(None)
    }

    /// The page when nothing is left to read: no cursor.
    fn last(self) -> AuditPage {
        AuditPage {
            entries: self.entries,
            next: None,
        }
    }
}

/// The event `event` follows from, described: for what an invite's acceptance gave, the
/// invite's issue (who promised it, under which request); for a member who came through a link,
/// the link's creation; otherwise the event of the same command it records as its cause.
fn cause<E: std::fmt::Display>(
    views: &Views,
    history: &OrgHistory,
    event: &Event,
    batch: &[Event],
    fetch: &mut impl FnMut(u64, usize) -> Result<Vec<Event>, E>,
) -> Result<Option<Source>, AuditError> {
    let mut get = |seq: Seq| -> Result<Option<Event>, AuditError> {
        if let Some(e) = batch.iter().find(|e| e.meta.seq == seq) {
            return Ok(Some(e.clone()));
        }
        let version = history.events.partition_point(|s| *s < seq) as u64 + 1;
        let found = fetch(version, 1).map_err(|e| AuditError::Log(e.to_string()))?;
        Ok(found.into_iter().next().filter(|e| e.meta.seq == seq))
    };
    let seq = crate::provenance::origin(history, event, &mut get)?;
    let Some(seq) = seq else { return Ok(None) };
    let Some(e) = get(seq)? else { return Ok(None) };
    Ok(Some(Source::of(views, &e)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("reading the log failed: {0}")]
    Log(String),
}

fn entry(event: &Event, before: Option<&OrgAt<'_>>, cause: Option<Source>) -> AuditEntry {
    let m = &event.meta;
    let d = describe(event, before);
    AuditEntry {
        seq: m.seq,
        org_version: m.org_version,
        event_id: m.event_id.to_string(),
        time: m.recorded_at,
        action: event.payload.type_name().to_string(),
        summary: d.summary,
        actor: m.actor.clone(),
        principal: m.principal.clone(),
        user: d.user,
        email: d.email,
        scope: event.payload.scope(),
        role: d.role,
        permission: d.permission,
        expires_at: d.expires_at,
        changes: d.changes,
        reason: m.reason.clone(),
        request_id: m.request_id.clone(),
        cause,
    }
}
