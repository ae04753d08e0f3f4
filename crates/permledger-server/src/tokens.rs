//! Bearer API tokens: bound to one org or to all, and to a role. Only a BLAKE3 hash of each secret
//! is stored (`tokens.json` in the data folder, replaced atomically on every change).
//!
//! A running server follows that file: `permledger token create` and `token revoke` take effect
//! within `FOLLOW_EVERY` without a restart. Every write renames a new file into place, so a change
//! is seen as a new inode (or size, or modification time); a file that cannot be read or parsed
//! leaves the tokens in force as they were, and says so in the log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use permledger_domain::OrgId;
use serde::{Deserialize, Serialize};

/// How often a server looks at its tokens file.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRole {
    /// Commands and every query: what product services use on every request.
    Service,
    /// Queries and the audit log only; never a command.
    Auditor,
    /// Everything, including the change feed of every org.
    Operator,
}

impl TokenRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Service => "service",
            TokenRole::Auditor => "auditor",
            TokenRole::Operator => "operator",
        }
    }
}

impl std::str::FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "service" => Ok(TokenRole::Service),
            "auditor" => Ok(TokenRole::Auditor),
            "operator" => Ok(TokenRole::Operator),
            _ => Err(format!(
                "token role `{s}` is not `service`, `auditor` or `operator`"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    /// BLAKE3 of the secret, in hex.
    pub hash: String,
    /// None: every org.
    pub org: Option<OrgId>,
    pub role: TokenRole,
    pub created_at: String,
    /// What the token is for, said by whoever made it ("billing service", "Ada's console").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The person the token is bound to: it reads as that person only, and acts as no one else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<permledger_domain::UserId>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read or write `{path}`: {reason}")]
    Io { path: String, reason: String },
    #[error("no token `{0}`; `permledger token list` shows the tokens there are")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
}

/// What identifies one version of the tokens file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        inode,
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// The tokens a server accepts, and the folder they are kept in (none for a fixed set). They are
/// found by the raw BLAKE3 digest of the secret, and lent as `Arc`s: a request costs one hash and
/// one probe, no hex and no copy of the record.
#[derive(Debug, Default)]
pub struct Tokens {
    by_hash: RwLock<HashMap<[u8; 32], Arc<TokenRecord>>>,
    source: Option<PathBuf>,
    seen: Mutex<Option<Stamp>>,
}

pub fn hash_secret(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

fn file(dir: &Path) -> PathBuf {
    dir.join("tokens.json")
}

/// The records by the digest their hex `hash` names; a record whose hash is not 64 hex digits
/// can match no secret and is left out.
fn index(records: Vec<TokenRecord>) -> HashMap<[u8; 32], Arc<TokenRecord>> {
    records
        .into_iter()
        .filter_map(|r| {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&r.hash, &mut digest).ok()?;
            Some((digest, Arc::new(r)))
        })
        .collect()
}

impl Tokens {
    /// A fixed set of tokens, followed from no file.
    pub fn from_records(records: Vec<TokenRecord>) -> Tokens {
        Tokens {
            by_hash: RwLock::new(index(records)),
            ..Tokens::default()
        }
    }

    /// The tokens stored in a data folder (none when the file is absent), followed by `reload`.
    pub fn load(dir: &Path) -> Result<Tokens, TokenError> {
        let path = file(dir);
        let seen = stamp(&path);
        Ok(Tokens {
            by_hash: RwLock::new(index(read(dir)?)),
            source: Some(dir.to_path_buf()),
            seen: Mutex::new(seen),
        })
    }

    /// The token a bearer secret stands for.
    pub fn verify(&self, secret: &str) -> Option<Arc<TokenRecord>> {
        self.by_digest(blake3::hash(secret.as_bytes()).as_bytes())
    }

    /// The token whose secret has this BLAKE3 digest, while it is in force: what a console
    /// session keeps instead of the secret, so that revoking the token ends the session.
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<Arc<TokenRecord>> {
        let by_hash = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
        by_hash.get(digest).cloned()
    }

    /// Reads the tokens file again if it changed since it was last read; true when it did. On an
    /// error the tokens in force stay as they were.
    pub fn reload(&self) -> Result<bool, TokenError> {
        let Some(dir) = &self.source else {
            return Ok(false);
        };
        let now = stamp(&file(dir));
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return Ok(false);
        }
        let records = read(dir)?;
        *self.by_hash.write().unwrap_or_else(|p| p.into_inner()) = index(records);
        *seen = now;
        Ok(true)
    }

    /// Follows the tokens file until `stopping` turns true.
    pub async fn follow(&self, mut stopping: tokio::sync::watch::Receiver<bool>) {
        if self.source.is_none() {
            return;
        }
        let mut every = tokio::time::interval(FOLLOW_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
            match self.reload() {
                Ok(true) => tracing::info!("tokens file changed; tokens reloaded"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "tokens not reloaded; the previous ones stay in force")
                }
            }
        }
    }
}

/// The tokens stored in a data folder, oldest first.
pub fn list(dir: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    read(dir)
}

fn read(dir: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    let path = file(dir);
    let err = |e: String| TokenError::Io {
        path: path.display().to_string(),
        reason: e,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Replaces the tokens file with `records`, atomically (a new file renamed into place).
fn write(dir: &Path, records: &[TokenRecord]) -> Result<(), TokenError> {
    let path = file(dir);
    let err = |e: String| TokenError::Io {
        path: path.display().to_string(),
        reason: e,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let tmp = dir.join("tokens.json.tmp");
    let text = serde_json::to_string_pretty(records).map_err(|e| err(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| err(e.to_string()))
}

/// What a new token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// None: every org.
    pub org: Option<OrgId>,
    pub role: TokenRole,
    pub name: Option<String>,
    /// The person it is bound to.
    pub user: Option<permledger_domain::UserId>,
}

/// The longest name a token may carry.
pub const MAX_TOKEN_NAME: usize = 100;

/// Creates a token, stores its hash, and returns the secret (shown once).
pub fn create(dir: &Path, new: NewToken) -> Result<(TokenRecord, String), TokenError> {
    let NewToken {
        org,
        role,
        name,
        user,
    } = new;
    if let Some(n) = &name {
        if n.trim().is_empty()
            || n.chars().count() > MAX_TOKEN_NAME
            || n.chars().any(char::is_control)
        {
            return Err(TokenError::Invalid(format!(
                "token name `{n}` must be 1 to {MAX_TOKEN_NAME} printable characters"
            )));
        }
    }
    let mut records = read(dir)?;
    let secret = format!(
        "plt_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let record = TokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        hash: hash_secret(&secret),
        org,
        role,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        name: name.map(|n| n.trim().to_string()),
        user,
    };
    records.push(record.clone());
    write(dir, &records)?;
    Ok((record, secret))
}

/// Revokes the token with this id: its record is removed, so no server accepts its secret again.
pub fn revoke(dir: &Path, id: &str) -> Result<TokenRecord, TokenError> {
    let mut records = read(dir)?;
    let i = records
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(|| TokenError::Unknown(id.to_string()))?;
    let gone = records.remove(i);
    write(dir, &records)?;
    Ok(gone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plain(org: Option<OrgId>, role: TokenRole) -> NewToken {
        NewToken {
            org,
            role,
            name: None,
            user: None,
        }
    }

    #[test]
    fn a_name_is_kept_and_a_bad_one_refused_with_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let named = NewToken {
            name: Some("  billing service ".into()),
            user: Some("ann".parse().unwrap()),
            ..plain(None, TokenRole::Service)
        };
        let (record, _) = create(dir.path(), named).unwrap();
        assert_eq!(record.name.as_deref(), Some("billing service"));
        assert_eq!(record.user.as_ref().map(|u| u.as_str()), Some("ann"));
        assert_eq!(list(dir.path()).unwrap(), [record]);
        let before = std::fs::read(dir.path().join("tokens.json")).unwrap();
        for bad in ["", "  ", "a\nb", &"x".repeat(101)] {
            let e = create(
                dir.path(),
                NewToken {
                    name: Some(bad.into()),
                    ..plain(None, TokenRole::Service)
                },
            )
            .unwrap_err();
            assert!(
                e.to_string()
                    .contains("must be 1 to 100 printable characters"),
                "{e}"
            );
        }
        assert_eq!(
            std::fs::read(dir.path().join("tokens.json")).unwrap(),
            before
        );
    }

    #[test]
    fn a_loaded_set_sees_tokens_created_and_revoked_after_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let (first, first_secret) = create(dir.path(), plain(None, TokenRole::Operator)).unwrap();
        let tokens = Tokens::load(dir.path()).unwrap();
        assert_eq!(tokens.verify(&first_secret).as_deref(), Some(&first));
        assert!(!tokens.reload().unwrap(), "nothing changed yet");

        let (second, second_secret) = create(
            dir.path(),
            plain(Some("acme".parse().unwrap()), TokenRole::Auditor),
        )
        .unwrap();
        assert_eq!(tokens.verify(&second_secret), None, "not reloaded yet");
        assert!(tokens.reload().unwrap());
        assert_eq!(tokens.verify(&second_secret).as_deref(), Some(&second));

        assert_eq!(revoke(dir.path(), &first.id).unwrap(), first);
        assert!(tokens.reload().unwrap());
        assert_eq!(tokens.verify(&first_secret), None);
        assert_eq!(list(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_broken_file_leaves_the_tokens_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let (_, secret) = create(dir.path(), plain(None, TokenRole::Service)).unwrap();
        let tokens = Tokens::load(dir.path()).unwrap();
        std::fs::write(dir.path().join("tokens.json"), "{not json").unwrap();
        assert!(matches!(tokens.reload(), Err(TokenError::Io { .. })));
        assert!(tokens.verify(&secret).is_some());
    }

    #[test]
    fn revoking_an_unknown_id_names_it_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), plain(None, TokenRole::Service)).unwrap();
        let before = std::fs::read(dir.path().join("tokens.json")).unwrap();
        let e = revoke(dir.path(), "nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no token `nope`; `permledger token list` shows the tokens there are"
        );
        assert_eq!(
            std::fs::read(dir.path().join("tokens.json")).unwrap(),
            before
        );
    }
}
