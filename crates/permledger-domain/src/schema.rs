//! JSON Schemas of the domain's types for the OpenAPI document (utoipa). The ids, scopes, keys
//! and times are JSON strings with their own rules, given here as patterns and lengths so that a
//! generated client (and a fuzzer reading the document) knows what the server accepts.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::catalog::{Pattern, PermissionKey};
use crate::ids::{InboxId, InviteId, LinkId, OrgId, RoleId, Scope, TeamId, Timestamp, UserId};

/// A string schema with a pattern, lengths and a description.
fn string(description: &str, pattern: &str, min: usize, max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(min))
        .max_length(Some(max))
        .into()
}

/// The slug every id but a user's follows.
pub const SLUG: &str = "^[a-z0-9][a-z0-9_-]{0,63}$";

macro_rules! slug_schema {
    ($($name:ident: $what:literal,)*) => {$(
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string(concat!("a ", $what, ": a slug"), SLUG, 1, 64)
            }
        }
        impl ToSchema for $name {}
    )*};
}

slug_schema! {
    OrgId: "org id",
    TeamId: "team id",
    InboxId: "inbox id",
    RoleId: "role id",
    InviteId: "invite id",
    LinkId: "invite link id",
}

impl PartialSchema for UserId {
    fn schema() -> RefOr<Schema> {
        string(
            "a user id from the product's identity provider: 1 to 128 printable characters",
            "^[^\\u0000-\\u001f\\u007f-\\u009f]{1,128}$",
            1,
            128,
        )
    }
}
impl ToSchema for UserId {}

impl PartialSchema for Scope {
    fn schema() -> RefOr<Schema> {
        string(
            "`org`, `team:ID` or `inbox:ID`",
            "^(org|team:[a-z0-9][a-z0-9_-]{0,63}|inbox:[a-z0-9][a-z0-9_-]{0,63})$",
            3,
            70,
        )
    }
}
impl ToSchema for Scope {}

impl PartialSchema for PermissionKey {
    fn schema() -> RefOr<Schema> {
        string(
            "a dotted permission key such as `inbox.thread.reply`: two to eight segments of [a-z0-9_]",
            "^[a-z0-9_]+(\\.[a-z0-9_]+){1,7}$",
            3,
            128,
        )
    }
}
impl ToSchema for PermissionKey {}

impl PartialSchema for Pattern {
    fn schema() -> RefOr<Schema> {
        string(
            "a permission key, a prefix wildcard such as `inbox.thread.*`, or `*`",
            "^(\\*|[a-z0-9_]+(\\.[a-z0-9_]+){0,7}\\.\\*|[a-z0-9_]+(\\.[a-z0-9_]+){1,7})$",
            1,
            130,
        )
    }
}
impl ToSchema for Pattern {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("an RFC 3339 instant, such as 2026-03-03T17:00:00Z"))
            .into()
    }
}
impl ToSchema for Timestamp {}

/// An object schema with a tag property added (`"type": "role_assigned"`), required, as serde's
/// internally tagged enums write it.
pub fn tagged(schema: RefOr<Schema>, tag: &str, value: &str) -> RefOr<Schema> {
    let tag_schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build();
    match schema {
        RefOr::T(Schema::Object(mut object)) => {
            object.properties.insert(tag.to_string(), tag_schema.into());
            object.required.push(tag.to_string());
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}
