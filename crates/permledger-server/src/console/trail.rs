//! The audit trail (filtered, paged, live, exported exactly as filtered), one event on its own
//! page, and the log's integrity (the current digest; whether the log extends a digest kept
//! earlier; the whole chain verified on demand).
//!
//! Live rows: the last page of a trail opens an event stream (`trail/live`) that waits for the
//! views to pass the newest position shown, asks the audit handler for the entries after it
//! with the page's filters, and sends each as the row the page would have rendered. The page's
//! script appends them; nothing but rows the reader may read is ever sent.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use permledger_api::{self as api, At, ExportFormat};
use permledger_domain::{OrgId, Principal, Scope, Seq, Timestamp, UserId};
use permledger_views::audit::{AuditEntry, AuditPage};

use super::layout::{self, empty, seg, time, url, Frame, Section};
use super::org::{caller, download_error, event_link, org_id, person_link, scope_link};
use super::session::Signed;
use crate::extract::{PathParams, Query};
use crate::routes::audit;
use crate::{ApiError, AppState, Json};

/// Entries on one page of the trail, unless the address says otherwise (`limit`, 1 to 1000).
pub const PAGE: usize = 50;

/// The trail's filters as the address gives them (`types` may repeat).
#[derive(Default, Clone)]
struct Filters {
    actor: String,
    user: String,
    scope: String,
    types: Vec<String>,
    from: String,
    to: String,
    indirect: bool,
    after: Option<Seq>,
    limit: Option<usize>,
}

impl Filters {
    fn read(raw: Option<&str>) -> Result<Filters, ApiError> {
        let mut f = Filters::default();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = v.trim().to_string();
            match &*k {
                "actor" => f.actor = v,
                "user" => f.user = v,
                "scope" => f.scope = v,
                "types" if !v.is_empty() => f.types.push(v),
                "types" => {}
                "from" => f.from = v,
                "to" => f.to = v,
                "indirect" => f.indirect = v == "true" || v == "on",
                "limit" if v.is_empty() => {}
                "limit" => {
                    f.limit = Some(
                        v.parse()
                            .ok()
                            .filter(|n| (1..=1000).contains(n))
                            .ok_or_else(|| {
                                ApiError::invalid(format!(
                                    "entries per page is a number from 1 to 1000, not `{v}`"
                                ))
                            })?,
                    )
                }
                "after" if v.is_empty() => {}
                "after" => {
                    f.after = Some(v.parse().map_err(|_| {
                        ApiError::invalid(format!("the page cursor `{v}` is not a position"))
                    })?)
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "the trail has no filter `{other}`"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// The filters as they go back into an address (without the cursor).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("actor", self.actor.clone()),
            ("user", self.user.clone()),
            ("scope", self.scope.clone()),
        ];
        p.extend(self.types.iter().map(|t| ("types", t.clone())));
        p.push(("from", self.from.clone()));
        p.push(("to", self.to.clone()));
        if self.indirect {
            p.push(("indirect", "true".to_string()));
        }
        if let Some(n) = self.limit {
            p.push(("limit", n.to_string()));
        }
        p
    }

    fn user_id(v: &str, what: &str) -> Result<Option<UserId>, ApiError> {
        (!v.is_empty())
            .then(|| v.parse())
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
    }

    fn time(v: &str, what: &str) -> Result<Option<Timestamp>, ApiError> {
        (!v.is_empty())
            .then(|| Timestamp::parse_human(v))
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
    }

    /// The API's query of a page of these filters, read as `reader`.
    fn params(&self, reader: UserId) -> Result<api::AuditParams, ApiError> {
        Ok(api::AuditParams {
            reader,
            actor: Self::user_id(&self.actor, "the actor")?,
            user: Self::user_id(&self.user, "the person")?,
            scope: (!self.scope.is_empty())
                .then(|| self.scope.parse::<Scope>())
                .transpose()
                .map_err(|e| ApiError::invalid(format!("the scope: {e}")))?,
            types: (!self.types.is_empty()).then(|| self.types.join(",")),
            from: Self::time(&self.from, "the start of the time range")?,
            to: Self::time(&self.to, "the end of the time range")?,
            at: None,
            indirect: self.indirect.then_some(true),
            min_seq: None,
            after: self.after,
            limit: Some(self.limit.unwrap_or(PAGE)),
        })
    }
}

/// Whom the trail is read as, or the sentence that says how to name them.
fn reader(signed: &Signed) -> Result<UserId, ApiError> {
    signed.reader.clone().ok_or_else(|| {
        ApiError::forbidden(
            "The trail is read as a member who holds `org.audit.view`, and this session names \
             no one: sign out, and sign in again naming that person (or with a token bound to \
             them).",
        )
    })
}

async fn page_of(
    s: &Arc<AppState>,
    signed: &Signed,
    org: &OrgId,
    f: &Filters,
) -> Result<AuditPage, ApiError> {
    let Json(page) = audit::audit(
        State(s.clone()),
        caller(signed),
        PathParams(api::OrgPath { org: org.clone() }),
        Query(f.params(reader(signed)?)?),
    )
    .await?;
    Ok(page)
}

fn principal(p: &Option<Principal>) -> String {
    match p {
        None => "not recorded".to_string(),
        Some(Principal::Local) => "the command line, on the data folder".to_string(),
        Some(Principal::Token { id, name: Some(n) }) => format!("token “{n}” ({id})"),
        Some(Principal::Token { id, name: None }) => format!("token {id}"),
    }
}

/// One entry as a row of the trail's table.
pub fn row(org: &OrgId, e: &AuditEntry) -> Markup {
    html! {
        tr id=(format!("event-{}", e.seq)) {
            td { (event_link(org, e.seq)) br; (time(e.time)) }
            td {
                (e.summary)
                @if !e.changes.is_empty() {
                    ul.changes {
                        @for c in &e.changes {
                            li { (c.field) ": " (c.from.as_deref().unwrap_or("—")) " → " (c.to.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
            td { (person_link(org, e.actor.as_str(), None)) br; small { (principal(&e.principal)) } }
            td { @if let Some(r) = &e.reason { (r) } @else { "—" } }
            td { @if let Some(r) = &e.request_id { code { (r) } } @else { "—" } }
            td {
                @if let Some(c) = &e.cause {
                    "follows " (event_link(org, c.seq)) ": " (c.summary)
                } @else { "—" }
            }
        }
    }
}

fn table(org: &OrgId, entries: &[AuditEntry], live: Option<String>) -> Markup {
    html! {
        div.scroll {
            table.trail data-live=[live] {
                thead { tr {
                    th scope="col" { "Event" } th scope="col" { "What changed" } th scope="col" { "Who, and through what" }
                    th scope="col" { "Reason" } th scope="col" { "Request" } th scope="col" { "Follows from" }
                } }
                tbody { @for e in entries { (row(org, e)) } }
            }
        }
    }
}

fn filter_form(path: &str, f: &Filters) -> Markup {
    let types = permledger_domain::EventPayload::TYPE_NAMES;
    html! {
        form.filters method="get" action=(path) {
            div { label for="f-actor" { "Actor (who did it)" } input #f-actor type="text" name="actor" value=(f.actor); }
            div { label for="f-user" { "Person concerned" } input #f-user type="text" name="user" value=(f.user); }
            div { label for="f-scope" { "Scope and below" } input #f-scope type="text" name="scope" value=(f.scope) placeholder="team:support"; }
            div { label for="f-from" { "From (UTC)" } input #f-from type="text" name="from" value=(f.from) placeholder="2026-01-01"; }
            div { label for="f-to" { "To (UTC)" } input #f-to type="text" name="to" value=(f.to) placeholder="2026-03-31T23:59:59"; }
            div {
                label for="f-types" { "Event types" }
                select #f-types name="types" multiple size="4" {
                    @for t in types { option value=(t) selected[f.types.iter().any(|x| x == t)] { (t) } }
                }
            }
            div.check {
                input #f-indirect type="checkbox" name="indirect" value="true" checked[f.indirect];
                label for="f-indirect" { "Also what concerns the person or scope without naming them" }
            }
            div {
                label for="f-limit" { "Entries per page" }
                select #f-limit name="limit" {
                    @for n in [25, 50, 100, 250, 1000] {
                        option value=(n) selected[f.limit.unwrap_or(PAGE) == n] { (n) }
                    }
                }
            }
            div.actions { button type="submit" { "Filter" } a href=(path) { "Clear" } }
        }
    }
}

pub async fn trail(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let id = org_id(&org).ok();
    // A refused filter or reader still shows the filters, to put right, with the refusal's status.
    let mut status = StatusCode::OK;
    let body = async {
        let org = org_id(&org)?;
        let f = Filters::read(raw.as_deref())?;
        let path = format!("/console/orgs/{}/trail", seg(org.as_str()));
        let form = filter_form(&path, &f);
        let page = match page_of(&s, &signed, &org, &f).await {
            Ok(p) => p,
            Err(e) => {
                status = e.status;
                return Ok(html! { (form) p.error role="alert" { (e.message) } });
            }
        };
        let pairs = f.pairs();
        let export = |format: &str| {
            let mut p = pairs.clone();
            p.push(("format", format.to_string()));
            url(&format!("{path}/export"), &p)
        };
        let live = page.next.is_none().then(|| {
            let mut p = pairs.clone();
            let newest = page.entries.last().map_or(f.after.unwrap_or(0), |e| e.seq);
            p.push(("after", newest.to_string()));
            url(&format!("{path}/live"), &p)
        });
        Ok(html! {
            (form)
            p.downloads {
                "Export exactly this filtered trail: "
                a href=(export("csv")) download { "CSV" } ", "
                a href=(export("jsonl")) download { "JSON Lines" }
                " (each ends with the digest of the log it covers)."
            }
            @if page.entries.is_empty() {
                (empty(if f.after.is_some() { "No more entries match these filters." } else { "No entry of the trail matches these filters." }))
            } @else {
                p role="status" {
                    "Entries " (page.entries.first().map_or(0, |e| e.seq)) " to " (page.entries.last().map_or(0, |e| e.seq)) ", oldest first"
                    @if page.next.is_none() { "; the last page." } @else { "." }
                }
            }
            (table(&org, &page.entries, live.clone()))
            @if live.is_some() {
                p.live role="status" aria-live="polite" data-live-status { "New events matching these filters appear here as they are recorded." }
            }
            nav.pager aria-label="Pages" {
                @if f.after.is_some() { a href=(url(&path, &pairs)) { "First page" } }
                @if let Some(next) = page.next {
                    a rel="next" href=(url(&path, &[pairs.as_slice(), &[("after", next.to_string())]].concat())) { "Next page" }
                }
            }
        })
    }
    .await;
    let frame = Frame {
        signed: &signed,
        org: id.as_ref(),
        section: Section::Trail,
        at: None,
    };
    match body {
        Ok(b) => layout::page(&frame, "Audit trail", status, b),
        Err(e) => layout::problem(&frame, "Audit trail", &e),
    }
}

pub async fn export(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let answer = async {
        let org = org_id(&org)?;
        let mut format = ExportFormat::Jsonl;
        let mut rest = Vec::new();
        for (k, v) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
            match (&*k, &*v) {
                ("format", "csv") => format = ExportFormat::Csv,
                ("format", "jsonl") => format = ExportFormat::Jsonl,
                ("format", other) => {
                    return Err(ApiError::invalid(format!(
                        "an export is `csv` or `jsonl`, not `{other}`"
                    )))
                }
                _ => rest.push((k.into_owned(), v.into_owned())),
            }
        }
        let rest = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(rest)
            .finish();
        let f = Filters::read(Some(&rest))?;
        let p = f.params(reader(&signed)?)?;
        let q = api::ExportParams {
            reader: p.reader,
            actor: p.actor,
            user: p.user,
            scope: p.scope,
            types: p.types,
            from: p.from,
            to: p.to,
            at: None,
            indirect: p.indirect,
            min_seq: None,
            format: Some(format),
        };
        let mut r = audit::export(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgPath { org: org.clone() }),
            Query(q),
        )
        .await?
        .into_response();
        let ext = match format {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        };
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{org}-audit.{ext}\""))
        {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        Ok(r)
    }
    .await;
    answer.unwrap_or_else(download_error)
}

/// New rows of a trail's last page, as they are recorded.
pub async fn live(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let start = async {
        let org = org_id(&org)?;
        let f = Filters::read(raw.as_deref())?;
        // Refused filters or a refused reader answer now, not as a stream.
        page_of(
            &s,
            &signed,
            &org,
            &Filters {
                after: Some(s.ledger.seq()),
                ..f.clone()
            },
        )
        .await?;
        Ok::<_, ApiError>((org, f))
    }
    .await;
    let (org, mut f) = match start {
        Ok(x) => x,
        Err(e) => return download_error(e),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, std::convert::Infallible>>(16);
    let mut stopping = s.stopping.subscribe();
    tokio::spawn(async move {
        let mut cursor = f.after.unwrap_or(0);
        loop {
            tokio::select! {
                () = s.ledger.wait_for(cursor + 1) => {}
                _ = stopping.wait_for(|s| *s) => return,
                () = tx.closed() => return,
            }
            // Everything up to the position the views hold now, page by page.
            let upto = s.ledger.seq();
            f.after = Some(cursor);
            loop {
                let page = match page_of(&s, &signed, &org, &f).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e.message, "a console's live trail stopped");
                        return;
                    }
                };
                for e in page.entries.iter().filter(|e| e.seq <= upto) {
                    let sse = SseEvent::default()
                        .id(e.seq.to_string())
                        .event("entry")
                        .data(row(&org, e).into_string());
                    if tx.send(Ok(sse)).await.is_err() {
                        return;
                    }
                }
                match page.next {
                    Some(n) if n < upto => f.after = Some(n),
                    _ => break,
                }
            }
            cursor = upto;
        }
    });
    Sse::new(crate::channel_stream(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

pub async fn event(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    Path((org, seq)): Path<(String, String)>,
) -> Response {
    let id = org_id(&org).ok();
    let title = format!("Event {seq}");
    let body = async {
        let org = org_id(&org)?;
        let seq: Seq = seq
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| ApiError::invalid(format!("`{seq}` is not a position in the log")))?;
        let Json(page) = audit::audit(
            State(s.clone()),
            caller(&signed),
            PathParams(api::OrgPath { org: org.clone() }),
            Query(api::AuditParams {
                reader: reader(&signed)?,
                actor: None,
                user: None,
                scope: None,
                types: None,
                from: None,
                to: None,
                at: Some(At::Seq(seq)),
                indirect: None,
                min_seq: None,
                after: Some(seq - 1),
                limit: Some(1),
            }),
        )
        .await?;
        let e = page.entries.into_iter().find(|e| e.seq == seq).ok_or_else(|| {
            ApiError::not_found(format!(
                "event {seq} is not an event of `{org}` in the trail this session may read"
            ))
        })?;
        let org_at = |n: Seq| url(&format!("/console/orgs/{}", seg(org.as_str())), &[("at", n.to_string())]);
        Ok(html! {
            p.lead { (e.summary) }
            dl.facts {
                dt { "Recorded" } dd { (time(e.time)) ", position " (e.seq) ", version " (e.org_version) " of the org" }
                dt { "Type" } dd { code { (e.action) } }
                dt { "Actor" } dd { (person_link(&org, e.actor.as_str(), Some(seq))) }
                dt { "Submitted through" } dd { (principal(&e.principal)) }
                @if let Some(u) = &e.user { dt { "Person concerned" } dd { (person_link(&org, u.as_str(), Some(seq))) } }
                @if let Some(m) = &e.email { dt { "Address" } dd { (m) } }
                dt { "Scope" } dd { (scope_link(&org, &e.scope, Some(seq))) }
                @if let Some(r) = &e.role { dt { "Role" } dd { code { (r) } } }
                @if let Some(p) = &e.permission { dt { "Permission" } dd { code { (p) } } }
                @if let Some(x) = e.expires_at { dt { "Expires" } dd { (time(x)) } }
                dt { "Reason" } dd { @if let Some(r) = &e.reason { (r) } @else { "none given" } }
                dt { "Request" } dd { @if let Some(r) = &e.request_id { code { (r) } } @else { "none given" } }
                dt { "Event id" } dd { code { (e.event_id) } }
            }
            @if !e.changes.is_empty() {
                h2 { "What changed" }
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody { @for c in &e.changes { tr { td { (c.field) } td { (c.from.as_deref().unwrap_or("—")) } td { (c.to.as_deref().unwrap_or("—")) } } } }
                }
            }
            @if let Some(c) = &e.cause {
                h2 { "Where its authority comes from" }
                p { (event_link(&org, c.seq)) ", " (time(c.time)) ", by " (c.actor) ": " (c.summary)
                    @if let Some(r) = &c.reason { " — “" (r) "”" }
                    @if let Some(r) = &c.request_id { " (request " code { (r) } ")" } }
            }
            p { "The org " a href=(org_at(seq - 1)) { "just before" } " and " a href=(org_at(seq)) { "just after" } " this event." }
        })
    }
    .await;
    let frame = Frame {
        signed: &signed,
        org: id.as_ref(),
        section: Section::Trail,
        at: None,
    };
    layout::answer(&frame, &title, body)
}

/// A finished verification, kept for the integrity page.
#[derive(Clone)]
pub struct Verified {
    pub at: Timestamp,
    pub digest: Option<String>,
    pub outcome: Result<String, String>,
}

pub async fn integrity(
    State(s): State<Arc<AppState>>,
    signed: Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let frame = Frame {
        signed: &signed,
        org: None,
        section: Section::Integrity,
        at: None,
    };
    let body = async {
        let mut digest_text = String::new();
        let mut run = false;
        for (k, v) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
            match &*k {
                "digest" => digest_text = v.trim().to_string(),
                "verify" => run = true,
                other => return Err(ApiError::invalid(format!("the integrity page has no parameter `{other}`"))),
            }
        }
        // A plain `SEQ:HASH`, or a signed statement (checked against this ledger's key).
        let digest = if digest_text.is_empty() {
            None
        } else if digest_text.starts_with('{') {
            let stated: permledger_log::SignedDigest = serde_json::from_str(&digest_text)
                .map_err(|e| ApiError::invalid(format!("the signed digest does not read: {e}")))?;
            let key = s.signer.as_ref().ok_or_else(|| {
                ApiError::invalid("this ledger has no signing key to check a signed digest with")
            })?;
            Some(stated.check(&key.public()).map_err(|e| {
                ApiError::invalid(format!("the signed digest does not hold: {e}"))
            })?)
        } else {
            Some(
                digest_text
                    .parse::<permledger_log::Digest>()
                    .map_err(ApiError::invalid)?,
            )
        };
        let head = s.ledger.seq();
        let current = s.ledger.covers(head).map_err(ApiError::unavailable)?;
        let outcome = if run || digest.is_some() {
            Some(verify(&s, digest).await?)
        } else {
            None
        };
        let last = s.console.last_verified();
        // The same digest stated now and signed with the ledger's key, for keeping elsewhere.
        let statement = match (&s.signer, current.digest().parse::<permledger_log::Digest>()) {
            (Some(key), Ok(d)) => Some(key.sign(d, s.clock.now())),
            _ => None,
        };
        Ok(html! {
            section aria-labelledby="h-digest" {
                h2 #h-digest { "The current digest" }
                p { "Keep this digest (position and chain hash of the last event). Later, paste it below: if the log still extends it, nothing recorded up to it was altered, removed or reordered." }
                p { code.digest #current-digest { (current.digest()) } " " button type="button" data-copy="current-digest" { "Copy" } }
                @if let Some(signed) = &statement {
                    p {
                        "Signed now by the ledger's key " code.digest #ledger-key { (signed.key) }
                        " (keep the key somewhere else too: `permledger verify --digest … --key …` checks a statement against it):"
                    }
                    p { code.digest #signed-digest { (signed) } " " button type="button" data-copy="signed-digest" { "Copy" } }
                }
            }
            section aria-labelledby="h-check" {
                h2 #h-check { "Check a digest kept earlier" }
                form method="get" action="/console/integrity" {
                    label for="digest" { "Digest (SEQ:HASH, or a signed digest)" }
                    input #digest type="text" name="digest" value=(digest_text) autocomplete="off" spellcheck="false" size="72";
                    button type="submit" { "Check" }
                }
                form method="get" action="/console/integrity" {
                    input type="hidden" name="verify" value="chain";
                    button type="submit" { "Verify the whole chain now" }
                }
                @if let Some(v) = &outcome { (verdict(v)) }
            }
            section aria-labelledby="h-state" {
                h2 #h-state { "The chain's verification state" }
                @match &last {
                    Some(v) => p {
                        "Last verified " (time(v.at))
                        @if let Some(d) = &v.digest { ", against digest " code.digest { (d) } }
                        ": " (if v.outcome.is_ok() { "unaltered. " } else { "TAMPERED. " })
                        (match &v.outcome { Ok(m) | Err(m) => m.as_str() })
                    },
                    None => (empty("The chain has not been verified since this server started. Verify it above.")),
                }
            }
        })
    }
    .await;
    layout::answer(&frame, "Integrity", body)
}

fn verdict(v: &Verified) -> Markup {
    match &v.outcome {
        Ok(m) => html! { p.ok role="status" { strong { "Unaltered. " } (m) } },
        Err(m) => html! { p.error role="alert" { strong { "TAMPERED. " } (m) } },
    }
}

/// Verifies the whole chain (and that it extends `digest`), one verification at a time.
async fn verify(
    s: &Arc<AppState>,
    digest: Option<permledger_log::Digest>,
) -> Result<Verified, ApiError> {
    let _one = s.console.verifying.lock().await;
    let ledger = s.ledger.clone();
    let asked = digest.as_ref().map(ToString::to_string);
    let found = tokio::task::spawn_blocking(move || {
        permledger_log::verify(&**ledger.log(), digest.as_slice(), |_| {})
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(ApiError::unavailable)?;
    let outcome = match found {
        Ok(r) => Ok(match &r.extends {
            Some(d) => format!(
                "The log extends {d}: event {} still links as it did, and the whole chain of {} events verifies up to {}.",
                d.seq, r.events, r.head
            ),
            None => format!("The whole chain of {} events verifies, up to {}.", r.events, r.head),
        }),
        Err(t) => Err(format!("{t}.")),
    };
    let v = Verified {
        at: s.clock.now(),
        digest: asked,
        outcome,
    };
    s.console.remember(v.clone());
    Ok(v)
}
