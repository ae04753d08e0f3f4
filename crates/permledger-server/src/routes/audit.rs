//! The audit log: a page at a time, or the whole filtered log streamed as JSON Lines or CSV.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use permledger_api::{self as api, ExportFormat};
use permledger_domain::Timestamp;
use permledger_views::audit::{AuditPage, AuditQuery};
use permledger_views::export::{self, Covers};

use super::Answer;
use crate::auth::Caller;
use crate::extract::{PathParams, Query};
use crate::moment::{fresh, resolve};
use crate::{ApiError, AppState, Json};

/// The header that names what an export covers, `SEQ:HASH` (its last line says it too).
pub const DIGEST_HEADER: &str = "permledger-digest";

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
    indirect: bool,
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
        indirect: f.indirect,
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
            indirect: $q.indirect == Some(true),
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
    caller.reads_as(&q.reader)?;
    fresh(&s, q.min_seq).await?;
    let mut query = to_query(filters!(q), &s)?;
    query.after = q.after;
    query.limit = q.limit;
    page(&s, &p.org, &q.reader, &query, s.clock.now())
        .await
        .map(Json)
}

fn render(format: ExportFormat, page: &AuditPage) -> Result<String, std::io::Error> {
    let mut out = String::new();
    for e in &page.entries {
        match format {
            ExportFormat::Csv => out.push_str(&export::csv_line(export::audit_cells(e))),
            ExportFormat::Jsonl => {
                out.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// The line that ends an export: what it covers.
fn trailer(format: ExportFormat, covers: &Covers) -> Result<String, std::io::Error> {
    Ok(match format {
        ExportFormat::Csv => export::csv_digest_line(covers),
        ExportFormat::Jsonl => {
            let line = export::DigestLine {
                digest: covers.clone(),
            };
            serde_json::to_string(&line).map_err(std::io::Error::other)? + "\n"
        }
    })
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
    covers: Covers,
}

impl ExportJob {
    /// Sends the export page by page, starting with the page already read. A page that cannot
    /// be read ends the response with an error: a compliance export must never end as if it
    /// were complete.
    async fn run(mut self, opening: AuditPage, tx: tokio::sync::mpsc::Sender<Chunk>) {
        if self.format == ExportFormat::Csv
            && tx
                .send(Ok(export::csv_line(export::AUDIT_COLUMNS)))
                .await
                .is_err()
        {
            return;
        }
        let mut current = opening;
        loop {
            if tx.send(render(self.format, &current)).await.is_err() {
                return;
            }
            let Some(after) = current.next else {
                let _ = tx.send(trailer(self.format, &self.covers)).await;
                return;
            };
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
    caller.reads_as(&q.reader)?;
    let format = q.format.unwrap_or_default();
    fresh(&s, q.min_seq).await?;
    let mut first = to_query(filters!(q), &s)?;
    first.limit = Some(EXPORT_PAGE);
    // The export covers the log up to one position, fixed now, and ends by naming it.
    let until = first.until.unwrap_or_else(|| s.ledger.seq());
    first.until = Some(until);
    let covers = s.ledger.covers(until).map_err(ApiError::unavailable)?;
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
        covers: covers.clone(),
    };
    tokio::spawn(job.run(opening, tx));
    let stream = crate::channel_stream(rx);
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Jsonl => "application/x-ndjson",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::HeaderName::from_static(DIGEST_HEADER),
                covers.digest(),
            ),
        ],
        axum::body::Body::from_stream(stream),
    ))
}
