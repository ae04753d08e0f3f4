//! The versioned envelope every stored event travels in. bincode is not self-describing, so the
//! envelope names the event type and its schema version, and an older version is upcast to the
//! current one before typed decoding. The bincode version (=2.0.1) and configuration are pinned.
//!
//! Layout: one format byte, then bincode of the envelope's fields: the event type's name, its
//! schema version, the meta, and the payload (bincode of the event type's own struct) as its
//! length and its bytes. Adding an event type never changes another's bytes.
//!
//! Formats: 1, the first, whose meta ends at the request id; 2 (written today), whose meta adds
//! the principal that submitted the command and the event it follows from. Every format stays
//! readable: a format-1 event reads with neither.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use permledger_domain::event::*;
use permledger_domain::{Event, EventMeta, EventPayload, OrgId, Seq, Timestamp, UserId};
use serde::{Deserialize, Serialize};

/// The first byte of every envelope written today.
pub const ENVELOPE_FORMAT: u8 = 2;

/// The first format, still read.
pub const ENVELOPE_FORMAT_V1: u8 = 1;

/// The schema version every event type is written at today.
pub const CURRENT_SCHEMA: u16 = 1;

/// Largest envelope accepted when decoding: corrupt lengths must not allocate wildly.
const MAX_ENVELOPE: usize = 16 * 1024 * 1024;

/// bincode's standard configuration, spelled out so that a default changing upstream changes nothing here.
pub const CONFIG: Configuration<LittleEndian, Varint, Limit<MAX_ENVELOPE>> =
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_ENVELOPE>();

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("envelope is empty")]
    Empty,
    #[error("envelope format `{0}` is unknown")]
    Format(u8),
    #[error("envelope does not decode: {0}")]
    Envelope(String),
    #[error("event type `{0}` is unknown")]
    UnknownType(String),
    #[error("event type `{event_type}` has no schema version `{schema}` this build can read")]
    UnknownSchema { event_type: String, schema: u16 },
    #[error("payload of `{event_type}` does not decode: {reason}")]
    Payload { event_type: String, reason: String },
    #[error("event does not encode: {0}")]
    Encode(String),
}

/// The meta of format 1, in its order on the wire.
#[derive(Serialize, Deserialize)]
struct MetaV1 {
    seq: Seq,
    org: OrgId,
    org_version: u64,
    event_id: uuid::Uuid,
    recorded_at: Timestamp,
    actor: UserId,
    reason: Option<String>,
    request_id: Option<String>,
}

/// The principal on the wire: bincode reads enums by variant index, not by tag.
#[derive(Serialize, Deserialize)]
enum WirePrincipal {
    Local,
    Token { id: String, name: Option<String> },
}

/// The meta of format 2: format 1's, then the principal and the cause.
#[derive(Serialize, Deserialize)]
struct MetaV2 {
    v1: MetaV1,
    principal: Option<WirePrincipal>,
    cause: Option<Seq>,
}

impl MetaV2 {
    fn of(m: &EventMeta) -> MetaV2 {
        MetaV2 {
            v1: MetaV1 {
                seq: m.seq,
                org: m.org.clone(),
                org_version: m.org_version,
                event_id: m.event_id,
                recorded_at: m.recorded_at,
                actor: m.actor.clone(),
                reason: m.reason.clone(),
                request_id: m.request_id.clone(),
            },
            principal: m.principal.as_ref().map(|p| match p {
                Principal::Local => WirePrincipal::Local,
                Principal::Token { id, name } => WirePrincipal::Token {
                    id: id.clone(),
                    name: name.clone(),
                },
            }),
            cause: m.cause,
        }
    }

    fn into_meta(self) -> EventMeta {
        let MetaV1 {
            seq,
            org,
            org_version,
            event_id,
            recorded_at,
            actor,
            reason,
            request_id,
        } = self.v1;
        EventMeta {
            seq,
            org,
            org_version,
            event_id,
            recorded_at,
            actor,
            reason,
            request_id,
            principal: self.principal.map(|p| match p {
                WirePrincipal::Local => Principal::Local,
                WirePrincipal::Token { id, name } => Principal::Token { id, name },
            }),
            cause: self.cause,
        }
    }
}

/// The envelope's fields, in their order on the wire, for a format whose meta is `M`. Encoding
/// writes them from borrows (`seal`), decoding reads the type name and the payload in place:
/// bincode frames neither a struct nor its fields, and writes a byte sequence as its length and
/// its bytes.
#[derive(Deserialize)]
struct EnvelopeRef<'a, M> {
    event_type: &'a str,
    schema: u16,
    meta: M,
    payload: &'a [u8],
}

/// Room for a typical payload, so that encoding one rarely grows its buffer.
const PAYLOAD_ROOM: usize = 128;
/// Room for the format byte, a type name, the schema and a typical meta.
const HEADER_ROOM: usize = 160;

fn payload_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(PAYLOAD_ROOM);
    write(value, &mut out)?;
    Ok(out)
}

fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, CONFIG)
        .map(|_| ())
        .map_err(|e| CodecError::Encode(e.to_string()))
}

/// Encodes an event into its stored bytes.
pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    macro_rules! arm {
        ($variant:ident, $ty:ty, $name:literal) => {
            if let EventPayload::$variant(inner) = &event.payload {
                return seal($name, &payload_bytes(inner)?, &event.meta);
            }
        };
    }
    permledger_domain::for_each_event_type!(arm);
    Err(CodecError::UnknownType(
        event.payload.type_name().to_string(),
    ))
}

/// The format byte, then the envelope's fields from borrows: the type name, the schema, the meta,
/// and the payload as its length and its bytes, copied at once (serde would hand bincode a byte
/// at a time). The golden log pins these bytes.
fn seal(event_type: &str, payload: &[u8], meta: &EventMeta) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(HEADER_ROOM + payload.len());
    out.push(ENVELOPE_FORMAT);
    write(&(event_type, CURRENT_SCHEMA, MetaV2::of(meta)), &mut out)?;
    write(&(payload.len() as u64), &mut out)?;
    out.extend_from_slice(payload);
    Ok(out)
}

/// The envelope of stored bytes, its type name and payload still in them, its meta read as its
/// format wrote it.
fn open(bytes: &[u8]) -> Result<EnvelopeRef<'_, EventMeta>, CodecError> {
    let (&format, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    match format {
        ENVELOPE_FORMAT => open_as::<MetaV2>(rest, MetaV2::into_meta),
        ENVELOPE_FORMAT_V1 => open_as::<MetaV1>(rest, |v1| {
            MetaV2 {
                v1,
                principal: None,
                cause: None,
            }
            .into_meta()
        }),
        other => Err(CodecError::Format(other)),
    }
}

fn open_as<'a, M: Deserialize<'a>>(
    rest: &'a [u8],
    meta: impl FnOnce(M) -> EventMeta,
) -> Result<EnvelopeRef<'a, EventMeta>, CodecError> {
    let (env, used): (EnvelopeRef<'a, M>, usize) =
        bincode::serde::borrow_decode_from_slice(rest, CONFIG)
            .map_err(|e| CodecError::Envelope(e.to_string()))?;
    if used != rest.len() {
        return Err(CodecError::Envelope(format!(
            "{} trailing bytes",
            rest.len() - used
        )));
    }
    Ok(EnvelopeRef {
        event_type: env.event_type,
        schema: env.schema,
        meta: meta(env.meta),
        payload: env.payload,
    })
}

/// Decodes stored bytes, upcasting older schema versions first.
pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
    let env = open(bytes)?;
    let payload = upcast(env.event_type, env.schema, env.payload)?;
    let event_type = env.event_type;
    let fail = |reason: String| CodecError::Payload {
        event_type: event_type.to_string(),
        reason,
    };
    macro_rules! arm {
        ($variant:ident, $ty:ty, $name:literal) => {
            if event_type == $name {
                // Borrowing: an id is read from the bytes where they lie, where the owning
                // decoder allocated a `String` for every one and freed it again.
                let (inner, used): ($ty, usize) =
                    bincode::serde::borrow_decode_from_slice(&payload, CONFIG)
                        .map_err(|e| fail(e.to_string()))?;
                if used != payload.len() {
                    return Err(fail(format!("{} trailing bytes", payload.len() - used)));
                }
                return Ok(Event {
                    meta: env.meta,
                    payload: EventPayload::$variant(inner),
                });
            }
        };
    }
    permledger_domain::for_each_event_type!(arm);
    Err(CodecError::UnknownType(event_type.to_string()))
}

/// Brings a payload written at an older schema version up to `CURRENT_SCHEMA`, one step at a
/// time. Every event type is at its first version today, so the chain has no steps yet; when a
/// type changes, its old struct is kept here, decoded, and converted (cqrs-es's upcasters).
fn upcast<'a>(
    event_type: &str,
    schema: u16,
    payload: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, CodecError> {
    match schema {
        CURRENT_SCHEMA => Ok(std::borrow::Cow::Borrowed(payload)),
        _ => Err(CodecError::UnknownSchema {
            event_type: event_type.to_string(),
            schema,
        }),
    }
}

/// Every event type at its schema version, for a golden-log test to prove that each is covered.
pub fn schema_table() -> Vec<(&'static str, u16)> {
    EventPayload::TYPE_NAMES
        .iter()
        .map(|n| (*n, CURRENT_SCHEMA))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use permledger_domain::testkit::{TestLedger, ACME_WITH_MODERATOR};
    use permledger_domain::{Timestamp, UserId};

    /// The payload read as `decode` did before it borrowed the payload's ids: the reference.
    fn by_bincode(bytes: &[u8]) -> Result<Event, CodecError> {
        let env = open(bytes)?;
        let payload = upcast(env.event_type, env.schema, env.payload)?;
        let fail = |reason: String| CodecError::Payload {
            event_type: env.event_type.to_string(),
            reason,
        };
        macro_rules! arm {
            ($variant:ident, $ty:ty, $name:literal) => {
                if env.event_type == $name {
                    let (inner, used): ($ty, usize) =
                        bincode::serde::decode_from_slice(&payload, CONFIG)
                            .map_err(|e| fail(e.to_string()))?;
                    if used != payload.len() {
                        return Err(fail("trailing bytes".into()));
                    }
                    return Ok(Event {
                        meta: env.meta,
                        payload: EventPayload::$variant(inner),
                    });
                }
            };
        }
        permledger_domain::for_each_event_type!(arm);
        Err(CodecError::UnknownType(env.event_type.to_string()))
    }

    /// Events of a short story, with metas stretched to every varint width, long and
    /// non-ASCII ids, times before 1970, and reasons and request ids present.
    fn events() -> Vec<Event> {
        let l = TestLedger::from_story(
            &[
                &ACME_WITH_MODERATOR[..],
                &[
            (
                "ann",
                r#"{"type":"grant","org":"acme","user":"mo","scope":"inbox:billing","permission":"inbox.thread.reply"}"#,
            ),
                ],
            ]
            .concat(),
        );
        let widths = [0, 250, 251, 65_535, 65_536, u32::MAX as u64 + 1, u64::MAX];
        let times = [0, 1, -1, i64::MIN, i64::MAX, 1_772_355_600_000_000];
        let mut out = Vec::new();
        for (i, e) in l.events.iter().enumerate() {
            for (j, w) in widths.iter().enumerate() {
                let mut e = e.clone();
                e.meta.seq = *w;
                e.meta.org_version = widths[(i + j) % widths.len()];
                e.meta.recorded_at = Timestamp::from_micros(times[(i + j) % times.len()]);
                if j % 2 == 1 {
                    e.meta.actor = UserId::new(format!("ünïcode-{}", "x".repeat(20 * j))).unwrap();
                    e.meta.reason = Some("moved to the night shift".repeat(j));
                }
                if j % 3 == 1 {
                    e.meta.request_id = Some(format!("req-{j}"));
                }
                e.meta.principal = match j % 4 {
                    0 => None,
                    1 => Some(Principal::Local),
                    2 => Some(Principal::Token {
                        id: format!("tok-{j}"),
                        name: None,
                    }),
                    _ => Some(Principal::Token {
                        id: "0193a1b2-0000-7000-8000-000000000000".into(),
                        name: Some("support-bot ✓".into()),
                    }),
                };
                e.meta.cause = (j % 2 == 0).then_some(widths[(i + 2 * j) % widths.len()]);
                out.push(e);
            }
        }
        out
    }

    #[test]
    fn the_borrowing_decoder_reads_what_the_owning_one_read() {
        for e in events() {
            let bytes = encode(&e).unwrap();
            assert_eq!(by_bincode(&bytes).unwrap(), e);
            assert_eq!(decode(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn a_cut_or_corrupt_envelope_is_refused_as_the_owning_decoder_refused_it_never_a_panic() {
        for e in events().iter().step_by(3) {
            let bytes = encode(e).unwrap();
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} decoded");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(
                decode(&longer).unwrap_err(),
                CodecError::Envelope("1 trailing bytes".into())
            );
            // Every byte flipped in turn, five ways: both readers take it for the same event,
            // or both refuse it.
            for i in 1..bytes.len() {
                for flip in [0x01u8, 0x02, 0x80, 0xff, 0x07] {
                    let mut bad = bytes.clone();
                    bad[i] ^= flip;
                    assert_eq!(
                        decode(&bad).ok(),
                        by_bincode(&bad).ok(),
                        "byte {i} ^ {flip:#x} of {}",
                        e.payload.type_name()
                    );
                }
            }
        }
        assert_eq!(decode(&[]).unwrap_err(), CodecError::Empty);
        assert_eq!(decode(&[9]).unwrap_err(), CodecError::Format(9));
    }
}
