//! The moment a read answers at, and the freshness floor it waits for.

use std::time::Duration;

use permledger_api::HasMoment;
use permledger_domain::{OrgId, Timestamp};
use permledger_views::{At, Moment, OrgAt, Views};

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// How long a read waits for `min_seq` before answering that it is not there yet.
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

/// A moment named by `{name}_seq` or `{name}_time` (neither: the present).
pub fn named(name: &str, seq: Option<u64>, time: Option<&str>) -> Result<Option<At>, ApiError> {
    match (seq, time) {
        (Some(_), Some(_)) => Err(ApiError::invalid(format!(
            "name `{name}_seq` or `{name}_time`, not both"
        ))),
        (Some(0), None) => Err(ApiError::invalid(format!(
            "`{name}_seq`: positions start at 1; to name a moment before the first event, use \
             `{name}_time`"
        ))),
        (Some(n), None) => Ok(Some(At::Seq(n))),
        (None, Some(t)) => Timestamp::parse(t)
            .map(|t| Some(At::Time(t)))
            .map_err(|e| ApiError::invalid(format!("`{name}_time`: {e}"))),
        (None, None) => Ok(None),
    }
}

/// Resolves a named moment against the views (the present when none is named).
pub fn resolve(views: &Views, at: Option<&At>, now: Timestamp) -> Result<Moment, ApiError> {
    views
        .moment(at, now)
        .map_err(|e| ApiError::invalid(e.to_string()))
}

/// Waits until the views hold position `min_seq`, for at most `FRESHNESS_WAIT`.
pub async fn fresh(s: &AppState, min_seq: Option<u64>) -> Result<(), ApiError> {
    let Some(min) = min_seq else { return Ok(()) };
    if tokio::time::timeout(FRESHNESS_WAIT, s.ledger.wait_for(min))
        .await
        .is_err()
    {
        return Err(ApiError::behind(format!(
            "the views have not reached position {min} within {} s (they are at {}); ask \
             again, or read without `min_seq`",
            FRESHNESS_WAIT.as_secs(),
            s.ledger.seq()
        )));
    }
    Ok(())
}

/// The shape of every read of one org: authorize the token, wait for `min_seq`, resolve the
/// moment, and answer from the org as it was then (None if it did not exist).
pub async fn read_org<P: HasMoment, A>(
    s: &AppState,
    caller: &Caller,
    org: &OrgId,
    q: P,
    f: impl FnOnce(&P, Option<OrgAt<'_>>, Moment) -> Result<A, ApiError>,
) -> Result<A, ApiError> {
    caller.read(org)?;
    let m = q.moment();
    let at = named("at", m.at_seq, m.at_time.as_deref())?;
    fresh(s, m.min_seq).await?;
    let views = s.ledger.views();
    let moment = resolve(&views, at.as_ref(), s.clock.now())?;
    f(&q, views.org_at(org, moment.seq), moment)
}

/// The org at a moment, or `not_found` naming it.
pub fn existing<'a>(org: Option<OrgAt<'a>>, id: &OrgId) -> Result<OrgAt<'a>, ApiError> {
    org.ok_or_else(|| ApiError::not_found(format!("org `{id}` does not exist at that moment")))
}
