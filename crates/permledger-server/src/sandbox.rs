//! Sandboxes: isolated in-memory ledgers with a hand-set clock, for running scenario files (and
//! trying commands) against a live server without touching its data. Off unless the server starts
//! with `--sandboxes`; every sandbox route needs an operator token.
//!
//! A sandbox is the whole API again: `/sandboxes/{id}/v1/...` is forwarded to a router of its own
//! over its own ledger, so a client that speaks the API speaks to a sandbox by changing its base
//! URL. The clock is set with `PUT /v1/sandboxes/{id}/clock`; like a ledger's recorded time, it
//! never goes back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use permledger_api as api;
use permledger_domain::Timestamp;
use permledger_ledger::{Clock, Ledger, ManualClock};
use permledger_log::MemoryLog;
use tower::ServiceExt as _;

use crate::extract::{JsonBody, PathParams};
use crate::routes::Answer;
use crate::{router, ApiError, AppState, Caller, Json};

/// The clock a sandbox starts with unless told otherwise (scenarios.md's default).
pub const START: &str = "2026-01-01T00:00:00Z";

/// The sandboxes alive on one server.
pub struct Sandboxes {
    alive: Mutex<HashMap<String, Sandbox>>,
    max: usize,
}

#[derive(Clone)]
struct Sandbox {
    router: Router,
    clock: Arc<ManualClock>,
}

impl Sandboxes {
    /// At most `max` sandboxes live at once; each holds its ledger in memory until deleted.
    pub fn new(max: usize) -> Sandboxes {
        Sandboxes {
            alive: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn get(&self, id: &str) -> Result<Sandbox, ApiError> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no sandbox `{id}`")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sandbox>> {
        match self.alive.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn enabled(s: &AppState, caller: &Caller) -> Result<Arc<Sandboxes>, ApiError> {
    caller.operator()?;
    s.sandboxes.clone().ok_or_else(|| {
        ApiError::not_found(
            "sandboxes are off; start the server with `permledger serve --sandboxes`",
        )
    })
}

pub(crate) async fn create(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<api::SandboxRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let boxes = enabled(&s, &caller)?;
    let start = match req.clock {
        Some(t) => t,
        None => Timestamp::parse(START).map_err(ApiError::unavailable)?,
    };
    let clock = Arc::new(ManualClock::new(start));
    let ledger =
        Ledger::open(Arc::new(MemoryLog::new()), clock.clone()).map_err(ApiError::unavailable)?;
    let inner = AppState {
        ledger,
        tokens: s.tokens.clone(),
        clock: clock.clone(),
        metrics: Default::default(),
        stopping: s.stopping.clone(),
        sandboxes: None,
        console: Default::default(),
        signer: None,
        cluster: None,
    };
    let id = uuid::Uuid::new_v4().simple().to_string();
    {
        let mut alive = boxes.lock();
        if alive.len() >= boxes.max {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "{} sandboxes are alive, the most this server keeps; delete one first",
                    boxes.max
                ),
            ));
        }
        alive.insert(
            id.clone(),
            Sandbox {
                router: router(inner),
                clock,
            },
        );
    }
    tracing::info!(sandbox = %id, "sandbox created");
    Ok((
        StatusCode::CREATED,
        Json(api::SandboxAnswer {
            base: format!("/sandboxes/{id}"),
            id,
            clock: start,
        }),
    ))
}

pub(crate) async fn delete(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(api::SandboxPath { id }): PathParams<api::SandboxPath>,
) -> Result<StatusCode, ApiError> {
    let boxes = enabled(&s, &caller)?;
    // Dropping the last handle on its ledger ends the sandbox's writer thread.
    let removed = boxes.lock().remove(&id);
    match removed {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found(format!("no sandbox `{id}`"))),
    }
}

pub(crate) async fn set_clock(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(api::SandboxPath { id }): PathParams<api::SandboxPath>,
    JsonBody(req): JsonBody<api::ClockRequest>,
) -> Answer<api::SetSandboxClock> {
    let boxes = enabled(&s, &caller)?;
    let now = req.now;
    let sandbox = boxes.get(&id)?;
    let current = sandbox.clock.now();
    if now < current {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the clock never goes back: it is {current}, not {now}"),
        ));
    }
    sandbox.clock.set(now);
    Ok(Json(api::ClockAnswer { now }))
}

/// `/sandboxes/{id}/...`: the request goes, with the prefix taken off, to the sandbox's router.
pub(crate) async fn forward(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams((id, _rest)): PathParams<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let boxes = enabled(&s, &caller)?;
    let sandbox = boxes.get(&id)?;
    let (parts, body) = request.into_parts();
    let prefix = format!("/sandboxes/{id}");
    let inner = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .and_then(|p| p.strip_prefix(&prefix))
        .unwrap_or("/")
        .to_string();
    // A fresh request: the outer route's path parameters live in the extensions and must not
    // reach the sandbox's router.
    let mut forwarded = Request::new(Body::new(body));
    *forwarded.method_mut() = parts.method;
    *forwarded.headers_mut() = parts.headers;
    *forwarded.uri_mut() = inner
        .parse()
        .map_err(|_| ApiError::invalid(format!("`{inner}` is not a path")))?;
    let response = sandbox.router.oneshot(forwarded).await;
    match response {
        Ok(r) => Ok(r),
        Err(never) => match never {},
    }
}
