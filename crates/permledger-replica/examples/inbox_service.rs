//! A product service that checks permissions on every request without a network round trip:
//! it keeps a replica of the ledger's views in its own process, fed from the cluster's stream
//! with every link checked, and answers from memory; or, beside one server without a cluster,
//! fed from that server's stored records (`GET /v1/records`, a token bound to no org).
//!
//! ```sh
//! cargo run --release -p permledger-replica --example inbox_service -- \
//!     nats://127.0.0.1:4222,nats://127.0.0.1:4223 127.0.0.1:8080
//! PERMLEDGER_TOKEN=... cargo run --release -p permledger-replica --example inbox_service -- \
//!     http://127.0.0.1:7878 127.0.0.1:8080
//! curl '127.0.0.1:8080/orgs/acme/inboxes/support/threads?user=ann'
//! curl '127.0.0.1:8080/orgs/acme/inboxes/support/threads?user=ann&min_seq=42'
//! ```
//!
//! A request names the user it acts for; `min_seq`, the position a write answered (from the
//! permledger server the service wrote to), makes the service wait until its replica holds
//! that write before it answers: read-your-writes across processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use permledger_domain::{OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_replica::Replica;

#[derive(serde::Deserialize)]
struct Asked {
    user: String,
    min_seq: Option<u64>,
}

async fn threads(
    State(replica): State<Replica>,
    Path((org, inbox)): Path<(String, String)>,
    Query(asked): Query<Asked>,
) -> (StatusCode, String) {
    let (Ok(org), Ok(user), Ok(scope)) = (
        OrgId::new(org),
        UserId::new(asked.user),
        format!("inbox:{inbox}").parse::<Scope>(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "bad org, user or inbox id\n".into(),
        );
    };
    if let Some(seq) = asked.min_seq {
        if let Err(e) = replica.wait_for(seq, Duration::from_secs(5)).await {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"));
        }
    }
    let view = PermissionKey::new("inbox.thread.view").unwrap();
    let now = Timestamp::from_chrono(chrono::Utc::now());
    if replica.check(&org, &user, &view, &scope, now) {
        (
            StatusCode::OK,
            format!("the threads of {scope} (as of event {})\n", replica.seq()),
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            format!("{user} may not read {scope}\n"),
        )
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let source = args
        .next()
        .expect("usage: inbox_service NATS_URLS|http://SERVER [LISTEN]");
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let replica = if source.starts_with("http://") || source.starts_with("https://") {
        // One server without a cluster: its stored records, with a token bound to no org.
        let token = std::env::var("PERMLEDGER_TOKEN").expect("PERMLEDGER_TOKEN");
        let client = permledger_client::Client::new(&source, Some(&token), None).unwrap();
        let (replica, stopped) = Replica::follow_server(client);
        std::thread::spawn(move || {
            if let Ok(why) = stopped.join() {
                eprintln!("the replica stopped: {why}");
            }
        });
        replica
    } else {
        let servers = source.split(',').map(str::to_string).collect();
        let (replica, stopped) = Replica::follow_stream(servers, permledger_replica::STREAM)
            .await
            .expect("the cluster's stream");
        tokio::spawn(async move {
            if let Ok(why) = stopped.await {
                eprintln!("the replica stopped: {why}");
            }
        });
        replica
    };
    // Only a record that does not hold ends the following: the service keeps answering from
    // the last good event, and says why on standard error.
    let app = Router::new()
        .route("/orgs/{org}/inboxes/{inbox}/threads", get(threads))
        .with_state(replica);
    let listener = tokio::net::TcpListener::bind(&listen).await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
