//! The compliance officer's reads over HTTP: who submitted each command, tokens bound to a
//! person, exports a spreadsheet opens safely and ties to the log, snapshots, access reports,
//! timelines and explanations in sentences.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use permledger_server::{router, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;
use common::state;

/// A request; the answer's status, `permledger-digest` header and body as text.
async fn get(s: &AppState, uri: &str, token: &str) -> (StatusCode, Option<String>, String) {
    let req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let digest = resp
        .headers()
        .get("permledger-digest")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, digest, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn json_get(s: &AppState, uri: &str, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = get(s, uri, token).await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn submit(s: &AppState, token: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method("POST")
        .uri("/v1/commands")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// acme with a support team and a billing inbox; `=2+3` (a user id a spreadsheet would run)
/// invited under a reason that is a formula, accepting; a grant to them.
async fn story() -> AppState {
    let s = state();
    for (actor, cmd, reason) in [
        (
            "ann",
            json!({"type": "create_org", "org": "acme", "preset": "teaminbox"}),
            None,
        ),
        (
            "ann",
            json!({"type": "create_team", "org": "acme", "team": "support"}),
            None,
        ),
        (
            "ann",
            json!({"type": "create_inbox", "org": "acme", "inbox": "billing", "team": "support"}),
            None,
        ),
        (
            "ann",
            json!({"type": "invite", "org": "acme", "invite": "i1", "email": "-x@acme.test",
                   "assignments": [{"scope": "inbox:billing", "role": "inbox_member"}]}),
            Some("=HYPERLINK(\"http://evil.test\",\"click\")"),
        ),
        (
            "=2+3",
            json!({"type": "accept_invite", "org": "acme", "invite": "i1"}),
            None,
        ),
        (
            "ann",
            json!({"type": "grant", "org": "acme", "user": "=2+3", "scope": "inbox:billing",
                   "permission": "inbox.thread.assign"}),
            Some("@SUM(1+1)"),
        ),
    ] {
        let mut body = json!({"as": actor, "do": cmd, "request_id": "REQ-1"});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        let (status, answer) = submit(&s, "svc-acme", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    s
}

#[tokio::test]
async fn every_event_names_the_token_that_submitted_it() {
    let s = story().await;
    let (status, page) = json_get(&s, "/v1/orgs/acme/audit?as=ann", "aud-acme").await;
    assert_eq!(status, StatusCode::OK);
    for e in page["entries"].as_array().unwrap() {
        assert_eq!(
            e["principal"],
            json!({"kind": "token", "id": "svc-acme"}),
            "{e}"
        );
    }
    // The role taken on accepting names the invite that promised it, with its issuer.
    let taken = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "role_assigned")
        .unwrap();
    assert_eq!(taken["actor"], "=2+3");
    assert_eq!(taken["cause"]["action"], "invite_issued");
    assert_eq!(taken["cause"]["actor"], "ann");
    assert_eq!(taken["cause"]["request_id"], "REQ-1");
}

#[tokio::test]
async fn a_token_bound_to_a_person_acts_and_reads_as_that_person_only() {
    let s = story().await;
    let (status, answer) = submit(
        &s,
        "ann-console",
        json!({"as": "ann", "do": {"type": "create_team", "org": "acme", "team": "sales"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["events"][0]["meta"]["principal"],
        json!({"kind": "token", "id": "ann-console", "name": "Ann's console"})
    );
    let head = answer["seq"].clone();
    let (status, refusal) = submit(
        &s,
        "ann-console",
        json!({"as": "mo", "do": {"type": "create_team", "org": "acme", "team": "x"}}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        refusal["message"],
        "this token is bound to `ann` and acts as no one else, not as `mo`"
    );
    let (_, health) = json_get(&s, "/healthz", "op").await;
    assert_eq!(health["seq"], head, "the refused command recorded nothing");
    let (status, _) = json_get(&s, "/v1/orgs/acme/audit?as=ann", "ann-console").await;
    assert_eq!(status, StatusCode::OK);
    let (status, refusal) = json_get(&s, "/v1/orgs/acme/audit?as=mo", "ann-console").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refusal}");
    let (status, _, _) = get(&s, "/v1/orgs/acme/audit/export?as=mo", "ann-console").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_csv_export_opens_in_a_spreadsheet_as_text_and_names_its_digest() {
    let s = story().await;
    let (status, digest, csv) = get(
        &s,
        "/v1/orgs/acme/audit/export?as=ann&format=csv",
        "aud-acme",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    // Every cell a spreadsheet would run as a formula is text.
    for r in &records {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula in {r:?}"
            );
        }
    }
    let cells: Vec<&str> = records.iter().flat_map(|r| r.iter()).collect();
    assert!(cells.contains(&"'=2+3"), "{cells:?}");
    assert!(cells.contains(&"'=HYPERLINK(\"http://evil.test\",\"click\")"));
    assert!(cells.contains(&"'@SUM(1+1)"));
    assert!(cells.contains(&"'-x@acme.test"));
    // It ends with the digest it covers, which the header names too.
    let last = records.last().unwrap();
    assert_eq!(&last[0], "#digest");
    assert_eq!(Some(last[1].to_string()), digest);
    let (_, health) = json_get(&s, "/healthz", "op").await;
    assert!(last[1].starts_with(&format!("{}:", health["seq"])));
    // And JSON Lines end with the same digest.
    let (_, _, lines) = get(&s, "/v1/orgs/acme/audit/export?as=ann", "aud-acme").await;
    let tail: Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(
        format!(
            "{}:{}",
            tail["digest"]["seq"],
            tail["digest"]["hash"].as_str().unwrap()
        ),
        last[1]
    );
}

#[tokio::test]
async fn the_whole_org_reads_as_json_and_as_csv_tables_tied_to_the_log() {
    let s = story().await;
    let (status, snap) = json_get(&s, "/v1/orgs/acme/snapshot", "aud-acme").await;
    assert_eq!(status, StatusCode::OK, "{snap}");
    assert_eq!(snap["owner"], "ann");
    assert_eq!(snap["teams"][0]["inboxes"], json!(["billing"]));
    let member = snap["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "=2+3")
        .unwrap();
    assert_eq!(member["grants"][0]["permission"], "inbox.thread.assign");
    let (status, digest, csv) = get(&s, "/v1/orgs/acme/snapshot/grants", "aud-acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        csv.lines().next(),
        Some("user,scope,permission,expires_at,live,seq")
    );
    assert!(
        csv.contains("'=2+3,inbox:billing,inbox.thread.assign,,true,"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().last().map(String::from),
        digest.map(|d| format!("#digest,{d}"))
    );
    let (status, refusal) = json_get(&s, "/v1/orgs/acme/snapshot/secrets", "aud-acme").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refusal}");
    // At a moment before the inbox: the snapshot is of then.
    let (_, then) = json_get(&s, "/v1/orgs/acme/snapshot?at=2", "aud-acme").await;
    assert_eq!(then["inboxes"], json!([]));
    assert_eq!(then["at"]["seq"], 2);
    // The orgs a token may read, and no other.
    let (_, orgs) = json_get(&s, "/v1/orgs", "aud-acme").await;
    assert_eq!(orgs["orgs"][0]["org"], "acme");
    let (_, none) = json_get(&s, "/v1/orgs", "svc-globex").await;
    assert_eq!(none["orgs"], json!([]));
}

#[tokio::test]
async fn access_explanations_and_timelines_say_why_in_words() {
    let s = story().await;
    let (status, access) = json_get(&s, "/v1/orgs/acme/users/=2+3/access", "aud-acme").await;
    assert_eq!(status, StatusCode::OK, "{access}");
    let assign = access["access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["permission"] == "inbox.thread.assign")
        .unwrap();
    let because = assign["because"].as_str().unwrap();
    assert!(
        because.starts_with("allowed: =2+3 holds inbox_member on inbox:billing, from an invite by ann on 2026-03-01T09:00:00Z (request REQ-1"),
        "{because}"
    );
    assert!(
        because.contains(
            "; and =2+3 holds inbox.thread.assign on inbox:billing directly, granted by ann"
        ),
        "{because}"
    );
    let (_, check) = json_get(
        &s,
        "/v1/orgs/acme/check?user=%3D2%2B3&permission=inbox.thread.reply&scope=inbox:billing&explain=true",
        "aud-acme",
    )
    .await;
    assert_eq!(check["allowed"], true);
    assert_eq!(check["sources"][0]["origin"]["action"], "invite_issued");
    // The window given backwards is the same window.
    let (status, timeline) = json_get(
        &s,
        "/v1/orgs/acme/timeline?from=8&to=3&user=%3D2%2B3",
        "aud-acme",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(
        (
            timeline["from"]["seq"].clone(),
            timeline["to"]["seq"].clone()
        ),
        (json!(3), json!(8))
    );
    let started: Vec<&str> = timeline["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["from"]["cause"]["event"]["action"].as_str().unwrap())
        .collect();
    // All of it came with the role the invite promised (the grant added nothing new).
    assert!(
        !started.is_empty() && started.iter().all(|a| *a == "role_assigned"),
        "{started:?}"
    );
    let (status, _) = json_get(
        &s,
        "/v1/orgs/acme/timeline?from=8&to=2&scope=inbox:billing",
        "aud-acme",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the scope exists at one end");
    let (status, refusal) = json_get(
        &s,
        "/v1/orgs/acme/timeline?from=8&to=2&scope=inbox:nowhere",
        "aud-acme",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        refusal["message"],
        "scope `inbox:nowhere` exists at neither end of the window"
    );
    let (_, diff) = json_get(&s, "/v1/orgs/acme/diff?from=3&user=%3D2%2B3", "aud-acme").await;
    let rows = diff["changes"].as_array().unwrap();
    assert_eq!(rows.len(), diff["gained"].as_array().unwrap().len());
    assert!(rows
        .iter()
        .all(|r| r["change"] == "gained" && r["cause"]["cause"]["kind"] == "event"));
}
