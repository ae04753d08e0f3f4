//! The cluster's side of NATS: the stream every node shares, the bucket the writer's lease
//! lives in, a publish that retries what may be retried and stops at the fence, and the search
//! for where a node's own log ends in the stream.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, kv, stream};
use bytes::Bytes;
use permledger_log::batch::Batch;
use permledger_log::Digest;

use crate::{ClusterError, Options};

/// The one subject the stream holds.
pub const SUBJECT: &str = "permledger.events";
/// The lease's key in its bucket.
pub const LEASE_KEY: &str = "writer";

/// How long one publish waits for its acknowledgement before it is retried.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// A connection to the cluster's NATS servers, with the stream and the lease's bucket.
#[derive(Clone)]
pub struct Nats {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) stream_name: String,
    pub(crate) lease: kv::Store,
}

/// Why a publish did not store a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The stream holds another batch where this one was to go: another node is the writer.
    Fenced(String),
    /// No quorum acknowledged it within the bound. It may still be stored later: whoever
    /// follows the stream finds it there.
    NoQuorum(String),
}

impl Nats {
    /// Connects to the servers and makes sure the stream and the lease's bucket exist (created
    /// with `opts.replicas` replicas by the first node to start).
    pub async fn connect(opts: &Options) -> Result<Nats, ClusterError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("permledger {}", opts.node))
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(opts.servers.clone())
            .await
            .map_err(|e| {
                ClusterError::Nats(format!("cannot connect to {:?}: {e}", opts.servers))
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_WAIT)
            .build(client.clone());
        let nats =
            |what: &str, e: &dyn std::fmt::Display| ClusterError::Nats(format!("{what}: {e}"));
        let config = stream::Config {
            name: opts.stream.clone(),
            subjects: vec![SUBJECT.to_string()],
            storage: stream::StorageType::File,
            num_replicas: opts.replicas,
            discard: stream::DiscardPolicy::New,
            deny_delete: true,
            allow_direct: true,
            ..Default::default()
        };
        retry(opts.connect_bound, || {
            js.get_or_create_stream(config.clone())
        })
        .await
        .map_err(|e| nats(&format!("cannot open the stream `{}`", opts.stream), &e))?;
        // The bucket's stream is made by hand: async-nats 0.51's `create_key_value` cannot read
        // nats-server 2.9's account reply (../shared/notes/nats-2.9.md). One value per key; no
        // time to live: the nodes' clocks only decide when to try the lease, never who holds it.
        let bucket = stream::Config {
            name: format!("KV_{}", opts.bucket),
            subjects: vec![format!("$KV.{}.>", opts.bucket)],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            num_replicas: opts.replicas,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            ..Default::default()
        };
        retry(opts.connect_bound, || {
            js.get_or_create_stream(bucket.clone())
        })
        .await
        .map_err(|e| nats(&format!("cannot open the bucket `{}`", opts.bucket), &e))?;
        let lease = retry(opts.connect_bound, || js.get_key_value(opts.bucket.clone()))
            .await
            .map_err(|e| nats(&format!("cannot open the bucket `{}`", opts.bucket), &e))?;
        Ok(Nats {
            client,
            js,
            stream_name: opts.stream.clone(),
            lease,
        })
    }

    /// Stores one batch right after stream message `expected`, identified by `id` so that a
    /// retry of a batch the stream did store is answered with its position, never stored twice.
    /// Timeouts and a stream without a leader are retried, with backoff, for `bound`.
    pub async fn publish(
        &self,
        payload: Bytes,
        id: &str,
        expected: u64,
        bound: Duration,
    ) -> Result<u64, Refused> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(25);
        loop {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(id)
                .expected_last_sequence(expected);
            let acked = async { self.js.send_publish(SUBJECT, message).await?.await }.await;
            match acked {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    return Err(Refused::Fenced(e.to_string()))
                }
                Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    return Err(Refused::NoQuorum(e.to_string()))
                }
                Err(e) => {
                    if started.elapsed() + pause > bound {
                        return Err(Refused::NoQuorum(format!(
                            "{e} (retried for {} ms)",
                            started.elapsed().as_millis()
                        )));
                    }
                    tracing::warn!(error = %e, expected, "publish not acknowledged; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
            }
        }
    }

    /// The stream's last message position (0 when empty).
    pub async fn last(&self) -> Result<u64, ClusterError> {
        let mut stream = self
            .js
            .get_stream(&self.stream_name)
            .await
            .map_err(|e| ClusterError::Nats(format!("the stream's state: {e}")))?;
        let info = stream
            .info()
            .await
            .map_err(|e| ClusterError::Nats(format!("the stream's state: {e}")))?;
        Ok(info.state.last_sequence)
    }

    /// The batch at stream position `at`.
    pub async fn batch(&self, at: u64) -> Result<Batch, ClusterError> {
        let stream = self
            .js
            .get_stream_no_info(&self.stream_name)
            .await
            .map_err(|e| ClusterError::Nats(format!("the stream: {e}")))?;
        let message = stream
            .get_raw_message(at)
            .await
            .map_err(|e| ClusterError::Nats(format!("stream message {at}: {e}")))?;
        Batch::decode(&message.payload).map_err(|e| ClusterError::Batch(at, e))
    }

    /// The stream position of the batch that ends at the log's head `head` (0 for an empty
    /// log). The batches' positions grow with the stream's, so a binary search finds it in a
    /// few reads. A head the stream does not hold, or holds with another link, is a log that
    /// is not a prefix of the stream: refused, never joined.
    pub async fn position_of(&self, head: Digest) -> Result<u64, ClusterError> {
        if head.seq == 0 {
            return Ok(0);
        }
        let (mut lo, mut hi) = (1, self.last().await?);
        if hi == 0 {
            return Err(ClusterError::Diverged(format!(
                "the stream is empty and this node's log holds {} events: publish them first \
                 with `permledger cluster seed` (the folder's server stopped), or join with an \
                 empty folder",
                head.seq
            )));
        }
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            let last = self.batch(mid).await?.last();
            if last.seq == head.seq {
                if last.hash != head.hash {
                    return Err(ClusterError::Diverged(format!(
                        "event {} has link {} here and {} in the stream",
                        head.seq, head.hash, last.hash
                    )));
                }
                return Ok(mid);
            }
            if last.seq < head.seq {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        Err(ClusterError::Diverged(format!(
            "this node's log ends at event {}, which ends no batch of the stream",
            head.seq
        )))
    }
}

/// Retries a NATS call for up to `bound` (a cluster that is starting has no leader yet).
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    bound: Duration,
    mut call: impl FnMut() -> F,
) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match call().await {
            Ok(t) => return Ok(t),
            Err(e) if started.elapsed() < bound => {
                tracing::debug!(error = %e, "NATS not ready; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
