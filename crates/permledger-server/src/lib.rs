//! permledger's HTTP API. `router(state)` is a plain function, so tests call it without a socket.
//!
//! Every request but `/healthz` and `/metrics` carries `Authorization: Bearer <token>`; a token is
//! bound to one org (or all) and to a role. Commands answer the recorded events and the position
//! to ask for reads at least as fresh as (`min_seq`); refusals answer 4xx with `{"code", "message"}`
//! using domain.md's codes. Queries take a moment (`at_seq` or `at_time`).

pub mod error;
pub mod metrics;
pub mod openapi;
pub mod sandbox;
pub mod tokens;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use permledger_domain::check;
use permledger_domain::{
    Command, CommandMeta, Explanation, OrgId, PermissionKey, Scope, ScopeKind, Timestamp, UserId,
};
use permledger_ledger::{Clock, Ledger};
use permledger_views::audit::AuditQuery;
use permledger_views::read::CheckItem;
use permledger_views::{At, Moment, OrgAt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use error::ApiError;
pub use tokens::{TokenRecord, TokenRole, Tokens};

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// How long a read waits for `min_seq` before answering that it is not there yet.
const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    pub tokens: Arc<Tokens>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<metrics::Metrics>,
    /// Set to true when the server is stopping, so that change feeds end and the drain can finish.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Present when the server keeps sandboxes (`serve --sandboxes`).
    pub sandboxes: Option<Arc<sandbox::Sandboxes>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/v1/commands", post(command))
        .route("/v1/feed", get(feed))
        .route("/v1/orgs/{org}/check", get(check_one))
        .route("/v1/orgs/{org}/check/batch", post(check_batch))
        .route("/v1/orgs/{org}/who_can", get(who_can))
        .route("/v1/orgs/{org}/permissions", get(permissions))
        .route("/v1/orgs/{org}/scopes", get(scopes))
        .route("/v1/orgs/{org}/members", get(members))
        .route("/v1/orgs/{org}/users/{user}", get(user_view))
        .route("/v1/orgs/{org}/roles", get(roles))
        .route("/v1/orgs/{org}/invites", get(invites))
        .route("/v1/orgs/{org}/audit", get(audit))
        .route("/v1/orgs/{org}/audit/export", get(audit_export))
        .route("/v1/orgs/{org}/diff", get(diff))
        .route("/v1/verify", post(verify))
        .route("/v1/sandboxes", post(sandbox::create))
        .route("/v1/sandboxes/{id}", axum::routing::delete(sandbox::delete))
        .route("/v1/sandboxes/{id}/clock", put(sandbox::set_clock))
        .route("/sandboxes/{id}/{*rest}", any(sandbox::forward))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// The caller, from its bearer token.
pub struct Caller(pub TokenRecord);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>`"))?;
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer <token>`")
            })?;
        state
            .tokens
            .verify(secret.trim())
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

impl Caller {
    fn org(&self, org: &OrgId) -> Result<(), ApiError> {
        match &self.0.org {
            Some(bound) if bound != org => Err(ApiError::forbidden(format!(
                "this token is bound to org `{bound}`, not `{org}`"
            ))),
            _ => Ok(()),
        }
    }
    fn operator(&self) -> Result<(), ApiError> {
        if self.0.role != TokenRole::Operator {
            return Err(ApiError::forbidden("this needs an operator token"));
        }
        Ok(())
    }
    fn read(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)
    }
    fn write(&self, org: &OrgId) -> Result<(), ApiError> {
        self.org(org)?;
        if self.0.role == TokenRole::Auditor {
            return Err(ApiError::forbidden("an auditor token reads only"));
        }
        Ok(())
    }
}

pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|r| ApiError::new(r.status(), "invalid", r.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|r| ApiError::invalid(r.body_text()))
}

fn org_id(org: &str) -> Result<OrgId, ApiError> {
    OrgId::new(org).map_err(|e| ApiError::invalid(e.to_string()))
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    Json(json!({"status": "ok", "seq": s.ledger.seq()}))
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    let head = s.ledger.log().head().map(|d| d.seq).unwrap_or(0);
    let lag = head.saturating_sub(s.ledger.seq());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(s.ledger.seq(), lag),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    #[serde(rename = "as")]
    pub actor: UserId,
    #[serde(rename = "do")]
    pub command: Command,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub expect_version: Option<u64>,
}

async fn command(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<CommandRequest>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let req = json_body(body)?;
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
    Ok(Json(json!({
        "seq": out.seq,
        "replayed": out.replayed,
        "token": out.link_token,
        "events": out.events,
    })))
}

/// A moment and a freshness floor, common to every query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentParams {
    pub at_seq: Option<u64>,
    pub at_time: Option<String>,
    pub min_seq: Option<u64>,
}

impl MomentParams {
    fn at(&self) -> Result<Option<At>, ApiError> {
        match (self.at_seq, &self.at_time) {
            (Some(_), Some(_)) => Err(ApiError::invalid("name `at_seq` or `at_time`, not both")),
            (Some(n), None) => Ok(Some(At::Seq(n))),
            (None, Some(t)) => Timestamp::parse(t)
                .map(|t| Some(At::Time(t)))
                .map_err(|e| ApiError::invalid(e.to_string())),
            (None, None) => Ok(None),
        }
    }
}

/// A query's moment, whatever else it asks.
pub trait HasMoment {
    fn moment(&self) -> MomentParams;
}

impl HasMoment for MomentParams {
    fn moment(&self) -> MomentParams {
        MomentParams {
            at_seq: self.at_seq,
            at_time: self.at_time.clone(),
            min_seq: self.min_seq,
        }
    }
}

/// Declares a query's parameters with the moment fields every query has.
macro_rules! query_params {
    ($name:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $field: $ty,)*
            pub at_seq: Option<u64>,
            pub at_time: Option<String>,
            pub min_seq: Option<u64>,
        }
        impl HasMoment for $name {
            fn moment(&self) -> MomentParams {
                MomentParams { at_seq: self.at_seq, at_time: self.at_time.clone(), min_seq: self.min_seq }
            }
        }
    };
}

query_params!(CheckParams {
    user: UserId,
    permission: PermissionKey,
    scope: Scope
});
query_params!(WhoCanParams {
    permission: PermissionKey,
    scope: Scope
});
query_params!(PermissionsParams {
    user: UserId,
    scope: Scope
});
query_params!(ScopesParams { user: UserId, permission: PermissionKey, kind: Option<ScopeKind> });
query_params!(MembersParams { scope: Scope });
query_params!(BatchRequest { items: Vec<CheckItem> });

/// The shape of every read of one org: parse the org and the query, authorize the token, wait for
/// `min_seq`, resolve the moment, and answer from the org as it was then (None if it did not exist).
async fn read_org<P: HasMoment>(
    s: &AppState,
    caller: &Caller,
    org: &str,
    q: Result<Query<P>, QueryRejection>,
    f: impl FnOnce(&P, &OrgId, Option<OrgAt<'_>>, Moment) -> Result<Value, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let org = org_id(org)?;
    caller.read(&org)?;
    let q = query(q)?;
    let m = q.moment();
    if let Some(min) = m.min_seq {
        if tokio::time::timeout(FRESHNESS_WAIT, s.ledger.wait_for(min))
            .await
            .is_err()
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "the views have not reached position {min} yet (at {})",
                    s.ledger.seq()
                ),
            ));
        }
    }
    let at = m.at()?;
    let views = s.ledger.views();
    let moment = views
        .moment(at.as_ref(), s.clock.now())
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    f(&q, &org, views.org_at(&org, moment.seq), moment).map(Json)
}

fn moment_json(m: Moment) -> Value {
    json!({"seq": m.seq, "time": m.time})
}

fn existing<'a>(org: Option<OrgAt<'a>>, id: &OrgId) -> Result<OrgAt<'a>, ApiError> {
    org.ok_or_else(|| ApiError::not_found(format!("org `{id}` does not exist at that moment")))
}

fn explanation_json(e: &Explanation) -> Value {
    json!({"allowed": e.allowed, "facts": e.facts, "denial": e.denial})
}

fn not_member() -> Explanation {
    Explanation {
        allowed: false,
        facts: Vec::new(),
        denial: Some(permledger_domain::Denial::NotMember),
    }
}

async fn check_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<CheckParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    s.metrics.checks(1);
    read_org(&s, &caller, &org, q, |q, _, o, m| {
        let e = match o {
            Some(o) => check::explain(&o, &q.user, &q.permission, &q.scope, m.time),
            None => not_member(),
        };
        let mut body = explanation_json(&e);
        body["at"] = moment_json(m);
        Ok(body)
    })
    .await
}

async fn check_batch(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    body: Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let b = json_body(body)?;
    if b.items.len() > 1000 {
        return Err(ApiError::invalid("a batch holds at most 1000 checks"));
    }
    s.metrics.checks(b.items.len() as u64);
    read_org(&s, &caller, &org, Ok(Query(b)), |b, _, o, m| {
        let answers: Vec<Value> = match o {
            Some(o) => permledger_views::read::batch_check(&o, &b.items, m.time)
                .iter()
                .map(explanation_json)
                .collect(),
            None => b
                .items
                .iter()
                .map(|_| explanation_json(&not_member()))
                .collect(),
        };
        Ok(json!({"at": moment_json(m), "answers": answers}))
    })
    .await
}

async fn who_can(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<WhoCanParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |q, id, o, m| {
        let users = check::who_can(&existing(o, id)?, &q.permission, &q.scope, m.time);
        Ok(json!({"at": moment_json(m), "users": users}))
    })
    .await
}

async fn permissions(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<PermissionsParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |q, id, o, m| {
        let keys = check::permissions(&existing(o, id)?, &q.user, &q.scope, m.time);
        Ok(json!({"at": moment_json(m), "permissions": keys}))
    })
    .await
}

async fn scopes(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<ScopesParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |q, id, o, m| {
        let found = check::scopes(&existing(o, id)?, &q.user, &q.permission, q.kind, m.time);
        Ok(json!({"at": moment_json(m), "scopes": found}))
    })
    .await
}

#[derive(Serialize)]
struct MemberRow {
    user: UserId,
    role: Option<permledger_domain::RoleId>,
    status: permledger_domain::state::MemberStatus,
}

async fn members(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<MembersParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |q, id, o, m| {
        let rows: Vec<MemberRow> =
            permledger_views::read::members(&existing(o, id)?, &q.scope, m.time)
                .into_iter()
                .map(|(user, (role, status))| MemberRow { user, role, status })
                .collect();
        Ok(json!({"at": moment_json(m), "members": rows}))
    })
    .await
}

async fn user_view(
    State(s): State<AppState>,
    caller: Caller,
    Path((org, user)): Path<(String, String)>,
    q: Result<Query<MomentParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let user = UserId::new(user).map_err(|e| ApiError::invalid(e.to_string()))?;
    read_org(&s, &caller, &org, q, |_, id, o, m| {
        let view = permledger_views::read::user_view(&existing(o, id)?, &user, m.time).ok_or_else(
            || {
                ApiError::not_found(format!(
                    "`{user}` is not a member of org `{id}` at that moment"
                ))
            },
        )?;
        Ok(json!({"at": moment_json(m), "user": view}))
    })
    .await
}

async fn roles(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<MomentParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |_, id, o, m| {
        Ok(json!({"at": moment_json(m), "roles": permledger_views::read::roles(&existing(o, id)?)}))
    })
    .await
}

async fn invites(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<MomentParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    read_org(&s, &caller, &org, q, |_, id, o, m| {
        let (invites, links) = permledger_views::read::pending(&existing(o, id)?, m.time);
        Ok(json!({"at": moment_json(m), "invites": invites, "links": links}))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(rename = "as")]
    pub reader: UserId,
    pub actor: Option<UserId>,
    pub user: Option<UserId>,
    pub scope: Option<Scope>,
    /// Comma-separated event types.
    pub types: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub at_seq: Option<u64>,
    pub at_time: Option<String>,
    pub after: Option<u64>,
    pub limit: Option<usize>,
    /// For the export: `jsonl` (default) or `csv`.
    pub format: Option<String>,
}

impl AuditParams {
    /// The query, with `at_seq` or `at_time` resolved to the last position it includes.
    fn to_query(&self, s: &AppState) -> Result<AuditQuery, ApiError> {
        let at = MomentParams {
            at_seq: self.at_seq,
            at_time: self.at_time.clone(),
            min_seq: None,
        }
        .at()?;
        let until = match at {
            None => None,
            Some(at) => Some(
                s.ledger
                    .views()
                    .moment(Some(&at), s.clock.now())
                    .map_err(|e| ApiError::invalid(e.to_string()))?
                    .seq,
            ),
        };
        let time = |t: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
            t.as_deref()
                .map(Timestamp::parse)
                .transpose()
                .map_err(|e| ApiError::invalid(e.to_string()))
        };
        Ok(AuditQuery {
            actor: self.actor.clone(),
            user: self.user.clone(),
            scope: self.scope.clone(),
            types: self.types.as_ref().map(|t| {
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            from: time(&self.from)?,
            to: time(&self.to)?,
            until,
            after: self.after,
            limit: self.limit,
        })
    }
}

async fn audit(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let org = org_id(&org)?;
    caller.read(&org)?;
    let q = query(q)?;
    if q.format.is_some() {
        return Err(ApiError::invalid("`format` belongs to /audit/export"));
    }
    let aq = q.to_query(&s)?;
    let ledger = s.ledger.clone();
    let now = s.clock.now();
    let page = tokio::task::spawn_blocking(move || ledger.audit(&org, &q.reader, &aq, now))
        .await
        .map_err(ApiError::unavailable)??;
    Ok(Json(page))
}

/// One CSV field (RFC 4180), quoted when it must be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(e: &permledger_views::audit::AuditEntry) -> String {
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

/// The whole audit log matching the filters, streamed page by page as JSON Lines or CSV.
async fn audit_export(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<AuditParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let org = org_id(&org)?;
    caller.read(&org)?;
    let q = query(q)?;
    let csv = match q.format.as_deref() {
        None | Some("jsonl") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "format `{other}` is not `jsonl` or `csv`"
            )))
        }
    };
    let mut first = q.to_query(&s)?;
    first.limit = Some(1000);
    let reader = q.reader.clone();
    let now = s.clock.now();
    // The first page is read before answering, so that a refused reader gets a 4xx, not a stream.
    let page = {
        let (ledger, org, reader, first) =
            (s.ledger.clone(), org.clone(), reader.clone(), first.clone());
        tokio::task::spawn_blocking(move || ledger.audit(&org, &reader, &first, now))
            .await
            .map_err(ApiError::unavailable)??
    };
    let header = csv
        .then(|| "seq,time,actor,action,user,scope,reason,request_id,before,after\n".to_string());
    let render = move |page: &permledger_views::audit::AuditPage| -> String {
        page.entries
            .iter()
            .map(|e| {
                if csv {
                    csv_row(e)
                } else {
                    serde_json::to_string(e).unwrap_or_default() + "\n"
                }
            })
            .collect()
    };
    let ledger = s.ledger.clone();
    let stream = futures_util::stream::unfold(
        (Some(page), header, first),
        move |(page, header, mut next_query)| {
            let (ledger, org, reader) = (ledger.clone(), org.clone(), reader.clone());
            async move {
                if let Some(h) = header {
                    return Some((Ok::<String, std::io::Error>(h), (page, None, next_query)));
                }
                let page = page?;
                let chunk = render(&page);
                let following = match page.next {
                    None => None,
                    Some(after) => {
                        next_query.after = Some(after);
                        let q2 = next_query.clone();
                        match tokio::task::spawn_blocking(move || {
                            ledger.audit(&org, &reader, &q2, now)
                        })
                        .await
                        {
                            Ok(Ok(p)) => Some(p),
                            // A page that cannot be read aborts the response: a compliance export
                            // must never end as if it were complete.
                            Ok(Err(e)) => {
                                let e = std::io::Error::other(e.to_string());
                                return Some((Err(e), (None, None, next_query)));
                            }
                            Err(e) => {
                                let e = std::io::Error::other(e.to_string());
                                return Some((Err(e), (None, None, next_query)));
                            }
                        }
                    }
                };
                Some((Ok(chunk), (following, None, next_query)))
            }
        },
    );
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(stream),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffParams {
    pub from_seq: Option<u64>,
    pub from_time: Option<String>,
    pub to_seq: Option<u64>,
    pub to_time: Option<String>,
    pub user: Option<UserId>,
    pub scope: Option<Scope>,
}

async fn diff(
    State(s): State<AppState>,
    caller: Caller,
    Path(org): Path<String>,
    q: Result<Query<DiffParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let org = org_id(&org)?;
    caller.read(&org)?;
    let q = query(q)?;
    let from = MomentParams {
        at_seq: q.from_seq,
        at_time: q.from_time.clone(),
        min_seq: None,
    }
    .at()?;
    let to = MomentParams {
        at_seq: q.to_seq,
        at_time: q.to_time.clone(),
        min_seq: None,
    }
    .at()?;
    let Some(from) = from else {
        return Err(ApiError::invalid(
            "name the first moment with `from_seq` or `from_time`",
        ));
    };
    let views = s.ledger.views();
    let now = s.clock.now();
    let from = views
        .moment(Some(&from), now)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let to = views
        .moment(to.as_ref(), now)
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let d = permledger_views::diff::diff(&views, &org, from, to, q.user.as_ref(), q.scope.as_ref());
    Ok(Json(
        json!({"from": moment_json(from), "to": moment_json(to), "gained": d.gained, "lost": d.lost}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Recompute the hash chain over every stored event (default true).
    #[serde(default = "yes")]
    pub chain: bool,
    /// Also rebuild every projection from the log and compare it with the served one (default true).
    #[serde(default = "yes")]
    pub projections: bool,
    /// Positions at which to compare the reconstructed past with a plain fold of the log.
    #[serde(default)]
    pub past: Vec<u64>,
}

fn yes() -> bool {
    true
}

fn finding(r: Result<(), permledger_ledger::Mismatch>) -> Value {
    match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "problem": e.to_string()}),
    }
}

/// Replay tooling's check of a running ledger: the hash chain and every stored event, the served
/// projections against a rebuild from the log, and the past at the positions asked. Operators only;
/// it reads the whole log.
async fn verify(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.operator()?;
    let req = json_body(body)?;
    if req.past.len() > 1000 {
        return Err(ApiError::invalid("`past` holds at most 1000 positions"));
    }
    let ledger = s.ledger.clone();
    tokio::task::spawn_blocking(move || {
        let chain = if req.chain {
            match permledger_log::verify(&**ledger.log(), None, |_| {}) {
                Ok(Ok(r)) => json!({"ok": true, "events": r.events, "head": r.head.to_string()}),
                Ok(Err(t)) => json!({"ok": false, "problem": t.to_string()}),
                Err(e) => return Err(ApiError::unavailable(e)),
            }
        } else {
            Value::Null
        };
        let projections = req
            .projections
            .then(|| finding(ledger.verify_projections()));
        let past: Vec<Value> = req
            .past
            .iter()
            .map(|&seq| {
                let mut v = finding(ledger.verify_past(seq));
                v["seq"] = json!(seq);
                v
            })
            .collect();
        let ok = (chain.is_null() || chain["ok"] == true)
            && projections.as_ref().is_none_or(|p| p["ok"] == true)
            && past.iter().all(|p| p["ok"] == true);
        Ok(Json(
            json!({"ok": ok, "chain": chain, "projections": projections, "past": past}),
        ))
    })
    .await
    .map_err(ApiError::unavailable)?
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// The first position to send (default 1). A `Last-Event-ID` header resumes after that id.
    pub from: Option<u64>,
}

/// Server-Sent Events from any position: each event's `id` is its global position, so a client
/// that reconnects with `Last-Event-ID` resumes without skipping or repeating one. An org-bound
/// token sees its org's events only.
async fn feed(
    State(s): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    q: Result<Query<FeedParams>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
    let q = query(q)?;
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid("`Last-Event-ID` is not a log position"))?
                + 1,
        ),
        None => None,
    };
    let from = resume.or(q.from).unwrap_or(1).max(1);
    let only = caller.0.org.clone();
    let follower = permledger_log::Follower::new(s.ledger.log().clone(), from);
    let stopping = s.stopping.subscribe();
    let stream = futures_util::stream::unfold(
        (follower, std::collections::VecDeque::new(), stopping),
        move |(mut follower, mut buffered, mut stopping)| {
            let only = only.clone();
            async move {
                loop {
                    if let Some(e) = buffered.pop_front() {
                        return Some((
                            Ok::<SseEvent, std::convert::Infallible>(e),
                            (follower, buffered, stopping),
                        ));
                    }
                    let next = tokio::select! {
                        b = follower.next_batch(256) => b,
                        _ = stopping.wait_for(|s| *s) => return None,
                    };
                    let batch = match next {
                        Ok(b) if !b.is_empty() => b,
                        Ok(_) => return None,
                        Err(e) => {
                            tracing::error!(error = %e, "the change feed stopped");
                            return None;
                        }
                    };
                    for r in batch {
                        let Ok(event) = r.decode() else {
                            tracing::error!(seq = r.seq, "an event of the feed does not decode");
                            return None;
                        };
                        if only.as_ref().is_some_and(|o| *o != event.meta.org) {
                            continue;
                        }
                        let data = serde_json::to_string(&event).unwrap_or_default();
                        buffered.push_back(
                            SseEvent::default()
                                .id(r.seq.to_string())
                                .event(event.payload.type_name())
                                .data(data),
                        );
                    }
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
