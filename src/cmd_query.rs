//! The read commands against the local data folder: who-can, permissions, scopes, members,
//! audit and diff, each at the present or a past moment (`--at`), printed as a table, JSON or CSV.

use std::path::Path;

use permledger_api as api;
use permledger_client::{Client, Reply};
use permledger_domain::check;
use permledger_domain::state::MemberStatus;
use permledger_domain::RoleId;
use permledger_domain::{OrgId, PermissionKey, Scope, ScopeKind, Timestamp, UserId};
use permledger_views::audit::{AuditEntry, AuditQuery};
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
                out!("{}", serde_json::to_string_pretty(&objects)?);
            }
            Format::Csv => {
                out!("{}", self.columns.join(","));
                for r in &self.rows {
                    out!(
                        "{}",
                        r.iter()
                            .map(|v| permledger_server::routes::audit::csv_field(v))
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
                out!("{}", line(self.columns.clone()));
                for r in &self.rows {
                    out!("{}", line(r.iter().map(String::as_str).collect()));
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

fn member_rows(
    members: impl IntoIterator<Item = (UserId, (Option<RoleId>, MemberStatus))>,
) -> Rows {
    Rows {
        columns: vec!["user", "role", "status"],
        rows: members
            .into_iter()
            .map(|(u, (role, status))| {
                vec![
                    u.to_string(),
                    role.map(|r| r.to_string()).unwrap_or_default(),
                    format!("{status:?}").to_lowercase(),
                ]
            })
            .collect(),
    }
}

fn diff_rows(gained: &[String], lost: &[String]) -> Rows {
    Rows {
        columns: vec!["change", "user permission scope"],
        rows: gained
            .iter()
            .map(|g| vec!["gained".to_string(), g.clone()])
            .chain(lost.iter().map(|l| vec!["lost".to_string(), l.clone()]))
            .collect(),
    }
}

fn audit_rows(entries: &[AuditEntry]) -> Rows {
    Rows {
        columns: vec!["seq", "time", "actor", "action", "user", "scope", "reason"],
        rows: entries
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.time.to_string(),
                    e.actor.to_string(),
                    e.action.clone(),
                    e.user.as_ref().map(|u| u.to_string()).unwrap_or_default(),
                    e.scope.to_string(),
                    e.reason.clone().unwrap_or_default(),
                ]
            })
            .collect(),
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
                out!("{}", serde_json::to_string_pretty(r)?);
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
            let members = permledger_views::read::members(&o, &scope, m.time);
            Ok((member_rows(members), common.format))
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
            Ok((diff_rows(&d.gained, &d.lost), common.format))
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
            let mut entries = Vec::new();
            loop {
                let page = ledger.audit(&common.org, &reader, &q, now)?;
                entries.extend(page.entries);
                match page.next {
                    Some(n) => q.after = Some(n),
                    None => break,
                }
            }
            Ok((audit_rows(&entries), common.format))
        }
    }
}

/// The same queries through a running server.
pub fn remote(client: &Client, args: QueryArgs) -> anyhow::Result<u8> {
    let org = |c: &Common| api::OrgPath { org: c.org.clone() };
    let (reply, format): (Reply<Rows>, Format) = match args {
        QueryArgs::WhoCan {
            common,
            permission,
            scope,
        } => {
            let q = api::WhoCanParams {
                permission,
                scope,
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::WhoCan>(&org(&common), &q, &())?;
            let rows = reply.map(|a| one_column("user", a.users.iter().map(|u| u.to_string())));
            (rows, common.format)
        }
        QueryArgs::Permissions {
            common,
            user,
            scope,
        } => {
            let q = api::PermissionsParams {
                user,
                scope,
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::Permissions>(&org(&common), &q, &())?;
            let rows = reply
                .map(|a| one_column("permission", a.permissions.iter().map(|k| k.to_string())));
            (rows, common.format)
        }
        QueryArgs::Scopes {
            common,
            user,
            permission,
            kind,
        } => {
            let q = api::ScopesParams {
                user,
                permission,
                kind,
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::Scopes>(&org(&common), &q, &())?;
            let rows = reply.map(|a| one_column("scope", a.scopes.iter().map(|s| s.to_string())));
            (rows, common.format)
        }
        QueryArgs::Members { common, scope } => {
            let q = api::MembersParams {
                scope,
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::Members>(&org(&common), &q, &())?;
            let rows = reply
                .map(|a| member_rows(a.members.into_iter().map(|m| (m.user, (m.role, m.status)))));
            (rows, common.format)
        }
        QueryArgs::Diff {
            common,
            from,
            user,
            scope,
        } => {
            let q = api::DiffParams {
                from: from.into(),
                to: common.at.clone().map(Into::into),
                user,
                scope,
                min_seq: None,
            };
            let reply = client.call::<api::Diff>(&org(&common), &q, &())?;
            (reply.map(|a| diff_rows(&a.gained, &a.lost)), common.format)
        }
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
        } => {
            let q = api::ExportParams {
                reader,
                actor,
                user,
                scope,
                types: types.map(|t| t.join(",")),
                from,
                to,
                at: common.at.clone().map(Into::into),
                min_seq: None,
                format: Some(api::ExportFormat::Jsonl),
            };
            let reply = client.text::<api::AuditExport>(&org(&common), &q, &())?;
            let rows = match reply {
                Ok(text) => Ok(audit_rows(
                    &text
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(serde_json::from_str::<AuditEntry>)
                        .collect::<Result<Vec<_>, _>>()?,
                )),
                Err(refusal) => Err(refusal),
            };
            (rows, common.format)
        }
    };
    match reply {
        Ok(rows) => {
            rows.print(format)?;
            Ok(0)
        }
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}
