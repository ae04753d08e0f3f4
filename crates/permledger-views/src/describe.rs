//! What one event did, in typed fields and in a sentence a non-engineer can read: the subject
//! user (or the invite's email), the role or permission involved, the expiry, and every value
//! that changed with what it was before. Read from the event and the org just before it.

use permledger_domain::check::AccessView;
use permledger_domain::state::{InviteStatus, MemberStatus, ScopeRef};
use permledger_domain::{Event, EventPayload, RoleId, Scope, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::history::OrgAt;

/// One value an event changed: what it was, and what it became (`None`: nothing stood there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// What changed, in the API's words: `role`, `expires_at`, `name`, `status`, `owner`,
    /// `team`, `permissions`, `default_org_role`...
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// An event's typed content, and the sentence that says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub summary: String,
    pub user: Option<UserId>,
    pub email: Option<String>,
    pub role: Option<RoleId>,
    /// A permission key, or the pattern a mask or a role names.
    pub permission: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub changes: Vec<Change>,
}

fn change(field: &str, from: Option<String>, to: Option<String>) -> Change {
    Change {
        field: field.to_string(),
        from,
        to,
    }
}

/// " until T", or nothing.
fn until(t: Option<Timestamp>) -> String {
    t.map_or(String::new(), |t| format!(" until {t}"))
}

fn status_word(s: MemberStatus) -> String {
    match s {
        MemberStatus::Active => "active".to_string(),
        MemberStatus::Suspended => "suspended".to_string(),
    }
}

fn list(items: impl IntoIterator<Item = impl std::fmt::Display>) -> String {
    let v: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if v.is_empty() {
        "nothing".to_string()
    } else {
        v.join(", ")
    }
}

/// What `event` did, judged against the org just before it (`None` before the org existed).
pub fn describe(event: &Event, before: Option<&OrgAt<'_>>) -> Described {
    use EventPayload::*;
    let actor = &event.meta.actor;
    let mut d = Described::default();
    let n = before.map_or(0, |b| b.position());
    let h = before.map(|b| b.history());
    let role_at = |r: &RoleId| h.and_then(|h| h.roles.get(r)).and_then(|x| x.at(n));
    let status_of = |u: &UserId| {
        before
            .and_then(|b| b.member(u))
            .map(|(s, _)| status_word(s))
    };
    let assignment_of = |u: &UserId, s: &Scope| {
        before
            .and_then(|b| b.assignment(u, ScopeRef::of(s)))
            .cloned()
    };
    let invite_at =
        |i: &permledger_domain::InviteId| h.and_then(|h| h.invites.get(i)).and_then(|x| x.at(n));
    match &event.payload {
        OrgCreated(e) => {
            d.user = Some(e.owner.clone());
            d.role = e.owner_role.clone();
            d.changes = vec![
                change("name", None, Some(e.name.clone())),
                change("owner", None, Some(e.owner.to_string())),
            ];
            d.summary = format!(
                "{actor} created the org \"{}\" from the {} preset, owned by {}",
                e.name,
                e.preset.as_str(),
                e.owner
            );
        }
        OrgRenamed(e) => {
            let old = h.and_then(|h| h.name.at(n)).cloned();
            d.summary = format!(
                "{actor} renamed the org from \"{}\" to \"{}\"",
                old.as_deref().unwrap_or(""),
                e.name
            );
            d.changes = vec![change("name", old, Some(e.name.clone()))];
        }
        DefaultRoleSet(e) => {
            let old = h
                .and_then(|h| h.defaults.at(n))
                .and_then(|x| x.get(e.kind).cloned());
            d.role = Some(e.role.clone());
            d.summary = format!(
                "{actor} made {} the default role of new {} members{}",
                e.role,
                e.kind.as_str(),
                old.as_ref()
                    .map_or(String::new(), |o| format!(" (was {o})"))
            );
            d.changes = vec![change(
                &format!("default_{}_role", e.kind.as_str()),
                old.map(|r| r.to_string()),
                Some(e.role.to_string()),
            )];
        }
        PermissionDeclared(e) => {
            d.permission = Some(e.key.to_string());
            d.summary = format!(
                "{actor} declared the permission {} on {} scopes: {}",
                e.key,
                e.kind.as_str(),
                e.description
            );
        }
        RoleDefined(e) => {
            d.role = Some(e.role.clone());
            d.summary = format!(
                "{actor} defined the {} role {} (\"{}\") granting {}",
                e.kind.as_str(),
                e.role,
                e.name,
                list(&e.permissions)
            );
            d.changes = vec![change("permissions", None, Some(list(&e.permissions)))];
        }
        RoleChanged(e) => {
            d.role = Some(e.role.clone());
            let old = role_at(&e.role).map(|r| r.patterns.iter().cloned().collect::<Vec<_>>());
            let new = old.clone().map(|mut v| {
                v.retain(|p| !e.removed.contains(p));
                for a in &e.added {
                    if !v.contains(a) {
                        v.push(a.clone());
                    }
                }
                v.sort();
                v
            });
            let mut parts = Vec::new();
            if !e.added.is_empty() {
                parts.push(format!("added {}", list(&e.added)));
            }
            if !e.removed.is_empty() {
                parts.push(format!("removed {}", list(&e.removed)));
            }
            d.summary = format!("{actor} changed the role {}: {}", e.role, parts.join("; "));
            d.changes = vec![change(
                "permissions",
                old.map(|v| list(&v)),
                new.map(|v| list(&v)),
            )];
        }
        RoleRenamed(e) => {
            d.role = Some(e.role.clone());
            let old = role_at(&e.role).map(|r| r.name.clone());
            d.summary = format!(
                "{actor} renamed the role {} from \"{}\" to \"{}\"",
                e.role,
                old.as_deref().unwrap_or(""),
                e.name
            );
            d.changes = vec![change("name", old, Some(e.name.clone()))];
        }
        RoleDeleted(e) => {
            d.role = Some(e.role.clone());
            let old = role_at(&e.role).map(|r| list(r.patterns.iter()));
            d.summary = match &e.moved_to {
                Some(to) => format!(
                    "{actor} deleted the role {}, moving its holders to {to}",
                    e.role
                ),
                None => format!("{actor} deleted the role {}", e.role),
            };
            d.changes = vec![change("permissions", old, None)];
        }
        TeamCreated(e) => {
            d.summary = format!("{actor} created the team {} (\"{}\")", e.team, e.name);
            d.changes = vec![change("name", None, Some(e.name.clone()))];
        }
        TeamRenamed(e) => {
            let old = h
                .and_then(|h| h.teams.get(&e.team))
                .and_then(|t| t.at(n))
                .map(|t| t.name.clone());
            d.summary = format!(
                "{actor} renamed the team {} from \"{}\" to \"{}\"",
                e.team,
                old.as_deref().unwrap_or(""),
                e.name
            );
            d.changes = vec![change("name", old, Some(e.name.clone()))];
        }
        TeamDeleted(e) => {
            let old = h
                .and_then(|h| h.teams.get(&e.team))
                .and_then(|t| t.at(n))
                .map(|t| t.name.clone());
            d.summary = format!(
                "{actor} deleted the team {}{}, with every role and grant held on it",
                e.team,
                old.map_or(String::new(), |n| format!(" (\"{n}\")"))
            );
        }
        InboxCreated(e) => {
            d.summary = format!(
                "{actor} created the inbox {} (\"{}\") {}",
                e.inbox,
                e.name,
                e.team
                    .as_ref()
                    .map_or("directly under the org".to_string(), |t| format!(
                        "in team {t}"
                    ))
            );
            d.changes = vec![change("name", None, Some(e.name.clone()))];
        }
        InboxRenamed(e) => {
            let old = h
                .and_then(|h| h.inboxes.get(&e.inbox))
                .and_then(|i| i.at(n))
                .map(|i| i.name.clone());
            d.summary = format!(
                "{actor} renamed the inbox {} from \"{}\" to \"{}\"",
                e.inbox,
                old.as_deref().unwrap_or(""),
                e.name
            );
            d.changes = vec![change("name", old, Some(e.name.clone()))];
        }
        InboxMoved(e) => {
            let place = |t: &Option<permledger_domain::TeamId>| {
                t.as_ref()
                    .map_or("the org".to_string(), |t| format!("team {t}"))
            };
            d.summary = format!(
                "{actor} moved the inbox {} from {} to {}",
                e.inbox,
                place(&e.from),
                place(&e.to)
            );
            d.changes = vec![change(
                "team",
                e.from.as_ref().map(|t| t.to_string()),
                e.to.as_ref().map(|t| t.to_string()),
            )];
        }
        InboxDeleted(e) => {
            d.summary = format!(
                "{actor} deleted the inbox {}, with every role and grant held on it",
                e.inbox
            );
        }
        InviteIssued(e) => {
            d.email = Some(e.email.clone());
            d.role = e.role.clone();
            d.expires_at = e.expires_at;
            let mut what = Vec::new();
            if let Some(r) = &e.role {
                what.push(format!("as {r}"));
            }
            if e.guest {
                what.push("as a guest".to_string());
            }
            for a in &e.assignments {
                what.push(format!(
                    "with {} on {}{}",
                    a.role,
                    a.scope,
                    until(a.expires_at)
                ));
            }
            for g in &e.grants {
                what.push(format!(
                    "with {} on {}{}",
                    g.permission,
                    g.scope,
                    until(g.expires_at)
                ));
            }
            d.summary = format!(
                "{actor} invited {} (invite {}){}{}",
                e.email,
                e.invite,
                what.iter().map(|w| format!(" {w}")).collect::<String>(),
                e.expires_at
                    .map_or(String::new(), |t| format!(", open until {t}"))
            );
        }
        InviteRevoked(e) => {
            let i = invite_at(&e.invite);
            d.email = i.map(|i| i.email.clone());
            d.summary = format!(
                "{actor} revoked the invite {}{}",
                e.invite,
                i.map_or(String::new(), |i| format!(" to {}", i.email))
            );
            d.changes = vec![change(
                "status",
                i.map(|i| invite_status(&i.status)),
                Some("revoked".into()),
            )];
        }
        InviteDeclined(e) => answered(&mut d, &e.invite, &e.user, false, invite_at(&e.invite)),
        InviteAccepted(e) => answered(&mut d, &e.invite, &e.user, true, invite_at(&e.invite)),
        InviteLinkCreated(e) => {
            d.role = e.role.clone();
            d.expires_at = e.expires_at;
            d.summary = format!(
                "{actor} created the invite link {}{}{}{}",
                e.link,
                e.role
                    .as_ref()
                    .map_or(String::new(), |r| format!(" joining as {r}")),
                e.max_uses
                    .map_or(String::new(), |m| format!(", for {m} uses")),
                e.expires_at
                    .map_or(String::new(), |t| format!(", open until {t}"))
            );
        }
        InviteLinkRevoked(e) => {
            d.summary = format!("{actor} revoked the invite link {}", e.link);
            d.changes = vec![change(
                "status",
                Some("open".into()),
                Some("revoked".into()),
            )];
        }
        MemberJoined(e) => {
            d.user = Some(e.user.clone());
            d.role = e.role.clone();
            let via = match &e.via {
                permledger_domain::event::JoinedVia::Invite(i) => format!("the invite {i}"),
                permledger_domain::event::JoinedVia::Link(l) => format!("the invite link {l}"),
            };
            d.summary = format!(
                "{} joined the org{}{} through {via}",
                e.user,
                if e.guest { " as a guest" } else { "" },
                e.role
                    .as_ref()
                    .map_or(String::new(), |r| format!(" with the role {r}"))
            );
            d.changes = vec![change("status", None, Some("active".into()))];
        }
        RoleAssigned(e) => {
            d.user = Some(e.user.clone());
            d.role = Some(e.role.clone());
            d.expires_at = e.expires_at;
            let old = assignment_of(&e.user, &e.scope);
            // What an invite promised, taken on accepting it: the actor is the user.
            let promised = event.meta.cause.is_some() && *actor == e.user;
            d.summary = match &old {
                _ if promised => format!(
                    "{} took the role {} on {}{} that the invite promised",
                    e.user,
                    e.role,
                    e.scope,
                    until(e.expires_at)
                ),
                Some(o) if o.role != e.role => format!(
                    "{actor} changed {}'s role on {} from {} to {}{}",
                    e.user,
                    e.scope,
                    o.role,
                    e.role,
                    until(e.expires_at)
                ),
                Some(_) => format!(
                    "{actor} gave {} the role {} on {} again{}",
                    e.user,
                    e.role,
                    e.scope,
                    until(e.expires_at)
                ),
                None => format!(
                    "{actor} gave {} the role {} on {}{}",
                    e.user,
                    e.role,
                    e.scope,
                    until(e.expires_at)
                ),
            };
            d.changes = vec![change(
                "role",
                old.as_ref().map(|o| o.role.to_string()),
                Some(e.role.to_string()),
            )];
            let old_expiry = old.as_ref().and_then(|o| o.expires_at);
            if old.is_some() && old_expiry != e.expires_at {
                d.changes.push(change(
                    "expires_at",
                    old_expiry.map(|t| t.to_string()),
                    e.expires_at.map(|t| t.to_string()),
                ));
            }
        }
        Unassigned(e) => {
            d.user = Some(e.user.clone());
            let old = assignment_of(&e.user, &e.scope);
            d.role = old.as_ref().map(|o| o.role.clone());
            d.summary = format!(
                "{actor} took {}'s role{} on {} away",
                e.user,
                old.as_ref()
                    .map_or(String::new(), |o| format!(" {}", o.role)),
                e.scope
            );
            d.changes = vec![change("role", old.map(|o| o.role.to_string()), None)];
        }
        PermissionGranted(e) => {
            d.user = Some(e.user.clone());
            d.permission = Some(e.permission.to_string());
            d.expires_at = e.expires_at;
            let old = before.and_then(|b| b.grant(&e.user, ScopeRef::of(&e.scope), &e.permission));
            d.summary = if event.meta.cause.is_some() && *actor == e.user {
                format!(
                    "{} took {} on {}{} that the invite promised",
                    e.user,
                    e.permission,
                    e.scope,
                    until(e.expires_at)
                )
            } else {
                format!(
                    "{actor} granted {} {} on {}{}{}",
                    e.user,
                    e.permission,
                    e.scope,
                    until(e.expires_at),
                    if old.is_some() {
                        " (granted before)"
                    } else {
                        ""
                    }
                )
            };
            if let Some(o) = old {
                if o.expires_at != e.expires_at {
                    d.changes.push(change(
                        "expires_at",
                        o.expires_at.map(|t| t.to_string()),
                        e.expires_at.map(|t| t.to_string()),
                    ));
                }
            } else {
                d.changes
                    .push(change("permission", None, Some(e.permission.to_string())));
            }
        }
        PermissionRevoked(e) => {
            d.user = Some(e.user.clone());
            d.permission = Some(e.permission.to_string());
            d.summary = format!(
                "{actor} revoked {}'s direct grant of {} on {}",
                e.user, e.permission, e.scope
            );
            d.changes = vec![change("permission", Some(e.permission.to_string()), None)];
        }
        PermissionMasked(e) => {
            d.permission = Some(e.pattern.to_string());
            d.summary = format!(
                "{actor} masked {} on {}: no one holds it there or below until unmasked",
                e.pattern, e.scope
            );
        }
        PermissionUnmasked(e) => {
            d.permission = Some(e.pattern.to_string());
            d.summary = format!("{actor} lifted the mask of {} on {}", e.pattern, e.scope);
        }
        MemberSuspended(e) => {
            d.user = Some(e.user.clone());
            d.summary = format!("{actor} suspended {}", e.user);
            d.changes = vec![change(
                "status",
                status_of(&e.user),
                Some("suspended".into()),
            )];
        }
        MemberReactivated(e) => {
            d.user = Some(e.user.clone());
            d.summary = format!("{actor} reactivated {}", e.user);
            d.changes = vec![change("status", status_of(&e.user), Some("active".into()))];
        }
        MemberRemoved(e) => {
            d.user = Some(e.user.clone());
            d.summary = format!(
                "{actor} removed {} from the org, with every role and grant they held",
                e.user
            );
            d.changes = vec![change("status", status_of(&e.user), None)];
        }
        MemberLeft(e) => {
            d.user = Some(e.user.clone());
            d.summary = format!("{} left the org", e.user);
            d.changes = vec![change("status", status_of(&e.user), None)];
        }
        OwnershipTransferred(e) => {
            d.user = Some(e.to.clone());
            d.role = e.former_owner_role.clone();
            d.summary = format!(
                "{actor} transferred the org's ownership from {} to {}{}",
                e.from,
                e.to,
                e.former_owner_role
                    .as_ref()
                    .map_or(String::new(), |r| format!(
                        "; {} keeps the role {r}",
                        e.from
                    ))
            );
            d.changes = vec![change(
                "owner",
                Some(e.from.to_string()),
                Some(e.to.to_string()),
            )];
        }
    }
    d
}

/// An invite accepted or declined by `user`.
fn answered(
    d: &mut Described,
    invite: &permledger_domain::InviteId,
    user: &UserId,
    accepted: bool,
    i: Option<&permledger_domain::state::Invite>,
) {
    let verb = if accepted { "accepted" } else { "declined" };
    d.user = Some(user.clone());
    d.email = i.map(|i| i.email.clone());
    d.summary = format!(
        "{user} {verb} the invite {invite}{}",
        i.map_or(String::new(), |i| format!(
            " sent to {} by {}",
            i.email, i.issued_by
        ))
    );
    d.changes = vec![change(
        "status",
        i.map(|i| invite_status(&i.status)),
        Some(verb.into()),
    )];
}

fn invite_status(s: &InviteStatus) -> String {
    match s {
        InviteStatus::Pending => "pending".into(),
        InviteStatus::Revoked => "revoked".into(),
        InviteStatus::Declined(_) => "declined".into(),
        InviteStatus::Accepted(_) => "accepted".into(),
    }
}
