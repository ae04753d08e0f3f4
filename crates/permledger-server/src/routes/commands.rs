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
    let (actor, command) = (req.actor.clone(), req.command.type_name());
    let principal = caller.principal();
    let started = Instant::now();
    let result = decide(&s, &caller, req).await;
    s.metrics.command(started.elapsed(), result.is_ok());
    if let Err(e) = &result {
        // Refused commands are recorded nowhere in the log; a security reviewer finds them here.
        tracing::info!(
            actor = %actor,
            principal = %principal,
            command,
            code = %e.code,
            message = %e.message,
            "command refused"
        );
        s.metrics.refusal(&e.code);
    }
    result.map(Json)
}

async fn decide(
    s: &AppState,
    caller: &Caller,
    req: api::CommandRequest,
) -> Result<api::CommandAnswer, crate::ApiError> {
    caller.write(req.command.org())?;
    caller.acts_as(&req.actor)?;
    let meta = CommandMeta {
        actor: req.actor,
        reason: req.reason,
        request_id: req.request_id,
        idempotency_key: req.idempotency_key,
        expect_version: req.expect_version,
        principal: caller.principal(),
    };
    let out = s.ledger.submit(req.command, meta).await?;
    Ok(api::CommandAnswer {
        seq: out.seq,
        replayed: out.replayed,
        token: out.link_token,
        events: out.events,
    })
}
