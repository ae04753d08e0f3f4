//! The compliance console: web pages under `/console`, rendered on the server with maud from
//! the same handlers the HTTP API answers with, so a page shows exactly what the API would
//! answer its token, and nothing the token may not read (docs/decisions/0007-console.md).
//!
//! The console only reads: its only POSTs are signing in and out. Every page is served with a
//! strict Content-Security-Policy (scripts and styles from the console's own two assets, built
//! into the binary; no inline script, no other origin), is never cached, and may not be framed.
//! The moment a page shows is in its address (`at`), so a link shows a colleague the same thing.

mod layout;
mod org;
mod person;
pub mod session;
mod trail;

use std::sync::Arc;

use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, DOCTYPE};
use serde::Deserialize;

pub use session::Sessions;

use crate::AppState;

/// Scripts and styles from the console itself only; no inline script, no framing, forms that
/// post only to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                       base-uri 'none'";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");
const ICON: &str = include_str!("assets/icon.svg");

/// The console's routes, under `/console`; `/` leads there.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(org::orgs))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/assets/icon.svg", get(icon))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::to("/console/assets/icon.svg") }),
        )
        .route("/console/integrity", get(trail::integrity))
        .route("/console/orgs/{org}", get(org::org))
        .route("/console/orgs/{org}/snapshot.json", get(org::snapshot_json))
        .route(
            "/console/orgs/{org}/snapshot/{table}",
            get(org::snapshot_csv),
        )
        .route("/console/orgs/{org}/people", get(person::people))
        .route("/console/orgs/{org}/people/{user}", get(person::person))
        .route("/console/orgs/{org}/scopes/{scope}", get(person::scope))
        .route("/console/orgs/{org}/trail", get(trail::trail))
        .route("/console/orgs/{org}/trail/export", get(trail::export))
        .route("/console/orgs/{org}/trail/live", get(trail::live))
        .route("/console/orgs/{org}/events/{seq}", get(trail::event))
        .layer(axum::middleware::from_fn(harden))
}

/// The headers every console answer carries.
async fn harden(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut r = next.run(request).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        JS,
    )
}

async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        ICON,
    )
}

#[derive(Deserialize, Default)]
struct SignInQuery {
    next: Option<String>,
    out: Option<String>,
}

/// The sign-in page, with a sentence when there is something to say.
fn sign_in_form(next: &str, status: StatusCode, say: Option<&str>, alert: bool) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · permledger" }
                link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body.signin {
                main #main {
                    h1 { "permledger console" }
                    p { "Review who may do what in your orgs, at any moment, and why." }
                    @if let Some(say) = say {
                        @if alert { p.error role="alert" { (say) } } @else { p.note role="status" { (say) } }
                    }
                    form method="post" action="/console/sign-in" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "API token" }
                        input #token type="password" name="token" autocomplete="off" required autofocus;
                        p.hint { "An auditor token, or one bound to you (" code { "permledger token create --role auditor --user you" } "). The console keeps it on the server; this page never sees it again." }
                        label for="reader" { "Read the audit trail as (user id, optional)" }
                        input #reader type="text" name="reader" autocomplete="off";
                        p.hint { "The trail is read as a member who holds " code { "org.audit.view" } ". A token bound to a person reads as that person." }
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

async fn sign_in_page(RawQuery(q): RawQuery) -> Response {
    let q: SignInQuery = layout::params(q.as_deref()).unwrap_or_default();
    let next = session::safe_next(q.next.as_deref());
    let say = q.out.is_some().then_some("You are signed out.");
    sign_in_form(next, StatusCode::OK, say, false)
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    #[serde(default)]
    reader: String,
    #[serde(default)]
    next: String,
}

async fn sign_in(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let next = session::safe_next(Some(&f.next)).to_string();
    if !session::same_origin(&headers) {
        return sign_in_form(
            &next,
            StatusCode::FORBIDDEN,
            Some("Sign in from the console's own page: this request came from another site."),
            true,
        );
    }
    let digest = *blake3::hash(f.token.trim().as_bytes()).as_bytes();
    let Some(record) = s.tokens.by_digest(&digest) else {
        tracing::info!("console sign-in refused: unknown token");
        return sign_in_form(
            &next,
            StatusCode::UNAUTHORIZED,
            Some("That token is not known to this server. Check it, or ask an operator for one (`permledger token create`)."),
            true,
        );
    };
    let asked = f.reader.trim();
    let reader = match (&record.user, asked) {
        (Some(bound), "") => Some(bound.clone()),
        (Some(bound), asked) if asked == bound.as_str() => Some(bound.clone()),
        (Some(bound), asked) => {
            return sign_in_form(
                &next,
                StatusCode::FORBIDDEN,
                Some(&format!(
                    "This token is bound to `{bound}` and reads as no one else, not as `{asked}`."
                )),
                true,
            );
        }
        (None, "") => None,
        (None, asked) => match asked.parse() {
            Ok(u) => Some(u),
            Err(e) => {
                return sign_in_form(
                    &next,
                    StatusCode::BAD_REQUEST,
                    Some(&format!("The user id to read as: {e}")),
                    true,
                )
            }
        },
    };
    tracing::info!(token = %record.id, "console session opened");
    let cookie = s.console.open(digest, reader);
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf: String,
}

async fn sign_out(
    State(s): State<Arc<AppState>>,
    signed: Result<session::Signed, session::SignIn>,
    headers: HeaderMap,
    Form(f): Form<SignOutForm>,
) -> Response {
    let Ok(signed) = signed else {
        return Redirect::to("/console/sign-in?out=1").into_response();
    };
    if !session::same_origin(&headers) || f.csrf != signed.csrf {
        return (
            StatusCode::FORBIDDEN,
            Html("<p>This request to sign out did not come from the console's own page.</p>"),
        )
            .into_response();
    }
    let cookie = s.console.close(&signed.session);
    let mut r = Redirect::to("/console/sign-in?out=1").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
