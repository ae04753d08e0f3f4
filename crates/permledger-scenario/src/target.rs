//! What a scenario runs against. The runner plays steps and compares answers; a target only
//! carries them out: a ledger in this process (over the in-memory log or RocksDB), or a sandbox of
//! a running server (`remote.rs`). Moments come resolved (marks are the runner's), and answers
//! come back as plain data so that both targets are judged by the same code.

use std::collections::BTreeMap;
use std::sync::Arc;

use permledger_domain::check;
use permledger_domain::{
    Command, CommandMeta, Explanation, PermissionKey, Principal, Rejection, RoleId, Scope, Seq,
    Timestamp, UserId,
};
use permledger_ledger::{Clock, Ledger, ManualClock, SubmitError};
use permledger_log::EventLog;
use permledger_views::audit::{AuditError, AuditQuery};
use permledger_views::{At, Moment, OrgAt, Views};
use serde_json::Value;

use crate::format::{
    AuditQuerySpec, CheckQuery, DiffQuery, DoStep, MembersQuery, PermissionsQuery, ScopesQuery,
    WhoCanQuery,
};

/// A command the target recorded.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Event types, in order.
    pub events: Vec<String>,
    /// The secret of an invite link the command created.
    pub token: Option<String>,
}

/// `Err(String)` is the target failing to answer; a refusal is an answer (`Ok(Err(rejection))`).
pub type Answer<T> = Result<T, String>;

pub trait Target {
    /// Where the target runs, for failure lines (`memory`, `rocksdb`, `http`).
    fn name(&self) -> &'static str;
    /// Moves the clock forward; the runner has checked it does not go back.
    fn set_clock(&mut self, t: Timestamp) -> Answer<()>;
    /// The position of the last event recorded.
    fn seq(&mut self) -> Answer<Seq>;
    /// Issues a command (as the file wrote it, `$token:` already replaced).
    fn submit(&mut self, command: &Value, step: &DoStep) -> Answer<Result<Recorded, Rejection>>;
    fn check(&mut self, q: &CheckQuery, at: Option<At>) -> Answer<Explanation>;
    fn who_can(&mut self, q: &WhoCanQuery, at: Option<At>) -> Answer<Vec<UserId>>;
    fn permissions(&mut self, q: &PermissionsQuery, at: Option<At>) -> Answer<Vec<PermissionKey>>;
    fn scopes(&mut self, q: &ScopesQuery, at: Option<At>) -> Answer<Vec<Scope>>;
    fn members(
        &mut self,
        q: &MembersQuery,
        at: Option<At>,
    ) -> Answer<BTreeMap<UserId, Option<RoleId>>>;
    /// (gained, lost) as `"USER PERMISSION SCOPE"` strings.
    fn diff(&mut self, q: &DiffQuery, from: At, to: At) -> Answer<(Vec<String>, Vec<String>)>;
    /// Every matching entry's event type, in log order.
    fn audit(
        &mut self,
        q: &AuditQuerySpec,
        at: Option<At>,
    ) -> Answer<Result<Vec<String>, Rejection>>;
    /// The hash chain and every stored event: `Ok(Err(problem))` when they do not check out.
    fn verify_chain(&mut self) -> Answer<Result<(), String>>;
    /// Oracle 1: the live projections equal a rebuild from the log.
    fn verify_projections(&mut self) -> Answer<Result<(), String>>;
    /// Oracle 2 at one position: the reconstructed past equals a fold of the events up to it.
    fn verify_past(&mut self, seq: Seq) -> Answer<Result<(), String>>;
    /// Releases what the target holds.
    fn finish(self: Box<Self>);
}

/// A ledger in this process, with a hand-set clock.
pub struct InProcess {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    name: &'static str,
}

impl InProcess {
    pub fn open(log: Arc<dyn EventLog>, start: Timestamp, name: &'static str) -> Answer<Self> {
        let clock = Arc::new(ManualClock::new(start));
        let ledger = Ledger::open(log, clock.clone()).map_err(|e| e.to_string())?;
        Ok(InProcess {
            ledger,
            clock,
            name,
        })
    }

    /// Answers from the org as it was at a moment (None if it did not exist then).
    fn read<T: Default>(
        &self,
        org: &permledger_domain::OrgId,
        at: Option<At>,
        f: impl FnOnce(&OrgAt<'_>, Moment) -> T,
    ) -> Answer<T> {
        let views = self.ledger.views();
        let m = moment(&views, at, self.clock.now())?;
        Ok(views
            .org_at(org, m.seq)
            .map(|o| f(&o, m))
            .unwrap_or_default())
    }
}

fn moment(views: &Views, at: Option<At>, now: Timestamp) -> Answer<Moment> {
    views.moment(at.as_ref(), now).map_err(|e| e.to_string())
}

impl Target for InProcess {
    fn name(&self) -> &'static str {
        self.name
    }

    fn set_clock(&mut self, t: Timestamp) -> Answer<()> {
        self.clock.set(t);
        Ok(())
    }

    fn seq(&mut self) -> Answer<Seq> {
        Ok(self.ledger.seq())
    }

    fn submit(&mut self, command: &Value, d: &DoStep) -> Answer<Result<Recorded, Rejection>> {
        let command = match serde_json::from_value::<Command>(command.clone()) {
            Ok(c) => c,
            // A command that does not parse is malformed input.
            Err(e) => return Ok(Err(Rejection::invalid(e.to_string()))),
        };
        let meta = CommandMeta {
            actor: d.actor.clone(),
            reason: d.reason.clone(),
            request_id: d.request_id.clone(),
            idempotency_key: d.idempotency_key.clone(),
            expect_version: d.expect_version,
            principal: Principal::Local,
        };
        match self.ledger.submit_blocking(command, meta) {
            Ok(outcome) => Ok(Ok(Recorded {
                events: outcome
                    .events
                    .iter()
                    .map(|e| e.payload.type_name().to_string())
                    .collect(),
                token: outcome.link_token,
            })),
            Err(SubmitError::Rejected(r)) => Ok(Err(r)),
            Err(e) => Err(e.to_string()),
        }
    }

    fn check(&mut self, q: &CheckQuery, at: Option<At>) -> Answer<Explanation> {
        let views = self.ledger.views();
        let present = at.is_none();
        let m = moment(&views, at, self.clock.now())?;
        let explained = match views.org_at(&q.org, m.seq) {
            Some(o) => check::explain(&o, &q.user, &q.permission, &q.scope, m.time),
            None => Explanation {
                allowed: false,
                facts: Vec::new(),
                denial: Some(permledger_domain::Denial::NotMember),
            },
        };
        // At the present, services ask the check index instead: it must agree.
        if present
            && views.check(&q.org, &q.user, &q.permission, &q.scope, m.time) != explained.allowed
        {
            return Err(format!(
                "the check index answers {} where the rule answers {}",
                !explained.allowed, explained.allowed
            ));
        }
        Ok(explained)
    }

    fn who_can(&mut self, q: &WhoCanQuery, at: Option<At>) -> Answer<Vec<UserId>> {
        self.read(&q.org, at, |o, m| {
            check::who_can(o, &q.permission, &q.scope, m.time)
                .into_iter()
                .collect()
        })
    }

    fn permissions(&mut self, q: &PermissionsQuery, at: Option<At>) -> Answer<Vec<PermissionKey>> {
        self.read(&q.org, at, |o, m| {
            check::permissions(o, &q.user, &q.scope, m.time)
                .into_iter()
                .collect()
        })
    }

    fn scopes(&mut self, q: &ScopesQuery, at: Option<At>) -> Answer<Vec<Scope>> {
        self.read(&q.org, at, |o, m| {
            check::scopes(o, &q.user, &q.permission, q.kind, m.time)
                .into_iter()
                .collect()
        })
    }

    fn members(
        &mut self,
        q: &MembersQuery,
        at: Option<At>,
    ) -> Answer<BTreeMap<UserId, Option<RoleId>>> {
        self.read(&q.org, at, |o, m| {
            check::members_of(o, &q.scope, m.time).into_iter().collect()
        })
    }

    fn diff(&mut self, q: &DiffQuery, from: At, to: At) -> Answer<(Vec<String>, Vec<String>)> {
        let views = self.ledger.views();
        let now = self.clock.now();
        let from = moment(&views, Some(from), now)?;
        let to = moment(&views, Some(to), now)?;
        let d = permledger_views::diff::diff(
            &views,
            &q.org,
            from,
            to,
            q.user.as_ref(),
            q.scope.as_ref(),
        );
        Ok((d.gained, d.lost))
    }

    fn audit(
        &mut self,
        q: &AuditQuerySpec,
        at: Option<At>,
    ) -> Answer<Result<Vec<String>, Rejection>> {
        let until = match at {
            None => None,
            Some(at) => Some(moment(&self.ledger.views(), Some(at), self.clock.now())?.seq),
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
            indirect: q.indirect,
        };
        let mut entries = Vec::new();
        loop {
            match self
                .ledger
                .audit(&q.org, &q.reader, &query, self.clock.now())
            {
                Ok(page) => {
                    entries.extend(page.entries.into_iter().map(|e| e.action));
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => return Ok(Ok(entries)),
                    }
                }
                Err(AuditError::Rejected(r)) => return Ok(Err(r)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn verify_chain(&mut self) -> Answer<Result<(), String>> {
        match permledger_log::verify(&**self.ledger.log(), &[], |_| {}) {
            Ok(Ok(_)) => Ok(Ok(())),
            Ok(Err(t)) => Ok(Err(t.to_string())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn verify_projections(&mut self) -> Answer<Result<(), String>> {
        Ok(self.ledger.verify_projections().map_err(|e| e.to_string()))
    }

    fn verify_past(&mut self, seq: Seq) -> Answer<Result<(), String>> {
        Ok(self.ledger.verify_past(seq).map_err(|e| e.to_string()))
    }

    fn finish(self: Box<Self>) {
        self.ledger.shutdown();
    }
}
