//! The hash chain: each event's hash covers the previous hash, its sequence number and its stored
//! bytes, so changing, removing, reordering or inserting any event breaks every link after it.
//! BLAKE3 (docs/decisions/0002-hash-chain.md): fast in software, 256-bit, one dependency.

use std::fmt;

use permledger_domain::Seq;
use serde::{Deserialize, Serialize};

/// A 32-byte BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The link before the first event.
    pub const GENESIS: Hash = Hash([0; 32]);

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        let bytes = hex::decode(s).ok()?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Hash(arr))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

/// The link of event `seq` with stored bytes `bytes`, following `prev`.
pub fn link(prev: &Hash, seq: Seq, bytes: &[u8]) -> Hash {
    // The fixed-size head in one update: the same bytes, fewer calls into the hasher.
    const LABEL: &[u8] = b"permledger/v1";
    let mut head = [0u8; LABEL.len() + 32 + 8 + 8];
    head[..LABEL.len()].copy_from_slice(LABEL);
    head[LABEL.len()..LABEL.len() + 32].copy_from_slice(&prev.0);
    head[LABEL.len() + 32..LABEL.len() + 40].copy_from_slice(&seq.to_be_bytes());
    head[LABEL.len() + 40..].copy_from_slice(&(bytes.len() as u64).to_be_bytes());
    let mut h = blake3::Hasher::new();
    h.update(&head);
    h.update(bytes);
    Hash(*h.finalize().as_bytes())
}

/// The head of a log, for keeping outside the system: verify proves the log still extends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub seq: Seq,
    pub hash: Hash,
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Digest, String> {
        let bad = || format!("digest `{s}` is not `SEQ:HASH` (a number, a colon, 64 hex digits)");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        Ok(Digest {
            seq: seq.parse().map_err(|_| bad())?,
            hash: Hash::from_hex(hash).ok_or_else(bad)?,
        })
    }
}
