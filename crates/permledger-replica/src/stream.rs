//! The replica fed from a cluster's NATS JetStream stream (decision 0011): every message is a
//! batch of whole commands as the writer stored them (`permledger_log::batch`), whose records
//! the replica checks link by link like any other.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::push, consumer::DeliverPolicy};
use futures_util::StreamExt as _;
use permledger_log::batch::Batch;

use crate::{Replica, ReplicaError};

/// The cluster's stream, as `permledger serve --cluster` names it by default.
pub const STREAM: &str = "PERMLEDGER";

impl Replica {
    /// A replica following a cluster's stream from its first batch, on a task of the current
    /// tokio runtime: connects to `servers` (`nats://HOST:PORT`, any of the cluster's), and
    /// folds every batch once its records hold against the chain. The task ends only when a
    /// batch does not hold or does not decode (it answers why, and the replica stays at its
    /// last good event); a lost connection or consumer is resumed from the next batch.
    pub async fn follow_stream(
        servers: Vec<String>,
        stream: &str,
    ) -> Result<(Replica, tokio::task::JoinHandle<ReplicaError>), ReplicaError> {
        let nats = |what: &str, e: &dyn std::fmt::Display| {
            ReplicaError::Log(format!("the cluster's stream: {what}: {e}"))
        };
        let client = async_nats::ConnectOptions::new()
            .name("permledger replica")
            .retry_on_initial_connect()
            .connect(servers.clone())
            .await
            .map_err(|e| nats(&format!("connecting to {servers:?}"), &e))?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_stream(stream)
            .await
            .map_err(|e| nats(&format!("opening `{stream}`"), &e))?;
        let replica = Replica::new();
        let fed = replica.clone();
        let task = tokio::spawn(async move {
            // The stream position of the last batch folded.
            let mut at = 0;
            loop {
                let mut messages = match messages_from(&stream, &client, at + 1).await {
                    Ok(m) => m,
                    Err(e) => {
                        again(&fed, e).await;
                        continue;
                    }
                };
                fed.set_trouble(None);
                while let Some(next) = messages.next().await {
                    let message = match next {
                        Ok(m) => m,
                        Err(e) => {
                            again(&fed, e.to_string()).await;
                            break;
                        }
                    };
                    let position = match message.info() {
                        Ok(info) => info.stream_sequence,
                        Err(e) => {
                            again(&fed, e.to_string()).await;
                            break;
                        }
                    };
                    if position <= at {
                        continue;
                    }
                    let batch = match Batch::decode(&message.payload) {
                        Ok(b) => b,
                        Err(e) => {
                            return ReplicaError::Undecodable {
                                seq: fed.seq() + 1,
                                reason: format!("stream message {position}: {e}"),
                                at: fed.seq(),
                            }
                        }
                    };
                    if let Err(e) = fed.apply(&batch.records()) {
                        return e;
                    }
                    at = position;
                }
            }
        });
        Ok((replica, task))
    }
}

/// The stream's messages from position `from` on, through an ordered push consumer (the
/// notes on NATS 2.9: an ordered pull consumer once paused 33 s across a leader change). The
/// cluster's nodes follow the stream through it too.
pub async fn messages_from<I>(
    stream: &jetstream::stream::Stream<I>,
    client: &async_nats::Client,
    from: u64,
) -> Result<push::Ordered, String> {
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| format!("following the stream from {from}: {e}"))?;
    consumer
        .messages()
        .await
        .map_err(|e| format!("following the stream from {from}: {e}"))
}

async fn again(replica: &Replica, e: String) {
    tracing::warn!(error = %e, "following the cluster's stream failed; resuming");
    replica.set_trouble(Some(e));
    tokio::time::sleep(Duration::from_millis(250)).await;
}
