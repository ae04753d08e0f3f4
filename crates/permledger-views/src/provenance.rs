//! Where a fact came from: the event that created it, as an auditor reads it (who, when, through
//! which principal, why, under which request), and a check's explanation said in a sentence a
//! non-engineer can read, built from those events.

use permledger_domain::check::{Denial, Explanation, Fact};
use permledger_domain::{Event, OrgId, PermissionKey, Principal, Scope, Seq, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::describe::describe;
use crate::Views;

/// One event, as much of it as a reader needs to follow a fact or an entry back to its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    pub seq: Seq,
    pub time: Timestamp,
    pub action: String,
    pub actor: UserId,
    pub principal: Option<Principal>,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// What the event did, in a sentence.
    pub summary: String,
    /// Where this event came from, when another event's authority stands behind it: the
    /// invite whose acceptance gave a role, the link a member joined through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    pub origin: Option<Box<Source>>,
}

impl Source {
    /// The event described, judged against its org just before it.
    pub fn of(views: &Views, event: &Event) -> Source {
        let m = &event.meta;
        let before = views.org_at(&m.org, m.seq.saturating_sub(1));
        Source {
            seq: m.seq,
            time: m.recorded_at,
            action: event.payload.type_name().to_string(),
            actor: m.actor.clone(),
            principal: m.principal.clone(),
            reason: m.reason.clone(),
            request_id: m.request_id.clone(),
            summary: describe(event, before.as_ref()).summary,
            origin: None,
        }
    }

    /// "by mo on 2026-02-03 (request HR-101: "covering for Sam")".
    fn by(&self) -> String {
        let mut s = format!("by {} on {}", self.actor, day(self.time));
        match (&self.request_id, &self.reason) {
            (Some(r), Some(why)) => s.push_str(&format!(" (request {r}: \"{why}\")")),
            (Some(r), None) => s.push_str(&format!(" (request {r})")),
            (None, Some(why)) => s.push_str(&format!(" (\"{why}\")")),
            (None, None) => {}
        }
        s
    }
}

/// The position of the event whose authority stands behind `event`, if another's does: for
/// an invite's acceptance (and what it gave: the member joining, the roles and grants the
/// invite promised), the invite's issue; for a member who came through a link, the link's
/// creation; otherwise the event of the same command it records as its cause (a role's
/// deletion for the holders it moved). `get` reads an event of the org by position.
pub fn origin<E>(
    history: &crate::history::OrgHistory,
    event: &Event,
    get: &mut impl FnMut(Seq) -> Result<Option<Event>, E>,
) -> Result<Option<Seq>, E> {
    use permledger_domain::event::JoinedVia;
    use permledger_domain::EventPayload;
    let issued = |invite: &permledger_domain::InviteId, at: Seq| {
        history
            .invites
            .get(invite)
            .and_then(|h| h.at(at))
            .map(|i| i.seq)
    };
    let from_payload = |e: &Event| match &e.payload {
        EventPayload::InviteAccepted(x) => issued(&x.invite, e.meta.seq),
        EventPayload::InviteDeclined(x) => issued(&x.invite, e.meta.seq),
        EventPayload::MemberJoined(x) => match &x.via {
            JoinedVia::Invite(i) => issued(i, e.meta.seq),
            JoinedVia::Link(l) => history
                .links
                .get(l)
                .and_then(|h| h.at(e.meta.seq))
                .map(|l| l.seq),
        },
        _ => None,
    };
    if let Some(s) = from_payload(event) {
        return Ok(Some(s));
    }
    let Some(c) = event.meta.cause else {
        return Ok(None);
    };
    // What an acceptance gave follows from the invite that promised it.
    Ok(match get(c)? {
        Some(root) => from_payload(&root).or(Some(c)),
        None => Some(c),
    })
}

/// An instant as people read it: the day alone at midnight, else to the second.
fn day(t: Timestamp) -> String {
    let s = t.to_string();
    match s.strip_suffix("T00:00:00Z") {
        Some(d) => d.to_string(),
        None => s,
    }
}

/// Every position an explanation cites, in the order it cites them, once each.
pub fn cited(e: &Explanation) -> Vec<Seq> {
    let mut out = Vec::new();
    let mut push = |s: Seq| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let fact_seq = |f: &Fact| match f {
        Fact::Owner { seq } | Fact::Role { seq, .. } | Fact::Grant { seq, .. } => *seq,
    };
    e.facts.iter().for_each(|f| push(fact_seq(f)));
    match &e.denial {
        Some(Denial::Suspended { seq }) | Some(Denial::Masked { seq, .. }) => push(*seq),
        Some(Denial::NoFact { expired }) => expired.iter().for_each(|f| push(fact_seq(f))),
        _ => {}
    }
    out
}

/// What a check asked.
pub struct Asked<'a> {
    pub org: &'a OrgId,
    pub user: &'a UserId,
    pub permission: &'a PermissionKey,
    pub scope: &'a Scope,
}

/// The explanation in a sentence: "allowed: ivy holds inbox_member on inbox:billing, assigned
/// by mo on 2026-02-03 (request HR-101)"; "denied: ivy is suspended since 2026-03-01, by ann".
pub fn sentence(asked: &Asked<'_>, e: &Explanation, sources: &[Source]) -> String {
    let Asked {
        org,
        user,
        permission,
        scope,
    } = asked;
    // ", assigned by mo on ...", or for what an invite gave, ", from an invite by ann on ...
    // (request HR-101), accepted on ...".
    let by = |seq: Seq, verb: &str| {
        sources
            .iter()
            .find(|s| s.seq == seq)
            .map_or(String::new(), |s| match &s.origin {
                Some(o) if o.action == "invite_issued" => format!(
                    ", from an invite {}, accepted by {} on {}",
                    o.by(),
                    s.actor,
                    day(s.time)
                ),
                Some(o) if o.action == "invite_link_created" => format!(
                    ", joining through an invite link created {}, on {}",
                    o.by(),
                    day(s.time)
                ),
                _ => format!(", {verb}{}", s.by()),
            })
    };
    let until = |t: &Option<Timestamp>| t.map_or(String::new(), |t| format!(" until {t}"));
    let fact = |f: &Fact| match f {
        Fact::Owner { seq } => format!("{user} owns the org{}", by(*seq, "made owner ")),
        Fact::Role {
            role,
            scope,
            seq,
            expires_at,
        } => format!(
            "{user} holds {role} on {scope}{}{}",
            until(expires_at),
            by(*seq, "assigned ")
        ),
        Fact::Grant {
            permission,
            scope,
            seq,
            expires_at,
        } => format!(
            "{user} holds {permission} on {scope} directly{}{}",
            until(expires_at),
            by(*seq, "granted ")
        ),
    };
    if e.allowed {
        let facts: Vec<String> = e.facts.iter().map(fact).collect();
        return format!("allowed: {}", facts.join("; and "));
    }
    let why = match &e.denial {
        None => format!("{user} may not {permission} on {scope}"),
        Some(Denial::NotMember) => format!("{user} is not a member of org {org}"),
        Some(Denial::Suspended { seq }) => {
            let since = sources
                .iter()
                .find(|s| s.seq == *seq)
                .map_or(String::new(), |s| {
                    format!(" since {}, by {}", day(s.time), s.actor)
                });
            format!("{user} is suspended{since}")
        }
        Some(Denial::UnknownPermission) => {
            format!("{permission} is not a permission of org {org}")
        }
        Some(Denial::UnknownScope) => format!("{scope} does not exist in org {org}"),
        Some(Denial::KindMismatch { permission_kind }) => format!(
            "{permission} is a permission of {} scopes, and {scope} is a {}",
            permission_kind.as_str(),
            scope.kind().as_str()
        ),
        Some(Denial::Masked {
            scope: masked,
            pattern,
            seq,
        }) => format!(
            "{permission} is masked on {masked} (mask {pattern}){}",
            by(*seq, "masked ")
        ),
        Some(Denial::NoFact { expired }) if expired.is_empty() => {
            format!("no role or grant gives {user} {permission} on {scope}")
        }
        Some(Denial::NoFact { expired }) => {
            let lapsed: Vec<String> = expired
                .iter()
                .map(|f| match f {
                    Fact::Role {
                        role,
                        scope,
                        seq,
                        expires_at,
                    } => format!(
                        "{role} on {scope}, which expired{}{}",
                        expires_at.map_or(String::new(), |t| format!(" at {t}")),
                        by(*seq, "assigned ")
                    ),
                    Fact::Grant {
                        permission,
                        scope,
                        seq,
                        expires_at,
                    } => format!(
                        "a direct grant of {permission} on {scope}, which expired{}{}",
                        expires_at.map_or(String::new(), |t| format!(" at {t}")),
                        by(*seq, "granted ")
                    ),
                    Fact::Owner { .. } => "ownership".to_string(),
                })
                .collect();
            format!(
                "no role or grant gives {user} {permission} on {scope} any more: {}",
                lapsed.join("; ")
            )
        }
    };
    format!("denied: {why}")
}
