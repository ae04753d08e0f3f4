//! permledger's cluster mode (issue 22; docs/decisions/0011-cluster.md): nodes that share one
//! NATS JetStream stream, replicated by NATS's own Raft on three servers. One node at a time is
//! the writer; every node keeps its own RocksDB log (the same bytes, the same chain) and its own
//! views, and serves every read.
//!
//! - [`stream::Nats`]: the stream (`permledger.events`, one batch of whole commands a message)
//!   and the lease's key-value bucket.
//! - [`ClusterLog`]: the node's log of record. The writer's appends go to the stream first,
//!   fenced by the stream's last position (`Nats-Expected-Last-Sequence`), then to the local
//!   log: acknowledged means in a quorum of NATS servers and in the writer's RocksDB. Replicas'
//!   batches are checked link by link before they are stored and folded.
//! - [`seed::seed`]: a folder's history published into the stream, for a ledger that ran on
//!   one machine to become a cluster's first node.
//! - [`Node`]: the tasks that follow the stream and hold or watch the writer's lease, and the
//!   node's status for `/healthz` and `/metrics`.

mod log;
mod node;
pub mod seed;
pub mod stream;

use std::time::Duration;

pub use log::{ClusterLog, Received};
pub use node::{Joining, Lease, Node, Role, Status};

/// What a node needs to know to join a cluster (`permledger serve --cluster`).
#[derive(Debug, Clone)]
pub struct Options {
    /// NATS server addresses (`nats://HOST:PORT`).
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// The HTTP address other nodes forward commands to while this node is the writer.
    pub advertise: String,
    /// Replicas of the stream and the lease's bucket, when this node creates them.
    pub replicas: usize,
    pub stream: String,
    pub bucket: String,
    /// How often the writer renews its lease.
    pub renew_every: Duration,
    /// How long a lease may go without renewal before another node takes it.
    pub lease_expiry: Duration,
    /// How long an append retries a publish that no quorum acknowledges before it refuses.
    pub publish_bound: Duration,
    /// How long joining waits for the NATS servers to be ready.
    pub connect_bound: Duration,
}

impl Options {
    pub fn new(servers: Vec<String>, node: String, advertise: String) -> Options {
        Options {
            servers,
            node,
            advertise,
            replicas: 3,
            stream: "PERMLEDGER".into(),
            bucket: "permledger-writer".into(),
            renew_every: Duration::from_millis(500),
            lease_expiry: Duration::from_secs(2),
            publish_bound: Duration::from_secs(10),
            connect_bound: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error("stream message {0} is not a batch this node can read: {1}")]
    Batch(u64, permledger_log::batch::BatchError),
    /// A batch of the stream does not extend this node's chain: nothing from it is stored.
    #[error("stream message {at} does not extend this node's chain: {why}")]
    Broken { at: u64, why: String },
    /// The node's log is not a prefix of the stream.
    #[error("this node's log is not a prefix of the cluster's stream: {0}")]
    Diverged(String),
    #[error(transparent)]
    Log(#[from] permledger_log::LogError),
}
