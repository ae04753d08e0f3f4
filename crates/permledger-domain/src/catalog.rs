//! Permission keys, patterns and the catalog every org holds, with the ledger's administrative table.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{ScopeKind, Text};

/// A dotted permission key such as `inbox.thread.reply`: two to eight segments of `[a-z0-9_]`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PermissionKey(Text);

/// A role's or mask's permission pattern: a key, a prefix wildcard `inbox.thread.*`, or `*`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pattern(Text);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "permission `{0}` is not a dotted key of [a-z0-9_] segments, such as `inbox.thread.reply`"
    )]
    Key(String),
    #[error(
        "pattern `{0}` is not a permission key, a prefix wildcard such as `inbox.thread.*`, or `*`"
    )]
    Pattern(String),
}

fn valid_segments(s: &str) -> bool {
    // One pass over the bytes: every check reads a key.
    let (mut segments, mut segment_len) = (1, 0);
    for c in s.bytes() {
        match c {
            b'.' if segment_len == 0 => return false,
            b'.' => (segments, segment_len) = (segments + 1, 0),
            b'a'..=b'z' | b'0'..=b'9' | b'_' => segment_len += 1,
            _ => return false,
        }
    }
    s.len() <= 128 && segments <= 8 && segment_len > 0
}

impl PermissionKey {
    pub fn new(s: impl Into<String>) -> Result<Self, KeyError> {
        Self::from_text(Text::from(s.into()))
    }
    fn from_text(s: Text) -> Result<Self, KeyError> {
        if s.contains('.') && valid_segments(&s) {
            Ok(Self(s))
        } else {
            Err(KeyError::Key(s.into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Pattern {
    pub fn new(s: impl Into<String>) -> Result<Self, KeyError> {
        Self::from_text(Text::from(s.into()))
    }
    fn from_text(s: Text) -> Result<Self, KeyError> {
        let ok = s == "*"
            || match s.strip_suffix(".*") {
                Some(prefix) => valid_segments(prefix),
                None => s.contains('.') && valid_segments(&s),
            };
        if ok {
            Ok(Self(s))
        } else {
            Err(KeyError::Pattern(s.into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// True when the pattern names exactly one key rather than a family.
    pub fn is_exact(&self) -> bool {
        self.0 != "*" && !self.0.ends_with(".*")
    }
    pub fn matches(&self, key: &PermissionKey) -> bool {
        if self.0 == "*" {
            return true;
        }
        match self.0.strip_suffix('*') {
            // `inbox.thread.*` keeps its dot so that it never matches `inbox.threadx`.
            Some(prefix) => key.0.starts_with(prefix),
            None => self.0 == key.0,
        }
    }
}

impl From<PermissionKey> for Pattern {
    fn from(k: PermissionKey) -> Self {
        Pattern(k.0)
    }
}

macro_rules! string_newtype_impls {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl FromStr for $name {
            type Err = KeyError;
            fn from_str(s: &str) -> Result<Self, KeyError> {
                Self::new(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Text::deserialize(d)?;
                Self::from_text(s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_newtype_impls!(PermissionKey);
string_newtype_impls!(Pattern);

/// The permission that belongs to the owner alone: no role or grant can carry it.
pub const BILLING: &str = "org.billing.manage";

/// The ledger's own administrative permissions, which authorize its commands (domain.md's table).
pub const ADMINISTRATIVE: &[(&str, ScopeKind, &str)] = &[
    (
        "org.settings.manage",
        ScopeKind::Org,
        "rename the org, set default roles, toggle features (masks) anywhere",
    ),
    (
        "org.members.invite",
        ScopeKind::Org,
        "issue and revoke invites and invite links",
    ),
    (
        "org.guests.invite",
        ScopeKind::Org,
        "issue guest invites (to the preset's guest role only)",
    ),
    (
        "org.members.manage",
        ScopeKind::Org,
        "suspend, reactivate and remove members",
    ),
    (
        "org.roles.manage",
        ScopeKind::Org,
        "define, change and delete roles; declare catalog permissions",
    ),
    (
        "org.roles.assign",
        ScopeKind::Org,
        "assign org roles; grant and revoke direct permissions on the org",
    ),
    ("org.teams.create", ScopeKind::Org, "create teams"),
    ("org.teams.delete", ScopeKind::Org, "delete teams"),
    (
        "org.audit.view",
        ScopeKind::Org,
        "read the audit log of the whole org",
    ),
    (
        "team.view",
        ScopeKind::Team,
        "see the team and the list of its inboxes",
    ),
    (
        "team.settings.manage",
        ScopeKind::Team,
        "rename the team, toggle features inside it",
    ),
    (
        "team.members.manage",
        ScopeKind::Team,
        "add and remove team members, assign team roles, grant on the team",
    ),
    (
        "team.inboxes.create",
        ScopeKind::Team,
        "create inboxes in the team",
    ),
    (
        "team.inboxes.delete",
        ScopeKind::Team,
        "delete inboxes in the team",
    ),
    (
        "team.audit.view",
        ScopeKind::Team,
        "read the activity log of the team and its inboxes",
    ),
    ("inbox.view", ScopeKind::Inbox, "see the inbox"),
    (
        "inbox.members.manage",
        ScopeKind::Inbox,
        "add and remove inbox members, assign inbox roles, grant on the inbox",
    ),
    (
        BILLING,
        ScopeKind::Org,
        "billing and plan settings; the owner's alone",
    ),
];

/// One declared permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PermissionDef {
    pub key: PermissionKey,
    pub kind: ScopeKind,
    pub description: String,
}

/// An org's catalog: every permission it knows, with its kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    defs: BTreeMap<PermissionKey, PermissionDef>,
}

impl Catalog {
    /// The administrative table alone: what every catalog starts with.
    pub fn administrative() -> Vec<PermissionDef> {
        ADMINISTRATIVE
            .iter()
            .filter_map(|(k, kind, d)| {
                PermissionKey::new(*k).ok().map(|key| PermissionDef {
                    key,
                    kind: *kind,
                    description: (*d).to_string(),
                })
            })
            .collect()
    }

    pub fn insert(&mut self, def: PermissionDef) {
        self.defs.insert(def.key.clone(), def);
    }
    pub fn get(&self, key: &PermissionKey) -> Option<&PermissionDef> {
        self.defs.get(key)
    }
    pub fn contains(&self, key: &PermissionKey) -> bool {
        self.defs.contains_key(key)
    }
    pub fn iter(&self) -> impl Iterator<Item = &PermissionDef> {
        self.defs.values()
    }
    pub fn len(&self) -> usize {
        self.defs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }
    /// Every catalog permission the pattern matches, in key order.
    pub fn matching<'a>(
        &'a self,
        pattern: &'a Pattern,
    ) -> impl Iterator<Item = &'a PermissionDef> + 'a {
        self.defs.values().filter(move |d| pattern.matches(&d.key))
    }
}

/// True for the permissions of the administrative table (and billing): masks never hide them and
/// only their holders may hand them out.
pub fn is_administrative(key: &PermissionKey) -> bool {
    ADMINISTRATIVE.iter().any(|(k, _, _)| *k == key.as_str())
}

pub fn is_billing(key: &PermissionKey) -> bool {
    key.as_str() == BILLING
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> PermissionKey {
        PermissionKey::new(s).unwrap()
    }

    #[test]
    fn patterns_match_keys_prefixes_and_everything() {
        let p = Pattern::new("inbox.thread.*").unwrap();
        assert!(p.matches(&key("inbox.thread.reply")));
        assert!(!p.matches(&key("inbox.threads.reply")));
        assert!(!p.matches(&key("inbox.view")));
        assert!(Pattern::new("*").unwrap().matches(&key("org.audit.view")));
        assert!(Pattern::new("inbox.view")
            .unwrap()
            .matches(&key("inbox.view")));
        assert!(!Pattern::new("inbox.view")
            .unwrap()
            .matches(&key("inbox.view2")));
    }

    #[test]
    fn malformed_keys_and_patterns_are_refused() {
        for bad in [
            "",
            "inbox",
            "Inbox.view",
            "inbox..view",
            "inbox.view.",
            "inbox.*.view",
            "inbox.vi ew",
        ] {
            assert!(PermissionKey::new(bad).is_err(), "{bad}");
        }
        for bad in ["", "inbox.*.view", "**", "inbox*", ".*"] {
            assert!(Pattern::new(bad).is_err(), "{bad}");
        }
        assert!(Pattern::new("inbox.*").is_ok());
        assert!(PermissionKey::new("inbox.*").is_err());
    }

    #[test]
    fn keys_are_bounded_in_length_and_segments() {
        let segment = "a".repeat(15);
        let eight = [segment.as_str(); 8].join(".");
        assert_eq!(eight.len(), 127);
        assert!(PermissionKey::new(eight.clone()).is_ok());
        assert!(PermissionKey::new(format!("{eight}b")).is_ok(), "128 bytes");
        assert!(
            PermissionKey::new(format!("{eight}bc")).is_err(),
            "129 bytes"
        );
        assert!(
            PermissionKey::new(["a"; 9].join(".")).is_err(),
            "9 segments"
        );
        assert!(PermissionKey::new(".inbox.view").is_err());
        assert!(PermissionKey::new("inbox_2.view_all").is_ok());
        assert!(Pattern::new(format!("{}.*", ["a"; 8].join("."))).is_ok());
        assert!(Pattern::new(format!("{}.*", ["a"; 9].join("."))).is_err());
    }

    #[test]
    fn the_administrative_table_is_complete() {
        let admin = Catalog::administrative();
        assert_eq!(admin.len(), 18);
        assert!(admin.iter().all(|d| is_administrative(&d.key)));
        assert!(!is_administrative(&key("inbox.thread.reply")));
    }
}
