//! The ledger's signing key and its signed digests.
//!
//! A digest (`SEQ:HASH`) names what the log held up to an event. Signed with the ledger's
//! Ed25519 key, together with the time it was stated, it becomes a statement anyone holding the
//! public key can check later, wherever it was kept: a witness file on another system, a ticket,
//! the last line of an export. A log rewritten after the statement no longer extends it; a
//! statement forged without the key does not verify. The key lives in the data folder beside
//! the log, never in it (docs/decisions/0009-signed-digests.md).

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use permledger_domain::{Seq, Timestamp};
use serde::{Deserialize, Serialize};

use crate::chain::{Digest, Hash};

/// The file in a data folder that holds the ledger's secret key (hex, read by its owner only).
pub const KEY_FILE: &str = "signing.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the signing key `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the signing key `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the signing key `{path}` is not 64 hex digits: it was altered or is not a permledger key"
    )]
    Malformed { path: String },
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// The ledger's secret key.
pub struct LedgerKey(SigningKey);

impl fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerKey({})", self.public())
    }
}

impl LedgerKey {
    /// A new key from the system's random source.
    pub fn generate() -> Result<LedgerKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(LedgerKey(SigningKey::from_bytes(&seed)))
    }

    /// The key of a known seed: for fixtures that must be the same at every run (its secret is
    /// then public, so it proves nothing outside them).
    pub fn from_seed(seed: [u8; 32]) -> LedgerKey {
        LedgerKey(SigningKey::from_bytes(&seed))
    }

    /// The key kept at `path`, or None when there is none.
    pub fn load(path: &Path) -> Result<Option<LedgerKey>, KeyError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KeyError::Read {
                    path: shown,
                    source,
                })
            }
        };
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(KeyError::Malformed { path: shown })?;
        Ok(Some(LedgerKey(SigningKey::from_bytes(&seed))))
    }

    /// The key kept at `path`, made and kept there first if there is none. The file is created
    /// new (never overwriting one another process wrote meanwhile), readable by its owner only,
    /// and synced before the key is used.
    pub fn load_or_create(path: &Path) -> Result<LedgerKey, KeyError> {
        if let Some(key) = LedgerKey::load(path)? {
            return Ok(key);
        }
        let key = LedgerKey::generate()?;
        let write = |key: &LedgerKey| -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path)?;
            writeln!(file, "{}", hex::encode(key.0.to_bytes()))?;
            file.sync_all()
        };
        match write(&key) {
            Ok(()) => Ok(key),
            // Another process made it first: theirs is the ledger's.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => LedgerKey::load(path)?
                .ok_or_else(|| KeyError::Malformed {
                    path: path.display().to_string(),
                }),
            Err(source) => Err(KeyError::Write {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// States, signed, that the log held `digest` at `time`.
    pub fn sign(&self, digest: Digest, time: Timestamp) -> SignedDigest {
        let signature = self.0.sign(statement(digest, time).as_bytes());
        SignedDigest {
            seq: digest.seq,
            hash: digest.hash.to_hex(),
            time,
            key: self.public(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// A ledger's public key, written `ed25519:` and 64 hex digits: the compressed point, checked
/// to be one when read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = String;
    fn from_str(s: &str) -> Result<PublicKey, String> {
        let bad = || {
            format!("public key `{s}` is not `ed25519:` and 64 hex digits (as `permledger key show` prints it)")
        };
        let hex_part = s.trim().strip_prefix("ed25519:").ok_or_else(bad)?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        VerifyingKey::from_bytes(&bytes)
            .map(|_| PublicKey(bytes))
            .map_err(|_| {
                format!("public key `{s}` is not a point of the curve: it is no Ed25519 key")
            })
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The text a signature covers: the digest and the time it was stated, under a label that
/// keeps a signature of anything else from passing for one.
fn statement(digest: Digest, time: Timestamp) -> String {
    format!("permledger signed digest v1\n{digest}\n{}", time.micros())
}

/// A digest the ledger stated and signed: one JSON object, one line of a witness file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedDigest {
    pub seq: Seq,
    /// The chain link of event `seq` (64 hex digits).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// When the ledger stated it.
    pub time: Timestamp,
    /// The key that signed it (`permledger key show` prints the ledger's).
    #[schema(value_type = String, pattern = "^ed25519:[0-9a-f]{64}$")]
    pub key: PublicKey,
    /// Ed25519 over the text `permledger signed digest v1`, `SEQ:HASH` and the time in
    /// microseconds since the epoch, each on its own line (128 hex digits).
    #[schema(pattern = "^[0-9a-f]{128}$")]
    pub signature: String,
}

/// Why a signed digest does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("it was signed by {signed_by}, not by the trusted key {trusted}")]
    OtherKey {
        signed_by: PublicKey,
        trusted: PublicKey,
    },
    #[error("its signature does not verify: its digest, time or signature was altered")]
    Invalid,
    #[error("its hash `{0}` is not 64 hex digits")]
    BadHash(String),
}

impl SignedDigest {
    /// The digest stated, once its hash reads.
    pub fn digest(&self) -> Result<Digest, SignatureProblem> {
        let hash = Hash::from_hex(&self.hash)
            .ok_or_else(|| SignatureProblem::BadHash(self.hash.clone()))?;
        Ok(Digest {
            seq: self.seq,
            hash,
        })
    }

    /// Checks the signature, with the key it names, and that this key is the one trusted.
    pub fn check(&self, trusted: &PublicKey) -> Result<Digest, SignatureProblem> {
        if self.key != *trusted {
            return Err(SignatureProblem::OtherKey {
                signed_by: self.key,
                trusted: *trusted,
            });
        }
        let digest = self.digest()?;
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignatureProblem::Invalid)?;
        VerifyingKey::from_bytes(&self.key.0)
            .map_err(|_| SignatureProblem::Invalid)?
            .verify_strict(
                statement(digest, self.time).as_bytes(),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| SignatureProblem::Invalid)?;
        Ok(digest)
    }
}

impl fmt::Display for SignedDigest {
    /// One line of JSON, as a witness file holds it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest {
            seq: 7,
            hash: crate::chain::link(&Hash::GENESIS, 7, b"x"),
        }
    }

    #[test]
    fn a_signed_digest_checks_with_its_key_and_no_other() {
        let key = LedgerKey::generate().unwrap();
        let other = LedgerKey::generate().unwrap();
        let t = Timestamp::from_micros(1_767_225_600_000_000);
        let signed = key.sign(digest(), t);
        assert_eq!(signed.check(&key.public()), Ok(digest()));
        assert_eq!(
            signed.check(&other.public()),
            Err(SignatureProblem::OtherKey {
                signed_by: key.public(),
                trusted: other.public()
            })
        );
        // A line read back from JSON checks the same.
        let back: SignedDigest = serde_json::from_str(&signed.to_string()).unwrap();
        assert_eq!(back, signed);
        // Any field changed breaks the signature.
        for altered in [
            SignedDigest {
                seq: 8,
                ..signed.clone()
            },
            SignedDigest {
                time: Timestamp::from_micros(t.micros() + 1),
                ..signed.clone()
            },
            SignedDigest {
                hash: crate::chain::link(&Hash::GENESIS, 7, b"y").to_hex(),
                ..signed.clone()
            },
        ] {
            assert_eq!(altered.check(&key.public()), Err(SignatureProblem::Invalid));
        }
        // A forger who swaps in their own key is caught by the trusted key.
        let forged = other.sign(digest(), t);
        assert!(matches!(
            forged.check(&key.public()),
            Err(SignatureProblem::OtherKey { .. })
        ));
    }

    #[test]
    fn a_key_is_kept_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        assert!(LedgerKey::load(&path).unwrap().is_none());
        let made = LedgerKey::load_or_create(&path).unwrap();
        let again = LedgerKey::load_or_create(&path).unwrap();
        assert_eq!(made.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only its owner reads the key");
        }
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(
            LedgerKey::load(&path),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn public_keys_read_as_written_and_refuse_what_is_not_one() {
        let key = LedgerKey::generate().unwrap();
        let shown = key.public().to_string();
        assert!(shown.starts_with("ed25519:") && shown.len() == 8 + 64);
        assert_eq!(shown.parse::<PublicKey>(), Ok(key.public()));
        assert!("ed25519:zz"
            .parse::<PublicKey>()
            .unwrap_err()
            .contains("64 hex digits"));
        assert!(hex::encode([0u8; 32]).parse::<PublicKey>().is_err());
    }
}
