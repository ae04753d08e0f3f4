//! The scenario file format of scenarios.md, parsed strictly: unknown fields anywhere are errors,
//! and each step has exactly one kind.

use std::collections::BTreeMap;

use permledger_domain::{Code, OrgId, PermissionKey, RoleId, Scope, ScopeKind, Timestamp, UserId};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<Value>,
}

/// A scenario file's name and steps, parsed strictly. `Err` names what does not parse (and the
/// step).
pub fn parse_file(text: &str) -> Result<(String, Vec<Step>), String> {
    let file: ScenarioFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let steps = file
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, v)| Step::parse(v).map_err(|e| format!("step {}: {e}", i + 1)))
        .collect::<Result<_, _>>()?;
    Ok((file.name, steps))
}

/// A moment: `{"seq": N}`, `{"time": T}` or `{"mark": NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AtSpec {
    Seq(u64),
    Time(Timestamp),
    Mark(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    pub org: OrgId,
    pub user: UserId,
    pub permission: PermissionKey,
    pub scope: Scope,
    pub at: Option<AtSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhoCanQuery {
    pub org: OrgId,
    pub permission: PermissionKey,
    pub scope: Scope,
    pub at: Option<AtSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsQuery {
    pub org: OrgId,
    pub user: UserId,
    pub scope: Scope,
    pub at: Option<AtSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesQuery {
    pub org: OrgId,
    pub user: UserId,
    pub permission: PermissionKey,
    pub kind: Option<ScopeKind>,
    pub at: Option<AtSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    pub org: OrgId,
    pub scope: Scope,
    pub at: Option<AtSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuerySpec {
    pub org: OrgId,
    #[serde(rename = "as")]
    pub reader: UserId,
    pub actor: Option<UserId>,
    pub user: Option<UserId>,
    pub scope: Option<Scope>,
    pub types: Option<Vec<String>>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub at: Option<AtSpec>,
    /// Also what concerns `user` or `scope` without naming them (see `AuditQuery::indirect`).
    #[serde(default)]
    pub indirect: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub org: OrgId,
    pub from: AtSpec,
    pub to: AtSpec,
    pub user: Option<UserId>,
    pub scope: Option<Scope>,
}

/// One fact of `expect_via`: `{"owner": true}`, `{"role": R, "scope": S}` or `{"grant": K, "scope": S}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    Owner,
    Role { role: RoleId, scope: Scope },
    Grant { grant: PermissionKey, scope: Scope },
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Owner => write!(f, r#"{{"owner": true}}"#),
            Via::Role { role, scope } => write!(f, r#"{{"role": "{role}", "scope": "{scope}"}}"#),
            Via::Grant { grant, scope } => {
                write!(f, r#"{{"grant": "{grant}", "scope": "{scope}"}}"#)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Via, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(d)?;
        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let field = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
        match keys.as_slice() {
            ["owner"] if field("owner") == Value::Bool(true) => Ok(Via::Owner),
            ["role", "scope"] => Ok(Via::Role {
                role: serde_json::from_value(field("role")).map_err(D::Error::custom)?,
                scope: serde_json::from_value(field("scope")).map_err(D::Error::custom)?,
            }),
            ["grant", "scope"] => Ok(Via::Grant {
                grant: serde_json::from_value(field("grant")).map_err(D::Error::custom)?,
                scope: serde_json::from_value(field("scope")).map_err(D::Error::custom)?,
            }),
            _ => Err(D::Error::custom(format!(
                "an expect_via fact is {{\"owner\": true}}, {{\"role\", \"scope\"}} or {{\"grant\", \"scope\"}}, not {keys:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffExpect {
    #[serde(default)]
    pub gained: Vec<String>,
    #[serde(default)]
    pub lost: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum AuditExpect {
    Count(usize),
    Types(Vec<String>),
    Error(Code),
}

/// A step, parsed.
#[derive(Debug, Clone)]
pub enum Step {
    Clock(Timestamp),
    Mark(String),
    Do(Box<DoStep>),
    Check {
        query: CheckQuery,
        expect: bool,
        via: Option<Vec<Via>>,
    },
    WhoCan {
        query: WhoCanQuery,
        expect: Vec<UserId>,
    },
    Permissions {
        query: PermissionsQuery,
        expect: Vec<PermissionKey>,
    },
    Scopes {
        query: ScopesQuery,
        expect: Vec<Scope>,
    },
    Members {
        query: MembersQuery,
        expect: BTreeMap<UserId, Option<RoleId>>,
    },
    Audit {
        query: AuditQuerySpec,
        expect: AuditExpect,
    },
    Diff {
        query: DiffQuery,
        expect: DiffExpect,
    },
    Verify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoStep {
    #[serde(rename = "as")]
    pub actor: UserId,
    /// Kept as JSON until run, so that `$token:LINK` can be replaced first.
    #[serde(rename = "do")]
    pub command: Value,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub expect_version: Option<u64>,
    pub expect_error: Option<Code>,
    pub expect_events: Option<Vec<String>>,
}

/// The step kinds, by the key that names them.
pub const KINDS: [&str; 11] = [
    "clock",
    "mark",
    "do",
    "check",
    "who_can",
    "permissions",
    "scopes",
    "members",
    "audit",
    "diff",
    "verify",
];

fn take<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

/// Fields a step may have besides its kind's key.
fn allow_only(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field `{k}`")),
        None => Ok(()),
    }
}

impl Step {
    pub fn parse(v: Value) -> Result<Step, String> {
        let Value::Object(map) = v else {
            return Err("a step is a JSON object".into());
        };
        let kinds: Vec<&str> = KINDS
            .iter()
            .copied()
            .filter(|k| map.contains_key(*k))
            .collect();
        let kind = match kinds.as_slice() {
            [k] => *k,
            [] => return Err(format!("the step has none of the step keys {KINDS:?}")),
            many => return Err(format!("the step has more than one step key: {many:?}")),
        };
        let get = |k: &str| map.get(k).cloned().unwrap_or(Value::Null);
        match kind {
            "clock" => {
                allow_only(&map, &["clock"])?;
                Ok(Step::Clock(take(get("clock"), "clock")?))
            }
            "mark" => {
                allow_only(&map, &["mark"])?;
                Ok(Step::Mark(take(get("mark"), "mark")?))
            }
            "do" => Ok(Step::Do(Box::new(take(Value::Object(map), "do step")?))),
            "check" => {
                allow_only(&map, &["check", "expect", "expect_via"])?;
                Ok(Step::Check {
                    query: take(get("check"), "check")?,
                    expect: take(get("expect"), "check's expect")?,
                    via: match map.get("expect_via") {
                        Some(v) => Some(take(v.clone(), "expect_via")?),
                        None => None,
                    },
                })
            }
            "who_can" => {
                allow_only(&map, &["who_can", "expect"])?;
                Ok(Step::WhoCan {
                    query: take(get("who_can"), "who_can")?,
                    expect: take(get("expect"), "who_can's expect")?,
                })
            }
            "permissions" => {
                allow_only(&map, &["permissions", "expect"])?;
                Ok(Step::Permissions {
                    query: take(get("permissions"), "permissions")?,
                    expect: take(get("expect"), "permissions' expect")?,
                })
            }
            "scopes" => {
                allow_only(&map, &["scopes", "expect"])?;
                Ok(Step::Scopes {
                    query: take(get("scopes"), "scopes")?,
                    expect: take(get("expect"), "scopes' expect")?,
                })
            }
            "members" => {
                allow_only(&map, &["members", "expect"])?;
                Ok(Step::Members {
                    query: take(get("members"), "members")?,
                    expect: take(get("expect"), "members' expect")?,
                })
            }
            "audit" => {
                allow_only(
                    &map,
                    &["audit", "expect_count", "expect_types", "expect_error"],
                )?;
                let expects: Vec<&str> = ["expect_count", "expect_types", "expect_error"]
                    .into_iter()
                    .filter(|k| map.contains_key(*k))
                    .collect();
                let expect = match expects.as_slice() {
                    ["expect_count"] => {
                        AuditExpect::Count(take(get("expect_count"), "expect_count")?)
                    }
                    ["expect_types"] => {
                        AuditExpect::Types(take(get("expect_types"), "expect_types")?)
                    }
                    ["expect_error"] => {
                        AuditExpect::Error(take(get("expect_error"), "expect_error")?)
                    }
                    _ => return Err(
                        "an audit step has exactly one of expect_count, expect_types, expect_error"
                            .into(),
                    ),
                };
                Ok(Step::Audit {
                    query: take(get("audit"), "audit")?,
                    expect,
                })
            }
            "diff" => {
                allow_only(&map, &["diff", "expect"])?;
                Ok(Step::Diff {
                    query: take(get("diff"), "diff")?,
                    expect: take(get("expect"), "diff's expect")?,
                })
            }
            _ => {
                allow_only(&map, &["verify", "expect"])?;
                let q: Map<String, Value> = take(get("verify"), "verify")?;
                if let Some(k) = q.keys().next() {
                    return Err(format!("unknown field `{k}` in verify"));
                }
                let expect: String = take(get("expect"), "verify's expect")?;
                if expect != "ok" {
                    return Err(format!("verify expects \"ok\", not `{expect}`"));
                }
                Ok(Step::Verify)
            }
        }
    }

    /// The step's kind, for coverage.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Clock(_) => "clock",
            Step::Mark(_) => "mark",
            Step::Do(_) => "do",
            Step::Check { .. } => "check",
            Step::WhoCan { .. } => "who_can",
            Step::Permissions { .. } => "permissions",
            Step::Scopes { .. } => "scopes",
            Step::Members { .. } => "members",
            Step::Audit { .. } => "audit",
            Step::Diff { .. } => "diff",
            Step::Verify => "verify",
        }
    }

    /// Whether the query names a past moment.
    pub fn has_at(&self) -> bool {
        match self {
            Step::Check { query, .. } => query.at.is_some(),
            Step::WhoCan { query, .. } => query.at.is_some(),
            Step::Permissions { query, .. } => query.at.is_some(),
            Step::Scopes { query, .. } => query.at.is_some(),
            Step::Members { query, .. } => query.at.is_some(),
            Step::Audit { query, .. } => query.at.is_some(),
            Step::Diff { .. } => true,
            _ => false,
        }
    }
}
