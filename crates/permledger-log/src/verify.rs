//! Verification: recompute every link from the first event (trusting nothing stored about the
//! chain) and report the first event that was changed, removed, reordered or inserted.

use std::collections::HashMap;
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
    /// The digest the log was proven to extend, when one was given.
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
        }
    }
}

/// Walks the whole log. `progress` is called with the number of events checked so far.
pub fn verify(
    log: &dyn EventLog,
    digest: Option<Digest>,
    mut progress: impl FnMut(u64),
) -> Result<Result<VerifyReport, Tamper>, LogError> {
    const PROGRESS_EVERY: u64 = 4096;
    let stored_head = log.head()?;
    let mut prev = Digest {
        seq: 0,
        hash: Hash::GENESIS,
    };
    let mut versions: HashMap<OrgId, u64> = HashMap::new();
    let mut extends = None;
    let mut tamper = None;
    log.scan(1, &mut |seq, stored, bytes| match check_link(
        &mut prev,
        &mut versions,
        digest,
        seq,
        stored,
        bytes,
    ) {
        Ok(extended) => {
            extends = extended.or(extends);
            if seq % PROGRESS_EVERY == 0 {
                progress(seq);
            }
            true
        }
        Err(t) => {
            tamper = Some(t);
            false
        }
    })?;
    if let Some(t) = tamper {
        return Ok(Err(t));
    }
    progress(prev.seq);
    if stored_head.seq > prev.seq {
        return Ok(Err(Tamper::Missing { seq: prev.seq + 1 }));
    }
    if let Some(d) = digest {
        if d.seq == 0 && d.hash != Hash::GENESIS {
            return Ok(Err(Tamper::DigestMismatch { seq: 0 }));
        }
        if d.seq > prev.seq {
            return Ok(Err(Tamper::DigestBeyondHead {
                digest_seq: d.seq,
                head: prev.seq,
            }));
        }
        extends = Some(d);
    }
    Ok(Ok(VerifyReport {
        events: prev.seq,
        head: prev,
        extends,
    }))
}

/// Checks the stored event at `seq` against the chain so far and moves `prev` on to it; answers
/// the digest when this is its position and it matches.
fn check_link(
    prev: &mut Digest,
    versions: &mut HashMap<OrgId, u64>,
    digest: Option<Digest>,
    seq: Seq,
    stored: &Hash,
    bytes: &[u8],
) -> Result<Option<Digest>, Tamper> {
    let due = prev.seq + 1;
    if seq != due {
        return Err(Tamper::Missing { seq: due });
    }
    let event = crate::envelope::decode(bytes).map_err(|e| Tamper::Undecodable {
        seq,
        reason: e.to_string(),
    })?;
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
    let v = versions.entry(event.meta.org.clone()).or_insert(0);
    if event.meta.org_version != *v + 1 {
        return Err(Tamper::OrgVersion {
            seq,
            org: event.meta.org.clone(),
            expected: *v + 1,
            found: event.meta.org_version,
        });
    }
    *v += 1;
    *prev = Digest { seq, hash };
    match digest.filter(|d| d.seq == seq) {
        Some(d) if d.hash != hash => Err(Tamper::DigestMismatch { seq }),
        found => Ok(found),
    }
}
