//! The server held to its own OpenAPI document: requests made from the document's operations and
//! parameters (valid ones, then each required parameter left out and each patterned one broken)
//! are answered with a status the document lists for that operation, with the documented media
//! type, and a JSON answer carries every property its schema requires, recursively.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::Request;
use permledger_server::{router, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;
use common::state;

/// What came back: status, media type, body.
async fn send(
    s: &AppState,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (u16, String, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", "Bearer op");
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = router(s.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let media = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, media, bytes.to_vec())
}

/// A valid value for a parameter or field, by the schema it names.
fn sample(schema: &Value, name: &str) -> Value {
    let by_ref = schema["$ref"]
        .as_str()
        .map(|r| r.rsplit('/').next().unwrap().to_string());
    match (by_ref.as_deref(), name) {
        (Some("UserId"), _) | (_, "as") => json!("ann"),
        (Some("OrgId"), _) => json!("acme"),
        (Some("PermissionKey"), _) => json!("team.view"),
        (Some("Scope"), _) => json!("team:support"),
        (Some("ScopeKind"), _) => json!("team"),
        (Some("ExportFormat"), _) => json!("csv"),
        (Some("At"), _) => json!(1),
        // An enumeration stated in place (a snapshot's table): its first value.
        (None, _) if schema["enum"].is_array() => schema["enum"][0].clone(),
        _ => panic!("no sample for parameter `{name}` of schema {schema}"),
    }
}

/// A value the parameter's schema refuses: too long for a user id, off the pattern for the rest.
fn broken(schema: &Value) -> String {
    match schema["$ref"]
        .as_str()
        .map(|r| r.rsplit('/').next().unwrap())
    {
        Some("UserId") => "u".repeat(129),
        _ => "Not A Valid Value!".to_string(),
    }
}

/// A body the operation accepts, by its schema's name.
fn body_for(schema: &Value) -> Value {
    match schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap() {
        "CommandRequest" => {
            json!({"as": "ann", "do": {"type": "create_team", "org": "acme", "team": "sales"}})
        }
        "BatchRequest" => {
            json!({"items": [{"user": "ann", "permission": "team.view", "scope": "org"}]})
        }
        "VerifyRequest" | "SandboxRequest" => json!({}),
        "ClockRequest" => json!({"now": "2026-03-02T00:00:00Z"}),
        other => panic!("no sample body for {other}"),
    }
}

/// Every property the schema requires is in the value, recursively through references,
/// arrays, and the one alternative of a `oneOf` that the value's tag names.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().try_for_each(|s| conforms(doc, s, value, at));
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let fits = one.iter().any(|s| conforms(doc, s, value, at).is_ok());
        return fits
            .then_some(())
            .ok_or_else(|| format!("{at}: {value} is none of the alternatives"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!(
            "{at}: {value} is {kind}, the schema says {types:?}"
        ));
    }
    if let Some(enumerated) = schema["enum"].as_array() {
        if !enumerated.contains(value) {
            return Err(format!("{at}: {value} is not one of {enumerated:?}"));
        }
    }
    if let (Some(required), Some(object)) = (schema["required"].as_array(), value.as_object()) {
        for field in required {
            let field = field.as_str().unwrap();
            if !object.contains_key(field) {
                return Err(format!(
                    "{at}: `{field}` is required and missing from {value}"
                ));
            }
        }
    }
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (k, v) in object {
            if let Some(p) = props.get(k) {
                conforms(doc, p, v, &format!("{at}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            conforms(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn every_operation_answers_as_the_document_says() {
    let s = state();
    for (actor, cmd) in [
        (
            "ann",
            json!({"type": "create_org", "org": "acme", "preset": "teaminbox"}),
        ),
        (
            "ann",
            json!({"type": "create_team", "org": "acme", "team": "support"}),
        ),
    ] {
        let (status, _, body) = send(
            &s,
            "POST",
            "/v1/commands",
            Some(json!({"as": actor, "do": cmd})),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (_, _, doc) = send(&s, "GET", "/openapi.json", None).await;
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    let mut failures = Vec::new();
    let mut asked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if path == "/v1/feed" || path == "/v1/records" {
                continue; // endless streams; the server and replica tests read them
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let uri_with = |skip: Option<&str>, broken: Option<&str>| {
                let mut uri = path.clone();
                let mut query = Vec::new();
                for p in &params {
                    let name = p["name"].as_str().unwrap();
                    if p["in"] == "path" {
                        let v = match name {
                            "id" => "no-such-sandbox".to_string(),
                            _ if broken == Some(name) => {
                                permledger_api::encode(&self::broken(&p["schema"]))
                            }
                            _ => sample(&p["schema"], name).as_str().unwrap().to_string(),
                        };
                        uri = uri.replace(&format!("{{{name}}}"), &v);
                    } else if p["required"] == true && skip != Some(name) {
                        let v = if broken == Some(name) {
                            self::broken(&p["schema"])
                        } else {
                            match sample(&p["schema"], name) {
                                Value::String(s) => s,
                                other => other.to_string(),
                            }
                        };
                        query.push(format!("{name}={}", permledger_api::encode(&v)));
                    }
                }
                if query.is_empty() {
                    uri
                } else {
                    format!("{uri}?{}", query.join("&"))
                }
            };
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|_| body_for(&op["requestBody"]["content"]["application/json"]["schema"]));
            let method_upper = method.to_ascii_uppercase();
            // The valid request, then each required query parameter left out, then each
            // parameter with a pattern broken.
            let mut requests = vec![(uri_with(None, None), "valid")];
            for p in &params {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "query" && p["required"] == true {
                    requests.push((uri_with(Some(name), None), "a required parameter left out"));
                }
                let patterned = p["schema"]["$ref"].as_str().is_some_and(|r| {
                    let n = r.rsplit('/').next().unwrap();
                    doc["components"]["schemas"][n]["pattern"].is_string()
                });
                if patterned && name != "id" && (p["in"] == "path" || p["required"] == true) {
                    requests.push((uri_with(None, Some(name)), "a pattern broken"));
                }
            }
            for (uri, what) in requests {
                asked += 1;
                let (status, media, bytes) = send(&s, &method_upper, &uri, body.clone()).await;
                let documented = &op["responses"][status.to_string()];
                if !documented.is_object() {
                    failures.push(format!(
                        "{method_upper} {uri} ({what}): {status} is not a documented answer: {}",
                        String::from_utf8_lossy(&bytes)
                    ));
                    continue;
                }
                if what != "valid" && status != 400 {
                    failures.push(format!("{method_upper} {uri} ({what}): {status}, not 400"));
                }
                let content = documented["content"].as_object();
                let Some(content) = content else {
                    if !bytes.is_empty() {
                        failures.push(format!(
                            "{method_upper} {uri}: a body where none is documented"
                        ));
                    }
                    continue;
                };
                let base = media.split(';').next().unwrap().trim().to_string();
                let declared = content
                    .keys()
                    .find(|k| k.split(';').next().unwrap().trim() == base);
                let Some(declared) = declared else {
                    failures.push(format!(
                        "{method_upper} {uri}: media `{media}` is not among {:?}",
                        content.keys().collect::<Vec<_>>()
                    ));
                    continue;
                };
                if base == "application/json" {
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if let Err(e) = conforms(&doc, &content[declared]["schema"], &value, "answer") {
                        failures.push(format!("{method_upper} {uri} ({what}): {e}"));
                    }
                }
            }
        }
    }
    assert!(
        asked > 40,
        "only {asked} requests were made from the document"
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
