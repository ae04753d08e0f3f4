//! Seeding the stream with a folder's history (`permledger cluster seed`): a ledger that ran on
//! one machine becomes a cluster's first node. Its log is published to the stream as batches,
//! in order, each fenced on the one before, with the links it has and the idempotency keys of
//! the commands they belong to; the folder's own node then finds its log ending where the
//! stream does, and every other node folds the history from the stream, checking each link as
//! it would a writer's batch.
//!
//! Seeding goes on where it stopped: a stream that already holds a prefix of the log (an
//! interrupted seed, or a seed run twice) receives the rest; one that holds anything else is
//! refused and left as it is.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use permledger_domain::{OrgId, Seq};
use permledger_log::batch::{Batch, BatchCommit, BatchEvent};
use permledger_log::{envelope, Digest, EventLog, IdempotencyEntry, Record};

use crate::log::{message_id, MAX_BATCH_BYTES};
use crate::stream::{Nats, Refused};
use crate::ClusterError;

/// What a seed published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seeded {
    /// The position of the first event published by this seed (0 when none was).
    pub from: Seq,
    /// Events and batches published by this seed.
    pub events: u64,
    pub batches: u64,
    /// The log's head, which the stream now ends with.
    pub head: Digest,
    /// The stream's last message.
    pub stream: u64,
}

/// How many records are read from the log at a time.
const PAGE: usize = 4096;

/// Publishes the log's events the stream does not hold yet (all of them into an empty stream),
/// as batches of whole commands. `keys` are the log's idempotency keys (org, key, entry); each
/// goes with the command whose events it names. `progress` hears the last position published
/// and the head.
pub async fn seed(
    nats: &Nats,
    log: &dyn EventLog,
    keys: Vec<(OrgId, String, IdempotencyEntry)>,
    bound: Duration,
    mut progress: impl FnMut(Seq, Seq),
) -> Result<Seeded, ClusterError> {
    let head = log.head()?;
    let (mut expected, held) = stream_end_in(nats, log, head).await?;
    let mut seeded = Seeded {
        from: 0,
        events: 0,
        batches: 0,
        head,
        stream: expected,
    };
    if held == head.seq {
        return Ok(seeded);
    }
    seeded.from = held + 1;
    let mut keys: HashMap<Seq, (String, IdempotencyEntry)> = keys
        .into_iter()
        .map(|(_, key, entry)| (entry.first_seq, (key, entry)))
        .collect();
    let mut commands = Commands::default();
    let mut next = held + 1;
    while next <= head.seq {
        let page = log.read(next, PAGE.min((head.seq - next + 1) as usize))?;
        let Some(last) = page.last() else {
            return Err(ClusterError::Nats(format!(
                "the log ends at event {} before its head {}",
                next - 1,
                head.seq
            )));
        };
        next = last.seq + 1;
        for r in page {
            if let Some(batch) = commands.add(r, &mut keys)? {
                publish(nats, &batch, &mut expected, bound, &mut seeded).await?;
                progress(batch.last().seq, head.seq);
            }
        }
    }
    for batch in commands.finish() {
        publish(nats, &batch, &mut expected, bound, &mut seeded).await?;
        progress(batch.last().seq, head.seq);
    }
    seeded.stream = expected;
    Ok(seeded)
}

/// Where the stream ends in the log: its last message's position and the last event it holds.
/// A stream that holds a history other than this log's, or more of it, is refused.
async fn stream_end_in(
    nats: &Nats,
    log: &dyn EventLog,
    head: Digest,
) -> Result<(u64, Seq), ClusterError> {
    let last = nats.last().await?;
    if last == 0 {
        return Ok((0, 0));
    }
    let end = nats.batch(last).await?.last();
    if end.seq > head.seq {
        return Err(ClusterError::Diverged(format!(
            "the stream holds events up to {}, past this log's last event {}: another \
             history, or this one and more (a folder the stream extends joins as it is)",
            end.seq, head.seq
        )));
    }
    let ours = log.read(end.seq, 1)?.pop().filter(|r| r.seq == end.seq);
    match ours {
        Some(r) if r.hash == end.hash => Ok((last, end.seq)),
        _ => Err(ClusterError::Diverged(format!(
            "the stream's event {} has link {}, which this log does not hold there: the stream \
             holds another history",
            end.seq, end.hash
        ))),
    }
}

async fn publish(
    nats: &Nats,
    batch: &Batch,
    expected: &mut u64,
    bound: Duration,
    seeded: &mut Seeded,
) -> Result<(), ClusterError> {
    let payload = Bytes::from(batch.encode());
    match nats
        .publish(payload, &message_id(batch), *expected, bound)
        .await
    {
        Ok(at) => {
            *expected = at;
            seeded.batches += 1;
            seeded.events += batch.events().count() as u64;
            Ok(())
        }
        Err(Refused::Fenced(why)) => Err(ClusterError::Diverged(format!(
            "something else was written to the stream while seeding ({why})"
        ))),
        Err(Refused::NoQuorum(why)) => Err(ClusterError::Nats(format!(
            "no quorum acknowledged a batch: {why}; run the seed again once NATS is healthy: \
             it goes on from where the stream ends"
        ))),
    }
}

/// The log's records gathered into commands, and commands into batches of at most
/// `MAX_BATCH_BYTES`. The log keeps no command boundaries: a command's events are contiguous
/// and share their org, instant, actor and request id, so a run of events that share those is
/// taken as one command, cut where an idempotency key's command begins or ends. Two commands
/// of that description go as one, which only means a replica folds them together.
#[derive(Default)]
struct Commands {
    batch: Vec<BatchCommit>,
    bytes: usize,
    current: Option<Current>,
}

struct Current {
    commit: BatchCommit,
    /// What the events of one command share.
    shared: Shared,
    /// The last event of the command an idempotency key names.
    keyed_until: Option<Seq>,
    bytes: usize,
}

#[derive(PartialEq, Eq)]
struct Shared {
    org: OrgId,
    recorded_at: permledger_domain::Timestamp,
    actor: permledger_domain::UserId,
    request_id: Option<String>,
}

impl Commands {
    /// Adds one record; answers a batch when it is full.
    fn add(
        &mut self,
        r: Record,
        keys: &mut HashMap<Seq, (String, IdempotencyEntry)>,
    ) -> Result<Option<Batch>, ClusterError> {
        let event = envelope::decode(&r.bytes).map_err(|e| {
            ClusterError::Log(permledger_log::LogError::Corruption {
                seq: r.seq,
                reason: e.to_string(),
            })
        })?;
        let shared = Shared {
            org: event.meta.org.clone(),
            recorded_at: event.meta.recorded_at,
            actor: event.meta.actor.clone(),
            request_id: event.meta.request_id.clone(),
        };
        let key = keys.remove(&r.seq);
        let same_command = self.current.as_ref().is_some_and(|c| match c.keyed_until {
            Some(until) => r.seq <= until,
            None => key.is_none() && c.shared == shared,
        });
        let mut full = None;
        if !same_command {
            full = self.close();
            self.current = Some(Current {
                commit: BatchCommit {
                    org: shared.org.clone(),
                    events: Vec::new(),
                    idempotency: None,
                },
                keyed_until: key.as_ref().map(|(_, e)| e.last_seq),
                shared,
                bytes: 0,
            });
        }
        if let Some(c) = self.current.as_mut() {
            if let Some(key) = key {
                c.commit.idempotency = Some(key);
            }
            c.bytes += r.bytes.len() + 64;
            c.commit.events.push(BatchEvent {
                seq: r.seq,
                org_version: event.meta.org_version,
                hash: r.hash,
                bytes: r.bytes,
            });
        }
        Ok(full)
    }

    /// Ends the command being gathered; answers the batch it no longer fits in, if any.
    fn close(&mut self) -> Option<Batch> {
        let c = self.current.take()?;
        let mut full = None;
        if !self.batch.is_empty() && self.bytes + c.bytes > MAX_BATCH_BYTES {
            full = Some(Batch {
                commits: std::mem::take(&mut self.batch),
            });
            self.bytes = 0;
        }
        self.bytes += c.bytes;
        self.batch.push(c.commit);
        full
    }

    /// The last batches: the command being gathered ends, and what is gathered goes.
    fn finish(&mut self) -> Vec<Batch> {
        let mut out: Vec<Batch> = self.close().into_iter().collect();
        if !self.batch.is_empty() {
            out.push(Batch {
                commits: std::mem::take(&mut self.batch),
            });
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use permledger_domain::event::OrgRenamed;
    use permledger_domain::{Event, EventMeta, EventPayload, Timestamp, UserId};
    use permledger_log::Hash;

    /// A stored record of `org` at `seq`, recorded at `at` for request `request`.
    fn record(seq: Seq, org: &str, version: u64, at: i64, request: &str) -> Record {
        sized(seq, org, version, at, request, 0)
    }

    /// The same, its payload padded by `pad` bytes.
    fn sized(seq: Seq, org: &str, version: u64, at: i64, request: &str, pad: usize) -> Record {
        let event = Event {
            meta: EventMeta {
                seq,
                org: OrgId::new(org).unwrap(),
                org_version: version,
                event_id: uuid::Uuid::from_u128(u128::from(seq)),
                recorded_at: Timestamp::from_micros(at),
                actor: UserId::new("ann").unwrap(),
                reason: None,
                request_id: Some(request.into()),
                principal: None,
                cause: None,
            },
            payload: EventPayload::OrgRenamed(OrgRenamed {
                name: format!("name {seq}{}", "x".repeat(pad)),
            }),
        };
        Record {
            seq,
            hash: Hash([seq as u8; 32]),
            bytes: envelope::encode(&event).unwrap(),
        }
    }

    #[test]
    fn records_gather_into_whole_commands_cut_at_their_keys() {
        let key = IdempotencyEntry {
            fingerprint: Hash([9; 32]),
            first_seq: 4,
            last_seq: 5,
        };
        let mut keys = HashMap::from([(4, ("k".to_string(), key))]);
        let mut commands = Commands::default();
        let records = [
            record(1, "acme", 1, 10, "r1"),
            record(2, "acme", 2, 10, "r1"),
            record(3, "acme", 3, 10, "r1"),
            // A keyed command, then one that looks like it but is not in the key's span.
            record(4, "acme", 4, 20, "r2"),
            record(5, "acme", 5, 20, "r2"),
            record(6, "acme", 6, 20, "r2"),
            record(7, "globex", 1, 20, "r2"),
        ];
        for r in records {
            assert!(commands.add(r, &mut keys).unwrap().is_none());
        }
        let batches = commands.finish();
        assert_eq!(batches.len(), 1);
        let shape: Vec<(String, Vec<Seq>, Option<String>)> = batches[0]
            .commits
            .iter()
            .map(|c| {
                (
                    c.org.to_string(),
                    c.events.iter().map(|e| e.seq).collect(),
                    c.idempotency.as_ref().map(|(k, _)| k.clone()),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("acme".into(), vec![1, 2, 3], None),
                ("acme".into(), vec![4, 5], Some("k".into())),
                ("acme".into(), vec![6], None),
                ("globex".into(), vec![7], None),
            ]
        );
        assert_eq!(batches[0].commits[1].idempotency, Some(("k".into(), key)));
    }

    #[test]
    fn a_full_batch_goes_before_the_command_that_does_not_fit() {
        let mut commands = Commands::default();
        let mut keys = HashMap::new();
        let mut out = Vec::new();
        // Commands of one event each, different instants: about 8 KiB a command.
        for seq in 1..=200 {
            let r = sized(seq, "acme", seq, seq as i64, "r", 8 * 1024);
            out.extend(commands.add(r, &mut keys).unwrap());
        }
        out.extend(commands.finish());
        assert!(out.len() >= 3, "{} batches", out.len());
        let mut next = 1;
        for b in &out {
            let bytes: usize = b.events().map(|e| e.bytes.len() + 64).sum();
            assert!(bytes <= MAX_BATCH_BYTES);
            for e in b.events() {
                assert_eq!(e.seq, next);
                next += 1;
            }
        }
        assert_eq!(next, 201);
    }
}
