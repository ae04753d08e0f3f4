//! The orgs the token may read, and one org whole at a moment (the API's snapshot): owner,
//! teams and inboxes as a tree, members with status and roles, roles and what they grant,
//! masks, pending invites and open links, with the snapshot's downloads.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use permledger_api as api;
use permledger_domain::state::MemberStatus;
use permledger_domain::{OrgId, Seq};
use permledger_views::snapshot::{Snapshot, SNAPSHOT_TABLES};
use serde::Deserialize;

use super::layout::{self, answer, empty, picker, seg, time, url, Frame, Section};
use super::session::Signed;
use crate::auth::Caller;
use crate::extract::{PathParams, Query};
use crate::routes::compliance;
use crate::{ApiError, AppState, Json};

/// The only parameter of pages that show one moment.
#[derive(Deserialize, Default)]
pub struct AtQuery {
    pub at: Option<String>,
}

pub fn caller(signed: &Signed) -> Caller {
    Caller(signed.caller.0.clone())
}

/// An org id from the address.
pub fn org_id(raw: &str) -> Result<OrgId, ApiError> {
    raw.parse()
        .map_err(|e| ApiError::invalid(format!("the org in the address: {e}")))
}

/// The first and last positions of an org's history, for the slider.
pub fn bounds(s: &AppState, org: &OrgId) -> (Seq, Seq) {
    let views = s.ledger.views();
    let last = views.seq();
    let first = views.histories.get(org).map_or(1, |h| h.created());
    (first, last)
}

/// The status of a member, in words.
pub fn status(s: MemberStatus) -> &'static str {
    match s {
        MemberStatus::Active => "active",
        MemberStatus::Suspended => "suspended",
    }
}

/// A link to a person's page at the moment shown.
pub fn person_link(org: &OrgId, user: &str, at: Option<Seq>) -> Markup {
    let href = url(
        &format!("/console/orgs/{}/people/{}", seg(org.as_str()), seg(user)),
        &at.map(|a| ("at", a.to_string()))
            .into_iter()
            .collect::<Vec<_>>(),
    );
    html! { a href=(href) { (user) } }
}

/// A link to a scope's page at the moment shown.
pub fn scope_link(org: &OrgId, scope: &impl std::fmt::Display, at: Option<Seq>) -> Markup {
    let scope = scope.to_string();
    if scope == "org" {
        return html! { "the org" };
    }
    let href = url(
        &format!("/console/orgs/{}/scopes/{}", seg(org.as_str()), seg(&scope)),
        &at.map(|a| ("at", a.to_string()))
            .into_iter()
            .collect::<Vec<_>>(),
    );
    html! { a href=(href) { (scope) } }
}

/// A link to the event at `seq`, as the trail shows it.
pub fn event_link(org: &OrgId, seq: Seq) -> Markup {
    let href = format!("/console/orgs/{}/events/{seq}", seg(org.as_str()));
    html! { a href=(href) { "event " (seq) } }
}

pub async fn orgs(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    RawQuery(q): RawQuery,
) -> Response {
    let frame = Frame {
        signed: &signed,
        org: None,
        section: Section::Orgs,
        at: None,
    };
    let body = async {
        let q: AtQuery = layout::params(q.as_deref())?;
        let at = layout::moment(q.at.as_deref())?;
        let Json(a) = compliance::orgs(
            State(s.clone()),
            caller(&signed),
            Query(api::MomentParams { at, min_seq: None }),
        )
        .await?;
        let pinned = at.map(|_| a.at.seq);
        Ok(html! {
            p { "The orgs this token may read, at event " (a.at.seq) ", " (time(a.at.time)) "." }
            @if a.orgs.is_empty() {
                (empty("This token may read no org that exists at this moment."))
            } @else {
                table {
                    thead { tr { th scope="col" { "Org" } th scope="col" { "Name" } th scope="col" { "Owner" } th scope="col" { "Members" } th scope="col" { "Teams" } th scope="col" { "Inboxes" } } }
                    tbody {
                        @for o in &a.orgs {
                            tr {
                                td { a href=(url(&format!("/console/orgs/{}", seg(o.org.as_str())), &pinned.map(|p| ("at", p.to_string())).into_iter().collect::<Vec<_>>())) { (o.org) } }
                                td { (o.name) }
                                td { (person_link(&o.org, o.owner.as_str(), pinned)) }
                                td.num { (o.members) }
                                td.num { (o.teams) }
                                td.num { (o.inboxes) }
                            }
                        }
                    }
                }
            }
        })
    }
    .await;
    answer(&frame, "Orgs", body)
}

/// The org at the moment the address names, as the API's snapshot answers it.
async fn whole(
    s: &Arc<AppState>,
    signed: &Signed,
    org: &str,
    q: Option<&str>,
) -> Result<Snapshot, ApiError> {
    let org = org_id(org)?;
    let q: AtQuery = layout::params(q)?;
    let at = layout::moment(q.at.as_deref())?;
    let Json(snap) = compliance::snapshot(
        State(s.clone()),
        caller(signed),
        PathParams(api::OrgPath { org }),
        Query(api::MomentParams { at, min_seq: None }),
    )
    .await?;
    Ok(snap)
}

/// Members shown on one page of the org's.
const MEMBERS_PER_PAGE: usize = 100;

#[derive(Deserialize, Default)]
struct OrgQuery {
    at: Option<String>,
    /// The page of the members table, from 1.
    members: Option<usize>,
}

/// The org at the moment, with one page of its members.
async fn paged(
    s: &Arc<AppState>,
    signed: &Signed,
    org: &str,
    q: &OrgQuery,
) -> Result<(Snapshot, usize), ApiError> {
    let org = org_id(org)?;
    let at = layout::moment(q.at.as_deref())?;
    let page = q.members.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::invalid("the members' page counts from 1"));
    }
    let skip = (page - 1).saturating_mul(MEMBERS_PER_PAGE);
    let params = api::MomentParams { at, min_seq: None };
    compliance::snapshot_of(
        s,
        &caller(signed),
        &org,
        &params,
        Some((skip, MEMBERS_PER_PAGE)),
    )
    .await
}

pub async fn org(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q: Result<OrgQuery, ApiError> = layout::params(q.as_deref());
    let pinned = q
        .as_ref()
        .ok()
        .and_then(|q| q.at.as_deref())
        .is_some_and(|a| !a.trim().is_empty());
    let answer = match &q {
        Ok(q) => paged(&s, &signed, &org, q).await,
        Err(e) => Err(e.clone()),
    };
    let page = q.as_ref().ok().and_then(|q| q.members).unwrap_or(1);
    match answer {
        Ok((snap, total)) => {
            let at = pinned.then_some(snap.at.seq);
            let frame = Frame {
                signed: &signed,
                org: Some(&snap.org),
                section: Section::Org,
                at,
            };
            let (first, last) = bounds(&s, &snap.org);
            let path = format!("/console/orgs/{}", seg(snap.org.as_str()));
            let title = format!("{} ({})", snap.name, snap.org);
            let body = html! {
                (picker(&path, &[], snap.at, first, last))
                (org_body(&snap, at, total, page))
            };
            layout::page(&frame, &title, StatusCode::OK, body)
        }
        Err(e) => {
            let id = org_id(&org).ok();
            let frame = Frame {
                signed: &signed,
                org: id.as_ref(),
                section: Section::Org,
                at: None,
            };
            layout::problem(&frame, "Org", &e)
        }
    }
}

fn org_body(snap: &Snapshot, at: Option<Seq>, total: usize, page: usize) -> Markup {
    let org = &snap.org;
    let names: std::collections::HashMap<&str, &str> = snap
        .inboxes
        .iter()
        .map(|i| (i.inbox.as_str(), i.name.as_str()))
        .collect();
    let path = format!("/console/orgs/{}", seg(org.as_str()));
    let page_link = |n: usize| {
        let mut p: Vec<(&str, String)> = at.map(|a| ("at", a.to_string())).into_iter().collect();
        p.push(("members", n.to_string()));
        url(&path, &p)
    };
    let shown_from = (page - 1) * MEMBERS_PER_PAGE + 1;
    let shown_to = shown_from + snap.members.len().saturating_sub(1);
    let at_param: Vec<(&str, String)> = vec![("at", snap.at.seq.to_string())];
    let team_of_none: Vec<_> = snap.inboxes.iter().filter(|i| i.team.is_none()).collect();
    html! {
        section aria-labelledby="h-summary" {
            h2 #h-summary { "Summary" }
            dl.facts {
                dt { "Owner" } dd { (person_link(org, snap.owner.as_str(), at)) }
                dt { "Members" } dd { (total) }
                dt { "Teams" } dd { (snap.teams.len()) }
                dt { "Inboxes" } dd { (snap.inboxes.len()) }
                dt { "Digest of the log at this moment" } dd { code.digest { (snap.covers.digest()) } }
            }
            p.downloads {
                "Download this moment: "
                a href=(url(&format!("/console/orgs/{}/snapshot.json", seg(org.as_str())), &at_param)) download { "everything (JSON)" }
                @for t in SNAPSHOT_TABLES {
                    ", "
                    a href=(url(&format!("/console/orgs/{}/snapshot/{t}", seg(org.as_str())), &at_param)) download { (t) " (CSV)" }
                }
            }
        }
        section aria-labelledby="h-tree" {
            h2 #h-tree { "Teams and inboxes" }
            @if snap.teams.is_empty() && snap.inboxes.is_empty() {
                (empty("The org has no team and no inbox at this moment."))
            } @else {
                ul.tree {
                    li {
                        (snap.name) " (the org)"
                        ul {
                            @for t in &snap.teams {
                                li {
                                    (scope_link(org, &format!("team:{}", t.team), at)) " — " (t.name)
                                    @if !t.inboxes.is_empty() {
                                        ul {
                                            @for i in &t.inboxes {
                                                @let name = names.get(i.as_str()).copied().unwrap_or("");
                                                li { (scope_link(org, &format!("inbox:{i}"), at)) " — " (name) }
                                            }
                                        }
                                    }
                                }
                            }
                            @for i in &team_of_none {
                                li { (scope_link(org, &format!("inbox:{}", i.inbox), at)) " — " (i.name) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="h-members" {
            h2 #h-members { "Members" }
            @if total == 0 {
                (empty("The org has no member at this moment."))
            } @else if snap.members.is_empty() {
                (empty(&format!("There is no page {page} of members: the org has {total} at this moment.")))
            } @else {
                p role="status" {
                    "Members " (shown_from) "–" (shown_to) " of " (total) ", by id. "
                    a href=(url(&format!("{path}/people"), &at.map(|a| ("at", a.to_string())).into_iter().collect::<Vec<_>>())) { "Find a person" }
                    " · every member is in the downloads above."
                }
                div.scroll {
                    table {
                        thead { tr { th scope="col" { "Member" } th scope="col" { "Status" } th scope="col" { "Roles" } th scope="col" { "Direct grants" } } }
                        tbody {
                            @for m in &snap.members {
                                tr {
                                    td {
                                        (person_link(org, m.user.as_str(), at))
                                        @if m.owner { " " span.tag { "owner" } }
                                        @if m.guest { " " span.tag { "guest" } }
                                    }
                                    td { span class=(format!("status {}", status(m.status))) { (status(m.status)) } }
                                    td {
                                        @for r in &m.roles {
                                            div {
                                                (r.role) " on " (scope_link(org, &r.scope, at))
                                                @if let Some(e) = r.expires_at { " until " (time(e)) }
                                                @if !r.live { " " span.tag { "expired" } }
                                            }
                                        }
                                    }
                                    td {
                                        @for g in &m.grants {
                                            div {
                                                (g.permission) " on " (scope_link(org, &g.scope, at))
                                                @if let Some(e) = g.expires_at { " until " (time(e)) }
                                                @if !g.live { " " span.tag { "expired" } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if total > MEMBERS_PER_PAGE {
                    nav.pager aria-label="Pages of members" {
                        @if page > 1 { a rel="prev" href=(page_link(page - 1)) { "Previous members" } }
                        @if shown_to < total { a rel="next" href=(page_link(page + 1)) { "Next members" } }
                    }
                }
            }
        }
        section aria-labelledby="h-roles" {
            h2 #h-roles { "Roles and what they grant" }
            div.scroll {
                table.roles {
                    thead { tr { th scope="col" { "Role" } th scope="col" { "Name" } th scope="col" { "On" } th scope="col" { "Grants" } } }
                    tbody {
                        @for r in &snap.roles {
                            tr {
                                td { code { (r.role) } }
                                td { (r.name) }
                                td { (format!("{:?}", r.kind).to_lowercase()) }
                                td { (r.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        @if !snap.masks.is_empty() {
            section aria-labelledby="h-masks" {
                h2 #h-masks { "Masks" }
                ul {
                    @for m in &snap.masks {
                        li { code { (m.pattern) } " is masked on " (scope_link(org, &m.scope, at)) " since " (event_link(org, m.seq)) }
                    }
                }
            }
        }
        section aria-labelledby="h-invites" {
            h2 #h-invites { "Pending invites" }
            @if snap.invites.is_empty() && snap.links.is_empty() {
                (empty("No invite or link is open at this moment."))
            } @else {
                ul {
                    @for i in &snap.invites {
                        li {
                            (i.email) " invited by " (person_link(org, i.issued_by.as_str(), at))
                            @if let Some(r) = &i.role { " as " (r) }
                            @if i.guest { " (guest)" }
                            @if let Some(e) = i.expires_at { ", open until " (time(e)) }
                        }
                    }
                    @for l in &snap.links {
                        li {
                            "An invite link made by " (person_link(org, l.created_by.as_str(), at))
                            @if let Some(r) = &l.role { " for " (r) }
                            ", used " (l.uses)
                            @if let Some(m) = l.max_uses { " of " (m) }
                            " times"
                            @if let Some(e) = l.expires_at { ", open until " (time(e)) }
                        }
                    }
                }
            }
        }
    }
}

/// A download: the answer with a file name.
fn attachment(content_type: &str, file: String, digest: String, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (
                header::HeaderName::from_static(crate::routes::audit::DIGEST_HEADER),
                digest,
            ),
        ],
        body,
    )
        .into_response()
}

/// A download's error: the sentence, as text.
pub fn download_error(e: ApiError) -> Response {
    (e.status, format!("{}\n", e.message)).into_response()
}

pub async fn snapshot_json(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    match whole(&s, &signed, &org, q.as_deref()).await {
        Ok(snap) => match serde_json::to_string_pretty(&snap) {
            Ok(body) => attachment(
                "application/json",
                format!("{}-seq{}.json", snap.org, snap.at.seq),
                snap.covers.digest(),
                body,
            ),
            Err(e) => download_error(ApiError::unavailable(e)),
        },
        Err(e) => download_error(e),
    }
}

pub async fn snapshot_csv(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path((org, table)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let answer = async {
        let org = org_id(&org)?;
        let table: api::SnapshotTable =
            serde_json::from_value(serde_json::Value::String(table.clone())).map_err(|_| {
                ApiError::not_found(format!(
                    "a snapshot has no table `{table}`; it has {}",
                    SNAPSHOT_TABLES.join(", ")
                ))
            })?;
        let q: AtQuery = layout::params(q.as_deref())?;
        let at = layout::moment(q.at.as_deref())?;
        compliance::snapshot_csv(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgTablePath { org, table }),
            Query(api::MomentParams { at, min_seq: None }),
        )
        .await
        .map(IntoResponse::into_response)
    }
    .await;
    answer.unwrap_or_else(download_error)
}
