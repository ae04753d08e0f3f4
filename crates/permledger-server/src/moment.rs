//! The moment a read answers at, and the freshness floor it waits for.

use std::time::Duration;

use permledger_api::HasMoment;
use permledger_domain::{OrgId, Timestamp};
use permledger_views::{Moment, MomentError, OrgAt, Views};

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// How long a read waits for `min_seq` before answering that it is not there yet.
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

/// Resolves a moment against the views (the present when none is named). A position the log
/// does not have is not found, as an org that does not exist is.
pub fn resolve(
    views: &Views,
    at: Option<permledger_api::At>,
    now: Timestamp,
) -> Result<Moment, ApiError> {
    views
        .moment(at.map(Into::into).as_ref(), now)
        .map_err(|e| match e {
            MomentError::Future { .. } => ApiError::not_found(e.to_string()),
        })
}

/// Waits until the views hold position `min_seq`, for at most `FRESHNESS_WAIT`. A position the
/// log has not written is not found at once: every position a command answered is durable
/// before the answer, so no client that read one from an answer holds one past the log's head;
/// only views behind the log make a read wait, and, on a cluster node, a position the writer
/// answered that this node has not received yet.
pub async fn fresh(s: &AppState, min_seq: Option<u64>) -> Result<(), ApiError> {
    let Some(min) = min_seq else { return Ok(()) };
    if min <= s.ledger.seq() {
        return Ok(());
    }
    let written = s.ledger.log().head().map_err(ApiError::unavailable)?.seq;
    // A cluster node's own log may lag the writer's: a position past it is waited for.
    if min > written && s.cluster.is_none() {
        return Err(ApiError::not_found(format!(
            "`min_seq`: position {min} has not been written; the log ends at {written}"
        )));
    }
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
    fresh(s, q.min_seq()).await?;
    let views = s.ledger.views();
    let moment = resolve(&views, q.at(), s.clock.now())?;
    f(&q, views.org_at(org, moment.seq), moment)
}

/// The org at a moment, or `not_found` naming it.
pub fn existing<'a>(org: Option<OrgAt<'a>>, id: &OrgId) -> Result<OrgAt<'a>, ApiError> {
    org.ok_or_else(|| ApiError::not_found(format!("org `{id}` does not exist at that moment")))
}
