//! The export file: the whole log as JSON Lines. Each line holds an event's position, its chain
//! link, its stored bytes (hex: what the link covers) and the event decoded for people; the
//! last line is the digest the file covers, signed with the ledger's key.
//!
//! Reading one back checks everything before anything is written: every link, every event's
//! readable copy against its bytes (an edited `meta.reason` is named, field and event, and
//! refused: a file that says one thing to people and another to the chain is evidence of
//! tampering, so it is not silently repaired), and the closing digest, its signature, and that
//! it names the file's last link (a file cut short lacks it).

use std::io::BufRead;

use permledger_domain::{Event, Seq};
use serde::{Deserialize, Serialize};

use crate::chain::{link, Digest, Hash};
use crate::sign::{PublicKey, SignatureProblem, SignedDigest};

/// One event's line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLine {
    seq: Seq,
    hash: String,
    bytes: String,
    /// The event for people (the first version's exports had none).
    #[serde(default)]
    event: serde_json::Value,
}

/// The closing line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    covers: SignedDigest,
}

/// The line of one stored event.
pub fn event_line(seq: Seq, hash: Hash, bytes: &[u8], event: &Event) -> String {
    let line = EventLine {
        seq,
        hash: hash.to_hex(),
        bytes: hex::encode(bytes),
        event: serde_json::to_value(event).unwrap_or(serde_json::Value::Null),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The closing line: the digest the file covers, signed.
pub fn end_line(covers: &SignedDigest) -> String {
    serde_json::to_string(&EndLine {
        covers: covers.clone(),
    })
    .unwrap_or_default()
}

/// Why a file is refused; each names the line, and the event where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("line {line} cannot be read: {reason}")]
    Unreadable { line: usize, reason: String },
    #[error("line {line} is not an exported event: {reason}")]
    NotAnEvent { line: usize, reason: String },
    #[error("line {line}: event {found} where {due} was due: the file is not a whole log")]
    OutOfOrder { line: usize, found: Seq, due: Seq },
    #[error("line {line}: event {seq}'s `bytes` is not hex")]
    NotHex { line: usize, seq: Seq },
    #[error("line {line}: event {seq} does not link the chain: its bytes or link were altered")]
    Unlinked { line: usize, seq: Seq },
    #[error("line {line}: event {seq}'s stored bytes do not decode: {reason}")]
    Undecodable {
        line: usize,
        seq: Seq,
        reason: String,
    },
    #[error("line {line}: the event inside is recorded as {inside}, not {seq}")]
    Misplaced { line: usize, seq: Seq, inside: Seq },
    #[error(
        "line {line}: event {seq}'s readable `{field}` says {readable} but its stored bytes say \
         {stored}: the file was edited"
    )]
    Edited {
        line: usize,
        seq: Seq,
        field: String,
        readable: String,
        stored: String,
    },
    #[error(
        "the file ends without the signed digest an export closes with: it was cut short, or \
         written by a permledger that did not sign its exports"
    )]
    Unclosed,
    #[error("line {line}: the closing digest {stated} is not the file's last link {last}")]
    EndMismatch {
        line: usize,
        stated: String,
        last: Digest,
    },
    #[error("line {line}: the closing digest {problem}")]
    EndSignature {
        line: usize,
        problem: SignatureProblem,
    },
    #[error("line {line}: there is more after the closing digest")]
    AfterEnd { line: usize },
}

/// A file read whole and found sound.
#[derive(Debug)]
pub struct Imported {
    /// Each event with its stored bytes, in order.
    pub events: Vec<(Event, Vec<u8>)>,
    /// The last link.
    pub head: Digest,
    /// The closing statement, its signature checked (absent only from a file read `BytesOnly`
    /// that has none).
    pub covers: Option<SignedDigest>,
}

/// How much of a file must hold.
#[derive(Debug, Clone, Copy)]
pub enum Check<'k> {
    /// Everything: links, readable copies, the closing signed digest. Its signature must be
    /// `trusted`'s when given, else the key it names (the file is then consistent, not yet
    /// proven to be a given ledger's).
    Whole { trusted: Option<&'k PublicKey> },
    /// The links and bytes only: the readable copies are ignored and the closing digest may be
    /// absent (checked when present), for exports written before exports were signed, whose
    /// readable copies an older permledger wrote.
    BytesOnly,
}

/// Reads an export file, checking what `check` asks.
pub fn read_export(reader: impl BufRead, check: Check<'_>) -> Result<Imported, ImportError> {
    let (trusted, whole) = match check {
        Check::Whole { trusted } => (trusted, true),
        Check::BytesOnly => (None, false),
    };
    let mut prev = Hash::GENESIS;
    let mut events: Vec<(Event, Vec<u8>)> = Vec::new();
    let mut end: Option<(usize, SignedDigest)> = None;
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| ImportError::Unreadable {
            line: n,
            reason: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(ImportError::AfterEnd { line: n });
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| ImportError::NotAnEvent {
                line: n,
                reason: e.to_string(),
            })?;
        if value.get("covers").is_some() {
            let closing: EndLine =
                serde_json::from_value(value).map_err(|e| ImportError::NotAnEvent {
                    line: n,
                    reason: format!("a closing line that does not read: {e}"),
                })?;
            end = Some((n, closing.covers));
            continue;
        }
        let l: EventLine = serde_json::from_value(value).map_err(|e| ImportError::NotAnEvent {
            line: n,
            reason: e.to_string(),
        })?;
        let due = events.len() as Seq + 1;
        if l.seq != due {
            return Err(ImportError::OutOfOrder {
                line: n,
                found: l.seq,
                due,
            });
        }
        let bytes = hex::decode(&l.bytes).map_err(|_| ImportError::NotHex {
            line: n,
            seq: l.seq,
        })?;
        let hash = link(&prev, l.seq, &bytes);
        if hash.to_hex() != l.hash {
            return Err(ImportError::Unlinked {
                line: n,
                seq: l.seq,
            });
        }
        let event = crate::envelope::decode(&bytes).map_err(|e| ImportError::Undecodable {
            line: n,
            seq: l.seq,
            reason: e.to_string(),
        })?;
        if event.meta.seq != l.seq {
            return Err(ImportError::Misplaced {
                line: n,
                seq: l.seq,
                inside: event.meta.seq,
            });
        }
        let stored = serde_json::to_value(&event).map_err(|e| ImportError::Undecodable {
            line: n,
            seq: l.seq,
            reason: e.to_string(),
        })?;
        if let Some((field, readable, stored)) = difference(&l.event, &stored, "").filter(|_| whole)
        {
            return Err(ImportError::Edited {
                line: n,
                seq: l.seq,
                field,
                readable,
                stored,
            });
        }
        prev = hash;
        events.push((event, bytes));
    }
    let head = Digest {
        seq: events.len() as Seq,
        hash: prev,
    };
    let Some((line, covers)) = end else {
        return match whole {
            true => Err(ImportError::Unclosed),
            false => Ok(Imported {
                events,
                head,
                covers: None,
            }),
        };
    };
    let stated = covers
        .digest()
        .map_err(|problem| ImportError::EndSignature { line, problem })?;
    if stated != head {
        return Err(ImportError::EndMismatch {
            line,
            stated: stated.to_string(),
            last: head,
        });
    }
    covers
        .check(trusted.unwrap_or(&covers.key))
        .map_err(|problem| ImportError::EndSignature { line, problem })?;
    Ok(Imported {
        events,
        head,
        covers: Some(covers),
    })
}

/// The first place where the readable copy differs from the stored event: its path (`meta.reason`,
/// `payload.roles[1]`), and both values as JSON.
fn difference(
    readable: &serde_json::Value,
    stored: &serde_json::Value,
    at: &str,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    let here = |p: &str| {
        if at.is_empty() {
            p.to_string()
        } else {
            format!("{at}.{p}")
        }
    };
    match (readable, stored) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                let av = a.get(k).unwrap_or(&Value::Null);
                if let Some(d) = difference(av, bv, &here(k)) {
                    return Some(d);
                }
            }
            a.iter()
                .find(|(k, _)| !b.contains_key(*k))
                .map(|(k, v)| (here(k), v.to_string(), "nothing".to_string()))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| difference(x, y, &format!("{at}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some((
            if at.is_empty() {
                "event".to_string()
            } else {
                at.to_string()
            },
            a.to_string(),
            b.to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::difference;
    use serde_json::json;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let stored = json!({"meta": {"seq": 3, "reason": null}, "payload": {"roles": ["a", "b"]}});
        assert_eq!(difference(&stored, &stored, ""), None);
        let edited = json!({"meta": {"seq": 3, "reason": "approved by CFO"}, "payload": {"roles": ["a", "b"]}});
        assert_eq!(
            difference(&edited, &stored, ""),
            Some((
                "meta.reason".into(),
                "\"approved by CFO\"".into(),
                "null".into()
            ))
        );
        let added =
            json!({"meta": {"seq": 3, "reason": null, "x": 1}, "payload": {"roles": ["a", "b"]}});
        assert_eq!(difference(&added, &stored, "").unwrap().0, "meta.x");
        let swapped = json!({"meta": {"seq": 3, "reason": null}, "payload": {"roles": ["b", "a"]}});
        assert_eq!(
            difference(&swapped, &stored, "").unwrap().0,
            "payload.roles[0]"
        );
    }
}
