//! The ledger checking itself against its log: the projections it serves equal a rebuild from the
//! log alone, and the state it reconstructs at a past position equals a plain fold of the events up
//! to there. These are scenarios.md's oracles 1 and 2; the scenario runner and the server's
//! `POST /v1/verify` both call them, so there is one copy of each.

use permledger_domain::state::Org;
use permledger_domain::{OrgId, Seq, State};

use crate::replay::Check;
use crate::{fold_log, replay_until, Ledger, OpenError};

/// What a self-check found wrong. `Ok(())` means the check passed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the live projections differ from a rebuild of the log up to {seq}")]
    Projections { seq: Seq },
    #[error("the state reconstructed at {seq} differs from a fold of the events up to it")]
    Past { seq: Seq },
    #[error("position {seq} is after the last published event {head}")]
    Future { seq: Seq, head: Seq },
    #[error("the ledger kept moving while its projections were compared; ask again")]
    Busy,
    #[error(transparent)]
    Read(#[from] OpenError),
}

impl Ledger {
    /// Rebuilds every projection from the log alone, up to the published position, and compares it
    /// with the projections being served. Readers and the writer are held off only for the
    /// comparison, never for the rebuild; if the ledger moved meanwhile, it tries again.
    pub fn verify_projections(&self) -> Result<(), Mismatch> {
        for _ in 0..3 {
            let seq = self.seq();
            let rebuilt = replay_until(&**self.log(), seq, |_, _| {})?;
            let views = self.views();
            if views.seq() != seq {
                continue;
            }
            return if rebuilt.live == views.live && rebuilt.histories == views.histories {
                Ok(())
            } else {
                Err(Mismatch::Projections { seq })
            };
        }
        Err(Mismatch::Busy)
    }

    /// Compares every org as the views reconstruct it at `seq` with a fresh fold of the events
    /// `1..=seq` (no histories involved).
    pub fn verify_past(&self, seq: Seq) -> Result<(), Mismatch> {
        let head = self.seq();
        if seq > head {
            return Err(Mismatch::Future { seq, head });
        }
        let mut fresh = State::default();
        let folded = fold_log(
            &**self.log(),
            permledger_log::ChainCheck::new(),
            seq,
            Check::Chain,
            |event| fresh.apply(event),
            |_| {},
        )?;
        if let Some(t) = folded.tamper {
            return Err(OpenError::Tampered(t).into());
        }
        let past: permledger_domain::lazy::LazyMap<OrgId, Org> = {
            let views = self.views();
            views
                .histories
                .iter()
                .filter_map(|(id, h)| h.at(seq).map(|o| (id.clone(), o.materialize())))
                .collect()
        };
        if past == fresh.orgs {
            Ok(())
        } else {
            Err(Mismatch::Past { seq })
        }
    }
}
