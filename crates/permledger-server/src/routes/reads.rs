//! Reads of one org at a moment: checks, who-can, permissions, scopes, members, a user's
//! standing, roles, invites, and the diff between two moments.

use std::sync::Arc;

use axum::extract::State;
use permledger_api as api;
use permledger_domain::{check, Denial, Explanation};
use permledger_views::{provenance, read};

use super::Answer;
use crate::auth::Caller;
use crate::extract::{JsonBody, PathParams, Query};
use crate::moment::{existing, fresh, read_org, resolve};
use crate::{ApiError, AppState, Json};

fn not_member() -> Explanation {
    Explanation {
        allowed: false,
        facts: Vec::new(),
        denial: Some(Denial::NotMember),
    }
}

/// A check. At the present and without `explain`, the org's check index answers (a few hash
/// probes); at a past moment, or with `explain`, the rule over the history, with its facts.
pub async fn check_one(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::CheckParams>,
) -> Answer<api::Check> {
    s.metrics.checks(1);
    if q.at.is_none() && q.explain != Some(true) {
        caller.read(&p.org)?;
        fresh(&s, q.min_seq).await?;
        let views = s.ledger.views();
        let m = resolve(&views, None, s.clock.now())?;
        let allowed = views.check(&p.org, &q.user, &q.permission, &q.scope, m.time);
        return Ok(Json(api::CheckAnswer::plain(allowed, m)));
    }
    let explain = q.explain == Some(true);
    let (answer, q) = read_org(&s, &caller, &p.org, q, |q, o, m| {
        let e = match o {
            Some(o) => check::explain(&o, &q.user, &q.permission, &q.scope, m.time),
            None => not_member(),
        };
        Ok((
            if explain {
                api::CheckAnswer::explained(e, m)
            } else {
                api::CheckAnswer::plain(e.allowed, m)
            },
            q.clone(),
        ))
    })
    .await?;
    if !explain {
        return Ok(Json(answer));
    }
    // The events behind the facts, read once the views are let go.
    let cited = provenance::cited(&answer.clone().explanation());
    let sources = s.ledger.sources(&cited).map_err(ApiError::unavailable)?;
    let asked = provenance::Asked {
        org: &p.org,
        user: &q.user,
        permission: &q.permission,
        scope: &q.scope,
    };
    Ok(Json(answer.with_provenance(&asked, sources)))
}

pub async fn check_batch(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    JsonBody(b): JsonBody<api::BatchRequest>,
) -> Answer<api::CheckBatch> {
    if b.items.len() > api::MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "`items`: a batch holds at most {} checks, not {}",
            api::MAX_BATCH,
            b.items.len()
        )));
    }
    s.metrics.checks(b.items.len() as u64);
    read_org(&s, &caller, &p.org, b, |b, o, m| {
        let answers = match o {
            Some(o) => read::batch_check(&o, &b.items, m.time),
            None => b.items.iter().map(|_| not_member()).collect(),
        };
        Ok(Json(api::BatchAnswer { at: m, answers }))
    })
    .await
}

pub async fn who_can(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::WhoCanParams>,
) -> Answer<api::WhoCan> {
    read_org(&s, &caller, &p.org, q, |q, o, m| {
        let users = check::who_can(&existing(o, &p.org)?, &q.permission, &q.scope, m.time);
        Ok(Json(api::WhoCanAnswer { at: m, users }))
    })
    .await
}

pub async fn permissions(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::PermissionsParams>,
) -> Answer<api::Permissions> {
    read_org(&s, &caller, &p.org, q, |q, o, m| {
        let permissions = check::permissions(&existing(o, &p.org)?, &q.user, &q.scope, m.time);
        Ok(Json(api::PermissionsAnswer { at: m, permissions }))
    })
    .await
}

pub async fn scopes(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::ScopesParams>,
) -> Answer<api::Scopes> {
    read_org(&s, &caller, &p.org, q, |q, o, m| {
        let org = existing(o, &p.org)?;
        let scopes = check::scopes(&org, &q.user, &q.permission, q.kind, m.time);
        Ok(Json(api::ScopesAnswer { at: m, scopes }))
    })
    .await
}

pub async fn members(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::MembersParams>,
) -> Answer<api::Members> {
    read_org(&s, &caller, &p.org, q, |q, o, m| {
        let members = api::MemberRow::of_scope(&existing(o, &p.org)?, &q.scope, m.time);
        Ok(Json(api::MembersAnswer { at: m, members }))
    })
    .await
}

pub async fn user(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgUserPath>,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::User> {
    read_org(&s, &caller, &p.org, q, |_, o, m| {
        let user = read::user_view(&existing(o, &p.org)?, &p.user, m.time).ok_or_else(|| {
            ApiError::not_found(format!(
                "`{}` is not a member of org `{}` at that moment",
                p.user, p.org
            ))
        })?;
        Ok(Json(api::UserAnswer { at: m, user }))
    })
    .await
}

pub async fn roles(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::Roles> {
    read_org(&s, &caller, &p.org, q, |_, o, m| {
        let roles = read::roles(&existing(o, &p.org)?);
        Ok(Json(api::RolesAnswer { at: m, roles }))
    })
    .await
}

pub async fn invites(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::Invites> {
    read_org(&s, &caller, &p.org, q, |_, o, m| {
        let (invites, links) = read::pending(&existing(o, &p.org)?, m.time);
        Ok(Json(api::InvitesAnswer {
            at: m,
            invites,
            links,
        }))
    })
    .await
}

pub async fn diff(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::DiffParams>,
) -> Answer<api::Diff> {
    caller.read(&p.org)?;
    fresh(&s, q.min_seq).await?;
    let (from, to, d) = {
        let views = s.ledger.views();
        let now = s.clock.now();
        let from = resolve(&views, Some(q.from), now)?;
        let to = resolve(&views, q.to, now)?;
        let d = permledger_views::diff::diff(
            &views,
            &p.org,
            from,
            to,
            q.user.as_ref(),
            q.scope.as_ref(),
        );
        (from, to, d)
    };
    // The causes come from the window's events, read from the log: off the request threads.
    let (ledger, org, user, scope) = (s.ledger.clone(), p.org.clone(), q.user, q.scope);
    let changes = tokio::task::spawn_blocking(move || {
        ledger.caused_diff(&org, from, to, user.as_ref(), scope.as_ref())
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(ApiError::unavailable)?;
    Ok(Json(api::DiffAnswer {
        from,
        to,
        gained: d.gained,
        lost: d.lost,
        changes,
    }))
}
