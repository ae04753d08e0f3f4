//! A sandbox of a running server as a scenario target: the file is played through the public
//! HTTP API exactly as a service or an admin tool would call it. Each file gets a sandbox of its
//! own (an isolated in-memory ledger with a hand-set clock, `serve --sandboxes`), because files
//! each start their clock afresh and a ledger's recorded time never goes back.

use std::collections::BTreeMap;

use permledger_client::{query, request};
use permledger_domain::{
    Code, Explanation, PermissionKey, Rejection, RoleId, Scope, Seq, Timestamp, UserId,
};
use permledger_views::At;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::format::{
    AuditQuerySpec, CheckQuery, DiffQuery, DoStep, MembersQuery, PermissionsQuery, ScopesQuery,
    WhoCanQuery,
};
use crate::target::{Answer, Recorded, Target};

pub struct Remote {
    server: String,
    token: String,
    id: String,
    /// `server` + `/sandboxes/{id}`: the API of this sandbox.
    base: String,
}

/// A refusal body: `{"code", "message"}`.
#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

enum Reply {
    Ok(Value),
    Refused(u16, ErrorBody),
}

impl Remote {
    /// Creates a sandbox on `server` (an operator token is needed) with its clock at `start`.
    pub fn create(server: &str, token: &str, start: Timestamp) -> Answer<Remote> {
        let server = server.trim_end_matches('/').to_string();
        let body = json!({"clock": start}).to_string();
        let reply = call(&server, token, "POST", "/v1/sandboxes", Some(&body))?;
        let created = ok(reply, "POST /v1/sandboxes")?;
        let id = created["id"]
            .as_str()
            .ok_or("the server answered a sandbox without an id")?
            .to_string();
        Ok(Remote {
            base: format!("{server}/sandboxes/{id}"),
            server,
            token: token.to_string(),
            id,
        })
    }

    fn get(&self, path: &str) -> Answer<Reply> {
        call(&self.base, &self.token, "GET", path, None)
    }

    /// An org read; an org that does not exist at that moment answers nothing, as in process.
    fn org_read<T: DeserializeOwned + Default>(&self, path: &str, field: &str) -> Answer<T> {
        match self.get(path)? {
            Reply::Refused(404, e) if e.code == "not_found" => Ok(T::default()),
            reply => field_of(&ok(reply, path)?, path, field),
        }
    }

    fn verify(&self, body: Value) -> Answer<Value> {
        let reply = call(
            &self.base,
            &self.token,
            "POST",
            "/v1/verify",
            Some(&body.to_string()),
        )?;
        ok(reply, "POST /v1/verify")
    }
}

fn call(base: &str, token: &str, method: &str, path: &str, body: Option<&str>) -> Answer<Reply> {
    let resp = request(base, method, path, Some(token), body).map_err(|e| e.to_string())?;
    if (200..300).contains(&resp.status) {
        if resp.body.is_empty() {
            return Ok(Reply::Ok(Value::Null));
        }
        return serde_json::from_str(&resp.body)
            .map(Reply::Ok)
            .map_err(|e| format!("{method} {path}: the answer is not JSON: {e}"));
    }
    serde_json::from_str::<ErrorBody>(&resp.body)
        .map(|e| Reply::Refused(resp.status, e))
        .map_err(|_| {
            format!(
                "{method} {path}: status {} without an error body: {}",
                resp.status, resp.body
            )
        })
}

/// One field of an answer, as the type the runner compares.
fn field_of<T: DeserializeOwned>(v: &Value, path: &str, field: &str) -> Answer<T> {
    serde_json::from_value(v[field].clone())
        .map_err(|e| format!("GET {path}: `{field}` is not what was expected: {e}"))
}

fn ok(reply: Reply, what: &str) -> Answer<Value> {
    match reply {
        Reply::Ok(v) => Ok(v),
        Reply::Refused(status, e) => Err(format!("{what}: {status} `{}`: {}", e.code, e.message)),
    }
}

/// A refusal with a code of domain.md is an answer; anything else (401, 503) is the target failing.
fn refusal(status: u16, e: ErrorBody, what: &str) -> Answer<Rejection> {
    match serde_json::from_value::<Code>(Value::String(e.code.clone())) {
        Ok(code) => Ok(Rejection {
            code,
            message: e.message,
        }),
        Err(_) => Err(format!("{what}: {status} `{}`: {}", e.code, e.message)),
    }
}

fn moment(prefix: &str, at: Option<At>) -> [(String, Option<String>); 2] {
    let (seq, time) = match at {
        None => (None, None),
        Some(At::Seq(n)) => (Some(n.to_string()), None),
        Some(At::Time(t)) => (None, Some(t.to_string())),
    };
    [
        (format!("{prefix}_seq"), seq),
        (format!("{prefix}_time"), time),
    ]
}

/// `?k=v&...` of fixed pairs and the moment's `at_seq`/`at_time`.
fn params(fixed: Vec<(&str, Option<String>)>, at: Option<At>) -> String {
    let m = moment("at", at);
    query(
        fixed
            .into_iter()
            .chain(m.iter().map(|(k, v)| (k.as_str(), v.clone()))),
    )
}

impl Target for Remote {
    fn name(&self) -> &'static str {
        "http"
    }

    fn set_clock(&mut self, t: Timestamp) -> Answer<()> {
        let body = json!({"now": t}).to_string();
        let path = format!("/v1/sandboxes/{}/clock", self.id);
        ok(
            call(&self.server, &self.token, "PUT", &path, Some(&body))?,
            &path,
        )
        .map(|_| ())
    }

    fn seq(&mut self) -> Answer<Seq> {
        let v = ok(self.get("/healthz")?, "/healthz")?;
        v["seq"]
            .as_u64()
            .ok_or_else(|| "GET /healthz: no `seq`".to_string())
    }

    fn submit(&mut self, command: &Value, d: &DoStep) -> Answer<Result<Recorded, Rejection>> {
        let mut body = json!({"as": d.actor, "do": command});
        for (k, v) in [
            ("reason", d.reason.clone().map(Value::from)),
            ("request_id", d.request_id.clone().map(Value::from)),
            (
                "idempotency_key",
                d.idempotency_key.clone().map(Value::from),
            ),
            ("expect_version", d.expect_version.map(Value::from)),
        ] {
            if let Some(v) = v {
                body[k] = v;
            }
        }
        let reply = call(
            &self.base,
            &self.token,
            "POST",
            "/v1/commands",
            Some(&body.to_string()),
        )?;
        match reply {
            Reply::Ok(v) => {
                let events = v["events"]
                    .as_array()
                    .ok_or("POST /v1/commands: no `events`")?
                    .iter()
                    .map(|e| {
                        e["payload"]["type"]
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("an event without a type: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Ok(Recorded {
                    events,
                    token: v["token"].as_str().map(str::to_string),
                }))
            }
            Reply::Refused(status, e) => refusal(status, e, "POST /v1/commands").map(Err),
        }
    }

    fn check(&mut self, q: &CheckQuery, at: Option<At>) -> Answer<Explanation> {
        let path = format!(
            "/v1/orgs/{}/check{}",
            q.org,
            params(
                vec![
                    ("user", Some(q.user.to_string())),
                    ("permission", Some(q.permission.to_string())),
                    ("scope", Some(q.scope.to_string())),
                ],
                at
            )
        );
        let v = ok(self.get(&path)?, &path)?;
        serde_json::from_value(v).map_err(|e| format!("GET {path}: not an explanation: {e}"))
    }

    fn who_can(&mut self, q: &WhoCanQuery, at: Option<At>) -> Answer<Vec<UserId>> {
        let path = format!(
            "/v1/orgs/{}/who_can{}",
            q.org,
            params(
                vec![
                    ("permission", Some(q.permission.to_string())),
                    ("scope", Some(q.scope.to_string())),
                ],
                at
            )
        );
        self.org_read(&path, "users")
    }

    fn permissions(&mut self, q: &PermissionsQuery, at: Option<At>) -> Answer<Vec<PermissionKey>> {
        let path = format!(
            "/v1/orgs/{}/permissions{}",
            q.org,
            params(
                vec![
                    ("user", Some(q.user.to_string())),
                    ("scope", Some(q.scope.to_string())),
                ],
                at
            )
        );
        self.org_read(&path, "permissions")
    }

    fn scopes(&mut self, q: &ScopesQuery, at: Option<At>) -> Answer<Vec<Scope>> {
        let kind = q
            .kind
            .map(|k| serde_json::to_value(k).unwrap_or_default())
            .and_then(|v| v.as_str().map(str::to_string));
        let path = format!(
            "/v1/orgs/{}/scopes{}",
            q.org,
            params(
                vec![
                    ("user", Some(q.user.to_string())),
                    ("permission", Some(q.permission.to_string())),
                    ("kind", kind),
                ],
                at
            )
        );
        self.org_read(&path, "scopes")
    }

    fn members(
        &mut self,
        q: &MembersQuery,
        at: Option<At>,
    ) -> Answer<BTreeMap<UserId, Option<RoleId>>> {
        #[derive(Deserialize)]
        struct Row {
            user: UserId,
            role: Option<RoleId>,
        }
        let path = format!(
            "/v1/orgs/{}/members{}",
            q.org,
            params(vec![("scope", Some(q.scope.to_string()))], at)
        );
        let rows: Vec<Row> = self.org_read(&path, "members")?;
        Ok(rows.into_iter().map(|r| (r.user, r.role)).collect())
    }

    fn diff(&mut self, q: &DiffQuery, from: At, to: At) -> Answer<(Vec<String>, Vec<String>)> {
        let from = moment("from", Some(from));
        let to = moment("to", Some(to));
        let path = format!(
            "/v1/orgs/{}/diff{}",
            q.org,
            query(
                [
                    ("user", q.user.as_ref().map(|u| u.to_string())),
                    ("scope", q.scope.as_ref().map(|s| s.to_string())),
                ]
                .into_iter()
                .chain(
                    from.iter()
                        .chain(to.iter())
                        .map(|(k, v)| (k.as_str(), v.clone()))
                )
            )
        );
        let v = ok(self.get(&path)?, &path)?;
        Ok((field_of(&v, &path, "gained")?, field_of(&v, &path, "lost")?))
    }

    fn audit(
        &mut self,
        q: &AuditQuerySpec,
        at: Option<At>,
    ) -> Answer<Result<Vec<String>, Rejection>> {
        let mut entries = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let path = format!(
                "/v1/orgs/{}/audit{}",
                q.org,
                params(
                    vec![
                        ("as", Some(q.reader.to_string())),
                        ("actor", q.actor.as_ref().map(|u| u.to_string())),
                        ("user", q.user.as_ref().map(|u| u.to_string())),
                        ("scope", q.scope.as_ref().map(|s| s.to_string())),
                        ("types", q.types.as_ref().map(|t| t.join(","))),
                        ("from", q.from.map(|t| t.to_string())),
                        ("to", q.to.map(|t| t.to_string())),
                        ("after", after.map(|a| a.to_string())),
                        ("limit", Some("1000".into())),
                    ],
                    at.clone()
                )
            );
            let page = match self.get(&path)? {
                Reply::Ok(v) => v,
                Reply::Refused(status, e) => return refusal(status, e, &path).map(Err),
            };
            let rows = page["entries"]
                .as_array()
                .ok_or_else(|| format!("GET {path}: no `entries`"))?;
            for e in rows {
                entries.push(
                    e["action"]
                        .as_str()
                        .ok_or_else(|| format!("GET {path}: an entry without `action`"))?
                        .to_string(),
                );
            }
            match page["next"].as_u64() {
                Some(next) => after = Some(next),
                None => return Ok(Ok(entries)),
            }
        }
    }

    fn verify_chain(&mut self) -> Answer<Result<(), String>> {
        let v = self.verify(json!({"projections": false}))?;
        Ok(finding(&v["chain"]))
    }

    fn verify_projections(&mut self) -> Answer<Result<(), String>> {
        let v = self.verify(json!({"chain": false, "projections": true}))?;
        Ok(finding(&v["projections"]))
    }

    fn verify_past(&mut self, seq: Seq) -> Answer<Result<(), String>> {
        let v = self.verify(json!({"chain": false, "projections": false, "past": [seq]}))?;
        Ok(finding(&v["past"][0]))
    }

    fn finish(self: Box<Self>) {
        let path = format!("/v1/sandboxes/{}", self.id);
        // A sandbox that outlives its file only costs memory until the server stops.
        let _ = call(&self.server, &self.token, "DELETE", &path, None);
    }
}

fn finding(v: &Value) -> Result<(), String> {
    if v["ok"] == true {
        Ok(())
    } else {
        Err(v["problem"]
            .as_str()
            .unwrap_or("the server's verification did not answer")
            .to_string())
    }
}
