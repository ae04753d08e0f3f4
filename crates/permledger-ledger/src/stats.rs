//! What the writer and the committer have done: groups, commands, and the time of each phase.

use super::*;

/// What the writer has done since the ledger opened: how well group commit amortizes syncs, and
/// where a group's time goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub groups: u64,
    pub commands: u64,
    /// Deciding and encoding, the durable append, folding into the views and answering.
    pub decide: std::time::Duration,
    pub append: std::time::Duration,
    pub publish: std::time::Duration,
    /// The committer's time between finishing one group and receiving the next.
    pub idle: std::time::Duration,
}

pub(crate) const GROUPS: usize = 0;
pub(crate) const COMMANDS: usize = 1;
pub(crate) const DECIDE_NS: usize = 2;
pub(crate) const APPEND_NS: usize = 3;
pub(crate) const PUBLISH_NS: usize = 4;
pub(crate) const IDLE_NS: usize = 5;

pub(crate) fn count(shared: &Shared, stat: usize, n: u64) {
    shared.stats[stat].fetch_add(n, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn timed(shared: &Shared, stat: usize, since: std::time::Instant) -> std::time::Instant {
    let now = std::time::Instant::now();
    count(shared, stat, (now - since).as_nanos() as u64);
    now
}
