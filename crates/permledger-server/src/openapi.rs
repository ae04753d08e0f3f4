//! The OpenAPI document served at `/openapi.json`, built from the endpoint table below. The table
//! is the one place that describes each route's parameters; a test walks it against the router so
//! that a route missing from either side fails.

use serde_json::{json, Map, Value};

/// One query parameter: name, JSON type, required, description.
pub type Param = (&'static str, &'static str, bool, &'static str);

pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    pub body: Option<&'static str>,
    pub open: bool,
}

const MOMENT: [Param; 3] = [
    (
        "at_seq",
        "integer",
        false,
        "answer after the event at this log position",
    ),
    (
        "at_time",
        "string",
        false,
        "answer after every event recorded at or before this RFC 3339 time",
    ),
    (
        "min_seq",
        "integer",
        false,
        "wait (up to 5 s) until the views hold this position: read-your-writes",
    ),
];

macro_rules! with_moment {
    ($($p:expr),* $(,)?) => {
        &[$($p,)* MOMENT[0], MOMENT[1], MOMENT[2]]
    };
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "get", path: "/healthz", summary: "Liveness and the published log position", params: &[], body: None, open: true },
    Endpoint { method: "get", path: "/metrics", summary: "Prometheus metrics: commands, commit latency, checks, projection lag", params: &[], body: None, open: true },
    Endpoint { method: "get", path: "/openapi.json", summary: "This document", params: &[], body: None, open: true },
    Endpoint { method: "post", path: "/v1/commands", summary: "Issue a command as a user; answers the recorded events and their position", params: &[], body: Some("CommandRequest"), open: false },
    Endpoint { method: "get", path: "/v1/feed", summary: "Server-Sent Events from a position, resumable with Last-Event-ID", params: &[("from", "integer", false, "first position to send (default 1)")], body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/check", summary: "May a user do a permission on a scope, and why", params: with_moment!(("user", "string", true, "user id"), ("permission", "string", true, "permission key"), ("scope", "string", true, "org, team:<id> or inbox:<id>")), body: None, open: false },
    Endpoint { method: "post", path: "/v1/orgs/{org}/check/batch", summary: "Many checks at one moment", params: &[], body: Some("BatchRequest"), open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/who_can", summary: "Users holding a permission on a scope", params: with_moment!(("permission", "string", true, "permission key"), ("scope", "string", true, "scope")), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/permissions", summary: "Every permission a user holds on a scope", params: with_moment!(("user", "string", true, "user id"), ("scope", "string", true, "scope")), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/scopes", summary: "Scopes where a user holds a permission", params: with_moment!(("user", "string", true, "user id"), ("permission", "string", true, "permission key"), ("kind", "string", false, "org, team or inbox")), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/members", summary: "Members of a scope with their role and status", params: with_moment!(("scope", "string", true, "scope")), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/users/{user}", summary: "A user's standing: status, ownership, roles and grants", params: with_moment!(), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/roles", summary: "Roles as defined at the moment", params: with_moment!(), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/invites", summary: "Pending invites and usable invite links", params: with_moment!(), body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/audit", summary: "The audit log, filtered and paged; the reader needs org.audit.view (or team.audit.view for a team's subtree)", params: &[
        ("as", "string", true, "the reader"), ("actor", "string", false, "who acted"), ("user", "string", false, "who the event is about"),
        ("scope", "string", false, "events about this scope or below"), ("types", "string", false, "comma-separated event types"),
        ("from", "string", false, "recorded at or after (RFC 3339)"), ("to", "string", false, "recorded at or before (RFC 3339)"),
        ("at_seq", "integer", false, "only events up to this position"), ("at_time", "string", false, "only events up to this time"), ("after", "integer", false, "pagination cursor"), ("limit", "integer", false, "page size, 1 to 1000"),
    ], body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/audit/export", summary: "The whole filtered audit log, streamed as JSON Lines or CSV", params: &[
        ("as", "string", true, "the reader"), ("actor", "string", false, "who acted"), ("user", "string", false, "who the event is about"),
        ("scope", "string", false, "events about this scope or below"), ("types", "string", false, "comma-separated event types"),
        ("from", "string", false, "recorded at or after (RFC 3339)"), ("to", "string", false, "recorded at or before (RFC 3339)"),
        ("at_seq", "integer", false, "only events up to this position"), ("at_time", "string", false, "only events up to this time"), ("format", "string", false, "jsonl (default) or csv"),
    ], body: None, open: false },
    Endpoint { method: "get", path: "/v1/orgs/{org}/diff", summary: "Effective permissions gained and lost between two moments", params: &[
        ("from_seq", "integer", false, "first moment by position"), ("from_time", "string", false, "first moment by time"),
        ("to_seq", "integer", false, "second moment by position (default: now)"), ("to_time", "string", false, "second moment by time"),
        ("user", "string", false, "only this user"), ("scope", "string", false, "only this scope and below"),
    ], body: None, open: false },
    Endpoint { method: "post", path: "/v1/verify", summary: "Operators: verify the hash chain, the served projections against a rebuild, and the past at given positions", params: &[], body: Some("VerifyRequest"), open: false },
    Endpoint { method: "post", path: "/v1/sandboxes", summary: "Operators, with serve --sandboxes: a new isolated in-memory ledger with a hand-set clock, served under /sandboxes/{id}/", params: &[], body: Some("SandboxRequest"), open: false },
    Endpoint { method: "delete", path: "/v1/sandboxes/{id}", summary: "Operators: drop a sandbox and its ledger", params: &[], body: None, open: false },
    Endpoint { method: "put", path: "/v1/sandboxes/{id}/clock", summary: "Operators: move a sandbox's clock forward (it never goes back)", params: &[], body: Some("ClockRequest"), open: false },
    Endpoint { method: "get", path: "/sandboxes/{id}/{rest}", summary: "Operators: any route of this API (every method), answered by the sandbox's own ledger", params: &[], body: None, open: false },
];

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(e.params.iter().map(|(name, ty, required, description)| {
            json!({"name": name, "in": "query", "required": required, "description": description, "schema": {"type": ty}})
        }));
        let mut op = json!({
            "summary": e.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "the answer"},
                "4XX": {"description": "refused or malformed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if let Some(body) = e.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        if e.open {
            op["security"] = json!([]);
        }
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[e.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "permledger", "version": env!("CARGO_PKG_VERSION"), "description": "An event-sourced permission ledger"},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "description": "a code of domain.md, or unauthorized / unavailable"},
                    "message": {"type": "string"}}},
                "CommandRequest": {"type": "object", "required": ["as", "do"], "additionalProperties": false, "properties": {
                    "as": {"type": "string", "description": "the acting user"},
                    "do": {"type": "object", "description": "a command of scenarios.md: {\"type\": NAME, \"org\": ORG, ...}"},
                    "reason": {"type": "string"}, "request_id": {"type": "string"}, "idempotency_key": {"type": "string"},
                    "expect_version": {"type": "integer"}}},
                "BatchRequest": {"type": "object", "required": ["items"], "additionalProperties": false, "properties": {
                    "items": {"type": "array", "items": {"type": "object", "required": ["user", "permission", "scope"]}},
                    "at_seq": {"type": "integer"}, "at_time": {"type": "string"}, "min_seq": {"type": "integer"}}},
                "VerifyRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "chain": {"type": "boolean", "description": "recompute the hash chain over every stored event (default true)"},
                    "projections": {"type": "boolean", "description": "also compare the served projections with a rebuild (default true)"},
                    "past": {"type": "array", "items": {"type": "integer"}, "description": "positions whose reconstructed state to compare with a plain fold"}}},
                "SandboxRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "clock": {"type": "string", "description": "the first time of the sandbox's clock (default 2026-01-01T00:00:00Z)"}}},
                "ClockRequest": {"type": "object", "required": ["now"], "additionalProperties": false, "properties": {
                    "now": {"type": "string", "description": "RFC 3339, at or after the sandbox's current time"}}}
            }
        }
    })
}
