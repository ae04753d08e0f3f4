//! `GET /v1/feed`: Server-Sent Events from any position. Each event's `id` is its global
//! position, so a client that reconnects with `Last-Event-ID` resumes without skipping or
//! repeating one. An org-bound token sees its org's events only. `GET /v1/records`: the same
//! log as stored records (hash and bytes), a batch a message, for replicas.
//!
//! A task follows the log and sends each event into a small channel; the response streams what
//! the channel receives. The task ends when the client goes away (the channel closes), when the
//! server stops, or when the log cannot be read (the stream then ends, and the client resumes).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use permledger_api as api;
use permledger_domain::Seq;
use permledger_log::{Follower, Record};
use tokio::sync::{mpsc, watch};

use crate::auth::Caller;
use crate::extract::Query;
use crate::{ApiError, AppState};

/// Events read from the log at a time.
const BATCH: usize = 256;

pub async fn feed(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<api::FeedParams>,
) -> Result<impl IntoResponse, ApiError> {
    let from = first_position(&headers, q.from)?;
    let only = caller.0.org.clone();
    let events = move |batch: Vec<Record>| {
        let mut out = Vec::with_capacity(batch.len());
        for r in batch {
            let event = r
                .decode()
                .map_err(|e| format!("event {} does not decode: {e}", r.seq))?;
            if only.as_ref().is_some_and(|o| *o != event.meta.org) {
                continue;
            }
            let data = serde_json::to_string(&event)
                .map_err(|e| format!("event {} does not encode: {e}", r.seq))?;
            out.push(
                SseEvent::default()
                    .id(r.seq.to_string())
                    .event(event.payload.type_name())
                    .data(data),
            );
        }
        Ok(out)
    };
    Ok(stream(&s, from, events))
}

/// `GET /v1/records`: the stored records themselves, a batch a message, for a replica that
/// checks every link (`permledger_replica::Replica::follow_server`). Following the chain needs
/// every record, so the caller's token must not be bound to an org.
pub async fn records(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<api::FeedParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.whole_ledger("the log's records")?;
    let from = first_position(&headers, q.from)?;
    let batches = |batch: Vec<Record>| {
        let Some(last) = batch.last().map(|r| r.seq) else {
            return Ok(Vec::new());
        };
        let records: Vec<api::StoredRecord> = batch.iter().map(api::StoredRecord::from).collect();
        let data = serde_json::to_string(&records)
            .map_err(|e| format!("records up to {last} do not encode: {e}"))?;
        Ok(vec![SseEvent::default()
            .id(last.to_string())
            .event("records")
            .data(data)])
    };
    Ok(stream(&s, from, batches))
}

/// The first position to send: after `Last-Event-ID` when the client resumes, else `from`.
fn first_position(headers: &HeaderMap, from: Option<u64>) -> Result<Seq, ApiError> {
    match last_event_id(headers)? {
        Some(last) => last.checked_add(1).ok_or_else(|| {
            ApiError::invalid(format!(
                "`Last-Event-ID` {last} is the last position a log can hold; nothing follows it"
            ))
        }),
        None => Ok(from.unwrap_or(1).max(1)),
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("`Last-Event-ID` is not a log position"))
        })
        .transpose()
}

/// The response: a task follows the log from `from` and sends what `messages` makes of each
/// batch it reads.
fn stream(
    s: &AppState,
    from: Seq,
    messages: impl FnMut(Vec<Record>) -> Result<Vec<SseEvent>, String> + Send + 'static,
) -> impl IntoResponse {
    let follower = Follower::new(s.ledger.log().clone(), from);
    let (tx, rx) = mpsc::channel(BATCH);
    tokio::spawn(follow(follower, s.stopping.subscribe(), tx, messages));
    Sse::new(crate::channel_stream(rx)).keep_alive(KeepAlive::default())
}

async fn follow(
    mut follower: Follower,
    mut stopping: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<SseEvent, std::convert::Infallible>>,
    mut messages: impl FnMut(Vec<Record>) -> Result<Vec<SseEvent>, String>,
) {
    loop {
        let batch = tokio::select! {
            b = follower.next_batch(BATCH) => b,
            _ = stopping.wait_for(|s| *s) => return,
            () = tx.closed() => return,
        };
        let batch = match batch {
            Ok(b) if !b.is_empty() => b,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "the change feed stopped");
                return;
            }
        };
        let sent = match messages(batch) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("the change feed stopped: {e}");
                return;
            }
        };
        for m in sent {
            if tx.send(Ok(m)).await.is_err() {
                return;
            }
        }
    }
}
