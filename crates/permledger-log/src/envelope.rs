//! The versioned envelope every stored event travels in. bincode is not self-describing, so the
//! envelope names the event type and its schema version, and an older version is upcast to the
//! current one before typed decoding. The bincode version (=2.0.1) and configuration are pinned.
//!
//! Layout: one format byte (`ENVELOPE_FORMAT`), then bincode of `EnvelopeV1`, whose `payload` is
//! bincode of the event type's own struct. Adding an event type never changes another's bytes.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use permledger_domain::event::*;
use permledger_domain::{Event, EventMeta, EventPayload};
use serde::{Deserialize, Serialize};

/// The first byte of every stored envelope.
pub const ENVELOPE_FORMAT: u8 = 1;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnvelopeV1 {
    event_type: String,
    schema: u16,
    meta: EventMeta,
    payload: Vec<u8>,
}

/// `EnvelopeV1` as decoding reads it: the type name and the payload borrowed from the stored
/// bytes (the same wire format: bincode writes a `Vec<u8>` as its length and its bytes).
#[derive(Deserialize)]
struct EnvelopeV1Ref<'a> {
    event_type: &'a str,
    schema: u16,
    meta: EventMeta,
    payload: &'a [u8],
}

fn payload_bytes<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Encodes an event into its stored bytes.
pub fn encode(event: &Event) -> Result<Vec<u8>, CodecError> {
    macro_rules! arm {
        ($variant:ident, $ty:ty, $name:literal) => {
            if let EventPayload::$variant(inner) = &event.payload {
                return seal($name, payload_bytes(inner)?, &event.meta);
            }
        };
    }
    permledger_domain::for_each_event_type!(arm);
    Err(CodecError::UnknownType(
        event.payload.type_name().to_string(),
    ))
}

fn seal(event_type: &str, payload: Vec<u8>, meta: &EventMeta) -> Result<Vec<u8>, CodecError> {
    let env = EnvelopeV1 {
        event_type: event_type.to_string(),
        schema: CURRENT_SCHEMA,
        meta: meta.clone(),
        payload,
    };
    let mut out = vec![ENVELOPE_FORMAT];
    bincode::serde::encode_into_std_write(&env, &mut out, CONFIG)
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    Ok(out)
}

/// Decodes stored bytes, upcasting older schema versions first.
pub fn decode(bytes: &[u8]) -> Result<Event, CodecError> {
    let (&format, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if format != ENVELOPE_FORMAT {
        return Err(CodecError::Format(format));
    }
    let (env, used): (EnvelopeV1Ref<'_>, usize) =
        bincode::serde::borrow_decode_from_slice(rest, CONFIG)
            .map_err(|e| CodecError::Envelope(e.to_string()))?;
    if used != rest.len() {
        return Err(CodecError::Envelope(format!(
            "{} trailing bytes",
            rest.len() - used
        )));
    }
    let payload = upcast(env.event_type, env.schema, env.payload)?;
    let event_type = env.event_type;
    let fail = |reason: String| CodecError::Payload {
        event_type: event_type.to_string(),
        reason,
    };
    macro_rules! arm {
        ($variant:ident, $ty:ty, $name:literal) => {
            if event_type == $name {
                let (inner, used): ($ty, usize) =
                    bincode::serde::decode_from_slice(&payload, CONFIG)
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
