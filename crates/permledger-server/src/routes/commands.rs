//! `POST /v1/commands`: a command issued as a user, answered once durable.

use std::sync::Arc;

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use permledger_api as api;
use permledger_domain::CommandMeta;

use super::Answer;
use crate::auth::Caller;
use crate::extract::JsonBody;
use crate::{AppState, Json};

pub async fn submit(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(req): JsonBody<api::CommandRequest>,
) -> Answer<api::SubmitCommand> {
    let (actor, command) = (req.actor.clone(), req.command.type_name());
    let principal = caller.principal();
    let started = Instant::now();
    let result = match writer_elsewhere(&s, &headers) {
        Some(address) => forward(&s, &caller, &headers, address, req).await,
        None => decide(&s, &caller, req).await,
    };
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

/// The writer's address, when this server is a cluster node standing by and another node holds
/// the writer's lease, and the command was not forwarded here already (the role moved while it
/// travelled: it is refused `no_writer` rather than sent round again).
fn writer_elsewhere(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let cluster = s.cluster.as_ref()?;
    s.ledger.standing_by()?;
    if headers.contains_key(crate::FORWARDED_HEADER) {
        return None;
    }
    let health = cluster.health();
    match (health.role.as_str(), health.writer, health.writer_address) {
        ("writer", _, _) => None,
        (_, Some(writer), Some(address)) if writer != health.node => Some(address),
        _ => None,
    }
}

/// Sends the command on to the writer with the caller's own token (every node of a cluster
/// holds the same tokens), and answers what the writer answered. The caller checks this node
/// made first still hold: a command this node would refuse is refused here.
async fn forward(
    s: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    address: String,
    req: api::CommandRequest,
) -> Result<api::CommandAnswer, crate::ApiError> {
    caller.write(req.command.org())?;
    caller.acts_as(&req.actor)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let node = s
        .cluster
        .as_ref()
        .map_or(String::new(), |c| c.health().node);
    let to = address.clone();
    let answered = tokio::task::spawn_blocking(move || {
        writer_client(&to, &node)?
            .with_token(token.as_deref())
            .call::<api::SubmitCommand>(&api::NoPath {}, &(), &req)
    })
    .await
    .map_err(crate::ApiError::unavailable)?;
    match answered {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(refusal)) => Err(crate::ApiError::new(
            axum::http::StatusCode::from_u16(refusal.status)
                .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
            &refusal.error.code,
            refusal.error.message,
        )),
        Err(e) => Err(crate::ApiError::no_writer(format!(
            "this node is not the cluster's writer, and the writer at {address} did not answer \
             ({e}); the command may or may not have been recorded: send it again with the same \
             idempotency key"
        ))),
    }
}

/// One client (and its kept-alive connections) per writer address, for the process's life.
fn writer_client(
    address: &str,
    node: &str,
) -> Result<permledger_client::Client, permledger_client::ClientError> {
    static CLIENTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, permledger_client::Client>>,
    > = std::sync::OnceLock::new();
    let mut clients = match CLIENTS.get_or_init(Default::default).lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if let Some(c) = clients.get(address) {
        return Ok(c.clone());
    }
    let client = permledger_client::Client::new(address, None, None)?
        .with_header(crate::FORWARDED_HEADER, node);
    clients.insert(address.to_string(), client.clone());
    Ok(client)
}
