//! Console sessions. Signing in takes a token once; the server keeps, under a random session
//! id, the token's BLAKE3 digest (never the secret) and sets the id in a cookie that scripts
//! cannot read (`HttpOnly`), that no other site's request carries (`SameSite=Strict`), and that
//! is `Secure` when the server speaks TLS. Every request looks the token up again by its digest,
//! so a token revoked with `permledger token revoke` ends its sessions within a second.
//!
//! The two requests that change anything, signing in and out, are POSTs that must come from
//! the console's own pages (`Sec-Fetch-Site`, else `Origin` against `Host`); signing out also
//! carries the session's own anti-forgery token. Sessions live in memory: a restart ends them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use permledger_domain::UserId;

use crate::auth::Caller;
use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "permledger_session";
/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(60 * 60);
/// A session ends this long after signing in, used or not.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

struct Session {
    /// BLAKE3 of the token's secret.
    token: [u8; 32],
    reader: Option<UserId>,
    csrf: String,
    started: Instant,
    seen: Instant,
}

/// The sessions of one server.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    /// Cookies are marked `Secure` (the server speaks TLS).
    secure: bool,
    /// One whole-chain verification at a time: each reads the whole log.
    pub(crate) verifying: tokio::sync::Mutex<()>,
    /// The last verification's outcome, for the integrity page.
    verified: Mutex<Option<super::trail::Verified>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// 256 random bits in hex, from two version-4 UUIDs (a cryptographic generator).
fn random_hex() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    /// Sessions whose cookies are `Secure` when `secure` (a server behind TLS).
    pub fn new(secure: bool) -> Sessions {
        Sessions {
            secure,
            ..Sessions::default()
        }
    }

    /// Opens a session for the token with this secret digest; answers the cookie to set.
    pub(crate) fn open(&self, token: [u8; 32], reader: Option<UserId>) -> String {
        let id = random_hex();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, s| alive(s, now));
        live.insert(
            id.clone(),
            Session {
                token,
                reader,
                csrf: random_hex(),
                started: now,
                seen: now,
            },
        );
        format!(
            "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
            LIFETIME.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// Ends the session; answers the cookie that clears it.
    pub(crate) fn close(&self, id: &str) -> String {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    pub(crate) fn remember(&self, v: super::trail::Verified) {
        *self.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }

    pub(crate) fn last_verified(&self) -> Option<super::trail::Verified> {
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The live session under `id`, touched.
    fn find(&self, id: &str) -> Option<([u8; 32], Option<UserId>, String)> {
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let s = live.get_mut(id)?;
        if !alive(s, now) {
            live.remove(id);
            return None;
        }
        s.seen = now;
        Some((s.token, s.reader.clone(), s.csrf.clone()))
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.started) < LIFETIME
}

/// The session id a request's cookies carry.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// A request from the console's own pages: the browser says so (`Sec-Fetch-Site`), or its
/// `Origin` names the host it was sent to. A request with neither comes from no browser, which
/// a forged cross-site request always does.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

/// A signed-in request: the caller its token makes, whom it reads the trail as, and the
/// session's anti-forgery token.
pub struct Signed {
    pub caller: Caller,
    pub reader: Option<UserId>,
    pub csrf: String,
    pub session: String,
}

impl Signed {
    /// What the page header says the session is.
    pub fn label(&self) -> String {
        let t = &self.caller.0;
        let name = t.name.clone().unwrap_or_else(|| format!("token {}", t.id));
        match &t.user {
            Some(u) => format!("{name} ({u}, {})", t.role.as_str()),
            None => format!("{name} ({})", t.role.as_str()),
        }
    }
}

/// Where a request without a session is sent: the sign-in page, which returns to it.
pub struct SignIn(String);

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        let next: String = form_urlencoded::byte_serialize(self.0.as_bytes()).collect();
        let mut r = Redirect::to(&format!("/console/sign-in?next={next}")).into_response();
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }
}

impl FromRequestParts<Arc<AppState>> for Signed {
    type Rejection = SignIn;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Signed, SignIn> {
        let back = || {
            SignIn(
                parts
                    .uri
                    .path_and_query()
                    .map_or("/console", |p| p.as_str())
                    .to_string(),
            )
        };
        let id = cookie(&parts.headers).ok_or_else(back)?;
        let (token, reader, csrf) = state.console.find(id).ok_or_else(back)?;
        let record = state.tokens.by_digest(&token).ok_or_else(back)?;
        Ok(Signed {
            caller: Caller(record),
            reader,
            csrf,
            session: id.to_string(),
        })
    }
}

/// `next` if it is a console page, else the console's first page: never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/console",
    }
}
