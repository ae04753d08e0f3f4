//! The parts of a request as the contract reads them. Whatever layer catches a mistake (the body's
//! media type or size, its JSON, the query string, a path segment), the answer is the one error
//! shape `{"code","message"}` with the status of its code, and the message names the field and
//! the rule in the API's words (never a Rust type).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use permledger_domain::json::Object;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::MAX_BODY;

/// A JSON body: `Content-Type: application/json`, at most `MAX_BODY` bytes, and a JSON object
/// whose fields are those of `T` (structs are read from objects only).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::unsupported_media_type(
                "send the body as JSON, with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| match r {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                too_large()
            }
            other => ApiError::invalid(format!("the body could not be read: {other}")),
        })?;
        parse(&bytes).map(JsonBody)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

pub fn too_large() -> ApiError {
    ApiError::too_large(format!(
        "the body is larger than {MAX_BODY} bytes, the most a request may carry"
    ))
}

/// A request body's JSON: an object, read field by field into `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let object: Object = serde::Deserialize::deserialize(&mut de)
        .and_then(|o| de.end().map(|()| o))
        .map_err(|e| {
            ApiError::invalid(match e.classify() {
                serde_json::error::Category::Data => "the body must be a JSON object".to_string(),
                _ => format!("the body is not valid JSON: {e}"),
            })
        })?;
    let mut value = serde_json::Value::Object(object.0);
    integral_floats(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|e| ApiError::invalid(field_message(e.path().to_string(), e.inner())))
}

/// JSON does not tell `7` from `7.0`, and JSON Schema counts both as integers; serde's integers
/// take only the first. The API has no fractional field, so a number with no fractional part
/// is read as the integer it is.
fn integral_floats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f) {
                    *v = serde_json::Value::from(f as u64);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(integral_floats),
        serde_json::Value::Object(o) => o.values_mut().for_each(integral_floats),
        _ => {}
    }
}

/// The query string, read field by field into `T`.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query<T>, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(Query).or_else(|_| {
            // Read again, following the fields, only to name the wrong one: tracking them costs
            // a well-formed query (every check) a third of its reading.
            let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
            serde_path_to_error::deserialize(de)
                .map(Query)
                .map_err(|e| ApiError::invalid(field_message(e.path().to_string(), e.inner())))
        })
    }
}

/// Path parameters; a segment that is not UTF-8 once decoded is named.
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParams<T>, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(t)) => Ok(PathParams(t)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                use axum::extract::path::ErrorKind;
                Err(ApiError::invalid(match e.into_kind() {
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("the path segment `{key}` is not valid UTF-8")
                    }
                    other => format!("the path does not name a resource: {other}"),
                }))
            }
            Err(other) => Err(ApiError::invalid(format!(
                "the path does not name a resource: {other}"
            ))),
        }
    }
}

/// `field: what was wrong`, in the API's words: serde's messages name Rust types (`expected
/// struct CommandRequest`, `expected u64`), which a client cannot act on.
fn field_message(path: String, e: &impl std::fmt::Display) -> String {
    let message = api_words(&e.to_string());
    if path.is_empty() || path == "." {
        message
    } else {
        format!("`{path}`: {message}")
    }
}

fn api_words(message: &str) -> String {
    const TYPES: [(&str, &str); 11] = [
        (
            "expected internally tagged enum Command",
            "expected a command object with its `type`",
        ),
        (
            "expected u64",
            "expected a whole number from 0 to 18446744073709551615",
        ),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected usize", "expected a whole number from 0"),
        ("expected a boolean", "expected true or false"),
        ("invalid digit found in string", "expected a whole number"),
        (
            "number too large to fit in target type",
            "the number is too large",
        ),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a JSON object"),
        ("expected a borrowed string", "expected a string"),
        ("expected unit", "expected null"),
    ];
    let mut out = message.to_string();
    // `expected struct Name` and `expected enum Name` name Rust types.
    for (marker, words) in [
        ("expected struct ", "expected a JSON object"),
        ("expected enum ", "expected one of the documented values"),
    ] {
        while let Some(i) = out.find(marker) {
            let rest = &out[i + marker.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out = format!("{}{words}{}", &out[..i], &rest[end..]);
        }
    }
    for (from, to) in TYPES {
        out = out.replace(from, to);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn messages_name_no_rust_type() {
        assert_eq!(
            api_words("invalid type: integer `5`, expected struct CheckItem"),
            "invalid type: integer `5`, expected a JSON object"
        );
        assert_eq!(
            api_words("invalid type: string \"x\", expected u64"),
            "invalid type: string \"x\", expected a whole number from 0 to 18446744073709551615"
        );
    }
}
