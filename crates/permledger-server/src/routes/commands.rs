//! `POST /v1/commands`: a command issued as a user, answered once durable.

use std::sync::Arc;

use std::time::Instant;

use axum::extract::State;
use axum::Json;
use permledger_api as api;
use permledger_domain::CommandMeta;

use super::Answer;
use crate::auth::Caller;
use crate::extract::JsonBody;
use crate::AppState;

pub async fn submit(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<api::CommandRequest>,
) -> Answer<api::SubmitCommand> {
    caller.write(req.command.org())?;
    let meta = CommandMeta {
        actor: req.actor,
        reason: req.reason,
        request_id: req.request_id,
        idempotency_key: req.idempotency_key,
        expect_version: req.expect_version,
    };
    let started = Instant::now();
    let result = s.ledger.submit(req.command, meta).await;
    s.metrics.command(started.elapsed(), result.is_ok());
    let out = result?;
    Ok(Json(api::CommandAnswer {
        seq: out.seq,
        replayed: out.replayed,
        token: out.link_token,
        events: out.events,
    }))
}
