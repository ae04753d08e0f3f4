//! What clients send: command bodies, query strings and request bodies.
//!
//! Every struct is read from a JSON object (or a query string) with unknown fields refused;
//! optional fields may be left out (or sent as `null`). A moment is named by `at_seq` (a log
//! position, from 1) or `at_time` (RFC 3339); `min_seq` makes a read wait, up to 5 s, until the
//! views hold that position (read-your-writes).

use permledger_domain::{Command, PermissionKey, Scope, ScopeKind, UserId};
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

/// A query's moment and freshness floor.
pub trait HasMoment {
    fn moment(&self) -> MomentParams;
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
            /// Answer after the event at this log position (from 1).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[param(minimum = 1)]
            pub at_seq: Option<u64>,
            /// Answer after every event recorded at or before this RFC 3339 time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[param(format = DateTime)]
            pub at_time: Option<String>,
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
            fn moment(&self) -> MomentParams {
                MomentParams {
                    at_seq: self.at_seq,
                    at_time: self.at_time.clone(),
                    min_seq: self.min_seq,
                }
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

/// `POST /v1/orgs/{org}/check/batch`: many checks at one moment (at most 1000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[serde(deserialize_with = "permledger_domain::json::objects")]
    pub items: Vec<CheckItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
}

impl HasMoment for BatchRequest {
    fn moment(&self) -> MomentParams {
        MomentParams {
            at_seq: self.at_seq,
            at_time: self.at_time.clone(),
            min_seq: self.min_seq,
        }
    }
}

/// The most checks one batch holds.
pub const MAX_BATCH: usize = 1000;

/// `GET /v1/orgs/{org}/audit` and `/audit/export`: read as `as`, who needs `org.audit.view`
/// (or `team.audit.view` for a team's subtree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    #[serde(rename = "as")]
    pub reader: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Comma-separated event types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_time: Option<String>,
    /// The cursor: entries after this position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
    /// For the export: `jsonl` (default) or `csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ExportFormat>,
}

/// The audit export's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Jsonl,
    Csv,
}

/// `GET /v1/orgs/{org}/diff`: from `from_seq`/`from_time` (required) to `to_seq`/`to_time`
/// (default: now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DiffParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_seq: Option<u64>,
}

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
    pub past: Vec<u64>,
}

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
    /// The sandbox's clock at first (RFC 3339); default 2026-01-01T00:00:00Z.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<String>,
}

/// `PUT /v1/sandboxes/{id}/clock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockRequest {
    /// The new time (RFC 3339), at or after the current one.
    pub now: String,
}

crate::openapi::query_doc!(AuditParams, DiffParams, FeedParams);
