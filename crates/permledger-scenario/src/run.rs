//! Running a scenario file: every step against a fresh ledger, then the three oracles.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use permledger_domain::{Command, Fact, Seq, Timestamp};
use permledger_log::MemoryLog;
use permledger_rocks::RocksLog;
use permledger_views::At;
use serde_json::Value;

use crate::format::{AtSpec, AuditExpect, DoStep, Step, Via};
use crate::remote::Remote;
use crate::target::{InProcess, Target};

/// Where files run.
#[derive(Clone)]
pub enum Backend {
    /// In this process, over the in-memory log and then over RocksDB in a temporary folder.
    Local,
    /// Through the HTTP API of a running server (`serve --sandboxes`), one sandbox per file;
    /// the client carries an operator token.
    Server(permledger_client::Client),
}

/// One failed step (or oracle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1-based step number, or None for a failure of the file itself or of an oracle.
    pub step: Option<usize>,
    /// The target that failed (`memory`, `rocksdb`, `http`), if the file got that far.
    pub backend: Option<&'static str>,
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
    run_file_on(path, &Backend::Local)
}

/// Parses and runs a file where `backend` says.
pub fn run_file_on(path: &Path, backend: &Backend) -> FileResult {
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
    run_text_on(&display, &text, backend).unwrap_or_else(|e| fail("a valid scenario file", e))
}

/// Parses and runs a scenario given as text, in this process.
pub fn run_text(path: &str, text: &str) -> Result<FileResult, String> {
    run_text_on(path, text, &Backend::Local)
}

/// Opens a fresh target for one run of a file.
type Opener = Box<dyn Fn() -> Result<Box<dyn Target>, String>>;

/// Parses a scenario given as text and runs it where `backend` says. `Err` is a file that does
/// not parse.
pub fn run_text_on(path: &str, text: &str, backend: &Backend) -> Result<FileResult, String> {
    let (name, steps) = crate::format::parse_file(text)?;
    let start = start_of(&steps)?;
    let targets: Vec<Opener> = match backend {
        Backend::Local => vec![
            Box::new(move || {
                Ok(Box::new(InProcess::open(
                    Arc::new(MemoryLog::new()),
                    start,
                    "memory",
                )?))
            }),
            Box::new(move || {
                let log = RocksLog::temporary()
                    .map_err(|e| format!("cannot open a temporary RocksDB log: {e}"))?;
                Ok(Box::new(InProcess::open(Arc::new(log), start, "rocksdb")?))
            }),
        ],
        Backend::Server(client) => {
            let client = client.clone();
            vec![Box::new(move || {
                Ok(Box::new(Remote::create(&client, start)?))
            })]
        }
    };
    let mut failures = Vec::new();
    let mut per_target = Vec::new();
    let mut seen = crate::coverage::Seen::default();
    for (i, open) in targets.iter().enumerate() {
        let target = match open() {
            Ok(t) => t,
            Err(e) => {
                failures.push(Failure {
                    step: None,
                    backend: None,
                    expected: "a ledger to run on".into(),
                    actual: e,
                });
                break;
            }
        };
        let mut runner = Runner::new(target, start);
        for (n, step) in steps.iter().enumerate() {
            runner.step(n + 1, step);
        }
        runner.oracles();
        if i == 0 {
            seen = runner.seen.clone();
            seen.steps(&steps);
        }
        per_target.push(runner.finish());
    }
    failures.extend(merge(per_target));
    Ok(FileResult {
        path: path.to_string(),
        name,
        failures,
        seen,
    })
}

/// The clock a file starts with: its first `clock` step when one comes before its first command,
/// whatever its date (a file may begin in 1999); else `START`.
fn start_of(steps: &[Step]) -> Result<Timestamp, String> {
    for step in steps {
        match step {
            Step::Clock(t) => return Ok(*t),
            Step::Do(_) => break,
            _ => {}
        }
    }
    Timestamp::parse(START).map_err(|e| e.to_string())
}

/// One line per failed step: where a file runs on several targets, a failure every target met
/// alike is reported once, without naming a target; one that only some met names each. A file
/// run on one target (a server) keeps the target's name.
fn merge(per_target: Vec<Vec<Failure>>) -> Vec<Failure> {
    let [first, _, ..] = per_target.as_slice() else {
        return per_target.into_iter().flatten().collect();
    };
    let alike = |a: &Failure, b: &Failure| {
        a.step == b.step && a.expected == b.expected && a.actual == b.actual
    };
    let everywhere = |f: &Failure| per_target.iter().all(|fs| fs.iter().any(|g| alike(f, g)));
    let mut out: Vec<Failure> = first
        .iter()
        .filter(|f| everywhere(f))
        .map(|f| Failure {
            backend: None,
            ..f.clone()
        })
        .collect();
    for fs in &per_target {
        out.extend(fs.iter().filter(|f| !everywhere(f)).cloned());
    }
    out.sort_by_key(|f| f.step.unwrap_or(usize::MAX));
    out
}

/// Plays one file's steps against one target and judges the answers.
struct Runner {
    target: Box<dyn Target>,
    /// The clock as the file last set it.
    now: Timestamp,
    marks: HashMap<String, Seq>,
    tokens: HashMap<String, String>,
    failures: Vec<Failure>,
    seen: crate::coverage::Seen,
}

fn set<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    let s: BTreeSet<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{s:?}")
}

impl Runner {
    fn new(target: Box<dyn Target>, start: Timestamp) -> Runner {
        Runner {
            target,
            now: start,
            marks: HashMap::new(),
            tokens: HashMap::new(),
            failures: Vec::new(),
            seen: Default::default(),
        }
    }

    fn finish(self) -> Vec<Failure> {
        self.target.finish();
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
            backend: Some(self.target.name()),
            expected: expected.into(),
            actual: actual.into(),
        });
    }

    fn compare(&mut self, n: usize, expected: String, actual: String) {
        if expected != actual {
            self.fail(Some(n), expected, actual);
        }
    }

    fn at(&self, at: Option<&AtSpec>) -> Result<Option<At>, String> {
        Ok(match at {
            None => None,
            Some(AtSpec::Seq(n)) => Some(At::Seq(*n)),
            Some(AtSpec::Time(t)) => Some(At::Time(*t)),
            Some(AtSpec::Mark(m)) => Some(At::Seq(
                *self
                    .marks
                    .get(m)
                    .ok_or_else(|| format!("mark `{m}` is not set"))?,
            )),
        })
    }

    fn step(&mut self, n: usize, step: &Step) {
        let outcome = match step {
            Step::Clock(t) => {
                if *t < self.now {
                    let now = self.now;
                    self.fail(
                        Some(n),
                        format!("a clock at or after {now}"),
                        format!("{t}: the clock never goes back"),
                    );
                    return;
                }
                self.now = *t;
                self.target.set_clock(*t)
            }
            Step::Mark(name) => self.target.seq().map(|seq| {
                if self.marks.insert(name.clone(), seq).is_some() {
                    self.fail(
                        Some(n),
                        "a new mark name",
                        format!("mark `{name}` set twice"),
                    );
                }
            }),
            Step::Do(d) => self.run_do(n, d),
            Step::Verify => self.target.verify_chain().map(|r| {
                if let Err(problem) = r {
                    self.fail(Some(n), "\"ok\"", problem);
                }
            }),
            Step::Audit { query, expect } => self.run_audit(n, query, expect),
            query => self
                .answer(query)
                .map(|(expected, actual)| self.compare(n, expected, actual)),
        };
        if let Err(e) = outcome {
            self.fail(Some(n), "an answer", e);
        }
    }

    /// (expected, actual) for the read-only queries, both rendered the same way.
    fn answer(&mut self, step: &Step) -> Result<(String, String), String> {
        match step {
            Step::Check {
                query: q,
                expect,
                via,
            } => {
                let at = self.at(q.at.as_ref())?;
                let e = self.target.check(q, at)?;
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
                let got = self.target.who_can(q, self.at(q.at.as_ref())?)?;
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Permissions { query: q, expect } => {
                let got = self.target.permissions(q, self.at(q.at.as_ref())?)?;
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Scopes { query: q, expect } => {
                let got = self.target.scopes(q, self.at(q.at.as_ref())?)?;
                Ok((set(expect.iter()), set(got.iter())))
            }
            Step::Members { query: q, expect } => {
                let got = self.target.members(q, self.at(q.at.as_ref())?)?;
                let render = |m: &BTreeMap<permledger_domain::UserId, Option<_>>| {
                    let v: BTreeMap<String, Value> = m
                        .iter()
                        .map(|(u, r): (_, &Option<permledger_domain::RoleId>)| {
                            (
                                u.to_string(),
                                r.as_ref()
                                    .map_or(Value::Null, |r| Value::String(r.to_string())),
                            )
                        })
                        .collect();
                    serde_json::to_string(&v).unwrap_or_default()
                };
                Ok((render(expect), render(&got)))
            }
            Step::Diff { query: q, expect } => {
                let (Some(from), Some(to)) = (self.at(Some(&q.from))?, self.at(Some(&q.to))?)
                else {
                    return Err("a diff needs two moments".into());
                };
                let (gained, lost) = self.target.diff(q, from, to)?;
                Ok((
                    format!(
                        "gained {} lost {}",
                        set(expect.gained.iter()),
                        set(expect.lost.iter())
                    ),
                    format!("gained {} lost {}", set(gained.iter()), set(lost.iter())),
                ))
            }
            _ => Err("not a query".into()),
        }
    }

    fn run_do(&mut self, n: usize, d: &DoStep) -> Result<(), String> {
        let mut json = d.command.clone();
        if let Err(e) = self.substitute(&mut json) {
            self.fail(Some(n), "a command", e);
            return Ok(());
        }
        if let Ok(command) = serde_json::from_value::<Command>(json.clone()) {
            self.seen.command(command.type_name(), &command);
        }
        let before = self.target.seq()?;
        match (self.target.submit(&json, d)?, d.expect_error) {
            (Ok(recorded), None) => {
                for t in &recorded.events {
                    self.seen.event(t);
                }
                if let Some(want) = &d.expect_events {
                    let got = &recorded.events;
                    self.compare(n, format!("events {want:?}"), format!("events {got:?}"));
                }
                if let (Some(link), Some(token)) = (
                    d.command.get("link").and_then(Value::as_str),
                    recorded.token,
                ) {
                    self.tokens.insert(link.to_string(), token);
                }
            }
            (Ok(recorded), Some(code)) => self.fail(
                Some(n),
                format!("refusal `{code}`"),
                format!("events {:?}", recorded.events),
            ),
            (Err(r), want) => {
                self.seen.error(r.code);
                match want {
                    Some(code) if code == r.code => {
                        let after = self.target.seq()?;
                        if after != before {
                            self.fail(
                                Some(n),
                                "nothing recorded",
                                format!("the log moved from {before} to {after}"),
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
        }
        Ok(())
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

    fn run_audit(
        &mut self,
        n: usize,
        q: &crate::format::AuditQuerySpec,
        expect: &AuditExpect,
    ) -> Result<(), String> {
        let at = self.at(q.at.as_ref())?;
        match (self.target.audit(q, at)?, expect) {
            (Ok(entries), AuditExpect::Count(c)) => self.compare(
                n,
                format!("{c} entries"),
                format!("{} entries", entries.len()),
            ),
            (Ok(entries), AuditExpect::Types(t)) => {
                self.compare(n, format!("{t:?}"), format!("{entries:?}"))
            }
            (Ok(entries), AuditExpect::Error(code)) => self.fail(
                Some(n),
                format!("refusal `{code}`"),
                format!("{} entries", entries.len()),
            ),
            (Err(r), AuditExpect::Error(code)) => {
                self.seen.error(r.code);
                if r.code != *code {
                    self.fail(
                        Some(n),
                        format!("refusal `{code}`"),
                        format!("refusal `{}`: {}", r.code, r.message),
                    );
                }
            }
            (Err(r), _) => self.fail(
                Some(n),
                "entries",
                format!("refusal `{}`: {}", r.code, r.message),
            ),
        }
        Ok(())
    }

    /// scenarios.md's oracles, after the last step.
    fn oracles(&mut self) {
        // 1. Rebuilding every projection from the log alone gives the live projections.
        match self.target.verify_projections() {
            Ok(Ok(())) => {}
            Ok(Err(problem)) => self.fail(
                None,
                "oracle 1: a rebuild equal to the live projections",
                problem,
            ),
            Err(e) => self.fail(None, "oracle 1: a rebuild", e),
        }
        // 2. Every mark's past state equals a fresh ledger fed the events up to it.
        let mut marks: Vec<(String, Seq)> =
            self.marks.iter().map(|(k, v)| (k.clone(), *v)).collect();
        marks.sort_by_key(|(_, s)| *s);
        for (name, seq) in marks {
            let expected =
                format!("oracle 2: the state at mark `{name}` equal to a replay of its prefix");
            match self.target.verify_past(seq) {
                Ok(Ok(())) => {}
                Ok(Err(problem)) | Err(problem) => self.fail(None, expected, problem),
            }
        }
        // 3. The hash chain verifies.
        match self.target.verify_chain() {
            Ok(Ok(())) => {}
            Ok(Err(problem)) | Err(problem) => {
                self.fail(None, "oracle 3: a verifying chain", problem)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_step_that_fails_on_every_log_is_one_line() {
        let text = r#"{"name": "x", "steps": [
            {"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}},
            {"check": {"org": "acme", "user": "bob", "permission": "org.audit.view", "scope": "org"},
             "expect": true}
        ]}"#;
        let r = run_text("x.json", text).unwrap();
        assert_eq!(r.failures.len(), 1, "{:?}", r.failures);
        assert_eq!(r.failures[0].step, Some(2));
        assert_eq!(r.failures[0].backend, None);
    }

    #[test]
    fn the_clock_starts_at_the_first_clock_step_before_any_command() {
        let before = |steps: &str| {
            let text = format!(r#"{{"name": "x", "steps": [{steps}]}}"#);
            let (_, steps) = crate::format::parse_file(&text).unwrap();
            start_of(&steps).unwrap().to_string()
        };
        let create =
            r#"{"as": "ann", "do": {"type": "create_org", "org": "acme", "preset": "blank"}}"#;
        assert_eq!(
            before(r#"{"mark": "m"}, {"clock": "1999-06-01T09:00:00Z"}"#),
            "1999-06-01T09:00:00Z"
        );
        assert_eq!(
            before(&format!(r#"{create}, {{"clock": "1999-06-01T09:00:00Z"}}"#)),
            START
        );
        assert_eq!(before(""), START);
    }
}
