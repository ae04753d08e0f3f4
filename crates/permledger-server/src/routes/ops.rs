//! What operators and monitors read without a token: health, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use permledger_api as api;

use super::Answer;
use crate::{AppState, Json};

pub async fn healthz(State(s): State<Arc<AppState>>) -> Answer<api::Health> {
    let read_only = s.ledger.read_only().map(str::to_string);
    Ok(Json(api::HealthAnswer {
        status: if read_only.is_some() {
            "read_only"
        } else {
            "ok"
        }
        .to_string(),
        seq: s.ledger.seq(),
        read_only,
        cluster: s.cluster.as_ref().map(|c| c.health()),
    }))
}

pub async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let head = s.ledger.log().head().map(|d| d.seq).unwrap_or(0);
    let lag = head.saturating_sub(s.ledger.seq());
    let mut text = s.metrics.render(s.ledger.seq(), lag);
    if let Some(c) = &s.cluster {
        crate::metrics::render_cluster(&mut text, &c.health());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The document derived from the endpoint types (`permledger_api::openapi`).
pub async fn openapi() -> Answer<api::OpenApi> {
    Ok(Json(api::openapi::document()))
}
