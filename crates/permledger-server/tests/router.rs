//! The router without a socket: every endpoint and every error shape.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use permledger_server::{router, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;
use common::state;

async fn call(
    s: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// A request as a hostile client sends it: any method, path, headers and bytes.
async fn raw(
    s: &AppState,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Body::from(body.to_vec())).unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, bytes.to_vec())
}

async fn run(s: &AppState, actor: &str, command: Value) -> (StatusCode, Value) {
    call(
        s,
        "POST",
        "/v1/commands",
        Some("svc-acme"),
        Some(json!({"as": actor, "do": command}).to_string()),
    )
    .await
}

async fn seeded() -> AppState {
    let s = state();
    for (actor, cmd) in [
        (
            "ann",
            json!({"type": "create_org", "org": "acme", "preset": "teaminbox"}),
        ),
        (
            "ann",
            json!({"type": "create_team", "org": "acme", "team": "support"}),
        ),
        (
            "ann",
            json!({"type": "create_inbox", "org": "acme", "inbox": "billing", "team": "support"}),
        ),
        (
            "ann",
            json!({"type": "invite", "org": "acme", "invite": "i1", "email": "mo@acme.test", "role": "org_moderator"}),
        ),
        (
            "mo",
            json!({"type": "accept_invite", "org": "acme", "invite": "i1"}),
        ),
    ] {
        let (status, body) = run(&s, actor, cmd).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    s
}

#[tokio::test]
async fn commands_answer_their_events_and_position() {
    let s = seeded().await;
    let (status, body) = call(&s, "POST", "/v1/commands", Some("svc-acme"), Some(json!({
        "as": "mo", "do": {"type": "assign_role", "org": "acme", "user": "mo", "scope": "inbox:billing", "role": "inbox_observer"},
        "reason": "on call", "request_id": "r-1", "idempotency_key": "k-1"
    }).to_string())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seq"], 7);
    assert_eq!(body["events"][0]["payload"]["type"], "role_assigned");
    assert_eq!(body["events"][0]["meta"]["reason"], "on call");
    let (_, again) = call(&s, "POST", "/v1/commands", Some("svc-acme"), Some(json!({
        "as": "mo", "do": {"type": "assign_role", "org": "acme", "user": "mo", "scope": "inbox:billing", "role": "inbox_observer"},
        "reason": "on call", "request_id": "r-1", "idempotency_key": "k-1"
    }).to_string())).await;
    assert_eq!(again["replayed"], true);
    assert_eq!(again["seq"], 7);
}

#[tokio::test]
async fn refusals_and_bad_input_get_4xx_with_a_json_body() {
    let s = seeded().await;
    let (status, body) = run(
        &s,
        "bob",
        json!({"type": "create_team", "org": "acme", "team": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    assert!(body["message"].as_str().unwrap().contains("`bob`"));
    let (status, body) = run(
        &s,
        "ann",
        json!({"type": "create_team", "org": "acme", "team": "support"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::CONFLICT, json!("already_exists"))
    );
    let (status, body) = call(
        &s,
        "POST",
        "/v1/commands",
        Some("svc-acme"),
        Some("{not json".into()),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid"))
    );
    let (status, body) = run(
        &s,
        "ann",
        json!({"type": "create_team", "org": "acme", "tema": "x"}),
    )
    .await;
    assert!(status.is_client_error());
    assert!(body["message"].as_str().unwrap().contains("tema"), "{body}");
    let (status, body) = run(
        &s,
        "ann",
        json!({"type": "create_team", "org": "Acme!", "team": "x"}),
    )
    .await;
    assert!(status.is_client_error(), "{body}");
    let big = json!({"as": "ann", "do": {"type": "rename_org", "org": "acme", "name": "x".repeat(300_000)}}).to_string();
    let (status, body) = call(&s, "POST", "/v1/commands", Some("svc-acme"), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "too_large");
    let (status, body) = call(&s, "GET", "/v1/nowhere", Some("svc-acme"), None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (status, body) = call(
        &s,
        "GET",
        "/v1/orgs/acme/check?user=ann&permission=team.view",
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid"))
    );
}

#[tokio::test]
async fn tokens_are_required_and_bound_to_their_org_and_role() {
    let s = seeded().await;
    let uri = "/v1/orgs/acme/check?user=ann&permission=team.view&scope=team:support";
    assert_eq!(
        call(&s, "GET", uri, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&s, "GET", uri, Some("wrong"), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(&s, "GET", uri, Some("svc-globex"), None).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    assert_eq!(
        call(&s, "GET", uri, Some("aud-acme"), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, "GET", uri, Some("op"), None).await.0,
        StatusCode::OK
    );
    let cmd =
        json!({"as": "ann", "do": {"type": "create_team", "org": "acme", "team": "y"}}).to_string();
    let (status, _) = call(
        &s,
        "POST",
        "/v1/commands",
        Some("aud-acme"),
        Some(cmd.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&s, "POST", "/v1/commands", Some("svc-globex"), Some(cmd)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn queries_answer_now_and_at_past_moments() {
    let s = seeded().await;
    let (_, out) = run(&s, "mo", json!({"type": "assign_role", "org": "acme", "user": "mo", "scope": "inbox:billing", "role": "inbox_observer"})).await;
    let seq = out["seq"].as_u64().unwrap();
    let q = |extra: &str| {
        format!(
            "/v1/orgs/acme/check?user=mo&permission=inbox.thread.view&scope=inbox:billing{extra}"
        )
    };
    let (status, now) = call(
        &s,
        "GET",
        &q(&format!("&min_seq={seq}")),
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["allowed"], true);
    assert!(now.get("facts").is_none(), "facts only when asked: {now}");
    assert_eq!(now["at"]["seq"], seq);
    let (_, explained) = call(&s, "GET", &q("&explain=true"), Some("svc-acme"), None).await;
    assert_eq!(explained["allowed"], true);
    assert_eq!(explained["facts"][0]["role"], "inbox_observer");
    // The index and the rule agree on a denial, and the rule says why when asked.
    let denied = "/v1/orgs/acme/check?user=zed&permission=inbox.thread.view&scope=inbox:billing";
    let (_, plain) = call(&s, "GET", denied, Some("svc-acme"), None).await;
    assert_eq!(plain["allowed"], false);
    let (_, why) = call(
        &s,
        "GET",
        &format!("{denied}&explain=true"),
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(
        (why["allowed"].clone(), why["denial"]["denial"].clone()),
        (json!(false), json!("not_member"))
    );
    let (_, before) = call(
        &s,
        "GET",
        &q(&format!("&at={}", seq - 1)),
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(before["allowed"], false);
    let (status, body) = call(&s, "GET", &q("&at=999"), Some("svc-acme"), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a position the log does not have: {body}"
    );
    let (_, who) = call(
        &s,
        "GET",
        "/v1/orgs/acme/who_can?permission=inbox.thread.view&scope=inbox:billing",
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(who["users"], json!(["ann", "mo"]));
    let (_, perms) = call(
        &s,
        "GET",
        "/v1/orgs/acme/permissions?user=mo&scope=inbox:billing",
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(
        perms["permissions"],
        json!([
            "inbox.members.manage",
            "inbox.thread.comment",
            "inbox.thread.view",
            "inbox.view"
        ])
    );
    let (_, scopes) = call(
        &s,
        "GET",
        "/v1/orgs/acme/scopes?user=mo&permission=inbox.thread.view&kind=inbox",
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(scopes["scopes"], json!(["inbox:billing"]));
    let (_, members) = call(
        &s,
        "GET",
        "/v1/orgs/acme/members?scope=inbox:billing",
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(
        members["members"],
        json!([{"user": "mo", "role": "inbox_observer", "status": "active", "owner": false}])
    );
    let (_, user) = call(&s, "GET", "/v1/orgs/acme/users/mo", Some("svc-acme"), None).await;
    assert_eq!(user["user"]["roles"].as_array().unwrap().len(), 2);
    let (status, _) = call(&s, "GET", "/v1/orgs/acme/users/zed", Some("svc-acme"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, roles) = call(&s, "GET", "/v1/orgs/acme/roles", Some("svc-acme"), None).await;
    assert_eq!(roles["roles"].as_array().unwrap().len(), 8);
    let (_, invites) = call(&s, "GET", "/v1/orgs/acme/invites", Some("svc-acme"), None).await;
    assert_eq!(invites["invites"], json!([]));
    let (_, d) = call(
        &s,
        "GET",
        &format!("/v1/orgs/acme/diff?from={}&user=mo", seq - 1),
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(
        d["gained"],
        json!([
            "mo inbox.thread.comment inbox:billing",
            "mo inbox.thread.view inbox:billing"
        ])
    );
    let batch = json!({"items": [
        {"user": "mo", "permission": "inbox.thread.view", "scope": "inbox:billing"},
        {"user": "mo", "permission": "inbox.thread.reply", "scope": "inbox:billing"}
    ]})
    .to_string();
    let (_, b) = call(
        &s,
        "POST",
        "/v1/orgs/acme/check/batch",
        Some("svc-acme"),
        Some(batch),
    )
    .await;
    assert_eq!(b["answers"][0]["allowed"], true);
    assert_eq!(b["answers"][1]["allowed"], false);
    let (status, _) = call(
        &s,
        "GET",
        "/v1/orgs/nowhere/members?scope=org",
        Some("op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_audit_log_pages_and_is_authorized_by_the_reader() {
    let s = seeded().await;
    let (status, page) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit?as=ann&limit=2",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let next = page["next"].as_u64().unwrap();
    let (_, rest) = call(
        &s,
        "GET",
        &format!("/v1/orgs/acme/audit?as=ann&after={next}"),
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 4);
    assert_eq!(rest["next"], Value::Null);
    let (_, typed) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit?as=mo&types=invite_issued,member_joined",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(typed["entries"].as_array().unwrap().len(), 2);
    let (status, body) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit?as=bob",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
}

#[tokio::test]
async fn health_and_metrics_are_open() {
    let s = seeded().await;
    let (status, body) = call(&s, "GET", "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].clone(), body["seq"].clone()),
        (StatusCode::OK, json!("ok"), json!(6))
    );
    let _ = run(
        &s,
        "bob",
        json!({"type": "create_team", "org": "acme", "team": "x"}),
    )
    .await;
    let (status, text) = call(&s, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    assert!(text.contains("permledger_commands_total 6"), "{text}");
    assert!(text.contains("permledger_commands_refused_total 1"));
    assert!(
        text.contains("permledger_refusals_total{code=\"forbidden\"} 1"),
        "{text}"
    );
    assert!(text.contains("permledger_projection_lag_events 0"));
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let s = seeded().await;
    let (status, doc) = call(&s, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in permledger_api::ENDPOINTS {
        let method = method.as_str();
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "{method} {path}"
        );
        if *path == "/v1/feed" || *path == "/v1/records" {
            continue; // endless streams; served, as the server and replica tests show
        }
        let uri = path
            .replace("{org}", "acme")
            .replace("{user}", "ann")
            .replace("{id}", "none");
        let (status, body) = call(&s, method, &uri, Some("op"), Some("{}".into())).await;
        assert!(
            !(status == StatusCode::NOT_FOUND && body["message"] == "no such endpoint")
                && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
}

#[tokio::test]
async fn the_audit_log_exports_as_json_lines_and_csv() {
    let s = seeded().await;
    let (_, _) = run(
        &s,
        "ann",
        json!({"type": "rename_org", "org": "acme", "name": "Acme, \"the\" company"}),
    )
    .await;
    let (status, body) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit/export?as=ann",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Seven entries, then the digest of what the export covers.
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[6]["action"], "org_renamed");
    assert_eq!(lines[7]["digest"]["seq"], 7);
    assert_eq!(lines[7]["digest"]["hash"].as_str().unwrap().len(), 64);
    let (status, body) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit/export?as=ann&format=csv&types=org_renamed",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let csv = body.as_str().unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("seq,time,action,summary,actor,principal,user,email,scope,role,permission,expires_at,changes,reason,request_id,cause_seq,cause")
    );
    assert_eq!(
        rows.next(),
        Some(
            "7,2026-03-01T09:00:00Z,org_renamed,\"ann renamed the org from \"\"acme\"\" to \
             \"\"Acme, \"\"the\"\" company\"\"\",ann,token svc-acme,,,org,,,,\
             \"name: acme -> Acme, \"\"the\"\" company\",,,,"
        )
    );
    let digest = rows.next().unwrap();
    assert!(digest.starts_with("#digest,7:"), "{digest}");
    assert_eq!(rows.next(), None);
    let (status, body) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit/export?as=bob",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let (status, _) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit/export?as=ann&format=xml",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &s,
        "GET",
        "/v1/orgs/acme/audit?as=ann&format=csv",
        Some("aud-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn verify_checks_the_chain_the_projections_and_the_past_for_operators_only() {
    let s = seeded().await;
    let (status, body) = call(
        &s,
        "POST",
        "/v1/verify",
        Some("svc-acme"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = call(&s, "POST", "/v1/verify", Some("op"), Some("{}".into())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["chain"]["events"], 6);
    assert_eq!(body["projections"]["ok"], true);
    let (status, body) = call(
        &s,
        "POST",
        "/v1/verify",
        Some("op"),
        Some(json!({"projections": false, "past": [0, 3, 6]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true);
    assert!(body["projections"].is_null());
    assert_eq!(body["past"][0]["ok"], true);
    assert_eq!(body["past"][1]["ok"], true);
    assert_eq!(body["past"][2]["ok"], true);
    // A position the log does not have is a bad request, never a failed verification.
    let (status, body) = call(
        &s,
        "POST",
        "/v1/verify",
        Some("op"),
        Some(json!({"past": [3, 9]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body["message"],
        "`past` names position 9, after the log's last position 6"
    );
    let (status, body) = call(
        &s,
        "POST",
        "/v1/verify",
        Some("op"),
        Some(json!({"chain": false, "projections": false, "past": [3]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["chain"].is_null(),
        "the chain is only walked when asked"
    );
    assert_eq!(body["ok"], true);
    let (status, body) = call(
        &s,
        "POST",
        "/v1/verify",
        Some("op"),
        Some(json!({"past": "all"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid");
}

#[tokio::test]
async fn sandboxes_are_isolated_ledgers_with_a_hand_set_clock() {
    let mut s = seeded().await;
    let (status, body) = call(&s, "POST", "/v1/sandboxes", Some("op"), Some("{}".into())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["message"].as_str().unwrap().contains("--sandboxes"));

    s.sandboxes = Some(Arc::new(permledger_server::sandbox::Sandboxes::new(2)));
    let (status, _) = call(
        &s,
        "POST",
        "/v1/sandboxes",
        Some("svc-acme"),
        Some("{}".into()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &s,
        "POST",
        "/v1/sandboxes",
        Some("op"),
        Some(json!({"clock": "2026-05-01T00:00:00Z"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (id, base) = (
        body["id"].as_str().unwrap().to_string(),
        body["base"].as_str().unwrap().to_string(),
    );

    // A command in the sandbox is recorded there, at the sandbox's time, and nowhere else.
    let create = |org: &str| {
        json!({"as": "zed", "do": {"type": "create_org", "org": org, "preset": "blank"}})
            .to_string()
    };
    let (status, body) = call(
        &s,
        "POST",
        &format!("{base}/v1/commands"),
        Some("op"),
        Some(create("acme")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["seq"], 1);
    assert_eq!(
        body["events"][0]["meta"]["recorded_at"],
        "2026-05-01T00:00:00Z"
    );
    let (_, main) = call(&s, "GET", "/healthz", None, None).await;
    assert_eq!(main["seq"], 6);
    let (_, owner) = call(
        &s,
        "GET",
        "/v1/orgs/acme/check?user=ann&permission=org.audit.view&scope=org",
        Some("op"),
        None,
    )
    .await;
    assert_eq!(
        owner["allowed"], true,
        "the main ledger's acme is untouched"
    );

    // The clock never goes back, and moves forward on request.
    let clock = format!("/v1/sandboxes/{id}/clock");
    let (status, body) = call(
        &s,
        "PUT",
        &clock,
        Some("op"),
        Some(json!({"now": "2026-04-01T00:00:00Z"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(
        &s,
        "PUT",
        &clock,
        Some("op"),
        Some(json!({"now": "2026-06-01T00:00:00Z"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(
        &s,
        "POST",
        &format!("{base}/v1/commands"),
        Some("op"),
        Some(create("globex")),
    )
    .await;
    assert_eq!(
        body["events"][0]["meta"]["recorded_at"],
        "2026-06-01T00:00:00Z"
    );

    // Every route of the API answers inside the sandbox, moments included.
    let (status, body) = call(
        &s,
        "GET",
        &format!("{base}/v1/orgs/acme/audit?as=zed&at=2026-05-15T00:00:00Z"),
        Some("op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), 1);
    let (_, body) = call(
        &s,
        "GET",
        &format!("{base}/v1/orgs/acme/who_can?permission=org.audit.view&scope=org"),
        Some("op"),
        None,
    )
    .await;
    assert_eq!(body["users"], json!(["zed"]));
    let (status, _) = call(
        &s,
        "GET",
        &format!("{base}/v1/orgs/acme/check?user=zed&permission=org.audit.view&scope=org"),
        Some("svc-acme"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "sandboxes are for operators");

    // At most two live at once; deleting one frees its place and ends it.
    let (status, _) = call(&s, "POST", "/v1/sandboxes", Some("op"), Some("{}".into())).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(&s, "POST", "/v1/sandboxes", Some("op"), Some("{}".into())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = call(
        &s,
        "DELETE",
        &format!("/v1/sandboxes/{id}"),
        Some("op"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = call(&s, "GET", &format!("{base}/healthz"), Some("op"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = call(&s, "POST", "/v1/sandboxes", Some("op"), Some("{}".into())).await;
    assert_eq!(status, StatusCode::CREATED);
}

/// One hostile request: method, path, headers, body; then the status, code and words expected.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    u16,
    &'a str,
    &'a str,
);

/// The hostile client's battery: whatever layer catches the mistake, the answer is JSON
/// `{"code","message"}` with the one status its code has, and the message says what was wrong
/// in the API's words. Nothing refused here records an event.
#[tokio::test(start_paused = true)]
async fn every_error_has_the_one_shape_and_the_status_of_its_code() {
    let s = seeded().await;
    let head = s.ledger.seq();
    let json = [
        ("authorization", "Bearer svc-acme"),
        ("content-type", "application/json"),
    ];
    let op = [
        ("authorization", "Bearer op"),
        ("content-type", "application/json"),
    ];
    let get = [("authorization", "Bearer svc-acme")];
    let check = "/v1/orgs/acme/check?user=ann&permission=team.view&scope=team:support";
    let long_user = "u".repeat(129);
    let long_as =
        format!(r#"{{"as":"{long_user}","do":{{"type":"create_team","org":"acme","team":"x"}}}}"#);
    let long_query = format!("/v1/orgs/acme/check?user={long_user}&permission=team.view&scope=org");
    // An event the log holds and the views have not folded: reads asking for it wait, then
    // answer `behind`; a position past the log's head is a bad request at once.
    let log = s.ledger.log().clone();
    let org: permledger_domain::OrgId = "elsewhere".parse().unwrap();
    log.append(&[permledger_log::conformance::next_commit(&*log, &org, 1)])
        .unwrap();
    let not_reached = format!("{check}&min_seq={}", head + 1);
    let unwritten = format!("{check}&min_seq={}", head + 2);
    let inner_array = r#"{"as":"ann","do":{"type":"invite","org":"acme","invite":"i9","email":"x@acme.test","assignments":[["team:support","team_admin",null]]}}"#;
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // a wrong method on a known path
        ("DELETE", "/v1/commands", &json, b"", 405, "method_not_allowed", "`DELETE` is not a method of `/v1/commands`"),
        ("POST", check, &json, b"{}", 405, "method_not_allowed", "`POST` is not a method"),
        // a path segment that is not UTF-8
        ("GET", "/v1/orgs/%FF/roles", &get, b"", 400, "invalid", "the path segment `org` is not valid UTF-8"),
        // arrays where the contract says object
        ("POST", "/v1/commands", &json, br#"["ann",{"type":"create_team","org":"acme","team":"x"},null,null,null,null]"#, 400, "invalid", "the body must be a JSON object"),
        ("POST", "/v1/commands", &json, br#"{"as":"ann","do":["create_team","acme","x"]}"#, 400, "invalid", "`do`: invalid type: sequence, expected a JSON object"),
        ("POST", "/v1/commands", &json, inner_array.as_bytes(), 400, "invalid", "expected a JSON object"),
        ("POST", "/v1/verify", &op, b"[false,false,[]]", 400, "invalid", "the body must be a JSON object"),
        ("POST", "/v1/orgs/acme/check/batch", &json, br#"{"items":[["ann","team.view","org"]]}"#, 400, "invalid", "expected a JSON object"),
        // one status for `invalid`, wherever it is caught
        ("POST", "/v1/commands", &json, long_as.as_bytes(), 400, "invalid", "`as`"),
        ("GET", &long_query, &get, b"", 400, "invalid", "`user`"),
        ("POST", "/v1/commands", &json, br#"{"as":"ann"}"#, 400, "invalid", "missing field `do`"),
        ("POST", "/v1/commands", &json, br#"{"as":"ann","do":{"type":"create_team","org":"acme","team":"x"},"expect_version":"7"}"#, 400, "invalid", "`expect_version`: invalid type: string \"7\", expected a whole number"),
        ("GET", "/v1/orgs/acme/check?user=ann&permission=team.view&scope=org&at=x", &get, b"", 400, "invalid", "`at`: `x` is neither a log position (from 1) nor an RFC 3339 time"),
        ("GET", "/v1/orgs/acme/check?user=ann&permission=team.view&scope=org&at=18446744073709551616", &get, b"", 400, "invalid", "`at`: position `18446744073709551616` is past any log's end"),
        ("GET", "/v1/orgs/acme/check?user=ann&permission=team.view&scope=org&at=0", &get, b"", 400, "invalid", "`at`: positions start at 1"),
        ("GET", "/v1/orgs/acme/check?user=ann&permission=team.view&scope=org&at=2026-13-01", &get, b"", 400, "invalid", "`at`"),
        ("GET", "/v1/orgs/acme/diff?from=0", &get, b"", 400, "invalid", "`from`: positions start at 1"),
        ("GET", "/v1/orgs/acme/diff", &get, b"", 400, "invalid", "missing field `from`"),
        ("POST", "/v1/orgs/acme/check/batch", &json, br#"{"items":[],"at":0}"#, 400, "invalid", "`at`: positions start at 1"),
        ("POST", "/v1/verify", &op, br#"{"past":[18446744073709551615]}"#, 404, "not_found", "`past` names position 18446744073709551615"),
        ("GET", "/v1/feed", &[("authorization", "Bearer op"), ("last-event-id", "18446744073709551615")], b"", 400, "invalid", "`Last-Event-ID` 18446744073709551615"),
        ("POST", "/v1/commands", &json, b"{not json", 400, "invalid", "the body is not valid JSON"),
        // media type and size
        ("POST", "/v1/commands", &get, br#"{"as":"ann"}"#, 415, "unsupported_media_type", "`Content-Type: application/json`"),
        ("POST", "/v1/commands", &[("authorization", "Bearer svc-acme"), ("content-type", "application/json"), ("content-length", "10000000"), ("expect", "100-continue")], b"", 413, "too_large", "262144 bytes"),
        // a freshness wait that runs out has its own code
        ("GET", &not_reached, &get, b"", 503, "behind", "have not reached position"),
        ("GET", &unwritten, &get, b"", 404, "not_found", "has not been written; the log ends at"),
        ("GET", "/v1/nowhere", &get, b"", 404, "not_found", "no such endpoint"),
    ];
    let mut failures = Vec::new();
    for (method, uri, headers, body, status, code, words) in cases {
        let (got, resp_headers, bytes) = raw(&s, method, uri, headers, body).await;
        let content_type = resp_headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = answer["message"].as_str().unwrap_or("");
        let fields: Vec<&String> = answer
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        let ok = got.as_u16() == status
            && content_type == "application/json"
            && answer["code"] == code
            && fields == ["code", "message"]
            && message.contains(words)
            && !message.contains("struct ")
            && !message.contains("u64");
        if !ok {
            failures.push(format!(
                "{method} {uri}: expected {status} `{code}` saying {words:?}, got {got} \
                 ({content_type}) {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(s.ledger.seq(), head, "a refused request recorded an event");
    let (_, headers, _) = raw(&s, "DELETE", "/v1/commands", &json, b"").await;
    assert_eq!(headers["allow"], "POST");
}
