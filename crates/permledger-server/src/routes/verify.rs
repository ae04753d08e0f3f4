//! `POST /v1/verify`: replay tooling's check of a running ledger.

use std::sync::Arc;

use axum::extract::State;
use permledger_api as api;

use super::Answer;
use crate::auth::Caller;
use crate::extract::JsonBody;
use crate::{ApiError, AppState, Json};

/// The hash chain and every stored event (proving, when digests are given, that the log extends
/// each), the served projections against a rebuild from the log, and the past at the positions
/// asked. Operators and auditors; it reads the whole log. A position
/// the log does not have is `not_found`, never reported as a failed verification.
pub async fn verify(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(req): JsonBody<api::VerifyRequest>,
) -> Answer<api::Verify> {
    caller.verifier()?;
    if req.digests.len() > api::MAX_DIGESTS {
        return Err(ApiError::invalid(format!(
            "`digests` holds at most {} digests, not {}",
            api::MAX_DIGESTS,
            req.digests.len()
        )));
    }
    let mut digests = Vec::with_capacity(req.digests.len() + 1);
    for (field, d) in req
        .digest
        .iter()
        .map(|d| ("`digest`".to_string(), d))
        .chain(
            req.digests
                .iter()
                .enumerate()
                .map(|(i, d)| (format!("`digests[{i}]`"), &d.0)),
        )
    {
        digests.push(
            d.parse::<permledger_log::Digest>()
                .map_err(|e| ApiError::invalid(format!("{field}: {e}")))?,
        );
    }
    if req.past.len() > api::MAX_PAST {
        return Err(ApiError::invalid(format!(
            "`past` holds at most {} positions, not {}",
            api::MAX_PAST,
            req.past.len()
        )));
    }
    let head = s.ledger.seq();
    if let Some(bad) = req.past.iter().find(|&&p| p > head) {
        return Err(ApiError::not_found(format!(
            "`past` names position {bad}, after the log's last position {head}"
        )));
    }
    // One verification at a time: each reads the whole log (the console's integrity page
    // takes the same turn).
    let _turn = s.console.verifying.lock().await;
    let ledger = s.ledger.clone();
    tokio::task::spawn_blocking(move || {
        // A digest is proven by the chain's verification, asked for or not.
        let chain = if req.chain || !digests.is_empty() {
            Some(
                match permledger_log::verify(&**ledger.log(), &digests, |_| {}) {
                    Ok(Ok(r)) => api::ChainFinding {
                        ok: true,
                        events: Some(r.events),
                        head: Some(r.head.to_string()),
                        problem: None,
                        extends: r.extends.map(|d| d.to_string()),
                        departs_from: None,
                    },
                    Ok(Err(t)) => api::ChainFinding {
                        ok: false,
                        events: None,
                        head: None,
                        problem: Some(t.to_string()),
                        extends: None,
                        departs_from: match t {
                            permledger_log::Tamper::DigestMismatch { seq } => Some(seq),
                            permledger_log::Tamper::DigestBeyondHead { digest_seq, .. } => {
                                Some(digest_seq)
                            }
                            _ => None,
                        },
                    },
                    Err(e) => return Err(ApiError::unavailable(e)),
                },
            )
        } else {
            None
        };
        let projections = req
            .projections
            .then(|| api::Finding::of(ledger.verify_projections()));
        let past: Vec<api::PastFinding> = req
            .past
            .iter()
            .map(|&seq| {
                let f = api::Finding::of(ledger.verify_past(seq));
                api::PastFinding {
                    seq,
                    ok: f.ok,
                    problem: f.problem,
                }
            })
            .collect();
        let ok = chain.as_ref().is_none_or(|c| c.ok)
            && projections.as_ref().is_none_or(|p| p.ok)
            && past.iter().all(|p| p.ok);
        Ok(Json(api::VerifyAnswer {
            ok,
            chain,
            projections,
            past,
        }))
    })
    .await
    .map_err(ApiError::unavailable)?
}

/// The head of the log served, with its link and time: a digest to keep outside the system and
/// hand back to `POST /v1/verify` (or `permledger verify --digest`) later. Any token.
pub async fn digest(State(s): State<Arc<AppState>>, _caller: Caller) -> Answer<api::GetDigest> {
    let (seq, time) = {
        let views = s.ledger.views();
        let seq = views.seq();
        let time = (seq > 0)
            .then(|| views.moment(Some(&permledger_views::At::Seq(seq)), s.clock.now()))
            .and_then(Result::ok)
            .map(|m| m.time);
        (seq, time)
    };
    let covers = s.ledger.covers(seq).map_err(ApiError::unavailable)?;
    let digest: permledger_log::Digest = format!("{seq}:{}", covers.hash)
        .parse()
        .map_err(ApiError::unavailable)?;
    let signed = s.signer.as_ref().map(|k| k.sign(digest, s.clock.now()));
    Ok(Json(api::DigestAnswer {
        digest: digest.to_string(),
        seq,
        hash: covers.hash,
        time,
        signed,
    }))
}
