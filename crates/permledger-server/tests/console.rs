//! The console's safety, through the router without a socket: sessions in cookies scripts
//! cannot read, sign-in and sign-out refused from other sites, strict headers on every page,
//! hostile ids and reasons written as text, only what the token may read, and no way to submit
//! a command. The pages themselves are clicked through in Chromium by tests/console.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use permledger_server::{router, AppState};
use serde_json::json;
use tower::ServiceExt;

mod common;
use common::state;

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(s: &AppState, req: Request<Body>) -> Answer {
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn page(s: &AppState, uri: &str, cookie: &str) -> Answer {
    let req = Request::builder()
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    send(s, req).await
}

async fn post_form(s: &AppState, uri: &str, form: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(s, req.body(Body::from(form.to_string())).unwrap()).await
}

/// Signs in with `token` from the console's own page; answers the cookie to send.
async fn sign_in(s: &AppState, token: &str) -> String {
    let a = post_form(
        s,
        "/console/sign-in",
        &format!("token={token}&next=/console"),
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let set = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

async fn submit(s: &AppState, actor: &str, cmd: serde_json::Value, reason: Option<&str>) {
    let mut body = json!({"as": actor, "do": cmd});
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    let req = Request::builder()
        .method("POST")
        .uri("/v1/commands")
        .header("authorization", "Bearer svc-acme")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let a = send(s, req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// acme, where `<script>alert(1)</script>` joined by invite and was suspended for a reason that
/// is markup.
async fn story() -> AppState {
    let s = state();
    submit(
        &s,
        "ann",
        json!({"type": "create_org", "org": "acme", "preset": "teaminbox", "name": "<b>Acme</b>"}),
        None,
    )
    .await;
    submit(
        &s,
        "ann",
        json!({"type": "invite", "org": "acme", "invite": "i1", "email": "x@acme.test"}),
        None,
    )
    .await;
    submit(
        &s,
        "<script>alert(1)</script>",
        json!({"type": "accept_invite", "org": "acme", "invite": "i1"}),
        None,
    )
    .await;
    submit(
        &s,
        "ann",
        json!({"type": "suspend_member", "org": "acme", "user": "<script>alert(1)</script>"}),
        Some("<img src=x onerror=alert(2)>"),
    )
    .await;
    s
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_never_the_token() {
    let s = story().await;
    let a = post_form(
        &s,
        "/console/sign-in",
        "token=aud-acme&next=/console/orgs/acme",
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/console/orgs/acme");
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("permledger_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing from {cookie}"
        );
    }
    assert!(
        !cookie.contains("aud-acme"),
        "the cookie carries the token: {cookie}"
    );
}

#[tokio::test]
async fn sign_in_from_another_site_is_refused_and_opens_no_session() {
    let s = story().await;
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("origin", "https://evil.test"),
            ("host", "console.acme.test"),
        ],
    ] {
        let a = post_form(&s, "/console/sign-in", "token=aud-acme", &headers).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(a.headers.get(header::SET_COOKIE).is_none());
        assert!(a.body.contains("came from another site"), "{}", a.body);
    }
}

#[tokio::test]
async fn sign_in_with_an_unknown_token_says_so() {
    let s = story().await;
    let a = post_form(
        &s,
        "/console/sign-in",
        "token=nope",
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("That token is not known to this server."));
    assert!(a.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn sign_out_needs_the_session_s_own_form() {
    let s = story().await;
    let cookie = sign_in(&s, "aud-acme").await;
    // A forged form: the right cookie, no anti-forgery token.
    let forged = post_form(
        &s,
        "/console/sign-out",
        "csrf=guess",
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(page(&s, "/console", &cookie).await.status, StatusCode::OK);
    // The page's own form carries the token.
    let body = page(&s, "/console", &cookie).await.body;
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let out = post_form(
        &s,
        "/console/sign-out",
        &format!("csrf={csrf}"),
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after = page(&s, "/console", &cookie).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(
        after.headers[header::LOCATION],
        "/console/sign-in?next=%2Fconsole"
    );
}

/// A tag with an attribute such as ` onerror=`: what a strict policy would refuse to run anyway.
/// (Text that reads like one, escaped, is not a tag.)
fn inline_handler(html: &str) -> bool {
    html.split('<')
        .filter_map(|rest| rest.split('>').next())
        .any(|tag| {
            tag.match_indices(" on").any(|(i, _)| {
                let rest = &tag[i + 3..];
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                name_len > 0 && rest[name_len..].starts_with('=')
            })
        })
}

#[tokio::test]
async fn every_page_is_hardened() {
    let s = story().await;
    let cookie = sign_in(&s, "ann-console").await;
    for uri in [
        "/console",
        "/console/orgs/acme",
        "/console/orgs/acme/people?q=x",
        "/console/orgs/acme/people/ann",
        "/console/orgs/acme/scopes/team:nope",
        "/console/orgs/acme/trail",
        "/console/orgs/acme/events/1",
        "/console/integrity",
        "/console/sign-in",
    ] {
        let a = page(&s, uri, &cookie).await;
        let csp = a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{uri}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{uri}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe"), "{uri}: {csp}");
        assert_eq!(
            a.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{uri}"
        );
        assert_eq!(a.headers[header::CACHE_CONTROL], "no-store", "{uri}");
        assert!(
            !a.body.contains("<script>alert"),
            "{uri} wrote markup from the data"
        );
        assert!(!a.body.contains("<img"), "{uri} wrote markup from the data");
        assert!(!inline_handler(&a.body), "{uri} has an inline handler");
    }
}

#[tokio::test]
async fn ids_names_and_reasons_are_written_as_text() {
    let s = story().await;
    let cookie = sign_in(&s, "ann-console").await;
    let org = page(&s, "/console/orgs/acme", &cookie).await;
    assert!(org.body.contains("&lt;b&gt;Acme&lt;/b&gt;"), "{}", org.body);
    assert!(org.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let trail = page(&s, "/console/orgs/acme/trail", &cookie).await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    assert!(trail.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    // A hostile id in the address is text on the page, in links percent-encoded.
    let person = page(
        &s,
        "/console/orgs/acme/people/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &cookie,
    )
    .await;
    assert_eq!(person.status, StatusCode::OK);
    assert!(person
        .body
        .contains("<h1>Person: &lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
    assert!(person
        .body
        .contains("action=\"/console/orgs/acme/people/%3Cscript%3Ealert%281%29%3C%2Fscript%3E\""));
}

#[tokio::test]
async fn the_console_shows_only_what_the_token_may_read() {
    let s = story().await;
    let cookie = sign_in(&s, "aud-acme").await;
    let other = page(&s, "/console/orgs/globex", &cookie).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(other
        .body
        .contains("this token is bound to org `acme`, not `globex`"));
    // An auditor token bound to no one names no reader: the trail says how to read it.
    let trail = page(&s, "/console/orgs/acme/trail", &cookie).await;
    assert!(trail
        .body
        .contains("The trail is read as a member who holds `org.audit.view`"));
    assert_eq!(trail.status, StatusCode::FORBIDDEN);
    assert!(
        !trail.body.contains("table class=\"trail"),
        "{}",
        trail.body
    );
    // A token bound to ann reads as ann, and as no one else.
    let refused = post_form(
        &s,
        "/console/sign-in",
        "token=ann-console&reader=bob",
        &[("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused
        .body
        .contains("This token is bound to `ann` and reads as no one else, not as `bob`."));
}

#[tokio::test]
async fn the_console_submits_no_command() {
    let s = story().await;
    let cookie = sign_in(&s, "ann-console").await;
    for uri in ["/console/orgs/acme", "/console/orgs/acme/trail", "/console"] {
        let a = post_form(
            &s,
            uri,
            "do=anything",
            &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
    }
    // The API still wants its bearer token: a console cookie is not one.
    let req = Request::builder()
        .method("POST")
        .uri("/v1/commands")
        .header(header::COOKIE, &cookie)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"as": "ann", "do": {"type": "create_team", "org": "acme", "team": "x"}})
                .to_string(),
        ))
        .unwrap();
    assert_eq!(send(&s, req).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_returns_only_to_console_pages() {
    let s = story().await;
    for (next, to) in [
        ("/console/orgs/acme?at=2", "/console/orgs/acme?at=2"),
        ("https://evil.test/", "/console"),
        ("//evil.test/console", "/console"),
        ("/v1/orgs", "/console"),
    ] {
        let form = format!(
            "token=aud-acme&next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let a = post_form(
            &s,
            "/console/sign-in",
            &form,
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
        assert_eq!(a.headers[header::LOCATION], to, "{next}");
    }
}

/// The integrity page gives the head signed with the ledger's key, and checks a signed digest
/// pasted back: the statement as given holds, one with its time edited does not.
#[tokio::test]
async fn the_integrity_page_signs_the_head_and_checks_a_signed_digest() {
    let mut s = story().await;
    let key = permledger_log::LedgerKey::generate().unwrap();
    let public = key.public();
    s.signer = Some(std::sync::Arc::new(key));
    let cookie = sign_in(&s, "ann-console").await;
    let a = page(&s, "/console/integrity", &cookie).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains(&public.to_string()), "{}", a.body);
    let start = a.body.find("id=\"signed-digest\">").unwrap() + "id=\"signed-digest\">".len();
    let end = start + a.body[start..].find('<').unwrap();
    // maud escapes the quotes of the JSON; the form sends them back as typed.
    let statement = a.body[start..end].replace("&quot;", "\"");
    let signed: permledger_log::SignedDigest = serde_json::from_str(&statement).unwrap();
    let ask = |text: &str| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("digest", text)
            .finish();
        format!("/console/integrity?{q}")
    };
    let a = page(&s, &ask(&statement), &cookie).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body.contains("The log extends"), "{}", a.body);
    let edited = permledger_log::SignedDigest {
        time: permledger_domain::Timestamp::from_micros(signed.time.micros() - 1),
        ..signed
    };
    let a = page(&s, &ask(&edited.to_string()), &cookie).await;
    assert!(a.body.contains("does not hold"), "{}", a.body);
}

/// An org of 150 members shows 100 on its first page and the other 50 on the next, in id
/// order, with the count of all of them and links between the pages; a page past the end says
/// so in a sentence.
#[tokio::test]
async fn the_org_page_shows_members_a_page_at_a_time() {
    let s = story().await;
    for i in 0..146 {
        let invite = format!("p{i}");
        submit(
            &s,
            "ann",
            json!({"type": "invite", "org": "acme", "invite": invite, "email": format!("{invite}@acme.test")}),
            None,
        )
        .await;
        submit(
            &s,
            &format!("u{i:03}"),
            json!({"type": "accept_invite", "org": "acme", "invite": invite}),
            None,
        )
        .await;
    }
    let cookie = sign_in(&s, "ann-console").await;
    let first = page(&s, "/console/orgs/acme", &cookie).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.body.contains("Members 1–100 of 148, by id."),
        "{}",
        first.body
    );
    assert!(first.body.contains("members=2"), "a link to the next page");
    assert!(first.body.contains("u097") && !first.body.contains("u098"));
    let second = page(&s, "/console/orgs/acme?members=2", &cookie).await;
    assert!(
        second.body.contains("Members 101–148 of 148, by id."),
        "{}",
        second.body
    );
    assert!(
        !second.body.contains("u097")
            && second.body.contains("u098")
            && second.body.contains("u145")
    );
    assert!(second.body.contains("rel=\"prev\""));
    let past = page(&s, "/console/orgs/acme?members=9", &cookie).await;
    assert!(
        past.body
            .contains("There is no page 9 of members: the org has 148 at this moment."),
        "{}",
        past.body
    );
    let zero = page(&s, "/console/orgs/acme?members=0", &cookie).await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST, "{}", zero.body);
    assert!(zero.body.contains("counts from 1"), "{}", zero.body);
}
