//! permledger's HTTP API. `router(state)` is a plain function, so tests call it without a socket.
//!
//! The contract (each endpoint's method, path, parameters, body and answer) is declared once in
//! `permledger_api`; this crate routes each endpoint type to its handler (`routes`, one module
//! per resource) and extracts with its types. Every request but `/healthz`, `/metrics` and
//! `/openapi.json` carries `Authorization: Bearer <token>` (`auth`); a token is bound to one org
//! (or all) and to a role. Every answer that is not 2xx is `{"code","message"}` with the one
//! status of its code, whichever layer catches the mistake (`error`, `extract`).

pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
mod json;
pub mod metrics;
mod moment;
pub mod routes;
pub mod sandbox;
pub mod tls;
pub mod tokens;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{any, on, MethodFilter, MethodRouter};
use axum::Router;
use permledger_api::{self as api, Endpoint, Method};
use permledger_ledger::{Clock, Ledger};

pub use auth::Caller;
pub use error::ApiError;
pub use json::Json;
pub use moment::FRESHNESS_WAIT;
pub use tokens::{TokenRecord, TokenRole, Tokens};

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;

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
    /// The console's sessions.
    pub console: Arc<console::Sessions>,
    /// The ledger's signing key: `GET /v1/digest` signs the head with it (None: unsigned).
    pub signer: Option<Arc<permledger_log::LedgerKey>>,
    /// A cluster node's view of itself (`serve --cluster`); None for a server on its own.
    pub cluster: Option<Arc<dyn Cluster>>,
}

/// A cluster node as the HTTP edge needs it: for `/healthz` and `/metrics`, and to send a
/// command that reaches a node that is not the writer on to the one that is.
pub trait Cluster: Send + Sync {
    fn health(&self) -> api::ClusterHealth;
}

/// The header a node adds to a command it forwards to the writer: a node that receives a
/// forwarded command and is not the writer (the role moved meanwhile) refuses it rather than
/// forward it again.
pub const FORWARDED_HEADER: &str = "permledger-forwarded-by";

/// Routes endpoint `E` to `handler`, at the method and path the contract gives it.
fn route<E: Endpoint, H: Handler<T, Arc<AppState>>, T: 'static>(
    router: Router<Arc<AppState>>,
    handler: H,
) -> Router<Arc<AppState>> {
    let method = match E::METHOD {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Delete => MethodFilter::DELETE,
    };
    let route = on(method, handler);
    if E::METHOD.has_body() {
        // Only a route that reads a body has a body limit, or can be asked `Expect:
        // 100-continue`; each layer costs a request a boxed future and a copy of the route,
        // which the reads do without.
        router.route(E::PATH, with_body_limit(route))
    } else {
        router.route(E::PATH, route)
    }
}

pub fn router(state: AppState) -> Router {
    use routes::{audit, commands, compliance, feed, ops, reads, verify};
    // A header value holds no control character; the reason is one line of text.
    let read_only = state.ledger.read_only().map(|why| {
        axum::http::HeaderValue::from_str(
            &why.replace(|c: char| !c.is_ascii() || c.is_ascii_control(), " "),
        )
        .unwrap_or(axum::http::HeaderValue::from_static("true"))
    });
    let r = Router::new();
    let r = route::<api::Health, _, _>(r, ops::healthz);
    let r = route::<api::Metrics, _, _>(r, ops::metrics);
    let r = route::<api::OpenApi, _, _>(r, ops::openapi);
    let r = route::<api::SubmitCommand, _, _>(r, commands::submit);
    let r = route::<api::Feed, _, _>(r, feed::feed);
    let r = route::<api::Records, _, _>(r, feed::records);
    let r = route::<api::Check, _, _>(r, reads::check_one);
    let r = route::<api::CheckBatch, _, _>(r, reads::check_batch);
    let r = route::<api::WhoCan, _, _>(r, reads::who_can);
    let r = route::<api::Permissions, _, _>(r, reads::permissions);
    let r = route::<api::Scopes, _, _>(r, reads::scopes);
    let r = route::<api::Members, _, _>(r, reads::members);
    let r = route::<api::User, _, _>(r, reads::user);
    let r = route::<api::Roles, _, _>(r, reads::roles);
    let r = route::<api::Invites, _, _>(r, reads::invites);
    let r = route::<api::Audit, _, _>(r, audit::audit);
    let r = route::<api::AuditExport, _, _>(r, audit::export);
    let r = route::<api::Diff, _, _>(r, reads::diff);
    let r = route::<api::Timeline, _, _>(r, compliance::timeline);
    let r = route::<api::Orgs, _, _>(r, compliance::orgs);
    let r = route::<api::Snapshot, _, _>(r, compliance::snapshot);
    let r = route::<api::SnapshotCsv, _, _>(r, compliance::snapshot_csv);
    let r = route::<api::Access, _, _>(r, compliance::access);
    let r = route::<api::GetDigest, _, _>(r, verify::digest);
    let r = route::<api::Verify, _, _>(r, verify::verify);
    let r = route::<api::CreateSandbox, _, _>(r, sandbox::create);
    let r = route::<api::DeleteSandbox, _, _>(r, sandbox::delete);
    let r = route::<api::SetSandboxClock, _, _>(r, sandbox::set_clock);
    let r = r
        .route(api::SANDBOX_FORWARD, with_body_limit(any(sandbox::forward)))
        .merge(console::routes().layer(DefaultBodyLimit::max(MAX_BODY)))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { ApiError::not_found("no such endpoint") });
    // A middleware costs every request a clone of the routes behind it: only a server that
    // reads only has one.
    let r = match read_only {
        Some(why) => r.layer(axum::middleware::from_fn_with_state(why, say_read_only)),
        None => r,
    };
    r.with_state(Arc::new(state))
}

/// The header every answer of a server that reads only carries, with why.
pub const READ_ONLY_HEADER: &str = "permledger-read-only";

/// Says on every answer that the server reads only, and why (`serve --read-only`).
async fn say_read_only(
    axum::extract::State(why): axum::extract::State<axum::http::HeaderValue>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut r = next.run(request).await;
    r.headers_mut()
        .insert(axum::http::HeaderName::from_static(READ_ONLY_HEADER), why);
    r
}

/// A wrong method on a known path: the one error shape, and `Allow` as axum sets it.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(format!(
        "`{method}` is not a method of `{}`; the `Allow` header lists those that are",
        uri.path()
    ))
}

/// At most `MAX_BODY` bytes of body, and a larger one announced is refused before it is read.
fn with_body_limit(route: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    route
        .layer::<_, std::convert::Infallible>(axum::middleware::from_fn(refuse_oversized))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A body announced larger than the limit is refused before it is read, so that a client sending
/// `Expect: 100-continue` gets 413 instead of `100 Continue`.
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return extract::too_large().into_response();
    }
    next.run(request).await
}

/// A response body from what a task sends into a channel: the task writes sequential code, the
/// stream ends when the task drops its sender.
pub(crate) fn channel_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish. Meanwhile the tokens
/// follow their file, so tokens created or revoked take effect without a restart. The listener
/// is a `TcpListener`, or a `tls::TlsListener` for HTTPS.
pub async fn serve<L>(
    state: AppState,
    listener: L,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let tokens = state.tokens.clone();
    let stopping = state.stopping.subscribe();
    let follow = tokio::spawn(async move { tokens.follow(stopping).await });
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    follow.abort();
    served
}
