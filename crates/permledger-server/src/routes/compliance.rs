//! What a compliance officer reads besides the trail: the orgs, an org whole at a moment (as
//! JSON, or one table as CSV), a user's access with the reason for each permission, and the
//! intervals of access between two moments with their causes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use permledger_api as api;
use permledger_domain::check;
use permledger_views::snapshot;
use permledger_views::Moment;

use super::Answer;
use crate::auth::Caller;
use crate::extract::{PathParams, Query};
use crate::moment::{existing, fresh, resolve};
use crate::routes::audit::DIGEST_HEADER;
use crate::{ApiError, AppState, Json};

pub async fn orgs(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::Orgs> {
    fresh(&s, q.min_seq).await?;
    let views = s.ledger.views();
    let at = resolve(&views, q.at, s.clock.now())?;
    let orgs = snapshot::orgs(&views, at.seq, |o| caller.read(o).is_ok());
    Ok(Json(api::OrgsAnswer { at, orgs }))
}

/// The org whole at the moment, and the moment.
async fn whole(
    s: &AppState,
    caller: &Caller,
    org: &permledger_domain::OrgId,
    q: &api::MomentParams,
) -> Result<snapshot::Snapshot, ApiError> {
    snapshot_of(s, caller, org, q, None)
        .await
        .map(|(snap, _)| snap)
}

/// The snapshot as `GET …/snapshot` reads it, with every member or one page of them (`skip`,
/// `take`), and how many members there are in all: the console shows an org a page at a time.
pub async fn snapshot_of(
    s: &AppState,
    caller: &Caller,
    org: &permledger_domain::OrgId,
    q: &api::MomentParams,
    page: Option<(usize, usize)>,
) -> Result<(snapshot::Snapshot, usize), ApiError> {
    caller.read(org)?;
    fresh(s, q.min_seq).await?;
    let at = resolve(&s.ledger.views(), q.at, s.clock.now())?;
    let covers = s.ledger.covers(at.seq).map_err(ApiError::unavailable)?;
    let views = s.ledger.views();
    let o = existing(views.org_at(org, at.seq), org)?;
    Ok(match page {
        Some((skip, take)) => snapshot::snapshot_page(&o, at, covers, skip, take),
        None => {
            let snap = snapshot::snapshot(&o, at, covers);
            let total = snap.members.len();
            (snap, total)
        }
    })
}

pub async fn snapshot(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::Snapshot> {
    whole(&s, &caller, &p.org, &q).await.map(Json)
}

pub async fn snapshot_csv(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgTablePath>,
    Query(q): Query<api::MomentParams>,
) -> Result<impl IntoResponse, ApiError> {
    let whole = whole(&s, &caller, &p.org, &q).await?;
    let csv = snapshot::csv_table(&whole, p.table.as_str()).ok_or_else(|| {
        ApiError::not_found(format!("a snapshot has no table `{}`", p.table.as_str()))
    })?;
    let file = format!(
        "attachment; filename=\"{}-{}-seq{}.csv\"",
        p.org,
        p.table.as_str(),
        whole.at.seq
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, file),
            (
                header::HeaderName::from_static(DIGEST_HEADER),
                whole.covers.digest(),
            ),
        ],
        csv,
    ))
}

pub async fn access(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgUserPath>,
    Query(q): Query<api::MomentParams>,
) -> Answer<api::Access> {
    caller.read(&p.org)?;
    fresh(&s, q.min_seq).await?;
    let (at, rows) = {
        let views = s.ledger.views();
        let at = resolve(&views, q.at, s.clock.now())?;
        let o = existing(views.org_at(&p.org, at.seq), &p.org)?;
        (at, snapshot::access(&o, &p.user, at))
    };
    let answer = api::AccessAnswer::build(&p.org, &p.user, at, rows, |seqs| s.ledger.sources(seqs))
        .map_err(ApiError::unavailable)?;
    Ok(Json(answer))
}

/// The two moments of a window.
fn window(s: &AppState, q: &api::DiffParams) -> Result<(Moment, Moment), ApiError> {
    let views = s.ledger.views();
    let now = s.clock.now();
    Ok((
        resolve(&views, Some(q.from), now)?,
        resolve(&views, q.to, now)?,
    ))
}

pub async fn timeline(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    PathParams(p): PathParams<api::OrgPath>,
    Query(q): Query<api::DiffParams>,
) -> Answer<api::Timeline> {
    caller.read(&p.org)?;
    fresh(&s, q.min_seq).await?;
    // A window is the same whichever end is named first.
    let (from, to) = match window(&s, &q)? {
        (a, b) if (a.seq, a.time) > (b.seq, b.time) => (b, a),
        ends => ends,
    };
    check_scope(&s, &p.org, q.scope.as_ref(), from, to)?;
    // The window's events are read from the log: off the request threads.
    let (ledger, org) = (s.ledger.clone(), p.org.clone());
    let intervals = tokio::task::spawn_blocking(move || {
        ledger.timeline(&org, from, to, q.user.as_ref(), q.scope.as_ref())
    })
    .await
    .map_err(ApiError::unavailable)?
    .map_err(ApiError::unavailable)?;
    Ok(Json(api::TimelineAnswer {
        from,
        to,
        intervals,
    }))
}

/// A scope named by a window's filter must exist at one of its ends.
fn check_scope(
    s: &AppState,
    org: &permledger_domain::OrgId,
    scope: Option<&permledger_domain::Scope>,
    from: Moment,
    to: Moment,
) -> Result<(), ApiError> {
    let views = s.ledger.views();
    existing(views.org_at(org, to.seq), org)?;
    let Some(scope) = scope else { return Ok(()) };
    let exists_at = |m: Moment| {
        views
            .org_at(org, m.seq)
            .is_some_and(|o| check::scope_exists(&o, permledger_domain::state::ScopeRef::of(scope)))
    };
    if exists_at(from) || exists_at(to) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "scope `{scope}` exists at neither end of the window"
        )))
    }
}
