//! Validated identifiers, scopes and instants: checked once at the edge, trusted inside.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text of an id: up to 24 bytes inline, longer ones on the heap. Ids are most of what the
/// projections hold and what a check compares; inline, a lookup reads no second cache line and
/// a decoded event allocates nothing for its ids.
pub type Text = compact_str::CompactString;

/// Why an identifier did not parse. The message names the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} `{input}` is not a valid slug (expected [a-z0-9][a-z0-9_-]{{0,63}})")]
    Slug { what: &'static str, input: String },
    #[error("user id `{0}` must be 1 to 128 printable characters")]
    User(String),
    #[error("scope `{0}` is not `org`, `team:<id>` or `inbox:<id>`")]
    Scope(String),
    #[error("scope kind `{0}` is not `org`, `team` or `inbox`")]
    Kind(String),
    #[error("time `{0}` is not an RFC 3339 instant")]
    Time(String),
}

fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Text);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                Self::from_text(Text::from(s.into()))
            }
            /// The same from a borrow: an id of up to 24 bytes is made without an allocation.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                Self::from_text(Text::from(s))
            }
            fn from_text(s: Text) -> Result<Self, IdError> {
                if is_slug(&s) {
                    Ok(Self(s))
                } else {
                    Err(IdError::Slug { what: $what, input: s.into() })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
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
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
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

slug_id!(
    /// An organization: the root scope and the tenant.
    OrgId, "org id");
slug_id!(
    /// A team (Reply's "client"), child of its org.
    TeamId, "team id");
slug_id!(
    /// An inbox (a mailbox, an SMS line), child of a team or of the org.
    InboxId, "inbox id");
slug_id!(
    /// A role, unique inside its org.
    RoleId, "role id");
slug_id!(
    /// An invite, unique inside its org.
    InviteId, "invite id");
slug_id!(
    /// A multi-use invite link, unique inside its org.
    LinkId, "link id");

/// A user id from the product's identity provider: 1 to 128 printable characters.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(Text);

impl UserId {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        Self::from_text(Text::from(s.into()))
    }
    fn from_text(s: Text) -> Result<Self, IdError> {
        // One pass over the characters, counting and checking each.
        let mut n = 0usize;
        let printable = s.chars().all(|c| {
            n += 1;
            !c.is_control()
        });
        if printable && (1..=128).contains(&n) {
            Ok(Self(s))
        } else {
            Err(IdError::User(s.into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}
impl FromStr for UserId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::from_text(Text::from(s))
    }
}
impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Text::deserialize(d)?;
        Self::from_text(s).map_err(serde::de::Error::custom)
    }
}

/// The three kinds of scope, from the root down.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Org,
    Team,
    Inbox,
}

impl ScopeKind {
    /// 0 for the org, 1 for a team, 2 for an inbox: a role of kind K may list permissions of depth >= K.
    pub fn depth(self) -> u8 {
        match self {
            ScopeKind::Org => 0,
            ScopeKind::Team => 1,
            ScopeKind::Inbox => 2,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Org => "org",
            ScopeKind::Team => "team",
            ScopeKind::Inbox => "inbox",
        }
    }

    /// The kind with its indefinite article, as a sentence says it: "an org", "a team", "an inbox".
    pub fn with_article(self) -> &'static str {
        match self {
            ScopeKind::Org => "an org",
            ScopeKind::Team => "a team",
            ScopeKind::Inbox => "an inbox",
        }
    }
}

impl fmt::Display for ScopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScopeKind {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "org" => Ok(ScopeKind::Org),
            "team" => Ok(ScopeKind::Team),
            "inbox" => Ok(ScopeKind::Inbox),
            _ => Err(IdError::Kind(s.to_string())),
        }
    }
}

/// A scope inside one org: the org itself, a team or an inbox. Written `org`, `team:<id>`, `inbox:<id>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Org,
    Team(TeamId),
    Inbox(InboxId),
}

impl Scope {
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Org => ScopeKind::Org,
            Scope::Team(_) => ScopeKind::Team,
            Scope::Inbox(_) => ScopeKind::Inbox,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Org => f.write_str("org"),
            Scope::Team(t) => write!(f, "team:{t}"),
            Scope::Inbox(i) => write!(f, "inbox:{i}"),
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({self})")
    }
}

impl FromStr for Scope {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Scope(s.to_string());
        if s == "org" {
            return Ok(Scope::Org);
        }
        match s.split_once(':') {
            Some(("team", id)) => TeamId::parse(id).map(Scope::Team).map_err(|_| bad()),
            Some(("inbox", id)) => InboxId::parse(id).map(Scope::Inbox).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScopeText;
        impl serde::de::Visitor<'_> for ScopeText {
            type Value = Scope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope: `org`, `team:<id>` or `inbox:<id>`")
            }
            // Every string form ends here, a borrowed one (a stored event) without a copy.
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Scope, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(ScopeText)
    }
}

/// An instant in UTC with microsecond precision. Human-readable formats (JSON) see RFC 3339;
/// binary formats see the signed count of microseconds since the Unix epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    pub fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }
    pub fn micros(self) -> i64 {
        self.0
    }
    pub fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Self {
        Timestamp(t.timestamp_micros())
    }
    pub fn to_chrono(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }
    pub fn parse(s: &str) -> Result<Self, IdError> {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Timestamp::from_chrono(t.with_timezone(&chrono::Utc)))
            .map_err(|_| IdError::Time(s.to_string()))
    }

    /// A moment as people write it where they ask a question (commands keep to RFC 3339): a
    /// day (`2026-03-01`, its start), a time of day without seconds or without a zone
    /// (`2026-03-01T09:00`, `2026-03-01 09:00:30`), each in UTC unless an offset follows
    /// (`2026-03-01T09:00+02:00`), or a full RFC 3339 instant.
    pub fn parse_human(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(ts) = Timestamp::parse(t) {
            return Ok(ts);
        }
        let bad = || {
            format!(
                "`{s}` is not a moment: write a day (2026-03-01), a time (2026-03-01T09:00, \
                 UTC unless an offset such as +02:00 follows) or an RFC 3339 instant"
            )
        };
        let t = t.replacen(' ', "T", 1);
        // The offset, if any, follows the time of day: `Z`, `+hh:mm` or `-hh:mm`.
        let (local, offset) = match t
            .find('T')
            .and_then(|i| t[i..].rfind(['Z', 'z', '+', '-']).map(|j| i + j))
        {
            Some(k) => (&t[..k], &t[k..]),
            None => (t.as_str(), ""),
        };
        let naive = match chrono::NaiveDate::parse_from_str(local, "%Y-%m-%d") {
            Ok(day) => day.and_hms_opt(0, 0, 0),
            Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(local, f).ok()),
        }
        .ok_or_else(bad)?;
        let offset = match offset {
            "" | "Z" | "z" => chrono::FixedOffset::east_opt(0),
            o => chrono::DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{o}"))
                .ok()
                .map(|d| *d.offset()),
        }
        .ok_or_else(bad)?;
        naive
            .and_local_timezone(offset)
            .single()
            .map(|d| Timestamp::from_chrono(d.with_timezone(&chrono::Utc)))
            .ok_or_else(bad)
    }

    /// The moment `ago` before this one: `30d`, `12h`, `90m`, `45s` or `2w`.
    pub fn minus_span(self, ago: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{ago}` is not a span: a whole number and a unit, s, m, h, d or w (`30d`, `12h`)"
            )
        };
        let t = ago.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: i64 = t[..split].parse().map_err(|_| bad())?;
        let unit: i64 = match &t[split..] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err(bad()),
        };
        n.checked_mul(unit)
            .and_then(|secs| secs.checked_mul(1_000_000))
            .and_then(|micros| self.0.checked_sub(micros))
            .map(Timestamp)
            .ok_or_else(bad)
    }
}

/// RFC 3339 in UTC: whole seconds as `2026-03-03T09:00:00Z`, otherwise with microseconds.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(text) => f.write_str(text.as_str()),
            None => f.write_str(&self.to_chrono().to_rfc3339_opts(self.precision(), true)),
        }
    }
}

/// A timestamp written out on the stack, for the years 0 to 9999.
pub struct TimestampText {
    bytes: [u8; 27],
    len: usize,
}

impl TimestampText {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and the separators are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl Timestamp {
    /// Every answer carries its moment, so the usual years are written digit by digit, without
    /// an allocation or the formatting machinery; chrono writes the others (before year 0 or
    /// after 9999), and the two agree (a test compares them).
    pub fn text(self) -> Option<TimestampText> {
        use chrono::{Datelike, Timelike};
        let t = self.to_chrono();
        if !(0..=9999).contains(&t.year()) {
            return None;
        }
        let mut bytes = *b"0000-00-00T00:00:00.000000Z";
        let mut digits = |at: usize, width: usize, mut n: u32| {
            for b in bytes[at..at + width].iter_mut().rev() {
                *b = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        digits(0, 4, t.year() as u32);
        digits(5, 2, t.month());
        digits(8, 2, t.day());
        digits(11, 2, t.hour());
        digits(14, 2, t.minute());
        digits(17, 2, t.second());
        let micros = t.timestamp_subsec_micros();
        let len = if micros == 0 {
            bytes[19] = b'Z';
            20
        } else {
            digits(20, 6, micros);
            bytes.len()
        };
        Some(TimestampText { bytes, len })
    }

    fn precision(self) -> chrono::SecondsFormat {
        if self.to_chrono().timestamp_subsec_micros() == 0 {
            chrono::SecondsFormat::Secs
        } else {
            chrono::SecondsFormat::Micros
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (s.is_human_readable(), self.text()) {
            (false, _) => s.serialize_i64(self.0),
            (true, Some(text)) => s.serialize_str(text.as_str()),
            (true, None) => s.collect_str(self),
        }
    }
}
impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Timestamp::parse(&s).map_err(serde::de::Error::custom)
        } else {
            i64::deserialize(d).map(Timestamp)
        }
    }
}

/// A position in the global log: the n-th event ever recorded, from 1.
pub type Seq = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_read_as_people_write_them() {
        let at = |s: &str| Timestamp::parse_human(s).map(|t| t.to_string());
        for (written, meant) in [
            ("2026-03-01", "2026-03-01T00:00:00Z"),
            ("2026-03-01T09:00", "2026-03-01T09:00:00Z"),
            ("2026-03-01 09:00", "2026-03-01T09:00:00Z"),
            ("2026-03-01T09:00:30", "2026-03-01T09:00:30Z"),
            ("2026-03-01T09:00+02:00", "2026-03-01T07:00:00Z"),
            ("2026-03-01T09:00-05:00", "2026-03-01T14:00:00Z"),
            ("2026-03-01T09:00Z", "2026-03-01T09:00:00Z"),
            ("2026-03-01T09:00:00.5Z", "2026-03-01T09:00:00.500000Z"),
            (" 2026-12-02 ", "2026-12-02T00:00:00Z"),
        ] {
            assert_eq!(at(written).as_deref(), Ok(meant), "{written}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-03-01T25:00",
            "2026-03-01T09:00+99:00",
            "03/01/2026",
        ] {
            let err = Timestamp::parse_human(bad).unwrap_err();
            assert!(err.contains("is not a moment"), "{bad}: {err}");
        }
        let now = Timestamp::parse("2026-03-31T12:00:00Z").unwrap();
        let ago = |s: &str| now.minus_span(s).map(|t| t.to_string());
        assert_eq!(ago("30d").as_deref(), Ok("2026-03-01T12:00:00Z"));
        assert_eq!(ago("12h").as_deref(), Ok("2026-03-31T00:00:00Z"));
        assert_eq!(ago("2w").as_deref(), Ok("2026-03-17T12:00:00Z"));
        assert_eq!(ago("90m").as_deref(), Ok("2026-03-31T10:30:00Z"));
        for bad in ["", "d", "30", "30y", "-3d", "99999999999999999999d", "1.5h"] {
            assert!(
                now.minus_span(bad).unwrap_err().contains("is not a span"),
                "{bad}"
            );
        }
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let chrono_text = |t: Timestamp| {
            let c = t.to_chrono();
            let precision = if c.timestamp_subsec_micros() == 0 {
                chrono::SecondsFormat::Secs
            } else {
                chrono::SecondsFormat::Micros
            };
            c.to_rfc3339_opts(precision, true)
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut samples = vec![
            Timestamp::MIN,
            Timestamp::MAX,
            Timestamp::from_micros(0),
            Timestamp::from_micros(-1),
            Timestamp::from_micros(1),
            Timestamp::from_micros(-62_167_219_200_000_000), // 0000-01-01
            Timestamp::from_micros(-62_167_219_200_000_001),
            Timestamp::from_micros(253_402_300_799_999_999), // 9999-12-31T23:59:59.999999
            Timestamp::from_micros(253_402_300_800_000_000), // +10000
            Timestamp::parse("2026-03-03T09:00:00Z").unwrap(),
            Timestamp::parse("2024-02-29T23:59:59.000001Z").unwrap(),
        ];
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over years 0 to 9999 and a little beyond, whole seconds one time in four.
            let micros = (x % 330_000_000_000_000_000) as i64 - 65_000_000_000_000_000;
            let micros = if x.is_multiple_of(4) {
                micros - micros % 1_000_000
            } else {
                micros
            };
            samples.push(Timestamp::from_micros(micros));
        }
        for t in samples {
            assert_eq!(t.to_string(), chrono_text(t), "{}", t.micros());
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", chrono_text(t)));
        }
    }

    #[test]
    fn slugs_are_checked() {
        assert!(OrgId::new("acme").is_ok());
        assert!(OrgId::new("a-b_c9").is_ok());
        assert!(OrgId::new("9lives").is_ok());
        for bad in ["", "Acme", "-x", "_x", "a b", "a.b", &"x".repeat(65)] {
            let err = OrgId::new(bad).err();
            assert!(
                matches!(&err, Some(IdError::Slug { input, .. }) if input == bad),
                "{bad:?} gave {err:?}"
            );
        }
        assert!(OrgId::new("x".repeat(64)).is_ok());
    }

    #[test]
    fn user_ids_are_printable_and_bounded() {
        assert!(UserId::new("ann@example.com").is_ok());
        assert!(UserId::new("auth0|12 34").is_ok());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("é".repeat(128)).is_ok());
        assert!(UserId::new("é".repeat(129)).is_err());
    }

    #[test]
    fn scopes_round_trip() {
        for s in ["org", "team:support", "inbox:billing"] {
            let scope: Scope = s.parse().unwrap();
            assert_eq!(scope.to_string(), s);
        }
        for bad in [
            "", "Org", "team:", "team:A", "inbox", "folder:x", "team:a:b",
        ] {
            assert_eq!(bad.parse::<Scope>(), Err(IdError::Scope(bad.to_string())));
        }
    }

    #[test]
    fn scopes_and_ids_deserialize_from_borrowed_and_owned_text_alike() {
        let team = Scope::Team(TeamId::new("support").unwrap());
        // serde_json lends a plain string and hands over an owned one when it unescapes.
        assert_eq!(
            serde_json::from_str::<Scope>("\"team:support\"").unwrap(),
            team
        );
        assert_eq!(
            serde_json::from_str::<Scope>("\"team:supp\\u006frt\"").unwrap(),
            team
        );
        let err = serde_json::from_str::<Scope>("\"team:Support\"").unwrap_err();
        assert!(err.to_string().contains("`team:Support`"), "{err}");
        let err = serde_json::from_str::<Scope>("7").unwrap_err();
        assert!(err.to_string().contains("a scope"), "{err}");
        assert_eq!(
            "inbox:billing".parse::<Scope>().unwrap(),
            Scope::Inbox(InboxId::parse("billing").unwrap())
        );
        // `parse` checks as `new` does, long ids included.
        let long = "x".repeat(64);
        assert_eq!(RoleId::parse(&long), RoleId::new(long.clone()));
        assert!(RoleId::parse(&format!("{long}x")).is_err());
        assert!(matches!(
            RoleId::parse("Admin"),
            Err(IdError::Slug { what: "role id", input }) if input == "Admin"
        ));
    }

    #[test]
    fn timestamps_speak_rfc3339_in_json_and_micros_in_binary() {
        let t = Timestamp::parse("2026-03-01T09:00:00Z").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-03-01T09:00:00Z\""
        );
        let t2 = Timestamp::parse("2026-03-01T10:00:00.5+01:00").unwrap();
        assert_eq!(t2.to_string(), "2026-03-01T09:00:00.500000Z");
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
