//! What the router's tests share: a ledger in memory with a hand-set clock, and its tokens.

use std::sync::Arc;

use permledger_domain::Timestamp;
use permledger_ledger::{Ledger, ManualClock};
use permledger_log::MemoryLog;
use permledger_server::tokens::{hash_secret, TokenRecord, TokenRole, Tokens};
use permledger_server::AppState;

/// A token whose secret is its id.
pub fn token(secret: &str, org: Option<&str>, role: TokenRole) -> TokenRecord {
    TokenRecord {
        id: secret.to_string(),
        hash: hash_secret(secret),
        org: org.map(|o| o.parse().unwrap()),
        role,
        created_at: "2026-01-01T00:00:00Z".into(),
        name: None,
        user: None,
    }
}

/// An empty ledger at 2026-03-01T09:00:00Z, with the secrets `svc-acme`, `aud-acme`,
/// `svc-globex`, `op` (an operator of every org) and `ann-console` (bound to ann in acme).
pub fn state() -> AppState {
    let clock = Arc::new(ManualClock::new(
        Timestamp::parse("2026-03-01T09:00:00Z").unwrap(),
    ));
    let ledger = Ledger::open(Arc::new(MemoryLog::new()), clock.clone()).unwrap();
    AppState {
        ledger,
        tokens: Arc::new(Tokens::from_records(vec![
            token("svc-acme", Some("acme"), TokenRole::Service),
            token("aud-acme", Some("acme"), TokenRole::Auditor),
            token("svc-globex", Some("globex"), TokenRole::Service),
            token("op", None, TokenRole::Operator),
            TokenRecord {
                name: Some("Ann's console".into()),
                user: Some("ann".parse().unwrap()),
                ..token("ann-console", Some("acme"), TokenRole::Service)
            },
        ])),
        clock,
        metrics: Default::default(),
        stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        sandboxes: None,
        console: Default::default(),
        signer: None,
        cluster: None,
    }
}
