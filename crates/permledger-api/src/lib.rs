//! permledger's HTTP contract, declared once.
//!
//! Each endpoint is a type implementing [`Endpoint`]: its method, its path template, the types of
//! its path parameters, query, body and answer. The server routes and extracts with these types,
//! the client builds requests and reads answers with them, and so do the CLI's `--server` mode,
//! the scenario runner's remote target and the demo: renaming a field is a compile error
//! everywhere it is used, never a string some reader looks up. Every answer that is not 2xx is an
//! [`ErrorBody`].
//!
//! This crate depends on serde and the domain's and views' types only (no HTTP stack), so any
//! client can take it.

pub mod answers;
pub mod openapi;
pub mod requests;

pub use answers::*;
pub use requests::*;

/// The pattern of a slug id, as the OpenAPI document states it.
pub const SLUG_PATTERN: &str = permledger_domain::schema::SLUG;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Whether a request of this method carries the endpoint's body.
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put)
    }
}

/// What a successful answer's body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json`, the endpoint's `Answer`.
    Json,
    /// `text/event-stream`: Server-Sent Events, each `data` a JSON [`permledger_domain::Event`].
    EventStream,
    /// `text/plain; version=0.0.4`: Prometheus metrics.
    Prometheus,
    /// `application/x-ndjson` or `text/csv`, chosen by the query's `format`; the last line
    /// names the digest the export covers.
    Export,
    /// `text/csv`: one table, its last line the digest it covers.
    Csv,
    /// No body (`204 No Content`).
    Empty,
}

/// One endpoint of the API.
pub trait Endpoint {
    const METHOD: Method;
    /// The path, with `{name}` for each path parameter (axum's syntax); `{*rest}` takes the rest.
    const PATH: &'static str;
    /// The status of a successful answer.
    const STATUS: u16 = 200;
    const MEDIA: Media = Media::Json;
    /// Whether the request needs `Authorization: Bearer <token>`.
    const AUTH: bool = true;
    /// The statuses of the refusals it may answer (each with an `ErrorBody`).
    const ERRORS: &'static [u16] = &[400, 401, 403, 404, 503];
    /// The OpenAPI operation id.
    const OPERATION: &'static str;
    /// What it does, in a line.
    const SUMMARY: &'static str;
    type Path: PathArgs;
    type Query: Serialize + DeserializeOwned + openapi::QueryDoc;
    /// What a POST or PUT sends (`()` for the others).
    type Body: Serialize + DeserializeOwned + utoipa::ToSchema;
    /// The successful answer (`()` when it has none, or is not JSON).
    type Answer: Serialize + DeserializeOwned + utoipa::ToSchema;
}

/// Path parameters, in the order of the path template.
pub trait PathArgs: Serialize + DeserializeOwned + Send + utoipa::IntoParams {
    /// The value of each `{name}` of the template.
    fn values(&self) -> Vec<(&'static str, String)>;
}

/// No path parameters.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams,
)]
pub struct NoPath {}

impl PathArgs for NoPath {
    fn values(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// `{org}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    pub org: permledger_domain::OrgId,
}

impl PathArgs for OrgPath {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![("org", self.org.to_string())]
    }
}

/// `{org}` and `{user}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgUserPath {
    pub org: permledger_domain::OrgId,
    pub user: permledger_domain::UserId,
}

impl PathArgs for OrgUserPath {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("org", self.org.to_string()),
            ("user", self.user.to_string()),
        ]
    }
}

/// `{org}` and one table of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgTablePath {
    pub org: permledger_domain::OrgId,
    /// The table: members, grants, teams, inboxes, roles, masks, invites or links.
    #[param(inline)]
    pub table: SnapshotTable,
}

impl PathArgs for OrgTablePath {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("org", self.org.to_string()),
            ("table", self.table.as_str().to_string()),
        ]
    }
}

/// `{id}` of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SandboxPath {
    /// The sandbox's id, as `POST /v1/sandboxes` answered it.
    pub id: String,
}

impl PathArgs for SandboxPath {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![("id", self.id.clone())]
    }
}

/// The path of a request: the template with each parameter percent-encoded in its place.
pub fn path<E: Endpoint>(args: &E::Path) -> String {
    let mut out = E::PATH.to_string();
    for (name, value) in args.values() {
        out = out.replace(&format!("{{{name}}}"), &encode(&value));
    }
    out
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters pass as they
/// are).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Declares an endpoint type: its doc line is its OpenAPI summary, its name its operation id.
macro_rules! endpoint {
    (
        $(#[doc = $doc:literal])+
        $name:ident: $method:ident $path:literal,
        path $p:ty, query $q:ty, body $b:ty => $a:ty
        $(, $konst:ident = $value:expr)* $(,)?
    ) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Endpoint for $name {
            const METHOD: Method = Method::$method;
            const PATH: &'static str = $path;
            const OPERATION: &'static str = stringify!($name);
            const SUMMARY: &'static str = concat!($($doc),+).trim_ascii();
            $(const $konst: $crate::konst_type!($konst) = $value;)*
            type Path = $p;
            type Query = $q;
            type Body = $b;
            type Answer = $a;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! konst_type {
    (STATUS) => { u16 };
    (MEDIA) => { $crate::Media };
    (AUTH) => { bool };
    (ERRORS) => { &'static [u16] };
}

/// The refusals a command may get: every code of domain.md, and the body's own.
const COMMAND_ERRORS: &[u16] = &[400, 401, 403, 404, 409, 410, 413, 415, 422, 503];
/// The refusals of a request with a JSON body.
const BODY_ERRORS: &[u16] = &[400, 401, 403, 404, 413, 415, 503];

endpoint!(
    /// Liveness and the published log position.
    Health: Get "/healthz", path NoPath, query (), body () => HealthAnswer, AUTH = false,
    ERRORS = &[]
);
endpoint!(
    /// Prometheus metrics: commands, commit latency, checks, projection lag.
    Metrics: Get "/metrics", path NoPath, query (), body () => (),
    MEDIA = Media::Prometheus, AUTH = false, ERRORS = &[]
);
endpoint!(
    /// This API's OpenAPI document.
    OpenApi: Get "/openapi.json", path NoPath, query (), body () => serde_json::Value, AUTH = false,
    ERRORS = &[]
);
endpoint!(
    /// Issue a command as a user: the recorded events and their position, once durable.
    SubmitCommand: Post "/v1/commands", path NoPath, query (), body CommandRequest => CommandAnswer,
    ERRORS = COMMAND_ERRORS
);
endpoint!(
    /// Server-Sent Events from a position, resumable with `Last-Event-ID`: each message's `event`
    /// an event type, its `data` the Event as JSON, its `id` the event's position.
    Feed: Get "/v1/feed", path NoPath, query FeedParams, body () => (), MEDIA = Media::EventStream
);
endpoint!(
    /// Server-Sent Events of the log's stored records from a position, for a replica that checks
    /// every link before it folds (`permledger_replica::Replica::follow_server`): each message's
    /// `data` a JSON array of `StoredRecord`, its `id` the last position in it; resumable with
    /// `Last-Event-ID`. The whole ledger's: a token bound to an org is refused.
    Records: Get "/v1/records", path NoPath, query FeedParams, body () => (), MEDIA = Media::EventStream
);
endpoint!(
    /// May a user do a permission on a scope, and why.
    Check: Get "/v1/orgs/{org}/check", path OrgPath, query CheckParams, body () => CheckAnswer
);
endpoint!(
    /// Many checks at one moment.
    CheckBatch: Post "/v1/orgs/{org}/check/batch", path OrgPath, query (), body BatchRequest => BatchAnswer,
    ERRORS = BODY_ERRORS
);
endpoint!(
    /// Users holding a permission on a scope.
    WhoCan: Get "/v1/orgs/{org}/who_can", path OrgPath, query WhoCanParams, body () => WhoCanAnswer
);
endpoint!(
    /// Every permission a user holds on a scope.
    Permissions: Get "/v1/orgs/{org}/permissions", path OrgPath, query PermissionsParams, body () => PermissionsAnswer
);
endpoint!(
    /// Scopes where a user holds a permission.
    Scopes: Get "/v1/orgs/{org}/scopes", path OrgPath, query ScopesParams, body () => ScopesAnswer
);
endpoint!(
    /// Members of a scope with their role and status.
    Members: Get "/v1/orgs/{org}/members", path OrgPath, query MembersParams, body () => MembersAnswer
);
endpoint!(
    /// A user's standing: status, ownership, roles and grants.
    User: Get "/v1/orgs/{org}/users/{user}", path OrgUserPath, query MomentParams, body () => UserAnswer
);
endpoint!(
    /// Roles as defined at the moment.
    Roles: Get "/v1/orgs/{org}/roles", path OrgPath, query MomentParams, body () => RolesAnswer
);
endpoint!(
    /// Pending invites and usable invite links.
    Invites: Get "/v1/orgs/{org}/invites", path OrgPath, query MomentParams, body () => InvitesAnswer
);
endpoint!(
    /// A page of the org's audit log, read as a user who may read it.
    Audit: Get "/v1/orgs/{org}/audit", path OrgPath, query AuditParams, body () => permledger_views::audit::AuditPage
);
endpoint!(
    /// The whole filtered audit log, streamed as JSON Lines (default) or CSV.
    AuditExport: Get "/v1/orgs/{org}/audit/export", path OrgPath, query ExportParams, body () => (),
    MEDIA = Media::Export
);
endpoint!(
    /// Effective permissions gained and lost between two moments.
    Diff: Get "/v1/orgs/{org}/diff", path OrgPath, query DiffParams, body () => DiffAnswer
);
endpoint!(
    /// Every interval of access between two moments (in either order), each start and end with its cause.
    Timeline: Get "/v1/orgs/{org}/timeline", path OrgPath, query DiffParams, body () => TimelineAnswer
);
endpoint!(
    /// Every org at a moment, with its owner and size (those the token may read).
    Orgs: Get "/v1/orgs", path NoPath, query MomentParams, body () => OrgsAnswer
);
endpoint!(
    /// The whole org at a moment: owner, teams, inboxes, members with roles and grants, masks, roles, invites, links.
    Snapshot: Get "/v1/orgs/{org}/snapshot", path OrgPath, query MomentParams, body () => permledger_views::snapshot::Snapshot
);
endpoint!(
    /// One table of the org at a moment as a CSV file, ending with the digest it covers.
    SnapshotCsv: Get "/v1/orgs/{org}/snapshot/{table}", path OrgTablePath, query MomentParams, body () => (),
    MEDIA = Media::Csv
);
endpoint!(
    /// Every permission a user holds on every scope at a moment, with the reason for each.
    Access: Get "/v1/orgs/{org}/users/{user}/access", path OrgUserPath, query MomentParams, body () => AccessAnswer
);
endpoint!(
    /// The head of the log served (`SEQ:HASH`), to keep outside the system (any token).
    GetDigest: Get "/v1/digest", path NoPath, query (), body () => DigestAnswer,
    ERRORS = &[401, 503]
);
endpoint!(
    /// Replay tooling's check of the running ledger, and proof that it extends a digest kept earlier (operator and auditor tokens; one verification at a time).
    Verify: Post "/v1/verify", path NoPath, query (), body VerifyRequest => VerifyAnswer,
    ERRORS = BODY_ERRORS
);
endpoint!(
    /// A sandbox: an isolated in-memory ledger with a hand-set clock (operator tokens).
    CreateSandbox: Post "/v1/sandboxes", path NoPath, query (), body SandboxRequest => SandboxAnswer,
    STATUS = 201, ERRORS = &[400, 401, 403, 404, 409, 413, 415, 503]
);
endpoint!(
    /// Ends a sandbox.
    DeleteSandbox: Delete "/v1/sandboxes/{id}", path SandboxPath, query (), body () => (),
    STATUS = 204, MEDIA = Media::Empty
);
endpoint!(
    /// Moves a sandbox's clock forward.
    SetSandboxClock: Put "/v1/sandboxes/{id}/clock", path SandboxPath, query (), body ClockRequest => ClockAnswer,
    ERRORS = &[400, 401, 403, 404, 409, 413, 415, 503]
);

/// Every endpoint, as `(method, path)`, for tests that hold the router and the document to it.
pub const ENDPOINTS: &[(Method, &str)] = &[
    (Health::METHOD, Health::PATH),
    (Metrics::METHOD, Metrics::PATH),
    (OpenApi::METHOD, OpenApi::PATH),
    (SubmitCommand::METHOD, SubmitCommand::PATH),
    (Feed::METHOD, Feed::PATH),
    (Records::METHOD, Records::PATH),
    (Check::METHOD, Check::PATH),
    (CheckBatch::METHOD, CheckBatch::PATH),
    (WhoCan::METHOD, WhoCan::PATH),
    (Permissions::METHOD, Permissions::PATH),
    (Scopes::METHOD, Scopes::PATH),
    (Members::METHOD, Members::PATH),
    (User::METHOD, User::PATH),
    (Roles::METHOD, Roles::PATH),
    (Invites::METHOD, Invites::PATH),
    (Audit::METHOD, Audit::PATH),
    (AuditExport::METHOD, AuditExport::PATH),
    (Diff::METHOD, Diff::PATH),
    (Timeline::METHOD, Timeline::PATH),
    (Orgs::METHOD, Orgs::PATH),
    (Snapshot::METHOD, Snapshot::PATH),
    (SnapshotCsv::METHOD, SnapshotCsv::PATH),
    (Access::METHOD, Access::PATH),
    (GetDigest::METHOD, GetDigest::PATH),
    (Verify::METHOD, Verify::PATH),
    (CreateSandbox::METHOD, CreateSandbox::PATH),
    (DeleteSandbox::METHOD, DeleteSandbox::PATH),
    (SetSandboxClock::METHOD, SetSandboxClock::PATH),
];

/// A sandbox's whole API, under `/sandboxes/{id}/`: every method, the rest of the path as the
/// sandbox's own router reads it.
pub const SANDBOX_FORWARD: &str = "/sandboxes/{id}/{*rest}";

/// Every answer that is not 2xx: a stable code and a sentence naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// A refusal code of domain.md, or one of the API's own: `unauthorized`, `too_large`,
    /// `unsupported_media_type`, `method_not_allowed`, `behind`, `unavailable`, and a cluster
    /// node's `no_writer` and `no_quorum` (503, with `Retry-After`).
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_fill_their_parameters_percent_encoded() {
        let args = OrgUserPath {
            org: "acme".parse().unwrap(),
            user: "ann".parse().unwrap(),
        };
        assert_eq!(path::<User>(&args), "/v1/orgs/acme/users/ann");
        assert_eq!(encode("inbox:a b+"), "inbox%3Aa%20b%2B");
        assert_eq!(path::<Health>(&NoPath {}), "/healthz");
    }
}
