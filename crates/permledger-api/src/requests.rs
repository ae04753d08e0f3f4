//! What clients send: command bodies, query strings and request bodies.
//!
//! Every struct is read from a JSON object (or a query string) with unknown fields refused;
//! optional fields may be left out (or sent as `null`). A moment is `at`: a log position
//! (counted from one) or an RFC 3339 instant; `min_seq` makes a read wait, up to 5 s, until the
//! views hold that position (read-your-writes).

use permledger_domain::{Command, PermissionKey, Scope, ScopeKind, Timestamp, UserId};
use permledger_views::read::CheckItem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `POST /v1/commands`: a command (`do`) issued as a user (`as`). `C` is the command; a client
/// that forwards commands it did not parse itself (the scenario runner) sends JSON values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, bound(deserialize = "C: DeserializeOwned"))]
pub struct CommandRequest<C = Command> {
    #[serde(rename = "as")]
    pub actor: UserId,
    #[serde(rename = "do", deserialize_with = "permledger_domain::json::object")]
    pub command: C,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Refuse with `conflict` unless the org's version is this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_version: Option<u64>,
}

/// A moment a caller names: after the event at a log position (from 1), or after every event
/// recorded at or before an instant. In a query string `at=120` or
/// `at=2026-03-03T17:00:00Z`; in JSON a number or a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Seq(u64),
    Time(Timestamp),
}

impl From<At> for permledger_views::At {
    fn from(a: At) -> permledger_views::At {
        match a {
            At::Seq(n) => permledger_views::At::Seq(n),
            At::Time(t) => permledger_views::At::Time(t),
        }
    }
}

impl From<permledger_views::At> for At {
    fn from(a: permledger_views::At) -> At {
        match a {
            permledger_views::At::Seq(n) => At::Seq(n),
            permledger_views::At::Time(t) => At::Time(t),
        }
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Seq(n) => write!(f, "{n}"),
            At::Time(t) => write!(f, "{t}"),
        }
    }
}

impl std::str::FromStr for At {
    type Err = String;
    fn from_str(s: &str) -> Result<At, String> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return match s.parse::<u64>() {
                Ok(0) => Err(
                    "positions start at 1; to name a moment before the first event, \
                               give a time"
                        .to_string(),
                ),
                Ok(n) => Ok(At::Seq(n)),
                Err(_) => Err(format!("position `{s}` is past any log's end")),
            };
        }
        Timestamp::parse(s)
            .map(At::Time)
            .map_err(|_| format!("`{s}` is neither a log position (from 1) nor an RFC 3339 time"))
    }
}

impl Serialize for At {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            At::Seq(n) => s.serialize_u64(*n),
            At::Time(t) => t.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for At {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<At, D::Error> {
        struct AtVisitor;
        impl serde::de::Visitor<'_> for AtVisitor {
            type Value = At;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a log position (from 1) or an RFC 3339 time")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<At, E> {
                n.to_string().parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<At, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom("positions start at 1"))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<At, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(AtVisitor)
    }
}

impl utoipa::PartialSchema for At {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .description(Some(
                "a moment: after the event at this log position (from 1), or after every event \
                 recorded at or before this RFC 3339 time",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1.0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .into()
    }
}

impl utoipa::ToSchema for At {}

/// A query's moment and freshness floor.
pub trait HasMoment {
    /// The moment asked for (None: the present).
    fn at(&self) -> Option<At>;
    /// The position the views must hold before answering.
    fn min_seq(&self) -> Option<u64>;
}

/// Declares a query with the moment fields every read of one org has.
macro_rules! moment_query {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            /// The moment to answer at (default: the present).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub at: Option<At>,
            /// Wait, up to 5 s, until the views hold this position (read-your-writes).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub min_seq: Option<u64>,
        }
        impl $crate::openapi::QueryDoc for $name {
            fn parameters() -> Vec<utoipa::openapi::path::Parameter> {
                <$name as utoipa::IntoParams>::into_params(|| None)
            }
        }
        impl HasMoment for $name {
            fn at(&self) -> Option<At> {
                self.at
            }
            fn min_seq(&self) -> Option<u64> {
                self.min_seq
            }
        }
    };
}

moment_query!(
    /// Only a moment: `users/{user}`, `roles`, `invites`.
    MomentParams {}
);
moment_query!(CheckParams {
    user: UserId,
    permission: PermissionKey,
    scope: Scope,
    /// Also answer the facts that allow it, or why not (default false). A check at the present
    /// without them is answered from the org's check index, the fastest path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    explain: Option<bool>,
});
moment_query!(WhoCanParams {
    permission: PermissionKey,
    scope: Scope,
});
moment_query!(PermissionsParams {
    user: UserId,
    scope: Scope,
});
moment_query!(ScopesParams {
    user: UserId,
    permission: PermissionKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<ScopeKind>,
});
moment_query!(MembersParams { scope: Scope });

/// The most checks one batch holds.
pub const MAX_BATCH: usize = 1000;

/// `POST /v1/orgs/{org}/check/batch`: many checks at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// At most 1000 checks.
    #[serde(deserialize_with = "permledger_domain::json::objects")]
    #[schema(max_items = 1000)]
    pub items: Vec<CheckItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<At>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
}

impl HasMoment for BatchRequest {
    fn at(&self) -> Option<At> {
        self.at
    }
    fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }
}

/// The event types, as the audit's `types` filter takes them: a comma-separated list.
pub fn event_types_pattern() -> String {
    let one = permledger_domain::EventPayload::TYPE_NAMES.join("|");
    format!("^({one})(,({one}))*$")
}

fn event_types_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "comma-separated event types, such as `role_assigned,member_joined`",
        ))
        .pattern(Some(event_types_pattern()))
        .build()
}

/// Declares the audit's query: the page's, and the export's with its format.
macro_rules! audit_query {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// The reader, who needs `org.audit.view` (or `team.audit.view` for a team's subtree).
            #[serde(rename = "as")]
            pub reader: UserId,
            /// Only what this user did.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub actor: Option<UserId>,
            /// Only events about this user.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub user: Option<UserId>,
            /// Only events about this scope or a scope below it.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub scope: Option<Scope>,
            /// Comma-separated event types.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[param(schema_with = event_types_schema)]
            pub types: Option<String>,
            /// Only events recorded at or after this time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub from: Option<Timestamp>,
            /// Only events recorded at or before this time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub to: Option<Timestamp>,
            /// Only events up to this moment.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub at: Option<At>,
            /// With `user` or `scope`: also what concerns them without naming them (invites to
            /// the user's addresses; events that changed their access, or anyone's within the
            /// scope, such as a role redefined or a suspension). Default false.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub indirect: Option<bool>,
            /// Wait, up to 5 s, until the views hold this position.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub min_seq: Option<u64>,
            $($(#[$fdoc])* pub $field: $ty,)*
        }
        $crate::openapi::query_doc!($name);
    };
}

audit_query!(
    /// `GET /v1/orgs/{org}/audit`: one page of the filtered audit log.
    AuditParams {
        /// The cursor: entries after this position (the previous page's `next`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// Entries per page, 1 to 1000 (default 100).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<usize>,
    }
);

audit_query!(
    /// `GET /v1/orgs/{org}/audit/export`: every entry of the filtered audit log.
    ExportParams {
        /// `jsonl` (default) or `csv`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<ExportFormat>,
    }
);

/// The audit export's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Jsonl,
    Csv,
}

/// `GET /v1/orgs/{org}/diff`: what changed from `from` to `to` (default: now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    /// The first moment.
    pub from: At,
    /// The second moment (default: the present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<At>,
    /// Only this user's permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// Only this scope and the scopes below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
}

/// The most positions one verification names in `past`.
pub const MAX_PAST: usize = 1000;

/// `POST /v1/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Recompute the hash chain over every stored event (default true).
    #[serde(default = "yes")]
    pub chain: bool,
    /// Also rebuild every projection from the log and compare it with the served one (default
    /// true).
    #[serde(default = "yes")]
    pub projections: bool,
    /// Positions (at most 1000, none after the head) at which to compare the reconstructed past
    /// with a plain fold of the log.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub past: Vec<u64>,
    /// A digest kept earlier (`SEQ:HASH`, from `GET /v1/digest` or `permledger digest`): the
    /// chain's verification also proves the log still extends it (and is run for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{1,19}:[0-9a-f]{64}$")]
    pub digest: Option<String>,
    /// More digests kept earlier (a witness file's, `SEQ:HASH` each, at most 2,500: what fits
    /// in a request's body): the log must extend every one; the first it does not is named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 2500)]
    pub digests: Vec<DigestText>,
}

/// A digest as text: `SEQ:HASH`, a log position, a colon and its chain link (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DigestText(pub String);

impl utoipa::PartialSchema for DigestText {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "`SEQ:HASH`: a log position, a colon and its chain link (64 hex digits)",
            ))
            .pattern(Some("^[0-9]{1,19}:[0-9a-f]{64}$"))
            .max_length(Some(84))
            .into()
    }
}
impl utoipa::ToSchema for DigestText {}

/// The most digests one `POST /v1/verify` proves: 2,500 of the longest fit in a request's body.
pub const MAX_DIGESTS: usize = 2_500;

fn yes() -> bool {
    true
}

/// `GET /v1/feed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The first position to send (default 1). A `Last-Event-ID` header resumes after that id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
}

/// `POST /v1/sandboxes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxRequest {
    /// The sandbox's clock at first; default 2026-01-01T00:00:00Z.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<Timestamp>,
}

/// `PUT /v1/sandboxes/{id}/clock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// The new time, at or after the current one.
    pub now: Timestamp,
}

crate::openapi::query_doc!(DiffParams, FeedParams);
