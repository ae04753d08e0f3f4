//! Bearer API tokens: bound to one org or to all, and to a role. Only a BLAKE3 hash of each secret
//! is stored (a JSON file in the data folder, replaced atomically).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use permledger_domain::OrgId;
use serde::{Deserialize, Serialize};

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
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read or write `{path}`: {reason}")]
    Io { path: String, reason: String },
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<String, TokenRecord>,
}

pub fn hash_secret(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

fn file(dir: &Path) -> PathBuf {
    dir.join("tokens.json")
}

impl Tokens {
    pub fn from_records(records: Vec<TokenRecord>) -> Tokens {
        Tokens {
            by_hash: records.into_iter().map(|r| (r.hash.clone(), r)).collect(),
        }
    }

    /// The tokens stored in a data folder (none when the file is absent).
    pub fn load(dir: &Path) -> Result<Tokens, TokenError> {
        Ok(Tokens::from_records(read(dir)?))
    }

    /// The token a bearer secret stands for.
    pub fn verify(&self, secret: &str) -> Option<&TokenRecord> {
        self.by_hash.get(&hash_secret(secret))
    }
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

/// Creates a token, stores its hash, and returns the secret (shown once).
pub fn create(
    dir: &Path,
    org: Option<OrgId>,
    role: TokenRole,
) -> Result<(TokenRecord, String), TokenError> {
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
    };
    records.push(record.clone());
    let path = file(dir);
    let err = |e: std::io::Error| TokenError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join("tokens.json.tmp");
    let text = serde_json::to_string_pretty(&records).map_err(|e| TokenError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok((record, secret))
}
