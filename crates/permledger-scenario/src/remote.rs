//! A sandbox of a running server as a scenario target: the file is played through the public
//! HTTP API exactly as a service or an admin tool would call it, with the typed endpoints of
//! `permledger_api`. Each file gets a sandbox of its own (an isolated in-memory ledger with a
//! hand-set clock, `serve --sandboxes`), because files each start their clock afresh and a
//! ledger's recorded time never goes back.

use std::collections::BTreeMap;

use permledger_api::{self as api, Endpoint};
use permledger_client::{Client, Refusal, Reply};
use permledger_domain::{
    Code, Explanation, PermissionKey, Rejection, RoleId, Scope, Seq, Timestamp, UserId,
};
use permledger_views::At;
use serde_json::Value;

use crate::format::{
    AuditQuerySpec, CheckQuery, DiffQuery, DoStep, MembersQuery, PermissionsQuery, ScopesQuery,
    WhoCanQuery,
};
use crate::target::{Answer, Recorded, Target};

pub struct Remote {
    /// The server's own API (sandboxes are made and ended there).
    server: Client,
    /// The sandbox's API: `/sandboxes/{id}` under the server.
    sandbox: Client,
    id: String,
}

impl Remote {
    /// Creates a sandbox on the server (an operator token is needed) with its clock at `start`.
    pub fn create(server: &Client, start: Timestamp) -> Answer<Remote> {
        let body = api::SandboxRequest { clock: Some(start) };
        let created = expect(call::<api::CreateSandbox>(
            server,
            &api::NoPath {},
            &(),
            &body,
        )?)?;
        Ok(Remote {
            sandbox: server.under(&created.base),
            server: server.clone(),
            id: created.id,
        })
    }

    /// An org read; an org that does not exist at that moment answers nothing, as in process.
    fn org_read<E: Endpoint<Path = api::OrgPath, Body = ()>>(
        &self,
        org: &permledger_domain::OrgId,
        q: &E::Query,
    ) -> Answer<Option<E::Answer>> {
        let path = api::OrgPath { org: org.clone() };
        match call::<E>(&self.sandbox, &path, q, &())? {
            Err(r) if r.status == 404 && r.error.code == "not_found" => Ok(None),
            reply => expect(reply).map(Some),
        }
    }

    fn verify(&self, body: api::VerifyRequest) -> Answer<api::VerifyAnswer> {
        expect(call::<api::Verify>(
            &self.sandbox,
            &api::NoPath {},
            &(),
            &body,
        )?)
    }
}

fn what<E: Endpoint>() -> String {
    format!("{} {}", E::METHOD.as_str(), E::PATH)
}

fn call<E: Endpoint>(
    client: &Client,
    path: &E::Path,
    q: &E::Query,
    body: &E::Body,
) -> Answer<Reply<E::Answer>> {
    client
        .call::<E>(path, q, body)
        .map_err(|e| format!("{}: {e}", what::<E>()))
}

/// The answer, or the refusal as the target failing.
fn expect<A>(reply: Reply<A>) -> Answer<A> {
    reply.map_err(|r| r.to_string())
}

/// A refusal with a code of domain.md is an answer; anything else (401, 503) is the target failing.
fn refusal(r: Refusal) -> Answer<Rejection> {
    match serde_json::from_value::<Code>(Value::String(r.error.code.clone())) {
        Ok(code) => Ok(Rejection {
            code,
            message: r.error.message,
        }),
        Err(_) => Err(r.to_string()),
    }
}

fn finding(ok: bool, problem: Option<String>) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(problem.unwrap_or_else(|| "the server's verification did not answer".to_string()))
    }
}

impl Target for Remote {
    fn name(&self) -> &'static str {
        "http"
    }

    fn set_clock(&mut self, t: Timestamp) -> Answer<()> {
        let path = api::SandboxPath {
            id: self.id.clone(),
        };
        let body = api::ClockRequest { now: t };
        expect(call::<api::SetSandboxClock>(
            &self.server,
            &path,
            &(),
            &body,
        )?)
        .map(|_| ())
    }

    fn seq(&mut self) -> Answer<Seq> {
        expect(call::<api::Health>(
            &self.sandbox,
            &api::NoPath {},
            &(),
            &(),
        )?)
        .map(|h| h.seq)
    }

    fn submit(&mut self, command: &Value, d: &DoStep) -> Answer<Result<Recorded, Rejection>> {
        // The command goes as the file wrote it, so that the server judges a malformed one.
        let body = api::CommandRequest {
            actor: d.actor.clone(),
            command: command.clone(),
            reason: d.reason.clone(),
            request_id: d.request_id.clone(),
            idempotency_key: d.idempotency_key.clone(),
            expect_version: d.expect_version,
        };
        let reply = self
            .sandbox
            .call_with::<api::SubmitCommand, api::CommandAnswer>(&api::NoPath {}, &(), &body)
            .map_err(|e| format!("{}: {e}", what::<api::SubmitCommand>()))?;
        match reply {
            Ok(answer) => Ok(Ok(Recorded {
                events: answer
                    .events
                    .iter()
                    .map(|e| e.payload.type_name().to_string())
                    .collect(),
                token: answer.token,
            })),
            Err(r) => refusal(r).map(Err),
        }
    }

    fn check(&mut self, q: &CheckQuery, at: Option<At>) -> Answer<Explanation> {
        let params = api::CheckParams {
            user: q.user.clone(),
            permission: q.permission.clone(),
            scope: q.scope.clone(),
            at: at.map(Into::into),
            explain: Some(true),
            min_seq: None,
        };
        let path = api::OrgPath { org: q.org.clone() };
        expect(call::<api::Check>(&self.sandbox, &path, &params, &())?)
            .map(api::CheckAnswer::explanation)
    }

    fn who_can(&mut self, q: &WhoCanQuery, at: Option<At>) -> Answer<Vec<UserId>> {
        let params = api::WhoCanParams {
            permission: q.permission.clone(),
            scope: q.scope.clone(),
            at: at.map(Into::into),
            min_seq: None,
        };
        let answer = self.org_read::<api::WhoCan>(&q.org, &params)?;
        Ok(answer.map(|a| a.users).unwrap_or_default())
    }

    fn permissions(&mut self, q: &PermissionsQuery, at: Option<At>) -> Answer<Vec<PermissionKey>> {
        let params = api::PermissionsParams {
            user: q.user.clone(),
            scope: q.scope.clone(),
            at: at.map(Into::into),
            min_seq: None,
        };
        let answer = self.org_read::<api::Permissions>(&q.org, &params)?;
        Ok(answer.map(|a| a.permissions).unwrap_or_default())
    }

    fn scopes(&mut self, q: &ScopesQuery, at: Option<At>) -> Answer<Vec<Scope>> {
        let params = api::ScopesParams {
            user: q.user.clone(),
            permission: q.permission.clone(),
            kind: q.kind,
            at: at.map(Into::into),
            min_seq: None,
        };
        let answer = self.org_read::<api::Scopes>(&q.org, &params)?;
        Ok(answer.map(|a| a.scopes).unwrap_or_default())
    }

    fn members(
        &mut self,
        q: &MembersQuery,
        at: Option<At>,
    ) -> Answer<BTreeMap<UserId, Option<RoleId>>> {
        let params = api::MembersParams {
            scope: q.scope.clone(),
            at: at.map(Into::into),
            min_seq: None,
        };
        let answer = self.org_read::<api::Members>(&q.org, &params)?;
        Ok(answer
            .map(|a| a.members)
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.user, m.role))
            .collect())
    }

    fn diff(&mut self, q: &DiffQuery, from: At, to: At) -> Answer<(Vec<String>, Vec<String>)> {
        let params = api::DiffParams {
            from: from.into(),
            to: Some(to.into()),
            user: q.user.clone(),
            scope: q.scope.clone(),
            min_seq: None,
        };
        let path = api::OrgPath { org: q.org.clone() };
        let d = expect(call::<api::Diff>(&self.sandbox, &path, &params, &())?)?;
        Ok((d.gained, d.lost))
    }

    fn audit(
        &mut self,
        q: &AuditQuerySpec,
        at: Option<At>,
    ) -> Answer<Result<Vec<String>, Rejection>> {
        let mut params = api::AuditParams {
            reader: q.reader.clone(),
            actor: q.actor.clone(),
            user: q.user.clone(),
            scope: q.scope.clone(),
            types: q.types.as_ref().map(|t| t.join(",")),
            from: q.from,
            to: q.to,
            at: at.map(Into::into),
            indirect: q.indirect.then_some(true),
            after: None,
            limit: Some(1000),
            min_seq: None,
        };
        let path = api::OrgPath { org: q.org.clone() };
        let mut actions = Vec::new();
        loop {
            let page = match call::<api::Audit>(&self.sandbox, &path, &params, &())? {
                Ok(page) => page,
                Err(r) => return refusal(r).map(Err),
            };
            actions.extend(page.entries.into_iter().map(|e| e.action));
            match page.next {
                Some(next) => params.after = Some(next),
                None => return Ok(Ok(actions)),
            }
        }
    }

    fn verify_chain(&mut self) -> Answer<Result<(), String>> {
        let v = self.verify(api::VerifyRequest {
            chain: true,
            projections: false,
            past: Vec::new(),
            digest: None,
            digests: Vec::new(),
        })?;
        let chain = v.chain.ok_or("the server did not verify the chain")?;
        Ok(finding(chain.ok, chain.problem))
    }

    fn verify_projections(&mut self) -> Answer<Result<(), String>> {
        let v = self.verify(api::VerifyRequest {
            chain: false,
            projections: true,
            past: Vec::new(),
            digest: None,
            digests: Vec::new(),
        })?;
        let p = v
            .projections
            .ok_or("the server did not verify the projections")?;
        Ok(finding(p.ok, p.problem))
    }

    fn verify_past(&mut self, seq: Seq) -> Answer<Result<(), String>> {
        let v = self.verify(api::VerifyRequest {
            chain: false,
            projections: false,
            past: vec![seq],
            digest: None,
            digests: Vec::new(),
        })?;
        let p = v
            .past
            .into_iter()
            .next()
            .ok_or("the server did not verify the past")?;
        Ok(finding(p.ok, p.problem))
    }

    fn finish(self: Box<Self>) {
        // A sandbox that outlives its file only costs memory until the server stops.
        let path = api::SandboxPath { id: self.id };
        let _ = self.server.call::<api::DeleteSandbox>(&path, &(), &());
    }
}
