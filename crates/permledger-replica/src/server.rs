//! The replica fed from one server's stored records (`GET /v1/records`), for a service beside a
//! permledger server that runs without a cluster (decision 0011). Each message of that stream is
//! a batch of records as the server's log holds them; the replica checks them link by link like
//! any other before it folds them.

use std::sync::Arc;
use std::time::Duration;

use permledger_api::{FeedParams, NoPath, Records, StoredRecord};
use permledger_client::{Client, ClientError};

use crate::{Replica, ReplicaError};

/// The pause before a lost stream is opened again, doubling from the first to the last.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LAST_PAUSE: Duration = Duration::from_secs(5);

impl Replica {
    /// A replica following a server's log from its first record, on a thread of its own.
    /// `client` names the server and a token not bound to an org (the chain needs every
    /// record). A lost or refused stream is opened again after the last record folded
    /// (`Last-Event-ID`), after a pause of 100 ms doubling to 5 s, and the reason is kept
    /// ([`Replica::trouble`]). The thread ends with the reason when a record does not hold or
    /// does not decode (the replica stays at its last good event), or when every other handle
    /// on the replica is gone (noticed at the next message or keep-alive, 15 s at most).
    pub fn follow_server(client: Client) -> (Replica, std::thread::JoinHandle<ReplicaError>) {
        let replica = Replica::new();
        let fed = replica.clone();
        let thread = std::thread::Builder::new()
            .name("replica-follow".into())
            .spawn(move || fed.follow_records(&client));
        match thread {
            Ok(t) => (replica, t),
            // Without a thread there is nothing to follow with: a handle that says so.
            Err(e) => {
                let why = ReplicaError::Log(format!("no thread to follow the server: {e}"));
                let answer = why.clone();
                let _ = replica.inner.broken.set(why);
                let t = std::thread::spawn(move || answer);
                (replica, t)
            }
        }
    }

    fn follow_records(&self, client: &Client) -> ReplicaError {
        let mut pause = FIRST_PAUSE;
        loop {
            if Arc::strong_count(&self.inner) == 1 {
                return ReplicaError::Stopped("no one holds the replica any more".into());
            }
            let at = self.seq();
            let resume = (at > 0).then_some(at);
            let trouble = match client.events::<Records>(&NoPath {}, &FeedParams::default(), resume)
            {
                Ok(Ok(events)) => {
                    self.set_trouble(None);
                    pause = FIRST_PAUSE;
                    match self.fold_messages(events) {
                        Ok(trouble) => trouble,
                        Err(broken) => return broken,
                    }
                }
                Ok(Err(refusal)) => format!("the server refused the records: {refusal}"),
                Err(e) => e.to_string(),
            };
            tracing::warn!(error = %trouble, "following the server's records failed; resuming");
            self.set_trouble(Some(trouble));
            std::thread::sleep(pause);
            pause = (pause * 2).min(LAST_PAUSE);
        }
    }

    /// Folds each message's records until the stream ends or breaks (the reason, to resume),
    /// or a record does not hold (the replica's end).
    fn fold_messages(&self, events: permledger_client::Events) -> Result<String, ReplicaError> {
        for message in events {
            if Arc::strong_count(&self.inner) == 1 {
                return Err(ReplicaError::Stopped(
                    "no one holds the replica any more".into(),
                ));
            }
            let message = match message {
                Ok(m) => m,
                Err(e) => return Ok(e.to_string()),
            };
            let stored: Vec<StoredRecord> = match serde_json::from_str(&message.data) {
                Ok(s) => s,
                Err(e) => {
                    return Ok(ClientError::Malformed {
                        what: "a message of GET /v1/records".into(),
                        reason: e.to_string(),
                    }
                    .to_string())
                }
            };
            let mut records = Vec::with_capacity(stored.len());
            for s in &stored {
                match s.record() {
                    Ok(r) => records.push(r),
                    Err(reason) => {
                        return Ok(format!("a message of GET /v1/records: {reason}"));
                    }
                }
            }
            // A resumed stream starts after the last record folded; anything before it is
            // skipped, anything else is the chain's to judge.
            let at = self.seq();
            records.retain(|r| r.seq > at);
            self.apply(&records)?;
        }
        Ok("the server ended the stream".into())
    }
}
