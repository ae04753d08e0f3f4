//! Running a scenario file: every step against a fresh ledger, then the three oracles.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use permledger_domain::check;
use permledger_domain::{Command, CommandMeta, Explanation, Fact, OrgId, Seq, State, Timestamp};
use permledger_ledger::{Clock, Ledger, ManualClock, SubmitError};
use permledger_log::{EventLog, MemoryLog};
use permledger_rocks::RocksLog;
use permledger_views::audit::{AuditError, AuditQuery};
use permledger_views::{At, Moment, Views};
use serde_json::Value;

use crate::format::{AtSpec, AuditExpect, DoStep, ScenarioFile, Step, Via};

/// Where a file runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Rocks,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Memory => "memory",
            Backend::Rocks => "rocksdb",
        })
    }
}

/// One failed step (or oracle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1-based step number, or None for a failure of the file itself or of an oracle.
    pub step: Option<usize>,
    pub backend: Option<Backend>,
    pub expected: String,
    pub actual: String,
}

/// The outcome of one file.
#[derive(Debug, Clone)]
pub struct FileResult {
    pub path: String,
    pub name: String,
    pub failures: Vec<Failure>,
    /// What the file exercised, for coverage.
    pub seen: crate::coverage::Seen,
}

impl FileResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.step {
            Some(n) => write!(f, "step {n}")?,
            None => write!(f, "file")?,
        }
        if let Some(b) = self.backend {
            write!(f, " ({b})")?;
        }
        write!(f, ": expected {}, got {}", self.expected, self.actual)
    }
}

/// The clock a scenario starts with when it sets none.
pub const START: &str = "2026-01-01T00:00:00Z";

/// Parses and runs a file against the in-memory log and against RocksDB in a temporary folder.
pub fn run_file(path: &Path) -> FileResult {
    let display = path.display().to_string();
    let fail = |expected: &str, actual: String| FileResult {
        path: display.clone(),
        name: String::new(),
        failures: vec![Failure {
            step: None,
            backend: None,
            expected: expected.to_string(),
            actual,
        }],
        seen: Default::default(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail("a readable file", e.to_string()),
    };
    run_text(&display, &text).unwrap_or_else(|e| fail("a valid scenario file", e))
}

/// Parses and runs a scenario given as text.
pub fn run_text(path: &str, text: &str) -> Result<FileResult, String> {
    let file: ScenarioFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let steps = file
        .steps
        .into_iter()
        .enumerate()
        .map(|(i, v)| Step::parse(v).map_err(|e| format!("step {}: {e}", i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut failures = Vec::new();
    let mut seen = crate::coverage::Seen::default();
    for backend in [Backend::Memory, Backend::Rocks] {
        let log: Arc<dyn EventLog> = match backend {
            Backend::Memory => Arc::new(MemoryLog::new()),
            Backend::Rocks => match RocksLog::temporary() {
                Ok(l) => Arc::new(l),
                Err(e) => return Err(format!("cannot open a temporary RocksDB log: {e}")),
            },
        };
        let mut runner = Runner::new(log, backend)?;
        for (i, step) in steps.iter().enumerate() {
            runner.step(i + 1, step);
        }
        runner.oracles();
        if backend == Backend::Memory {
            seen = runner.seen.clone();
            seen.steps(&steps);
        }
        failures.extend(runner.finish());
    }
    Ok(FileResult {
        path: path.to_string(),
        name: file.name,
        failures,
        seen,
    })
}

struct Runner {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    marks: HashMap<String, Seq>,
    tokens: HashMap<String, String>,
    failures: Vec<Failure>,
    backend: Backend,
    seen: crate::coverage::Seen,
}

fn set<T: Ord + ToString>(items: impl IntoIterator<Item = T>) -> String {
    let s: BTreeSet<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{s:?}")
}

impl Runner {
    fn new(log: Arc<dyn EventLog>, backend: Backend) -> Result<Runner, String> {
        let start = Timestamp::parse(START).map_err(|e| e.to_string())?;
        let clock = Arc::new(ManualClock::new(start));
        let ledger = Ledger::open(log, clock.clone()).map_err(|e| e.to_string())?;
        Ok(Runner {
            ledger,
            clock,
            marks: HashMap::new(),
            tokens: HashMap::new(),
            failures: Vec::new(),
            backend,
            seen: Default::default(),
        })
    }

    fn finish(self) -> Vec<Failure> {
        self.ledger.shutdown();
        self.failures
    }

    fn fail(
        &mut self,
        step: Option<usize>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        self.failures.push(Failure {
            step,
            backend: Some(self.backend),
            expected: expected.into(),
            actual: actual.into(),
        });
    }

    fn compare(&mut self, n: usize, expected: String, actual: String) {
        if expected != actual {
            self.fail(Some(n), expected, actual);
        }
    }

    fn moment(&self, views: &Views, at: Option<&AtSpec>) -> Result<Moment, String> {
        let at = match at {
            None => None,
            Some(AtSpec::Seq(n)) => Some(At::Seq(*n)),
            Some(AtSpec::Time(t)) => Some(At::Time(*t)),
            Some(AtSpec::Mark(m)) => Some(At::Seq(
                *self
                    .marks
                    .get(m)
                    .ok_or_else(|| format!("mark `{m}` is not set"))?,
            )),
        };
        views
            .moment(at.as_ref(), self.clock.now())
            .map_err(|e| e.to_string())
    }

    fn step(&mut self, n: usize, step: &Step) {
        match step {
            Step::Clock(t) => {
                if *t < self.clock.now() {
                    self.fail(
                        Some(n),
                        format!("a clock at or after {}", self.clock.now()),
                        format!("{t}: the clock never goes back"),
                    );
                } else {
                    self.clock.set(*t);
                }
            }
            Step::Mark(name) => {
                if self.marks.insert(name.clone(), self.ledger.seq()).is_some() {
                    self.fail(
                        Some(n),
                        "a new mark name",
                        format!("mark `{name}` set twice"),
                    );
                }
            }
            Step::Do(d) => self.run_do(n, d),
            Step::Verify => match permledger_log::verify(&**self.ledger.log(), None, |_| {}) {
                Ok(Ok(_)) => {}
                Ok(Err(t)) => self.fail(Some(n), "\"ok\"", t.to_string()),
                Err(e) => self.fail(Some(n), "\"ok\"", e.to_string()),
            },
            Step::Audit { query, expect } => self.run_audit(n, query, expect),
            query => {
                let answer = {
                    let views = self.ledger.views();
                    self.answer(&views, query)
                };
                match answer {
                    Ok((expected, actual)) => self.compare(n, expected, actual),
                    Err(e) => self.fail(Some(n), "an answer", e),
                }
            }
        }
    }

    /// (expected, actual) for the read-only queries, both rendered the same way.
    fn answer(&self, views: &Views, step: &Step) -> Result<(String, String), String> {
        let org_at = |org: &OrgId, m: Moment| views.org_at(org, m.seq);
        match step {
            Step::Check {
                query: q,
                expect,
                via,
            } => {
                let m = self.moment(views, q.at.as_ref())?;
                let e = match org_at(&q.org, m) {
                    Some(o) => check::explain(&o, &q.user, &q.permission, &q.scope, m.time),
                    None => Explanation {
                        allowed: false,
                        facts: Vec::new(),
                        denial: None,
                    },
                };
                let facts: BTreeSet<Via> = e
                    .facts
                    .iter()
                    .map(|f| match f {
                        Fact::Owner { .. } => Via::Owner,
                        Fact::Role { role, scope, .. } => Via::Role {
                            role: role.clone(),
                            scope: scope.clone(),
                        },
                        Fact::Grant {
                            permission, scope, ..
                        } => Via::Grant {
                            grant: permission.clone(),
                            scope: scope.clone(),
                        },
                    })
                    .collect();
                let render = |allowed: bool, facts: Option<&BTreeSet<Via>>| match facts {
                    None => format!("{allowed}"),
                    Some(f) => format!("{allowed} via {}", set(f.iter())),
                };
                let want_via: Option<BTreeSet<Via>> =
                    via.as_ref().map(|v| v.iter().cloned().collect());
                Ok((
                    render(*expect, want_via.as_ref()),
                    render(e.allowed, want_via.as_ref().map(|_| &facts)),
                ))
            }
            Step::WhoCan { query: q, expect } => {
                let m = self.moment(views, q.at.as_ref())?;
                let got = org_at(&q.org, m)
                    .map(|o| check::who_can(&o, &q.permission, &q.scope, m.time))
                    .unwrap_or_default();
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Permissions { query: q, expect } => {
                let m = self.moment(views, q.at.as_ref())?;
                let got = org_at(&q.org, m)
                    .map(|o| check::permissions(&o, &q.user, &q.scope, m.time))
                    .unwrap_or_default();
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Scopes { query: q, expect } => {
                let m = self.moment(views, q.at.as_ref())?;
                let got = org_at(&q.org, m)
                    .map(|o| check::scopes(&o, &q.user, &q.permission, q.kind, m.time))
                    .unwrap_or_default();
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Members { query: q, expect } => {
                let m = self.moment(views, q.at.as_ref())?;
                let got = org_at(&q.org, m)
                    .map(|o| check::members_of(&o, &q.scope, m.time))
                    .unwrap_or_default();
                let render = |m: &BTreeMap<_, Option<permledger_domain::RoleId>>| {
                    let v: BTreeMap<String, Value> = m
                        .iter()
                        .map(|(u, r): (&permledger_domain::UserId, &Option<_>)| {
                            (
                                u.to_string(),
                                r.as_ref()
                                    .map_or(Value::Null, |r: &permledger_domain::RoleId| {
                                        Value::String(r.to_string())
                                    }),
                            )
                        })
                        .collect();
                    serde_json::to_string(&v).unwrap_or_default()
                };
                Ok((render(expect), render(&got)))
            }
            Step::Diff { query: q, expect } => {
                let from = self.moment(views, Some(&q.from))?;
                let to = self.moment(views, Some(&q.to))?;
                let d = permledger_views::diff::diff(
                    views,
                    &q.org,
                    from,
                    to,
                    q.user.as_ref(),
                    q.scope.as_ref(),
                );
                Ok((
                    format!(
                        "gained {} lost {}",
                        set(expect.gained.iter()),
                        set(expect.lost.iter())
                    ),
                    format!(
                        "gained {} lost {}",
                        set(d.gained.iter()),
                        set(d.lost.iter())
                    ),
                ))
            }
            _ => Err("not a query".into()),
        }
    }

    fn run_do(&mut self, n: usize, d: &DoStep) {
        let mut json = d.command.clone();
        if let Err(e) = self.substitute(&mut json) {
            return self.fail(Some(n), "a command", e);
        }
        let before = self.ledger.seq();
        let result = match serde_json::from_value::<Command>(json) {
            Ok(command) => {
                self.seen.command(command.type_name(), &command);
                let meta = CommandMeta {
                    actor: d.actor.clone(),
                    reason: d.reason.clone(),
                    request_id: d.request_id.clone(),
                    idempotency_key: d.idempotency_key.clone(),
                    expect_version: d.expect_version,
                };
                self.ledger.submit_blocking(command, meta)
            }
            // A command that does not parse is malformed input.
            Err(e) => Err(SubmitError::Rejected(
                permledger_domain::Rejection::invalid(e.to_string()),
            )),
        };
        match (result, d.expect_error) {
            (Ok(outcome), None) => {
                let types: Vec<&str> = outcome
                    .events
                    .iter()
                    .map(|e| e.payload.type_name())
                    .collect();
                for t in &types {
                    self.seen.event(t);
                }
                if let Some(want) = &d.expect_events {
                    self.compare(n, format!("events {want:?}"), format!("events {types:?}"));
                }
                if let Some(Ok(link)) = d
                    .command
                    .get("link")
                    .and_then(Value::as_str)
                    .map(permledger_domain::LinkId::new)
                {
                    if let Some(token) = outcome.link_token {
                        self.tokens.insert(link.to_string(), token);
                    }
                }
            }
            (Ok(outcome), Some(code)) => {
                let types: Vec<&str> = outcome
                    .events
                    .iter()
                    .map(|e| e.payload.type_name())
                    .collect();
                self.fail(
                    Some(n),
                    format!("refusal `{code}`"),
                    format!("events {types:?}"),
                );
            }
            (Err(SubmitError::Rejected(r)), want) => {
                self.seen.error(r.code);
                match want {
                    Some(code) if code == r.code => {
                        if self.ledger.seq() != before {
                            self.fail(
                                Some(n),
                                "nothing recorded",
                                format!("the log moved from {before} to {}", self.ledger.seq()),
                            );
                        }
                    }
                    Some(code) => self.fail(
                        Some(n),
                        format!("refusal `{code}`"),
                        format!("refusal `{}`: {}", r.code, r.message),
                    ),
                    None => self.fail(
                        Some(n),
                        "success",
                        format!("refusal `{}`: {}", r.code, r.message),
                    ),
                }
            }
            (Err(e), _) => self.fail(Some(n), "an answer", e.to_string()),
        }
    }

    /// Replaces `"$token:LINK"` strings with the token that link was given.
    fn substitute(&self, v: &mut Value) -> Result<(), String> {
        match v {
            Value::String(s) => {
                if let Some(link) = s.strip_prefix("$token:") {
                    *s = self
                        .tokens
                        .get(link)
                        .cloned()
                        .ok_or_else(|| format!("no token for link `{link}` yet"))?;
                }
                Ok(())
            }
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.substitute(x)),
            Value::Object(o) => o.values_mut().try_for_each(|x| self.substitute(x)),
            _ => Ok(()),
        }
    }

    fn run_audit(&mut self, n: usize, q: &crate::format::AuditQuerySpec, expect: &AuditExpect) {
        let resolved = {
            let views = self.ledger.views();
            q.at.as_ref().map(|a| self.moment(&views, Some(a)))
        };
        let until = match resolved {
            None => None,
            Some(Ok(m)) => Some(m.seq),
            Some(Err(e)) => return self.fail(Some(n), "an answer", e),
        };
        let mut query = AuditQuery {
            actor: q.actor.clone(),
            user: q.user.clone(),
            scope: q.scope.clone(),
            types: q.types.clone(),
            from: q.from,
            to: q.to,
            until,
            after: None,
            limit: Some(1000),
        };
        let mut entries = Vec::new();
        let result = loop {
            match self
                .ledger
                .audit(&q.org, &q.reader, &query, self.clock.now())
            {
                Ok(page) => {
                    entries.extend(page.entries.into_iter().map(|e| e.action));
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => break Ok(()),
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match (result, expect) {
            (Ok(()), AuditExpect::Count(c)) => self.compare(
                n,
                format!("{c} entries"),
                format!("{} entries", entries.len()),
            ),
            (Ok(()), AuditExpect::Types(t)) => {
                self.compare(n, format!("{t:?}"), format!("{entries:?}"))
            }
            (Ok(()), AuditExpect::Error(code)) => self.fail(
                Some(n),
                format!("refusal `{code}`"),
                format!("{} entries", entries.len()),
            ),
            (Err(AuditError::Rejected(r)), AuditExpect::Error(code)) => {
                self.seen.error(r.code);
                if r.code != *code {
                    self.fail(
                        Some(n),
                        format!("refusal `{code}`"),
                        format!("refusal `{}`: {}", r.code, r.message),
                    );
                }
            }
            (Err(e), _) => self.fail(Some(n), "entries", e.to_string()),
        }
    }

    /// scenarios.md's oracles, after the last step.
    fn oracles(&mut self) {
        let log = self.ledger.log().clone();
        // 1. Rebuilding every projection from the log alone gives the live projections.
        match permledger_ledger::replay(&*log, |_, _| {}) {
            Ok(rebuilt) => {
                let views = self.ledger.views();
                let same = rebuilt.live == views.live && rebuilt.histories == views.histories;
                drop(views);
                if !same {
                    self.fail(
                        None,
                        "oracle 1: a rebuild equal to the live projections",
                        "a different state",
                    );
                }
            }
            Err(e) => self.fail(None, "oracle 1: a rebuild", e.to_string()),
        }
        // 2. Every mark's past state equals a fresh ledger fed the events up to it.
        let mut marks: Vec<(String, Seq)> =
            self.marks.iter().map(|(k, v)| (k.clone(), *v)).collect();
        marks.sort_by_key(|(_, s)| *s);
        for (name, seq) in marks {
            let mut fresh = State::default();
            let records = match log.read(1, usize::try_from(seq).unwrap_or(usize::MAX)) {
                Ok(r) => r,
                Err(e) => return self.fail(None, "oracle 2: the log", e.to_string()),
            };
            for r in records {
                match r.decode() {
                    Ok(e) => fresh.apply(&e),
                    Err(e) => return self.fail(None, "oracle 2: decodable events", e.to_string()),
                }
            }
            let views = self.ledger.views();
            let past: BTreeMap<OrgId, permledger_domain::state::Org> = views
                .histories
                .iter()
                .filter_map(|(id, h)| h.at(seq).map(|o| (id.clone(), o.materialize())))
                .collect();
            drop(views);
            if past != fresh.orgs {
                self.fail(
                    None,
                    format!("oracle 2: the state at mark `{name}` equal to a replay of its prefix"),
                    "a different state",
                );
            }
        }
        // 3. The hash chain verifies.
        match permledger_log::verify(&*log, None, |_| {}) {
            Ok(Ok(_)) => {}
            Ok(Err(t)) => self.fail(None, "oracle 3: a verifying chain", t.to_string()),
            Err(e) => self.fail(None, "oracle 3: a verifying chain", e.to_string()),
        }
    }
}
