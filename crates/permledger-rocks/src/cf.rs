//! Column families and key layouts, in one place. Keys are big-endian and fixed-width where they
//! hold numbers, so that iteration order is sequence order.

/// seq (u64 BE) -> link hash (32 bytes) ++ envelope bytes.
pub const EVENTS: &str = "events";
/// org id ++ 0x00 ++ org version (u64 BE) -> seq (u64 BE). An org's last entry is its version.
pub const ORG_INDEX: &str = "org_index";
/// org id ++ 0x00 ++ idempotency key -> fingerprint (32) ++ first seq (u64 BE) ++ last seq (u64 BE).
pub const IDEMPOTENCY: &str = "idempotency";
/// Named values: `HEAD` and `LAYOUT`.
pub const META: &str = "meta";

pub const ALL: [&str; 4] = [EVENTS, ORG_INDEX, IDEMPOTENCY, META];

/// Layout 1 kept each org's version here too (org id -> org version, u64 BE), one more record
/// per event in every synced batch; its index already says the same. Opening a layout 1 folder
/// drops it.
pub const RETIRED_ORG_HEADS: &str = "org_heads";

/// meta key: last seq (u64 BE) ++ its link hash (32), written in every commit's batch.
pub const HEAD: &[u8] = b"head";
/// meta key: the layout version of this folder (u32 BE).
pub const LAYOUT: &[u8] = b"layout";
pub const LAYOUT_VERSION: u32 = 2;
/// The older layout this build still opens, bringing it up to `LAYOUT_VERSION` as it does.
pub const LAYOUT_WITH_ORG_HEADS: u32 = 1;

pub fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// What every org index key of `org` starts with: its id and the 0x00 after it.
pub fn org_index_prefix(org: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(org.len() + 9);
    k.extend_from_slice(org.as_bytes());
    k.push(0);
    k
}

pub fn org_index_key(org: &str, version: u64) -> Vec<u8> {
    let mut k = org_index_prefix(org);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

pub fn idempotency_key(org: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(org.len() + 1 + key.len());
    k.extend_from_slice(org.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The org id and key an idempotency entry's key names; `None` when it is malformed.
pub fn idempotency_key_parts(k: &[u8]) -> Option<(&str, &str)> {
    let split = k.iter().position(|b| *b == 0)?;
    let org = std::str::from_utf8(&k[..split]).ok()?;
    let key = std::str::from_utf8(&k[split + 1..]).ok()?;
    Some((org, key))
}

/// An idempotency entry's stored value read back; `None` when it is malformed.
pub fn idempotency_entry(v: &[u8]) -> Option<permledger_log::IdempotencyEntry> {
    let fingerprint: [u8; 32] = v.get(..32)?.try_into().ok()?;
    Some(permledger_log::IdempotencyEntry {
        fingerprint: permledger_log::Hash(fingerprint),
        first_seq: u64_at(v, 32)?,
        last_seq: u64_at(v, 40)?,
    })
}

pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}
