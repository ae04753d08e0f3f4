//! The OpenAPI 3.1 document, derived from the endpoint types: each operation's id, summary,
//! parameters (with the patterns and ranges the server enforces), request body, answer with its
//! media type and schema, and the statuses of the refusals it may give. Nothing here lists a
//! field by hand; a field added to a request or answer type appears in the document.

use utoipa::openapi::path::{Operation, OperationBuilder, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, Paths,
    RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::{Endpoint, ErrorBody, Media, Method};

/// A query's parameters for the document.
pub trait QueryDoc {
    fn parameters() -> Vec<Parameter>;
}

impl QueryDoc for () {
    fn parameters() -> Vec<Parameter> {
        Vec::new()
    }
}

/// Implements `QueryDoc` for query types that derive `IntoParams`.
macro_rules! query_doc {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::openapi::QueryDoc for $t {
            fn parameters() -> Vec<utoipa::openapi::path::Parameter> {
                <$t as utoipa::IntoParams>::into_params(|| None)
            }
        }
    )*};
}
pub(crate) use query_doc;

/// The document being built: paths, and every schema they refer to.
struct Doc {
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Doc {
    /// A schema for `T`: a reference to its component (registered with those it refers to), or
    /// inline for the types that have no name of their own (`()`, JSON values).
    fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name();
        if name == "TupleUnit" || name == "Value" {
            return T::schema();
        }
        T::schemas(&mut self.schemas);
        self.schemas.push((name.to_string(), T::schema()));
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
    }

    fn add<E: Endpoint>(&mut self) {
        let mut parameters = <E::Path as IntoParams>::into_params(|| Some(ParameterIn::Path));
        parameters.extend(<E::Query as QueryDoc>::parameters());
        let mut op = OperationBuilder::new()
            .operation_id(Some(snake(E::OPERATION)))
            .summary(Some(E::SUMMARY))
            .parameters(Some(parameters));
        if E::METHOD.has_body() {
            let body = ContentBuilder::new()
                .schema(Some(self.schema::<E::Body>()))
                .build();
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", body)
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        op = op.response(E::STATUS.to_string(), self.answer::<E>());
        let error = ContentBuilder::new()
            .schema(Some(self.schema::<ErrorBody>()))
            .build();
        for status in E::ERRORS {
            op = op.response(
                status.to_string(),
                ResponseBuilder::new()
                    .description(error_description(*status))
                    .content("application/json", error.clone())
                    .build(),
            );
        }
        let mut op: Operation = op.build();
        if !E::AUTH {
            op.security = Some(vec![SecurityRequirement::default()]);
        }
        let method = match E::METHOD {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Delete => HttpMethod::Delete,
        };
        self.paths.add_path_operation(E::PATH, vec![method], op);
    }

    fn answer<E: Endpoint>(&mut self) -> utoipa::openapi::Response {
        let text = || ObjectBuilder::new().schema_type(Type::String).build();
        let r = ResponseBuilder::new();
        match E::MEDIA {
            Media::Json => r.description("the answer").content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(self.schema::<E::Answer>()))
                    .build(),
            ),
            Media::EventStream => r
                .description(
                    "Server-Sent Events, each `id` a log position; what each `data` holds is \
                     in the operation's summary",
                )
                .content(
                    "text/event-stream",
                    ContentBuilder::new().schema(Some(text())).build(),
                ),
            Media::Prometheus => r.description("Prometheus metrics").content(
                "text/plain; version=0.0.4",
                ContentBuilder::new().schema(Some(text())).build(),
            ),
            Media::Export => {
                let entry = self.schema::<permledger_views::audit::AuditEntry>();
                let digest = self.schema::<permledger_views::export::DigestLine>();
                let line = utoipa::openapi::schema::OneOfBuilder::new()
                    .item(entry)
                    .item(digest);
                r.description(
                    "every matching entry: one AuditEntry per line (JSON Lines) and last a \
                     DigestLine, or CSV with a header row and last `#digest,SEQ:HASH`; the \
                     `permledger-digest` header names the same digest",
                )
                .content(
                    "application/x-ndjson",
                    ContentBuilder::new().schema(Some(line)).build(),
                )
                .content(
                    "text/csv",
                    ContentBuilder::new().schema(Some(text())).build(),
                )
            }
            Media::Csv => r
                .description(
                    "a CSV file (RFC 4180): a header row, a row per item, and last \
                     `#digest,SEQ:HASH`; cells that a spreadsheet would run start with `'`",
                )
                .content(
                    "text/csv",
                    ContentBuilder::new().schema(Some(text())).build(),
                ),
            Media::Empty => r.description("done; no content"),
        }
        .build()
    }
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "`invalid`: malformed or out of bounds",
        401 => "`unauthorized`: no token, or an unknown one",
        403 => "`forbidden`, `escalation` or `suspended`",
        404 => "`not_found`",
        409 => "`already_exists`, `owner_protected`, `role_in_use`, `invite_closed` or `conflict`",
        410 => "`invite_expired`",
        413 => "`too_large`: the body is over 262144 bytes",
        415 => "`unsupported_media_type`: the body is not sent as application/json",
        422 => "`not_member` or `kind_mismatch`",
        503 => "`behind` (min_seq not reached within 5 s) or `unavailable`",
        _ => "refused",
    }
}

/// `WhoCan` -> `who_can`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The largest integer JSON carries exactly (2^53 - 1): the bound stated for every position,
/// version and count, which are u64 in Rust but never near it.
pub const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// The OpenAPI 3.1 document of every endpoint, as JSON.
///
/// Two facts the derive cannot state are added to what it wrote: every unsigned integer's upper
/// bound (`MAX_SAFE_INTEGER`), and that a command's fields are exactly those of its type (serde's
/// `deny_unknown_fields` on the enum, which utoipa does not carry into the variants).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(derived()).unwrap_or_default();
    bound_unsigned(&mut doc);
    if let Some(variants) = doc
        .pointer_mut("/components/schemas/Command/oneOf")
        .and_then(|v| v.as_array_mut())
    {
        for v in variants {
            v["additionalProperties"] = serde_json::Value::Bool(false);
        }
    }
    doc
}

/// Adds `maximum` to every integer schema that has `minimum: 0` and none of its own.
fn bound_unsigned(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            let integer = match o.get("type") {
                Some(serde_json::Value::String(t)) => t == "integer",
                Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                _ => false,
            };
            let unsigned = o
                .get("minimum")
                .and_then(|m| m.as_f64())
                .is_some_and(|m| m >= 0.0);
            if integer && unsigned && !o.contains_key("maximum") {
                o.insert("maximum".into(), MAX_SAFE_INTEGER.into());
            }
            o.values_mut().for_each(bound_unsigned);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(bound_unsigned),
        _ => {}
    }
}

/// What utoipa derives from the endpoint types.
fn derived() -> OpenApi {
    use crate::*;
    let mut doc = Doc {
        paths: Paths::new(),
        schemas: Vec::new(),
    };
    doc.add::<Health>();
    doc.add::<Metrics>();
    doc.add::<OpenApi>();
    doc.add::<SubmitCommand>();
    doc.add::<Feed>();
    doc.add::<Records>();
    doc.add::<Check>();
    doc.add::<CheckBatch>();
    doc.add::<WhoCan>();
    doc.add::<Permissions>();
    doc.add::<Scopes>();
    doc.add::<Members>();
    doc.add::<User>();
    doc.add::<Roles>();
    doc.add::<Invites>();
    doc.add::<Audit>();
    doc.add::<AuditExport>();
    doc.add::<Diff>();
    doc.add::<Timeline>();
    doc.add::<Orgs>();
    doc.add::<Snapshot>();
    doc.add::<SnapshotCsv>();
    doc.add::<Access>();
    doc.add::<GetDigest>();
    doc.add::<Verify>();
    doc.add::<CreateSandbox>();
    doc.add::<DeleteSandbox>();
    doc.add::<SetSandboxClock>();
    // The command body is generic over its command, whose schema utoipa does not collect.
    doc.schema::<permledger_domain::Command>();
    // What each message of the records' stream carries (its media is text).
    doc.schema::<StoredRecord>();
    // Parameters refer to these by name.
    for (name, schema) in [
        ("ScopeKind", permledger_domain::ScopeKind::schema()),
        ("ExportFormat", ExportFormat::schema()),
        ("At", At::schema()),
        ("Timestamp", permledger_domain::Timestamp::schema()),
    ] {
        doc.schemas.push((name.to_string(), schema));
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc.schemas.sort_by(|a, b| a.0.cmp(&b.0));
    doc.schemas.dedup_by(|a, b| a.0 == b.0);
    for (name, schema) in doc.schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("permledger")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "An event-sourced permission ledger: commands, checks and reads at any \
                     moment, the audit log. Every answer that is not 2xx is an ErrorBody.",
                ))
                .build(),
        )
        .paths(doc.paths)
        .components(Some(components.build()))
        .security(Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]))
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_endpoint_is_an_operation_with_an_id_and_typed_answers() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut ids = Vec::new();
        for (method, path) in crate::ENDPOINTS {
            let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
            assert!(op.is_object(), "{} {path} is missing", method.as_str());
            ids.push(op["operationId"].as_str().unwrap().to_string());
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "operation ids are unique");
        let check = &doc["paths"]["/v1/orgs/{org}/check"]["get"];
        assert_eq!(check["operationId"], "check");
        assert_eq!(
            check["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CheckAnswer"
        );
        let names: Vec<&str> = check["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "org",
                "user",
                "permission",
                "scope",
                "explain",
                "at",
                "min_seq"
            ]
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["OrgId"]["pattern"], crate::SLUG_PATTERN);
        assert_eq!(schemas["u64"]["maximum"], MAX_SAFE_INTEGER, "positions");
        assert_eq!(
            check["parameters"][6]["schema"]["maximum"], MAX_SAFE_INTEGER,
            "min_seq"
        );
        assert_eq!(
            schemas["Command"]["oneOf"][0]["additionalProperties"],
            false
        );
        for name in [
            "CheckAnswer",
            "Explanation",
            "Fact",
            "Denial",
            "Moment",
            "ErrorBody",
        ] {
            assert!(schemas[name].is_object(), "schema {name} is missing");
        }
        // Every reference resolves.
        let text = serde_json::to_string(&doc).unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(schemas[name].is_object(), "a reference to {name} dangles");
        }
    }

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake("WhoCan"), "who_can");
        assert_eq!(snake("Check"), "check");
    }
}
