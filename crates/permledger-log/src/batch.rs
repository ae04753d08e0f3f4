//! A group of commits as it travels between the nodes of a cluster: one message of the stream
//! (decision 0011). It carries what the writer stored, nothing derived: each event's position,
//! org version, link and envelope bytes, and each command's idempotency key, so that a node
//! checks every link against its own chain before storing the batch, and stores exactly the
//! bytes and keys the writer stored. One command's events are never split across batches: a
//! batch in the stream holds whole commands or nothing.

use permledger_domain::{Event, OrgId, Seq};
use serde::{Deserialize, Serialize};

use crate::{link_commits, Commit, Digest, Hash, IdempotencyEntry, LogError, PendingEvent, Tamper};

/// The first byte of every encoded batch: the layout that follows. Readers refuse one they do
/// not know rather than guess.
pub const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub commits: Vec<BatchCommit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCommit {
    pub org: OrgId,
    pub events: Vec<BatchEvent>,
    pub idempotency: Option<(String, IdempotencyEntry)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchEvent {
    pub seq: Seq,
    pub org_version: u64,
    /// The event's chain link as the writer stored it.
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch of format {0} (this build reads format {FORMAT})")]
    Format(u8),
    #[error("a batch that does not decode: {0}")]
    Undecodable(String),
    #[error("a batch with no event")]
    Empty,
    /// The batch does not extend the chain it was checked against.
    #[error("{0}")]
    Tampered(Tamper),
    #[error(transparent)]
    Log(#[from] LogError),
}

impl Batch {
    /// The commits as the writer is about to store them, with the links the log gives them.
    pub fn new(commits: &[Commit], links: &[Hash]) -> Batch {
        let mut links = links.iter();
        Batch {
            commits: commits
                .iter()
                .map(|c| BatchCommit {
                    org: c.org.clone(),
                    events: c
                        .events
                        .iter()
                        .map(|e| BatchEvent {
                            seq: e.seq,
                            org_version: e.org_version,
                            hash: links.next().copied().unwrap_or(Hash::GENESIS),
                            bytes: e.bytes.clone(),
                        })
                        .collect(),
                    idempotency: c.idempotency.clone(),
                })
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        // Encoding plain owned data into a Vec cannot fail.
        let _ = bincode::serde::encode_into_std_write(self, &mut out, bincode::config::standard());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Batch, BatchError> {
        let (&format, rest) = bytes.split_first().ok_or(BatchError::Empty)?;
        if format != FORMAT {
            return Err(BatchError::Format(format));
        }
        let (batch, used): (Batch, usize) =
            bincode::serde::decode_from_slice(rest, bincode::config::standard())
                .map_err(|e| BatchError::Undecodable(e.to_string()))?;
        if used != rest.len() {
            return Err(BatchError::Undecodable(format!(
                "{} bytes after the batch",
                rest.len() - used
            )));
        }
        if batch.events().next().is_none() {
            return Err(BatchError::Empty);
        }
        Ok(batch)
    }

    pub fn events(&self) -> impl Iterator<Item = &BatchEvent> {
        self.commits.iter().flat_map(|c| c.events.iter())
    }

    /// The position of the batch's first event (0 for none).
    pub fn first(&self) -> Seq {
        self.events().next().map_or(0, |e| e.seq)
    }

    /// The position and link of the batch's last event.
    pub fn last(&self) -> Digest {
        self.events().last().map_or(
            Digest {
                seq: 0,
                hash: Hash::GENESIS,
            },
            |e| Digest {
                seq: e.seq,
                hash: e.hash,
            },
        )
    }

    /// The stored records, in order, for a reader that checks them itself (`ChainCheck`).
    pub fn records(&self) -> Vec<crate::Record> {
        self.events()
            .map(|e| crate::Record {
                seq: e.seq,
                hash: e.hash,
                bytes: e.bytes.clone(),
            })
            .collect()
    }

    /// Checks the batch against a log's chain (its head and each org's version there): every
    /// position follows, every org version follows, every link is the one the chain gives those
    /// bytes, and every event's bytes decode to an event of that position, org and version.
    /// Answers the commits to store and the decoded events to fold, in order.
    pub fn check(
        &self,
        head: Digest,
        org_version: impl FnMut(&OrgId) -> Result<u64, LogError>,
    ) -> Result<(Vec<Commit>, Vec<Event>), BatchError> {
        let commits: Vec<Commit> = self
            .commits
            .iter()
            .map(|c| Commit {
                org: c.org.clone(),
                expected_version: None,
                events: c
                    .events
                    .iter()
                    .map(|e| PendingEvent {
                        seq: e.seq,
                        org_version: e.org_version,
                        bytes: e.bytes.clone(),
                    })
                    .collect(),
                idempotency: c.idempotency.clone(),
            })
            .collect();
        let links = match link_commits(head, org_version, &commits) {
            Ok((links, _)) => links,
            Err(LogError::OutOfOrder { expected_prev, .. }) => {
                return Err(BatchError::Tampered(Tamper::Missing {
                    seq: expected_prev + 1,
                }))
            }
            Err(LogError::Conflict {
                org,
                expected,
                actual,
            }) => {
                return Err(BatchError::Tampered(Tamper::OrgVersion {
                    seq: self.first(),
                    org,
                    expected: actual + 1,
                    found: expected + 1,
                }))
            }
            Err(e) => return Err(e.into()),
        };
        let mut events = Vec::with_capacity(links.len());
        for ((c, e), link) in self
            .commits
            .iter()
            .flat_map(|c| c.events.iter().map(move |e| (c, e)))
            .zip(&links)
        {
            if *link != e.hash {
                return Err(BatchError::Tampered(Tamper::Changed { seq: e.seq }));
            }
            let event = crate::envelope::decode(&e.bytes)
                .map_err(|err| BatchError::Undecodable(format!("event {}: {err}", e.seq)))?;
            if event.meta.seq != e.seq {
                return Err(BatchError::Tampered(Tamper::Misplaced {
                    seq: e.seq,
                    recorded_as: event.meta.seq,
                }));
            }
            if event.meta.org != c.org || event.meta.org_version != e.org_version {
                return Err(BatchError::Tampered(Tamper::OrgVersion {
                    seq: e.seq,
                    org: event.meta.org.clone(),
                    expected: e.org_version,
                    found: event.meta.org_version,
                }));
            }
            events.push(event);
        }
        Ok((commits, events))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::conformance::next_commit;
    use crate::{EventLog, MemoryLog};

    /// A writer's log with two commits appended, the batch it published for them, and a fresh
    /// follower's log that has the events before them.
    fn published() -> (Batch, MemoryLog) {
        let acme = OrgId::new("acme").unwrap();
        let globex = OrgId::new("globex").unwrap();
        let writer = MemoryLog::new();
        let follower = MemoryLog::new();
        let first = next_commit(&writer, &acme, 2);
        writer.append(std::slice::from_ref(&first)).unwrap();
        follower.append(&[first]).unwrap();
        let mut commits = vec![next_commit(&writer, &acme, 1)];
        writer.append(&commits).unwrap();
        commits = vec![next_commit(&writer, &globex, 2)];
        writer.append(&commits).unwrap();
        let records = writer.read(3, 10).unwrap();
        let links: Vec<Hash> = records.iter().map(|r| r.hash).collect();
        let mut both = vec![Commit {
            org: acme.clone(),
            expected_version: None,
            events: vec![PendingEvent {
                seq: 3,
                org_version: 3,
                bytes: records[0].bytes.clone(),
            }],
            idempotency: None,
        }];
        both.extend(commits);
        (Batch::new(&both, &links), follower)
    }

    #[test]
    fn a_batch_round_trips_and_extends_the_chain_it_was_cut_from() {
        let (batch, follower) = published();
        let decoded = Batch::decode(&batch.encode()).unwrap();
        assert_eq!(decoded, batch);
        assert_eq!((batch.first(), batch.last().seq), (3, 5));
        let (commits, events) = batch
            .check(follower.head().unwrap(), |o| follower.org_version(o))
            .unwrap();
        follower.append(&commits).unwrap();
        assert_eq!(follower.head().unwrap(), batch.last());
        assert_eq!(
            events.iter().map(|e| e.meta.seq).collect::<Vec<_>>(),
            [3, 4, 5]
        );
    }

    #[test]
    fn a_forged_or_misplaced_batch_is_refused() {
        let (batch, follower) = published();
        let head = follower.head().unwrap();
        let versions = |o: &OrgId| follower.org_version(o);
        let mut forged = batch.clone();
        forged.commits[1].events[0].bytes[10] ^= 1;
        assert!(matches!(
            forged.check(head, versions),
            Err(BatchError::Tampered(Tamper::Changed { seq: 4 }) | BatchError::Undecodable(_))
        ));
        let mut relinked = batch.clone();
        relinked.commits[0].events[0].hash = Hash::GENESIS;
        assert_eq!(
            relinked.check(head, versions),
            Err(BatchError::Tampered(Tamper::Changed { seq: 3 }))
        );
        // Checked against a chain one event shorter: a gap.
        let behind = crate::Digest {
            seq: 1,
            hash: follower.read(1, 1).unwrap()[0].hash,
        };
        assert_eq!(
            batch.check(behind, versions),
            Err(BatchError::Tampered(Tamper::Missing { seq: 2 }))
        );
        assert_eq!(Batch::decode(&[9, 0]), Err(BatchError::Format(9)));
        assert_eq!(
            Batch::decode(&Batch { commits: vec![] }.encode()),
            Err(BatchError::Empty)
        );
        let mut long = batch.encode();
        long.push(0);
        assert!(matches!(
            Batch::decode(&long),
            Err(BatchError::Undecodable(_))
        ));
    }
}
