//! People and scopes: search people by id or address; a person's page (everything they could do
//! at the moment with the reason for each permission and the event behind it, each interval of
//! access in a window with its causes, and what changed between the window's ends); a scope's
//! page (who could do what there, and why, and the history of its access).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use permledger_api::{self as api, At};
use permledger_domain::{OrgId, Scope, Seq, UserId};
use permledger_views::provenance::Source;
use permledger_views::timeline::{Cause, Interval, Point};
use permledger_views::Moment;
use serde::Deserialize;

use super::layout::{self, empty, picker, seg, time, url, Frame, Section};
use super::org::{bounds, caller, event_link, org_id, person_link, scope_link, status};
use super::session::Signed;
use crate::extract::{PathParams, Query};
use crate::moment::{existing, resolve};
use crate::routes::{compliance, reads};
use crate::{ApiError, AppState, Json};

#[derive(Deserialize, Default)]
struct SearchQuery {
    q: Option<String>,
    at: Option<String>,
}

pub async fn people(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = org_id(&org).ok();
    let q: Result<SearchQuery, ApiError> = layout::params(raw.as_deref());
    let at = q
        .as_ref()
        .ok()
        .and_then(|q| layout::moment(q.at.as_deref()).ok().flatten());
    let mut shown = None;
    let body = async {
        let org = org_id(&org)?;
        let q = q?;
        signed.caller.read(&org)?;
        let text = q.q.clone().unwrap_or_default();
        let (moment, found) = {
            let views = s.ledger.views();
            let m = resolve(&views, at, s.clock.now())?;
            let o = existing(views.org_at(&org, m.seq), &org)?;
            (m, permledger_views::snapshot::people(&o, &text))
        };
        shown = Some(moment);
        let pinned = at.map(|_| moment.seq);
        let path = format!("/console/orgs/{}/people", seg(org.as_str()));
        let (first, last) = bounds(&s, &org);
        Ok(html! {
            (picker(&path, &[("q", text.clone())], moment, first, last))
            form.search method="get" action=(path) role="search" {
                @if let Some(p) = pinned { input type="hidden" name="at" value=(p); }
                label for="people-q" { "Find a person by id or email" }
                input #people-q type="search" name="q" value=(text) autocomplete="off";
                button type="submit" { "Search" }
            }
            @if found.is_empty() {
                (empty(&if text.is_empty() { "The org has no one at this moment.".to_string() } else { format!("No one at this moment has an id or invited address containing “{text}”.") }))
            } @else {
                p role="status" { (found.len()) " found." }
                table {
                    thead { tr { th scope="col" { "Person" } th scope="col" { "Invited at" } th scope="col" { "Status" } } }
                    tbody {
                        @for p in &found {
                            tr {
                                td { @if let Some(u) = &p.user { (person_link(&org, u.as_str(), pinned)) } @else { "not a member" } }
                                td { (p.emails.join(", ")) }
                                td { @match (&p.user, p.status) {
                                    (_, Some(st)) => (status(st)),
                                    (Some(_), None) => "no longer a member",
                                    (None, None) => "invited",
                                } }
                            }
                        }
                    }
                }
            }
        })
    }
    .await;
    let frame = Frame {
        signed: &signed,
        org: id.as_ref(),
        section: Section::People,
        at: at.and(shown.map(|m| m.seq)),
    };
    layout::answer(&frame, "People", body)
}

#[derive(Deserialize, Default)]
struct WindowQuery {
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The window a person's or scope's history covers: from `from` (default: the org's creation)
/// to `to` (default: the moment shown).
fn window(q: &WindowQuery, first: Seq, shown: Moment) -> Result<(At, At), ApiError> {
    let from = layout::moment(q.from.as_deref())?.unwrap_or(At::Seq(first));
    let to = layout::moment(q.to.as_deref())?.unwrap_or(At::Seq(shown.seq));
    Ok((from, to))
}

/// The window's two ends as they go back into the address and its form.
fn ends(q: &WindowQuery) -> [(&'static str, String); 2] {
    [
        ("from", q.from.clone().unwrap_or_default()),
        ("to", q.to.clone().unwrap_or_default()),
    ]
}

pub async fn person(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path((org, user)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = org_id(&org).ok();
    let q: Result<WindowQuery, ApiError> = layout::params(raw.as_deref());
    let at = q
        .as_ref()
        .ok()
        .and_then(|q| layout::moment(q.at.as_deref()).ok().flatten());
    let mut shown = None;
    let body = async {
        let org = org_id(&org)?;
        let user: UserId = user
            .parse()
            .map_err(|e| ApiError::invalid(format!("the person in the address: {e}")))?;
        let q = q?;
        let Json(access) = compliance::access(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgUserPath {
                org: org.clone(),
                user: user.clone(),
            }),
            Query(api::MomentParams { at, min_seq: None }),
        )
        .await?;
        shown = Some(access.at);
        let pinned = at.map(|_| access.at.seq);
        let (first, last) = bounds(&s, &org);
        let (from, to) = window(&q, first, access.at)?;
        let params = |from, to| api::DiffParams {
            from,
            to: Some(to),
            user: Some(user.clone()),
            scope: None,
            min_seq: None,
        };
        let path = format!(
            "/console/orgs/{}/people/{}",
            seg(org.as_str()),
            seg(user.as_str())
        );
        let Json(timeline) = compliance::timeline(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgPath { org: org.clone() }),
            Query(params(from, to)),
        )
        .await?;
        // What changed between the window's ends, from the walk just made (as `GET …/diff`
        // answers it, without walking the window twice).
        let changes = permledger_views::timeline::caused_diff(&timeline.intervals);
        let member = {
            let views = s.ledger.views();
            views
                .org_at(&org, access.at.seq)
                .and_then(|o| permledger_views::read::user_view(&o, &user, access.at.time))
        };
        let sources: BTreeMap<Seq, &Source> = access.sources.iter().map(|s| (s.seq, s)).collect();
        let mut by_scope: BTreeMap<&Scope, Vec<&api::AccessItem>> = BTreeMap::new();
        for item in &access.access {
            by_scope.entry(&item.scope).or_default().push(item);
        }
        let keep = [("from", q.from.clone().unwrap_or_default()), ("to", q.to.clone().unwrap_or_default())];
        Ok(html! {
            (picker(&path, &keep, access.at, first, last))
            p.lead {
                @match &member {
                    Some(m) => { (user) " is " (status(m.status)) " in " (org) @if m.owner { ", and its owner" } "." },
                    None => { (user) " is not a member of " (org) " at this moment." },
                }
                " " a href=(url(&format!("/console/orgs/{}/trail", seg(org.as_str())), &[("user", user.to_string()), ("indirect", "true".to_string())])) { "Their audit trail" }
            }
            section aria-labelledby="h-access" {
                h2 #h-access { "What they could do" }
                @if by_scope.is_empty() {
                    (empty("They hold no permission on any scope at this moment."))
                }
                @for (scope, items) in &by_scope {
                    h3 { "On " (scope_link(&org, &scope, pinned)) }
                    ul.access {
                        @for item in items {
                            li {
                                code { (item.permission) } ": " (item.because)
                                @for seq in facts_seqs(&item.facts) {
                                    " · " (event_link(&org, seq))
                                    @if let Some(src) = sources.get(&seq) { " (" (src.summary) ")" }
                                }
                            }
                        }
                    }
                }
            }
            (window_form(&path, pinned, &q, &timeline.from, &timeline.to))
            section aria-labelledby="h-timeline" {
                h2 #h-timeline { "Their access over the window" }
                (intervals(&org, &timeline.intervals, false))
            }
            section aria-labelledby="h-diff" {
                h2 #h-diff { "What changed between the window's ends" }
                @if changes.is_empty() {
                    (empty("Nothing they could do changed between these two moments."))
                } @else {
                    ul.changes {
                        @for c in &changes {
                            li {
                                span class=(format!("tag {}", c.change)) { (c.change) } " "
                                code { (c.permission) } " on " (scope_link(&org, &c.scope, pinned))
                                " — " (cause(&org, &c.cause))
                            }
                        }
                    }
                }
            }
        })
    }
    .await;
    let title = format!("Person: {user}");
    let frame = Frame {
        signed: &signed,
        org: id.as_ref(),
        section: Section::People,
        at: at.and(shown.map(|m| m.seq)),
    };
    layout::answer(&frame, &title, body)
}

/// The positions a permission's facts cite.
fn facts_seqs(facts: &[permledger_domain::Fact]) -> Vec<Seq> {
    use permledger_domain::Fact;
    let mut seqs: Vec<Seq> = facts
        .iter()
        .map(|f| match f {
            Fact::Owner { seq } | Fact::Role { seq, .. } | Fact::Grant { seq, .. } => *seq,
        })
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}

/// The form that sets a window's two ends.
fn window_form(
    path: &str,
    pinned: Option<Seq>,
    q: &WindowQuery,
    from: &Moment,
    to: &Moment,
) -> Markup {
    html! {
        form.window method="get" action=(path) {
            @if let Some(p) = pinned { input type="hidden" name="at" value=(p); }
            p {
                "The window runs from event " (from.seq) " (" (time(from.time)) ") to event " (to.seq) " (" (time(to.time)) ")."
            }
            label for="window-from" { "From (a date, a time, or a position)" }
            input #window-from type="text" name="from" value=(q.from.clone().unwrap_or_default()) placeholder="2026-01-01";
            label for="window-to" { "To" }
            input #window-to type="text" name="to" value=(q.to.clone().unwrap_or_default()) placeholder="the moment shown";
            button type="submit" { "Show the window" }
        }
    }
}

/// What began or ended an interval, in words, with a link to its event.
fn cause(org: &OrgId, p: &Point) -> Markup {
    match &p.cause {
        Cause::Before => html! { "held before the window began" },
        Cause::Expired { at } => html! { "expired at " (time(*at)) },
        Cause::Event { event } => html! {
            (event.summary) " (" (event_link(org, event.seq)) ", " (time(event.time)) " by " (event.actor)
            @if let Some(r) = &event.reason { ": “" (r) "”" }
            ")"
        },
    }
}

/// Intervals of access as a table: who (on a scope's page), what, where, from when and why, to
/// when and why.
fn intervals(org: &OrgId, list: &[Interval], with_user: bool) -> Markup {
    if list.is_empty() {
        return empty("No access was held in this window.");
    }
    html! {
        div.scroll {
            table.timeline {
                thead { tr {
                    @if with_user { th scope="col" { "Person" } }
                    th scope="col" { "Permission" } th scope="col" { "On" } th scope="col" { "From" } th scope="col" { "Until" }
                } }
                tbody {
                    @for i in list {
                        tr {
                            @if with_user { td { (person_link(org, i.user.as_str(), None)) } }
                            td { code { (i.permission) } }
                            td { (i.scope) }
                            td { (cause(org, &i.from)) }
                            td { @match &i.to { Some(p) => (cause(org, p)), None => "still held at the window's end" } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn scope(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path((org, scope)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = org_id(&org).ok();
    let q: Result<WindowQuery, ApiError> = layout::params(raw.as_deref());
    let at = q
        .as_ref()
        .ok()
        .and_then(|q| layout::moment(q.at.as_deref()).ok().flatten());
    let mut shown = None;
    let body = async {
        let org = org_id(&org)?;
        let scope: Scope = scope
            .parse()
            .map_err(|e| ApiError::invalid(format!("the scope in the address: {e}")))?;
        let q = q?;
        let Json(members) = reads::members(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgPath { org: org.clone() }),
            Query(api::MembersParams {
                scope: scope.clone(),
                at,
                min_seq: None,
            }),
        )
        .await?;
        let moment = members.at;
        shown = Some(moment);
        let pinned = at.map(|_| moment.seq);
        // Who could do what here, and why: everyone's access on this scope, as the access
        // answer words it.
        let held = {
            let views = s.ledger.views();
            let o = existing(views.org_at(&org, moment.seq), &org)?;
            permledger_views::snapshot::scope_access(&o, &scope, moment)
        };
        let mut rows: Vec<(UserId, api::AccessItem)> = Vec::new();
        let mut sources: BTreeMap<Seq, Source> = BTreeMap::new();
        for (user, held) in held {
            let a = api::AccessAnswer::build(&org, &user, moment, held, |seqs| {
                s.ledger.sources(seqs)
            })
            .map_err(ApiError::unavailable)?;
            sources.extend(a.sources.into_iter().map(|s| (s.seq, s)));
            rows.extend(a.access.into_iter().map(|i| (user.clone(), i)));
        }
        let (first, last) = bounds(&s, &org);
        let (from, to) = window(&q, first, moment)?;
        let Json(timeline) = compliance::timeline(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgPath { org: org.clone() }),
            Query(api::DiffParams {
                from,
                to: Some(to),
                user: None,
                scope: Some(scope.clone()),
                min_seq: None,
            }),
        )
        .await?;
        let path = format!(
            "/console/orgs/{}/scopes/{}",
            seg(org.as_str()),
            seg(&scope.to_string())
        );
        Ok(html! {
            (picker(&path, &ends(&q), moment, first, last))
            p.lead {
                a href=(url(&format!("/console/orgs/{}/trail", seg(org.as_str())), &[("scope", scope.to_string()), ("indirect", "true".to_string())])) { "The trail of this scope and below" }
            }
            section aria-labelledby="h-members" {
                h2 #h-members { "Members here" }
                @if members.members.is_empty() {
                    (empty("No one is a member here at this moment."))
                } @else {
                    table {
                        thead { tr { th scope="col" { "Person" } th scope="col" { "Role here" } th scope="col" { "Status" } } }
                        tbody {
                            @for m in &members.members {
                                tr {
                                    td { (person_link(&org, m.user.as_str(), pinned)) @if m.owner { " " span.tag { "owner" } } }
                                    td { @if let Some(r) = &m.role { (r) } @else { "—" } }
                                    td { (status(m.status)) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="h-who" {
                h2 #h-who { "Who could do what here, and why" }
                @if rows.is_empty() {
                    (empty("No one holds a permission here at this moment."))
                } @else {
                    div.scroll {
                        table {
                            thead { tr { th scope="col" { "Person" } th scope="col" { "Permission" } th scope="col" { "Why" } } }
                            tbody {
                                @for (u, i) in &rows {
                                    tr {
                                        td { (person_link(&org, u.as_str(), pinned)) }
                                        td { code { (i.permission) } }
                                        td {
                                            (i.because)
                                            @for seq in facts_seqs(&i.facts) {
                                                " · " (event_link(&org, seq))
                                                @if let Some(src) = sources.get(&seq) { " (" (src.summary) ")" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (window_form(&path, pinned, &q, &timeline.from, &timeline.to))
            section aria-labelledby="h-history" {
                h2 #h-history { "The history of its access" }
                (intervals(&org, &timeline.intervals, true))
            }
        })
    }
    .await;
    let title = format!("Scope: {scope}");
    let frame = Frame {
        signed: &signed,
        org: id.as_ref(),
        section: Section::Org,
        at: at.and(shown.map(|m| m.seq)),
    };
    layout::answer(&frame, &title, body)
}
