//! `GET /v1/feed`: Server-Sent Events from any position. Each event's `id` is its global
//! position, so a client that reconnects with `Last-Event-ID` resumes without skipping or
//! repeating one. An org-bound token sees its org's events only.
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
use permledger_domain::OrgId;
use permledger_log::Follower;
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
    let from = match last_event_id(&headers)? {
        Some(last) => last.checked_add(1).ok_or_else(|| {
            ApiError::invalid(format!(
                "`Last-Event-ID` {last} is the last position a log can hold; nothing follows it"
            ))
        })?,
        None => q.from.unwrap_or(1).max(1),
    };
    let follower = Follower::new(s.ledger.log().clone(), from);
    let (tx, rx) = mpsc::channel(BATCH);
    tokio::spawn(follow(
        follower,
        caller.0.org.clone(),
        s.stopping.subscribe(),
        tx,
    ));
    let stream = crate::channel_stream(rx);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
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

async fn follow(
    mut follower: Follower,
    only: Option<OrgId>,
    mut stopping: watch::Receiver<bool>,
    tx: mpsc::Sender<Result<SseEvent, std::convert::Infallible>>,
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
        for r in batch {
            let Ok(event) = r.decode() else {
                tracing::error!(seq = r.seq, "an event of the feed does not decode");
                return;
            };
            if only.as_ref().is_some_and(|o| *o != event.meta.org) {
                continue;
            }
            let data = match serde_json::to_string(&event) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(seq = r.seq, error = %e, "an event of the feed does not encode");
                    return;
                }
            };
            let sse = SseEvent::default()
                .id(r.seq.to_string())
                .event(event.payload.type_name())
                .data(data);
            if tx.send(Ok(sse)).await.is_err() {
                return;
            }
        }
    }
}
