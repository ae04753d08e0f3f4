//! Verification: recompute every link from the first event (trusting nothing stored about the
//! chain) and report the first event that was changed, removed, reordered or inserted.

use std::fmt;

use permledger_domain::{OrgId, Seq};
use serde::{Deserialize, Serialize};

use crate::chain::{link, Digest, Hash};
use crate::{EventLog, LogError};

/// What a clean verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub events: u64,
    pub head: Digest,
    /// The latest of the digests the log was proven to extend, when any was given.
    pub extends: Option<Digest>,
}

/// The first sign of tampering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "tamper")]
pub enum Tamper {
    /// The event's bytes (or its stored link) no longer match the chain.
    Changed { seq: Seq },
    /// The position holds nothing, though later positions do or the head says it existed.
    Missing { seq: Seq },
    /// The position holds an event recorded at another position (moved or inserted).
    Misplaced { seq: Seq, recorded_as: Seq },
    /// The org's versions skip or repeat here: one of its events was removed or inserted.
    OrgVersion {
        seq: Seq,
        org: OrgId,
        expected: u64,
        found: u64,
    },
    /// The bytes do not decode as an event.
    Undecodable { seq: Seq, reason: String },
    /// The log's link at the digest's position is not the digest's: history was rewritten.
    DigestMismatch { seq: Seq },
    /// The log ends before the digest's position: it was truncated.
    DigestBeyondHead { digest_seq: Seq, head: Seq },
    /// The stored head names a later event than the last one stored: the events after `after`
    /// were removed.
    Truncated { after: Seq, head: Seq },
    /// Events are stored after the position the stored head names.
    BeyondHead { head: Seq, last: Seq },
    /// The stored head names the last event but not its link.
    HeadMismatch { seq: Seq },
}

impl Tamper {
    pub fn seq(&self) -> Seq {
        match self {
            Tamper::Changed { seq }
            | Tamper::Missing { seq }
            | Tamper::Misplaced { seq, .. }
            | Tamper::OrgVersion { seq, .. }
            | Tamper::Undecodable { seq, .. }
            | Tamper::DigestMismatch { seq } => *seq,
            Tamper::DigestBeyondHead { head, .. } => head + 1,
            Tamper::Truncated { after, .. } => after + 1,
            Tamper::BeyondHead { head, .. } => head + 1,
            Tamper::HeadMismatch { seq } => *seq,
        }
    }
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tamper::Changed { seq } => write!(f, "event {seq} was changed: its hash no longer links the chain"),
            Tamper::Missing { seq } => write!(f, "event {seq} is missing"),
            Tamper::Misplaced { seq, recorded_as } => {
                write!(f, "event {seq} holds the event recorded as {recorded_as}: reordered or inserted")
            }
            Tamper::OrgVersion { seq, org, expected, found } => write!(
                f,
                "event {seq} is version {found} of org `{org}` where {expected} was due: an event was removed or inserted"
            ),
            Tamper::Undecodable { seq, reason } => write!(f, "event {seq} does not decode: {reason}"),
            Tamper::DigestMismatch { seq } => {
                write!(f, "the log no longer extends the digest: event {seq} links differently")
            }
            Tamper::DigestBeyondHead { digest_seq, head } => {
                write!(f, "the log ends at {head}, before the digest's event {digest_seq}: it was truncated")
            }
            Tamper::Truncated { after, head } => write!(
                f,
                "the log was truncated after event {after}: the stored head names event {head}"
            ),
            Tamper::BeyondHead { head, last } => write!(
                f,
                "events {} to {last} are stored after the head, which names event {head}",
                head + 1
            ),
            Tamper::HeadMismatch { seq } => write!(
                f,
                "the stored head names event {seq} with another link than the event's: the head was rewritten"
            ),
        }
    }
}

/// Walks the whole log, proving along the way that it extends every digest given (kept
/// earlier: one, or a witness file's). `progress` is called with the number of events checked
/// so far.
pub fn verify(
    log: &dyn EventLog,
    digests: &[Digest],
    mut progress: impl FnMut(u64),
) -> Result<Result<VerifyReport, Tamper>, LogError> {
    const PROGRESS_EVERY: u64 = 4096;
    let stored_head = log.head()?;
    let mut chain = ChainCheck::new();
    // Each position a digest names, with every link stated for it.
    let mut wanted: std::collections::BTreeMap<Seq, Vec<Hash>> = Default::default();
    for d in digests {
        wanted.entry(d.seq).or_default().push(d.hash);
    }
    let latest = digests.iter().copied().max_by_key(|d| d.seq);
    let mut tamper = None;
    // Up to the head read first: a live log grows meanwhile, and what it appends after that
    // head is the next verification's (what a store found after its head when it opened is in
    // `EventLog::damage`).
    log.scan(1, &mut |seq, stored, bytes| {
        if seq > stored_head.seq {
            return false;
        }
        let checked = crate::envelope::decode(bytes)
            .map_err(|e| Tamper::Undecodable {
                seq,
                reason: e.to_string(),
            })
            .and_then(|event| chain.check(seq, stored, bytes, &event))
            .and_then(|link| match wanted.get(&seq) {
                Some(hashes) if hashes.iter().any(|h| *h != link.hash) => {
                    Err(Tamper::DigestMismatch { seq })
                }
                _ => Ok(()),
            });
        match checked {
            Ok(()) => {
                if seq % PROGRESS_EVERY == 0 {
                    progress(seq);
                }
                true
            }
            Err(t) => {
                tamper = Some(t);
                false
            }
        }
    })?;
    if let Some(t) = tamper {
        return Ok(Err(t));
    }
    let last = chain.last();
    progress(last.seq);
    if let Some(t) = log.damage() {
        return Ok(Err(t));
    }
    if let Err(t) = chain.end(stored_head) {
        return Ok(Err(t));
    }
    if wanted
        .get(&0)
        .is_some_and(|hashes| hashes.iter().any(|h| *h != Hash::GENESIS))
    {
        return Ok(Err(Tamper::DigestMismatch { seq: 0 }));
    }
    if let Some((&beyond, _)) = wanted.range(last.seq + 1..).next() {
        return Ok(Err(Tamper::DigestBeyondHead {
            digest_seq: beyond,
            head: last.seq,
        }));
    }
    Ok(Ok(VerifyReport {
        events: last.seq,
        head: last,
        extends: latest,
    }))
}

/// Whether the links of the events up to `upto` hold and end at its hash: every stored link
/// recomputed from its bytes, from the first event, without decoding one. A checkpoint is
/// written only from a fold that checked every event; this proves the log still holds the same
/// bytes below it, so an open that starts from the checkpoint can trust them.
pub fn links_hold(
    log: &dyn EventLog,
    upto: Digest,
    mut progress: impl FnMut(Seq),
) -> Result<Result<(), Tamper>, LogError> {
    let mut prev = Digest {
        seq: 0,
        hash: Hash::GENESIS,
    };
    let mut found = None;
    log.scan(1, &mut |seq, stored, bytes| {
        if seq > upto.seq {
            return false;
        }
        let due = prev.seq + 1;
        if seq != due {
            found = Some(Tamper::Missing { seq: due });
            return false;
        }
        let hash = link(&prev.hash, seq, bytes);
        if hash != *stored {
            found = Some(Tamper::Changed { seq });
            return false;
        }
        prev = Digest { seq, hash };
        if seq % 65_536 == 0 {
            progress(seq);
        }
        seq < upto.seq
    })?;
    Ok(match found {
        Some(t) => Err(t),
        None if prev.seq < upto.seq => Err(Tamper::Missing { seq: prev.seq + 1 }),
        None if prev.hash != upto.hash => Err(Tamper::Changed { seq: upto.seq }),
        None => Ok(()),
    })
}

/// The chain checked as a log is read, one stored event after another: the same checks as
/// [`verify`], for every reader that folds the log (an open, a rebuild), so that nothing is
/// folded from a chain that does not hold. Feed it every stored event from the first, in the
/// order the log lends them, then the stored head.
#[derive(Debug, Default)]
pub struct ChainCheck {
    prev: Option<Digest>,
    versions: permledger_domain::state::Hashed<OrgId, u64>,
}

impl ChainCheck {
    pub fn new() -> ChainCheck {
        ChainCheck::default()
    }

    /// The check resumed after event `last` (a checkpoint's position and link), each org at
    /// the version it had there: feed it the events after `last`.
    pub fn resume<'a>(
        last: Digest,
        versions: impl IntoIterator<Item = (&'a OrgId, u64)>,
    ) -> ChainCheck {
        ChainCheck {
            prev: (last.seq > 0).then_some(last),
            versions: versions
                .into_iter()
                .map(|(org, v)| (org.clone(), v))
                .collect(),
        }
    }

    /// The last event checked (the genesis link before the first).
    pub fn last(&self) -> Digest {
        self.prev.unwrap_or(Digest {
            seq: 0,
            hash: Hash::GENESIS,
        })
    }

    /// Checks the stored event at `seq` (its stored link, its bytes and those bytes decoded)
    /// against the chain so far, and answers its link.
    pub fn check(
        &mut self,
        seq: Seq,
        stored: &Hash,
        bytes: &[u8],
        event: &permledger_domain::Event,
    ) -> Result<Digest, Tamper> {
        let prev = self.last();
        let due = prev.seq + 1;
        if seq != due {
            return Err(Tamper::Missing { seq: due });
        }
        let hash = link(&prev.hash, seq, bytes);
        if hash != *stored {
            return Err(Tamper::Changed { seq });
        }
        if event.meta.seq != seq {
            return Err(Tamper::Misplaced {
                seq,
                recorded_as: event.meta.seq,
            });
        }
        // One probe of the org's version per event (a known org is the common case).
        let org = &event.meta.org;
        let found = event.meta.org_version;
        let version = self.versions.get_mut(org);
        let expected = version.as_ref().map_or(1, |v| **v + 1);
        if found != expected {
            return Err(Tamper::OrgVersion {
                seq,
                org: org.clone(),
                expected,
                found,
            });
        }
        match version {
            Some(v) => *v = found,
            None => {
                self.versions.insert(org.clone(), found);
            }
        }
        let here = Digest { seq, hash };
        self.prev = Some(here);
        Ok(here)
    }

    /// After the last stored event: the head the store keeps must name it, link included.
    pub fn end(&self, stored_head: Digest) -> Result<(), Tamper> {
        let last = self.last();
        if stored_head.seq > last.seq {
            return Err(Tamper::Truncated {
                after: last.seq,
                head: stored_head.seq,
            });
        }
        if stored_head.seq < last.seq {
            return Err(Tamper::BeyondHead {
                head: stored_head.seq,
                last: last.seq,
            });
        }
        if stored_head.hash != last.hash {
            return Err(Tamper::HeadMismatch { seq: last.seq });
        }
        Ok(())
    }
}
