//! The read commands against the local data folder: who-can, permissions, scopes, members,
//! audit and diff, each at the present or a past moment (`--at`), printed as a table, JSON or CSV.

use std::path::Path;

use permledger_domain::check;
use permledger_domain::{OrgId, PermissionKey, Scope, ScopeKind, Timestamp, UserId};
use permledger_views::audit::AuditQuery;
use permledger_views::{At, Moment, OrgAt, Views};

use crate::cmd_check::parse_at;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct Common {
    #[arg(long)]
    org: OrgId,
    /// A past moment: a log position or an RFC 3339 time.
    #[arg(long, value_parser = parse_at)]
    at: Option<At>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

#[derive(clap::Subcommand)]
pub enum QueryArgs {
    /// Users holding a permission on a scope.
    WhoCan {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        permission: PermissionKey,
        #[arg(long)]
        scope: Scope,
    },
    /// Every permission a user holds on a scope.
    Permissions {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        user: UserId,
        #[arg(long)]
        scope: Scope,
    },
    /// Scopes where a user holds a permission.
    Scopes {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        user: UserId,
        #[arg(long)]
        permission: PermissionKey,
        #[arg(long)]
        kind: Option<ScopeKind>,
    },
    /// Members of a scope with their role and status.
    Members {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        scope: Scope,
    },
    /// The audit log, read as a user who holds org.audit.view (or team.audit.view for a team).
    Audit {
        #[command(flatten)]
        common: Common,
        #[arg(long = "as")]
        reader: UserId,
        #[arg(long)]
        actor: Option<UserId>,
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        scope: Option<Scope>,
        /// Comma-separated event types.
        #[arg(long, value_delimiter = ',')]
        types: Option<Vec<String>>,
        #[arg(long)]
        from: Option<Timestamp>,
        #[arg(long)]
        to: Option<Timestamp>,
    },
    /// Effective permissions gained and lost between `--from` and `--at` (default: now).
    Diff {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_parser = parse_at)]
        from: At,
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        scope: Option<Scope>,
    },
}

/// Rows with named columns, printable three ways.
struct Rows {
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Rows {
    fn print(&self, format: Format) -> anyhow::Result<()> {
        match format {
            Format::Json => {
                let objects: Vec<serde_json::Map<String, serde_json::Value>> = self
                    .rows
                    .iter()
                    .map(|r| {
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), serde_json::Value::String(v.clone())))
                            .collect()
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&objects)?);
            }
            Format::Csv => {
                println!("{}", self.columns.join(","));
                for r in &self.rows {
                    println!(
                        "{}",
                        r.iter()
                            .map(|v| permledger_server::csv_field(v))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
            Format::Table => {
                let widths: Vec<usize> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        self.rows
                            .iter()
                            .map(|r| r[i].chars().count())
                            .chain([c.len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: Vec<&str>| {
                    cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                println!("{}", line(self.columns.clone()));
                for r in &self.rows {
                    println!("{}", line(r.iter().map(String::as_str).collect()));
                }
            }
        }
        Ok(())
    }
}

fn one_column(name: &'static str, values: impl IntoIterator<Item = String>) -> Rows {
    Rows {
        columns: vec![name],
        rows: values.into_iter().map(|v| vec![v]).collect(),
    }
}

fn with_org<R>(
    views: &Views,
    c: &Common,
    f: impl FnOnce(OrgAt<'_>, Moment) -> anyhow::Result<R>,
) -> anyhow::Result<R> {
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let m = views.moment(c.at.as_ref(), now)?;
    let org = views
        .org_at(&c.org, m.seq)
        .ok_or_else(|| anyhow::anyhow!("org `{}` does not exist at position {}", c.org, m.seq))?;
    f(org, m)
}

pub fn run(data: &Path, args: QueryArgs) -> anyhow::Result<u8> {
    let ledger = crate::data::open_ledger(data)?;
    let result = answer(&ledger, args);
    ledger.shutdown();
    let (rows, format) = match result {
        Ok(r) => r,
        Err(e) => match e.downcast_ref::<permledger_views::audit::AuditError>() {
            // A refused read is a denial, not a failure.
            Some(permledger_views::audit::AuditError::Rejected(r)) => {
                println!("{}", serde_json::to_string_pretty(r)?);
                return Ok(crate::EXIT_DENIED);
            }
            _ => return Err(e),
        },
    };
    rows.print(format)?;
    Ok(0)
}

fn answer(ledger: &permledger_ledger::Ledger, args: QueryArgs) -> anyhow::Result<(Rows, Format)> {
    let views = ledger.views();
    match args {
        QueryArgs::WhoCan {
            common,
            permission,
            scope,
        } => with_org(&views, &common, |o, m| {
            let users = check::who_can(&o, &permission, &scope, m.time);
            Ok((
                one_column("user", users.iter().map(|u| u.to_string())),
                common.format,
            ))
        }),
        QueryArgs::Permissions {
            common,
            user,
            scope,
        } => with_org(&views, &common, |o, m| {
            let keys = check::permissions(&o, &user, &scope, m.time);
            Ok((
                one_column("permission", keys.iter().map(|k| k.to_string())),
                common.format,
            ))
        }),
        QueryArgs::Scopes {
            common,
            user,
            permission,
            kind,
        } => with_org(&views, &common, |o, m| {
            let found = check::scopes(&o, &user, &permission, kind, m.time);
            Ok((
                one_column("scope", found.iter().map(|s| s.to_string())),
                common.format,
            ))
        }),
        QueryArgs::Members { common, scope } => with_org(&views, &common, |o, m| {
            let rows = permledger_views::read::members(&o, &scope, m.time)
                .into_iter()
                .map(|(u, (role, status))| {
                    vec![
                        u.to_string(),
                        role.map(|r| r.to_string()).unwrap_or_default(),
                        format!("{status:?}").to_lowercase(),
                    ]
                })
                .collect();
            Ok((
                Rows {
                    columns: vec!["user", "role", "status"],
                    rows,
                },
                common.format,
            ))
        }),
        QueryArgs::Diff {
            common,
            from,
            user,
            scope,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let a = views.moment(Some(&from), now)?;
            let b = views.moment(common.at.as_ref(), now)?;
            let d = permledger_views::diff::diff(
                &views,
                &common.org,
                a,
                b,
                user.as_ref(),
                scope.as_ref(),
            );
            let rows = d
                .gained
                .iter()
                .map(|g| vec!["gained".to_string(), g.clone()])
                .chain(d.lost.iter().map(|l| vec!["lost".to_string(), l.clone()]))
                .collect();
            Ok((
                Rows {
                    columns: vec!["change", "user permission scope"],
                    rows,
                },
                common.format,
            ))
        }
        QueryArgs::Audit {
            common,
            reader,
            actor,
            user,
            scope,
            types,
            from,
            to,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let until = match &common.at {
                Some(at) => Some(views.moment(Some(at), now)?.seq),
                None => None,
            };
            drop(views);
            let mut q = AuditQuery {
                actor,
                user,
                scope,
                types,
                from,
                to,
                until,
                after: None,
                limit: Some(1000),
            };
            let mut rows = Vec::new();
            loop {
                let page = ledger.audit(&common.org, &reader, &q, now)?;
                rows.extend(page.entries.iter().map(|e| {
                    vec![
                        e.seq.to_string(),
                        e.time.to_string(),
                        e.actor.to_string(),
                        e.action.clone(),
                        e.user.as_ref().map(|u| u.to_string()).unwrap_or_default(),
                        e.scope.to_string(),
                        e.reason.clone().unwrap_or_default(),
                    ]
                }));
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
            Ok((
                Rows {
                    columns: vec!["seq", "time", "actor", "action", "user", "scope", "reason"],
                    rows,
                },
                common.format,
            ))
        }
    }
}

/// A moment as query parameters, under the names the endpoint gives its position and its time.
fn at_pairs<'a>(at: &Option<At>, seq: &'a str, time: &'a str) -> [(&'a str, Option<String>); 2] {
    match at {
        Some(At::Seq(n)) => [(seq, Some(n.to_string())), (time, None)],
        Some(At::Time(t)) => [(seq, None), (time, Some(t.to_string()))],
        None => [(seq, None), (time, None)],
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn field(v: &serde_json::Value, k: &str) -> String {
    match &v[k] {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The same queries through a running server.
pub fn remote(server: &str, token: Option<&str>, args: QueryArgs) -> anyhow::Result<u8> {
    use permledger_client::query;
    let some = |v: &dyn ToString| Some(v.to_string());
    let at = |common: &Common| at_pairs(&common.at, "at_seq", "at_time");
    let (path, common) = match &args {
        QueryArgs::WhoCan {
            common,
            permission,
            scope,
        } => (
            format!(
                "/v1/orgs/{}/who_can{}",
                common.org,
                query(
                    [("permission", some(permission)), ("scope", some(scope))]
                        .into_iter()
                        .chain(at(common))
                )
            ),
            common,
        ),
        QueryArgs::Permissions {
            common,
            user,
            scope,
        } => (
            format!(
                "/v1/orgs/{}/permissions{}",
                common.org,
                query(
                    [("user", some(user)), ("scope", some(scope))]
                        .into_iter()
                        .chain(at(common))
                )
            ),
            common,
        ),
        QueryArgs::Scopes {
            common,
            user,
            permission,
            kind,
        } => (
            format!(
                "/v1/orgs/{}/scopes{}",
                common.org,
                query(
                    [
                        ("user", some(user)),
                        ("permission", some(permission)),
                        ("kind", kind.map(|k| k.to_string())),
                    ]
                    .into_iter()
                    .chain(at(common))
                )
            ),
            common,
        ),
        QueryArgs::Members { common, scope } => (
            format!(
                "/v1/orgs/{}/members{}",
                common.org,
                query([("scope", some(scope))].into_iter().chain(at(common)))
            ),
            common,
        ),
        QueryArgs::Diff {
            common,
            from,
            user,
            scope,
        } => (
            format!(
                "/v1/orgs/{}/diff{}",
                common.org,
                query(
                    at_pairs(&Some(from.clone()), "from_seq", "from_time")
                        .into_iter()
                        .chain(at_pairs(&common.at, "to_seq", "to_time"))
                        .chain([
                            ("user", user.as_ref().map(|u| u.to_string())),
                            ("scope", scope.as_ref().map(|s| s.to_string())),
                        ])
                )
            ),
            common,
        ),
        // The export streams every matching entry in one answer, JSON Lines.
        QueryArgs::Audit {
            common,
            reader,
            actor,
            user,
            scope,
            types,
            from,
            to,
        } => (
            format!(
                "/v1/orgs/{}/audit/export{}",
                common.org,
                query([("as", some(reader))].into_iter().chain(at(common)).chain([
                    ("actor", actor.as_ref().map(|u| u.to_string())),
                    ("user", user.as_ref().map(|u| u.to_string())),
                    ("scope", scope.as_ref().map(|s| s.to_string())),
                    ("types", types.as_ref().map(|t| t.join(","))),
                    ("from", from.map(|t| t.to_string())),
                    ("to", to.map(|t| t.to_string())),
                ]))
            ),
            common,
        ),
    };
    let resp = permledger_client::request(server, "GET", &path, token, None)?;
    if !(200..300).contains(&resp.status) {
        return crate::cmd_run::print_remote(resp);
    }
    let v: serde_json::Value = match &args {
        QueryArgs::Audit { .. } => serde_json::Value::Null,
        _ => serde_json::from_str(&resp.body)?,
    };
    let rows = match &args {
        QueryArgs::WhoCan { .. } => one_column("user", strings(&v["users"])),
        QueryArgs::Permissions { .. } => one_column("permission", strings(&v["permissions"])),
        QueryArgs::Scopes { .. } => one_column("scope", strings(&v["scopes"])),
        QueryArgs::Audit { .. } => Rows {
            columns: vec!["seq", "time", "actor", "action", "user", "scope", "reason"],
            rows: resp
                .body
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let entry: serde_json::Value = serde_json::from_str(l)?;
                    Ok(
                        ["seq", "time", "actor", "action", "user", "scope", "reason"]
                            .iter()
                            .map(|k| field(&entry, k))
                            .collect(),
                    )
                })
                .collect::<anyhow::Result<_>>()?,
        },
        QueryArgs::Members { .. } => Rows {
            columns: vec!["user", "role", "status"],
            rows: v["members"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|m| vec![field(m, "user"), field(m, "role"), field(m, "status")])
                        .collect()
                })
                .unwrap_or_default(),
        },
        _ => Rows {
            columns: vec!["change", "user permission scope"],
            rows: strings(&v["gained"])
                .into_iter()
                .map(|g| vec!["gained".to_string(), g])
                .chain(
                    strings(&v["lost"])
                        .into_iter()
                        .map(|l| vec!["lost".to_string(), l]),
                )
                .collect(),
        },
    };
    rows.print(common.format)?;
    Ok(0)
}
