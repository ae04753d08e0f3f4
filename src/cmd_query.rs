//! The read commands against the local data folder: who-can, permissions, scopes, members,
//! audit and diff, each at the present or a past moment (`--at`), printed as a table, JSON or CSV.

use std::path::Path;

use permledger_api as api;
use permledger_client::{Client, Reply};
use permledger_domain::check;
use permledger_domain::{OrgId, PermissionKey, Scope, ScopeKind, Timestamp, UserId};
use permledger_views::audit::{AuditEntry, AuditQuery};
use permledger_views::export::{self, Covers};
use permledger_views::snapshot::{self, Snapshot};
use permledger_views::timeline;
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
        #[command(flatten)]
        range: Range,
        /// With `--user` or `--scope`: also what concerns them without naming them: invites to
        /// the user's addresses, and events that changed their access (or anyone's within the
        /// scope) indirectly, such as a role redefined, a team deleted or a suspension.
        #[arg(long)]
        indirect: bool,
    },
    /// Every org, with its owner and size.
    Orgs {
        #[command(flatten)]
        at: AtFormat,
    },
    /// The whole org at a moment: owner, teams and inboxes, members with their roles and
    /// grants, masks, roles as defined, pending invites and open links. `--format csv` writes
    /// one file per table into `--out`, each ending with the digest it covers.
    Snapshot {
        #[command(flatten)]
        common: Common,
        /// The folder the CSV files go into (created if missing).
        #[arg(long, required_if_eq("format", "csv"))]
        out: Option<std::path::PathBuf>,
    },
    /// Every permission a user holds on every scope, with the reason for each.
    Access {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        user: UserId,
    },
    /// Every interval of access between two moments, for a user or within a scope, each start
    /// and end with its cause: what `diff` compares, with what began and ended in between.
    Timeline {
        #[command(flatten)]
        common: Common,
        /// The first moment: a log position, a day (2026-03-01), a time or an RFC 3339 instant.
        #[arg(long, value_parser = parse_at, required_unless_present = "since")]
        from: Option<At>,
        /// The first moment as a span before now: 30d, 12h, 90m, 2w.
        #[arg(long, value_parser = parse_span, conflicts_with = "from")]
        since: Option<String>,
        /// The second moment (the same as `--at`; default: now).
        #[arg(long, value_parser = parse_at, conflicts_with = "at")]
        to: Option<At>,
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        scope: Option<Scope>,
    },
    /// Effective permissions gained and lost between `--from` (or `--since`) and `--to` (or
    /// `--at`; default: now).
    Diff {
        #[command(flatten)]
        common: Common,
        /// The first moment: a log position, a day (2026-03-01), a time or an RFC 3339 instant.
        #[arg(long, value_parser = parse_at, required_unless_present = "since")]
        from: Option<At>,
        /// The first moment as a span before now: 30d, 12h, 90m, 2w.
        #[arg(long, value_parser = parse_span, conflicts_with = "from")]
        since: Option<String>,
        /// The second moment (the same as `--at`).
        #[arg(long, value_parser = parse_at, conflicts_with = "at")]
        to: Option<At>,
        #[arg(long)]
        user: Option<UserId>,
        #[arg(long)]
        scope: Option<Scope>,
    },
}

/// A moment and a format, for the queries that name no org.
#[derive(clap::Args)]
pub struct AtFormat {
    /// A past moment: a log position, a day (2026-03-01), a time or an RFC 3339 instant.
    #[arg(long, value_parser = parse_at)]
    at: Option<At>,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// A range of recorded times, as people write them.
#[derive(clap::Args)]
pub struct Range {
    /// Recorded at or after: a day (2026-03-01, its start, UTC), a time (2026-03-01T09:00) or an
    /// RFC 3339 instant.
    #[arg(long, value_parser = parse_instant)]
    from: Option<Timestamp>,
    /// Recorded at or before (a day means its start: `--to 2026-04-01` ends with March).
    #[arg(long, value_parser = parse_instant)]
    to: Option<Timestamp>,
    /// Recorded within this span before now: 30d, 12h, 90m, 2w.
    #[arg(long, value_parser = parse_span, conflicts_with = "from")]
    since: Option<String>,
}

impl Range {
    /// The range's ends, `--since` counted back from `now`.
    fn resolve(self, now: Timestamp) -> anyhow::Result<(Option<Timestamp>, Option<Timestamp>)> {
        let from = match &self.since {
            Some(span) => Some(now.minus_span(span).map_err(anyhow::Error::msg)?),
            None => self.from,
        };
        Ok((from, self.to))
    }
}

fn parse_instant(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_human(s)
}

fn parse_span(s: &str) -> Result<String, String> {
    Timestamp::from_micros(0)
        .minus_span(s)
        .map(|_| s.to_string())
}

/// Rows with named columns, printable three ways.
struct Rows {
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// A line said above the table: which moment or which part of the log it shows.
    caption: Option<String>,
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
                            .map(|v| export::csv_cell(v))
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
                if let Some(c) = &self.caption {
                    out!("# {c}");
                }
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
        caption: None,
    }
}

fn member_rows(members: &[api::MemberRow]) -> Rows {
    Rows {
        columns: vec!["user", "role", "status", "owner"],
        rows: members
            .iter()
            .map(|m| {
                vec![
                    m.user.to_string(),
                    m.role.as_ref().map(|r| r.to_string()).unwrap_or_default(),
                    format!("{:?}", m.status).to_lowercase(),
                    if m.owner { "owner" } else { "" }.to_string(),
                ]
            })
            .collect(),
        caption: None,
    }
}

/// The audit trail as a table: who, through what, did what, why, and what it follows from.
fn audit_rows(entries: &[AuditEntry], covers: &Covers) -> Rows {
    Rows {
        columns: vec![
            "seq", "time", "actor", "via", "what", "reason", "request", "cause",
        ],
        rows: entries
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    e.time.to_string(),
                    e.actor.to_string(),
                    e.principal
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    e.summary.clone(),
                    e.reason.clone().unwrap_or_default(),
                    e.request_id.clone().unwrap_or_default(),
                    e.cause
                        .as_ref()
                        .map(|c| format!("#{} {}", c.seq, c.summary))
                        .unwrap_or_default(),
                ]
            })
            .collect(),
        caption: Some(format!(
            "{} entries up to seq {} (digest {})",
            entries.len(),
            covers.seq,
            covers.digest()
        )),
    }
}

/// The audit trail, printed: a table for people, or every typed field as JSON or CSV, each
/// saying what part of the log it covers.
fn print_audit(entries: &[AuditEntry], covers: &Covers, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Table => audit_rows(entries, covers).print(Format::Table),
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Trail<'a> {
                covers: &'a Covers,
                entries: &'a [AuditEntry],
            }
            out!(
                "{}",
                serde_json::to_string_pretty(&Trail { covers, entries })?
            );
            Ok(())
        }
        Format::Csv => {
            let mut text = export::csv_line(export::AUDIT_COLUMNS);
            for e in entries {
                text.push_str(&export::csv_line(export::audit_cells(e)));
            }
            text.push_str(&export::csv_digest_line(covers));
            out!("{}", text.trim_end_matches('\n'));
            Ok(())
        }
    }
}

/// What a query answers: rows, or the audit trail with what it covers.
enum Answer {
    Rows(Rows),
    /// A typed answer: JSON prints it whole (rendered in its fields' order), a table and CSV
    /// its rows.
    Typed(String, Rows),
    Audit(Vec<AuditEntry>, Covers),
    Snapshot(Box<Snapshot>, Option<std::path::PathBuf>),
}

impl Answer {
    fn typed(value: &impl serde::Serialize, rows: Rows) -> anyhow::Result<Answer> {
        Ok(Answer::Typed(serde_json::to_string_pretty(value)?, rows))
    }

    fn print(&self, format: Format) -> anyhow::Result<()> {
        match (self, format) {
            (Answer::Rows(r), _) => r.print(format),
            (Answer::Typed(json, _), Format::Json) => {
                out!("{json}");
                Ok(())
            }
            (Answer::Typed(_, r), _) => r.print(format),
            (Answer::Audit(entries, covers), _) => print_audit(entries, covers, format),
            (Answer::Snapshot(s, out), _) => print_snapshot(s, out.as_deref(), format),
        }
    }
}

fn orgs_rows(a: &api::OrgsAnswer) -> Rows {
    let rows = Rows {
        columns: vec![
            "org",
            "name",
            "owner",
            "members",
            "teams",
            "inboxes",
            "created_seq",
        ],
        rows: a
            .orgs
            .iter()
            .map(|o| {
                vec![
                    o.org.to_string(),
                    o.name.clone(),
                    o.owner.to_string(),
                    o.members.to_string(),
                    o.teams.to_string(),
                    o.inboxes.to_string(),
                    o.created_seq.to_string(),
                ]
            })
            .collect(),
        caption: None,
    };
    at_moment(rows, a.at)
}

fn access_rows(a: &api::AccessAnswer) -> Rows {
    let rows = Rows {
        columns: vec!["scope", "permission", "because"],
        rows: a
            .access
            .iter()
            .map(|i| {
                vec![
                    i.scope.to_string(),
                    i.permission.to_string(),
                    i.because.clone(),
                ]
            })
            .collect(),
        caption: None,
    };
    at_moment(rows, a.at)
}

/// A cause as people read it.
fn cause_text(c: &timeline::Cause) -> String {
    match c {
        timeline::Cause::Before => "held before the window".to_string(),
        timeline::Cause::Event { event } => format!("#{} {}", event.seq, event.summary),
        timeline::Cause::Expired { at } => format!("expired at {at}"),
    }
}

fn timeline_rows(a: &api::TimelineAnswer) -> Rows {
    Rows {
        columns: vec![
            "user",
            "permission",
            "scope",
            "from",
            "because",
            "to",
            "because",
        ],
        rows: a
            .intervals
            .iter()
            .map(|i| {
                vec![
                    i.user.to_string(),
                    i.permission.to_string(),
                    i.scope.to_string(),
                    format!("{} (seq {})", i.from.time, i.from.seq),
                    cause_text(&i.from.cause),
                    i.to.as_ref().map_or("still held".to_string(), |p| {
                        format!("{} (seq {})", p.time, p.seq)
                    }),
                    i.to.as_ref()
                        .map_or(String::new(), |p| cause_text(&p.cause)),
                ]
            })
            .collect(),
        caption: Some(format!(
            "from seq {}, {} to seq {}, {}",
            a.from.seq, a.from.time, a.to.seq, a.to.time
        )),
    }
}

fn diff_rows(a: &api::DiffAnswer) -> Rows {
    Rows {
        columns: vec!["change", "user", "permission", "scope", "when", "because"],
        rows: a
            .changes
            .iter()
            .map(|c| {
                vec![
                    c.change.clone(),
                    c.user.to_string(),
                    c.permission.to_string(),
                    c.scope.to_string(),
                    format!("{} (seq {})", c.cause.time, c.cause.seq),
                    cause_text(&c.cause.cause),
                ]
            })
            .collect(),
        caption: Some(format!(
            "from seq {}, {} to seq {}, {}",
            a.from.seq, a.from.time, a.to.seq, a.to.time
        )),
    }
}

/// The org whole: JSON, a table per part, or one CSV file per table in `out`.
fn print_snapshot(
    s: &Snapshot,
    out: Option<&std::path::Path>,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            out!("{}", serde_json::to_string_pretty(s)?);
        }
        Format::Csv => {
            let dir = out.ok_or_else(|| anyhow::anyhow!("`--format csv` needs `--out DIR`"))?;
            std::fs::create_dir_all(dir)?;
            for table in snapshot::SNAPSHOT_TABLES {
                let text = snapshot::csv_table(s, table).unwrap_or_default();
                let path = dir.join(format!("{table}.csv"));
                std::fs::write(&path, text)?;
                out!("{}", path.display());
            }
        }
        Format::Table => {
            out!(
                "# org {} (\"{}\") at seq {}, {}; digest {}",
                s.org,
                s.name,
                s.at.seq,
                s.at.time,
                s.covers.digest()
            );
            out!("owner: {}", s.owner);
            for t in &s.teams {
                out!("team {} (\"{}\")", t.team, t.name);
                for i in &t.inboxes {
                    out!("  inbox {i}");
                }
            }
            for i in s.inboxes.iter().filter(|i| i.team.is_none()) {
                out!("inbox {} (\"{}\"), under the org", i.inbox, i.name);
            }
            for table in snapshot::SNAPSHOT_TABLES
                .iter()
                .filter(|t| **t != "teams" && **t != "inboxes")
            {
                let text = snapshot::csv_table(s, table).unwrap_or_default();
                let mut lines = text
                    .lines()
                    .filter(|l| !l.starts_with(export::CSV_DIGEST_MARK));
                let header = lines.next().unwrap_or_default();
                let body: Vec<&str> = lines.collect();
                out!("");
                out!(
                    "{table} ({} rows): {}",
                    body.len(),
                    header.replace(',', ", ")
                );
                for l in body {
                    out!("  {l}");
                }
            }
        }
    }
    Ok(())
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

pub fn run(data: &Path, args: QueryArgs, inspect: bool) -> anyhow::Result<u8> {
    let ledger = crate::data::read_ledger(data, inspect, args.org())?;
    let result = answer(&ledger, args);
    crate::data::leave(ledger);
    let (answer, format) = match result {
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
    answer.print(format)?;
    Ok(0)
}

/// Says above a table which moment it shows.
fn at_moment(mut rows: Rows, m: Moment) -> Rows {
    rows.caption = Some(format!("at seq {}, {}", m.seq, m.time));
    rows
}

impl QueryArgs {
    /// The one org the question is about (`None`: every org).
    pub fn org(&self) -> Option<&OrgId> {
        match self {
            QueryArgs::Orgs { .. } => None,
            QueryArgs::WhoCan { common, .. }
            | QueryArgs::Permissions { common, .. }
            | QueryArgs::Scopes { common, .. }
            | QueryArgs::Members { common, .. }
            | QueryArgs::Audit { common, .. }
            | QueryArgs::Snapshot { common, .. }
            | QueryArgs::Access { common, .. }
            | QueryArgs::Timeline { common, .. }
            | QueryArgs::Diff { common, .. } => Some(&common.org),
        }
    }
}

fn answer(ledger: &permledger_ledger::Ledger, args: QueryArgs) -> anyhow::Result<(Answer, Format)> {
    let views = ledger.views();
    match args {
        QueryArgs::WhoCan {
            common,
            permission,
            scope,
        } => with_org(&views, &common, |o, m| {
            let users = check::who_can(&o, &permission, &scope, m.time);
            let rows = one_column("user", users.iter().map(|u| u.to_string()));
            Ok((Answer::Rows(at_moment(rows, m)), common.format))
        }),
        QueryArgs::Permissions {
            common,
            user,
            scope,
        } => with_org(&views, &common, |o, m| {
            let keys = check::permissions(&o, &user, &scope, m.time);
            let rows = one_column("permission", keys.iter().map(|k| k.to_string()));
            Ok((Answer::Rows(at_moment(rows, m)), common.format))
        }),
        QueryArgs::Scopes {
            common,
            user,
            permission,
            kind,
        } => with_org(&views, &common, |o, m| {
            let found = check::scopes(&o, &user, &permission, kind, m.time);
            let rows = one_column("scope", found.iter().map(|s| s.to_string()));
            Ok((Answer::Rows(at_moment(rows, m)), common.format))
        }),
        QueryArgs::Members { common, scope } => with_org(&views, &common, |o, m| {
            let members = api::MemberRow::of_scope(&o, &scope, m.time);
            Ok((
                Answer::Rows(at_moment(member_rows(&members), m)),
                common.format,
            ))
        }),
        QueryArgs::Diff {
            common,
            from,
            since,
            to,
            user,
            scope,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let from = diff_from(from, since.as_deref(), now)?;
            let a = views.moment(Some(&from), now)?;
            let b = views.moment(to.as_ref().or(common.at.as_ref()), now)?;
            let d = permledger_views::diff::diff(
                &views,
                &common.org,
                a,
                b,
                user.as_ref(),
                scope.as_ref(),
            );
            drop(views);
            let changes = ledger.caused_diff(&common.org, a, b, user.as_ref(), scope.as_ref())?;
            let answer = api::DiffAnswer {
                from: a,
                to: b,
                gained: d.gained,
                lost: d.lost,
                changes,
            };
            Ok((Answer::typed(&answer, diff_rows(&answer))?, common.format))
        }
        QueryArgs::Orgs { at } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let m = views.moment(at.at.as_ref(), now)?;
            let answer = api::OrgsAnswer {
                at: m,
                orgs: snapshot::orgs(&views, m.seq, |_| true),
            };
            Ok((Answer::typed(&answer, orgs_rows(&answer))?, at.format))
        }
        QueryArgs::Snapshot { common, out } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let m = views.moment(common.at.as_ref(), now)?;
            drop(views);
            let covers = ledger.covers(m.seq)?;
            let views = ledger.views();
            let o = views.org_at(&common.org, m.seq).ok_or_else(|| {
                anyhow::anyhow!("org `{}` does not exist at position {}", common.org, m.seq)
            })?;
            let whole = snapshot::snapshot(&o, m, covers);
            Ok((Answer::Snapshot(Box::new(whole), out), common.format))
        }
        QueryArgs::Access { common, user } => {
            let (m, rows) = with_org(&views, &common, |o, m| {
                Ok((m, snapshot::access(&o, &user, m)))
            })?;
            drop(views);
            let answer =
                api::AccessAnswer::build(&common.org, &user, m, rows, |seqs| ledger.sources(seqs))?;
            Ok((Answer::typed(&answer, access_rows(&answer))?, common.format))
        }
        QueryArgs::Timeline {
            common,
            from,
            since,
            to,
            user,
            scope,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let from = diff_from(from, since.as_deref(), now)?;
            let a = views.moment(Some(&from), now)?;
            let b = views.moment(to.as_ref().or(common.at.as_ref()), now)?;
            drop(views);
            // A window is the same whichever end is named first.
            let (a, b) = if (a.seq, a.time) > (b.seq, b.time) {
                (b, a)
            } else {
                (a, b)
            };
            let intervals = ledger.timeline(&common.org, a, b, user.as_ref(), scope.as_ref())?;
            let answer = api::TimelineAnswer {
                from: a,
                to: b,
                intervals,
            };
            Ok((
                Answer::typed(&answer, timeline_rows(&answer))?,
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
            range,
            indirect,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let (from, to) = range.resolve(now)?;
            let until = match &common.at {
                Some(at) => views.moment(Some(at), now)?.seq,
                None => views.seq(),
            };
            drop(views);
            let mut q = AuditQuery {
                actor,
                user,
                scope,
                types,
                from,
                to,
                until: Some(until),
                after: None,
                limit: Some(1000),
                indirect,
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
            let covers = ledger.covers(until)?;
            Ok((Answer::Audit(entries, covers), common.format))
        }
    }
}

/// The first moment of a diff: `--from`, or `--since` before now.
fn diff_from(from: Option<At>, since: Option<&str>, now: Timestamp) -> anyhow::Result<At> {
    match (from, since) {
        (Some(f), _) => Ok(f),
        (None, Some(span)) => Ok(At::Time(now.minus_span(span).map_err(anyhow::Error::msg)?)),
        (None, None) => anyhow::bail!("a diff needs `--from` or `--since`"),
    }
}

/// The same queries through a running server.
pub fn remote(client: &Client, args: QueryArgs) -> anyhow::Result<u8> {
    let org = |c: &Common| api::OrgPath { org: c.org.clone() };
    let (reply, format): (Reply<Answer>, Format) = match args {
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
            let rows = reply.map(|a| {
                let rows = one_column("user", a.users.iter().map(|u| u.to_string()));
                Answer::Rows(at_moment(rows, a.at))
            });
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
            let rows = reply.map(|a| {
                let rows = one_column("permission", a.permissions.iter().map(|k| k.to_string()));
                Answer::Rows(at_moment(rows, a.at))
            });
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
            let rows = reply.map(|a| {
                let rows = one_column("scope", a.scopes.iter().map(|s| s.to_string()));
                Answer::Rows(at_moment(rows, a.at))
            });
            (rows, common.format)
        }
        QueryArgs::Members { common, scope } => {
            let q = api::MembersParams {
                scope,
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::Members>(&org(&common), &q, &())?;
            let rows = reply.map(|a| {
                let rows = member_rows(&a.members);
                Answer::Rows(at_moment(rows, a.at))
            });
            (rows, common.format)
        }
        QueryArgs::Diff {
            common,
            from,
            since,
            to,
            user,
            scope,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let q = api::DiffParams {
                from: diff_from(from, since.as_deref(), now)?.into(),
                to: to.or(common.at.clone()).map(Into::into),
                user,
                scope,
                min_seq: None,
            };
            let reply = client.call::<api::Diff>(&org(&common), &q, &())?;
            let answer = match reply {
                Ok(a) => Ok(Answer::typed(&a, diff_rows(&a))?),
                Err(r) => Err(r),
            };
            (answer, common.format)
        }
        QueryArgs::Orgs { at } => {
            let q = api::MomentParams {
                at: at.at.clone().map(Into::into),
                min_seq: None,
            };
            let answer = match client.call::<api::Orgs>(&api::NoPath {}, &q, &())? {
                Ok(a) => Ok(Answer::typed(&a, orgs_rows(&a))?),
                Err(r) => Err(r),
            };
            (answer, at.format)
        }
        QueryArgs::Snapshot { common, out } => {
            let q = api::MomentParams {
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let reply = client.call::<api::Snapshot>(&org(&common), &q, &())?;
            (
                reply.map(|s| Answer::Snapshot(Box::new(s), out)),
                common.format,
            )
        }
        QueryArgs::Access { common, user } => {
            let path = api::OrgUserPath {
                org: common.org.clone(),
                user,
            };
            let q = api::MomentParams {
                at: common.at.clone().map(Into::into),
                min_seq: None,
            };
            let answer = match client.call::<api::Access>(&path, &q, &())? {
                Ok(a) => Ok(Answer::typed(&a, access_rows(&a))?),
                Err(r) => Err(r),
            };
            (answer, common.format)
        }
        QueryArgs::Timeline {
            common,
            from,
            since,
            to,
            user,
            scope,
        } => {
            let now = Timestamp::from_chrono(chrono::Utc::now());
            let q = api::DiffParams {
                from: diff_from(from, since.as_deref(), now)?.into(),
                to: to.or(common.at.clone()).map(Into::into),
                user,
                scope,
                min_seq: None,
            };
            let answer = match client.call::<api::Timeline>(&org(&common), &q, &())? {
                Ok(a) => Ok(Answer::typed(&a, timeline_rows(&a))?),
                Err(r) => Err(r),
            };
            (answer, common.format)
        }
        // The export streams every matching entry in one answer, JSON Lines, and ends with
        // the digest of what it covers.
        QueryArgs::Audit {
            common,
            reader,
            actor,
            user,
            scope,
            types,
            range,
            indirect,
        } => {
            let (from, to) = range.resolve(Timestamp::from_chrono(chrono::Utc::now()))?;
            let q = api::ExportParams {
                reader,
                actor,
                user,
                scope,
                types: types.map(|t| t.join(",")),
                from,
                to,
                at: common.at.clone().map(Into::into),
                indirect: indirect.then_some(true),
                min_seq: None,
                format: Some(api::ExportFormat::Jsonl),
            };
            let reply = client.text::<api::AuditExport>(&org(&common), &q, &())?;
            let answer = match reply {
                Ok(text) => Ok(read_export(&text)?),
                Err(refusal) => Err(refusal),
            };
            (answer, common.format)
        }
    };
    match reply {
        Ok(answer) => {
            answer.print(format)?;
            Ok(0)
        }
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}

/// The entries of a JSON Lines export and the digest its last line names; an export that does
/// not end with one was cut short.
fn read_export(text: &str) -> anyhow::Result<Answer> {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines
        .pop()
        .ok_or_else(|| anyhow::anyhow!("the export is empty: it does not end with its digest"))?;
    let covers = serde_json::from_str::<export::DigestLine>(last)
        .map_err(|_| anyhow::anyhow!("the export was cut short: it does not end with its digest"))?
        .digest;
    let entries = lines
        .into_iter()
        .map(serde_json::from_str::<AuditEntry>)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Answer::Audit(entries, covers))
}
