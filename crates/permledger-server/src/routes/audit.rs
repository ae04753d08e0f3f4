//! The audit log: a page at a time, or the whole filtered log streamed as JSON Lines or CSV.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use permledger_api::{self as api, ExportFormat};
use permledger_domain::Timestamp;
use permledger_views::audit::{AuditEntry, AuditPage, AuditQuery};

use super::Answer;
use crate::auth::Caller;
use crate::extract::{PathParams, Query};
use crate::moment::{fresh, resolve};
use crate::{ApiError, AppState};

/// Entries read per page of an export.
const EXPORT_PAGE: usize = 1000;

/// The filters the page and the export share.
struct Filters<'a> {
    actor: &'a Option<permledger_domain::UserId>,
    user: &'a Option<permledger_domain::UserId>,
    scope: &'a Option<permledger_domain::Scope>,
    types: &'a Option<String>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    at: Option<api::At>,
}

/// The query, with `at` resolved to the last position it includes.
fn to_query(f: Filters<'_>, s: &AppState) -> Result<AuditQuery, ApiError> {
    let until = match f.at {
        None => None,
        Some(at) => Some(resolve(&s.ledger.views(), Some(at), s.clock.now())?.seq),
    };
    Ok(AuditQuery {
        actor: f.actor.clone(),
        user: f.user.clone(),
        scope: f.scope.clone(),
        types: f.types.as_ref().map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        from: f.from,
        to: f.to,
        until,
        after: None,
        limit: None,
    })
}

/// The filters of a page's or an export's query.
macro_rules! filters {
    ($q:expr) => {
        Filters {
            actor: &$q.actor,
            user: &$q.user,
            scope: &$q.scope,
            types: &$q.types,
            from: $q.from,
            to: $q.to,
            at: $q.at,
        }
    };
}

/// One page, read on a blocking thread (it reads events from the log).
async fn page(
    s: &AppState,
    org: &permledger_domain::OrgId,
    reader: &permledger_domain::UserId,
    query: &AuditQuery,
    now: Timestamp,
) -> Result<AuditPage, ApiError> {
    let (ledger, org, reader, query) =
        (s.ledger.clone(), org.clone(), reader.clone(), query.clone());
    tokio::task::spawn_blocking(move || ledger.audit(&org, &reader, &query, now))
        .await
        .map_err(ApiError::unavailable)?
        .map_err(ApiError::from)
}

pub async fn audit(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::AuditParams>,
) -> Answer<api::Audit> {
    caller.read(&p.org)?;
    fresh(&s, q.min_seq).await?;
    let mut query = to_query(filters!(q), &s)?;
    query.after = q.after;
    query.limit = q.limit;
    page(&s, &p.org, &q.reader, &query, s.clock.now())
        .await
        .map(Json)
}

/// One CSV field (RFC 4180), quoted when it must be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const CSV_HEADER: &str = "seq,time,actor,action,user,scope,reason,request_id,before,after\n";

fn csv_row(e: &AuditEntry) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    [
        e.seq.to_string(),
        e.time.to_string(),
        e.actor.to_string(),
        e.action.clone(),
        opt(e.user.as_ref().map(|u| u.to_string())),
        e.scope.to_string(),
        opt(e.reason.clone()),
        opt(e.request_id.clone()),
        e.before.to_string(),
        e.after.to_string(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
        + "\n"
}

fn render(format: ExportFormat, page: &AuditPage) -> Result<String, std::io::Error> {
    let mut out = String::new();
    for e in &page.entries {
        match format {
            ExportFormat::Csv => out.push_str(&csv_row(e)),
            ExportFormat::Jsonl => {
                out.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

type Chunk = Result<String, std::io::Error>;

/// An export in progress: the query and what every page is read with.
struct ExportJob {
    s: Arc<AppState>,
    org: permledger_domain::OrgId,
    reader: permledger_domain::UserId,
    query: AuditQuery,
    format: ExportFormat,
    now: Timestamp,
}

impl ExportJob {
    /// Sends the export page by page, starting with the page already read. A page that cannot
    /// be read ends the response with an error: a compliance export must never end as if it
    /// were complete.
    async fn run(mut self, opening: AuditPage, tx: tokio::sync::mpsc::Sender<Chunk>) {
        if self.format == ExportFormat::Csv && tx.send(Ok(CSV_HEADER.to_string())).await.is_err() {
            return;
        }
        let mut current = opening;
        loop {
            if tx.send(render(self.format, &current)).await.is_err() {
                return;
            }
            let Some(after) = current.next else { return };
            self.query.after = Some(after);
            current = match page(&self.s, &self.org, &self.reader, &self.query, self.now).await {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.message))).await;
                    return;
                }
            };
        }
    }
}

/// The whole audit log matching the filters, streamed page by page as JSON Lines or CSV.
pub async fn export(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::ExportParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.read(&p.org)?;
    let format = q.format.unwrap_or_default();
    fresh(&s, q.min_seq).await?;
    let mut first = to_query(filters!(q), &s)?;
    first.limit = Some(EXPORT_PAGE);
    // The first page is read before answering, so that a refused reader gets a 4xx, not a stream.
    let now = s.clock.now();
    let opening = page(&s, &p.org, &q.reader, &first, now).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let job = ExportJob {
        s,
        org: p.org,
        reader: q.reader,
        query: first,
        format,
        now,
    };
    tokio::spawn(job.run(opening, tx));
    let stream = crate::channel_stream(rx);
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Jsonl => "application/x-ndjson",
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    ))
}
