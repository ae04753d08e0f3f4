//! Following the log as it grows: first catch up, then receive new events, never skipping or
//! repeating one. The follower reads by position from the log itself; the watch channel only
//! wakes it, so a missed wake-up can delay it but never lose an event.

use std::sync::Arc;

use permledger_domain::Seq;
use tokio::sync::watch;

use crate::{EventLog, LogError, Record};

pub struct Follower {
    log: Arc<dyn EventLog>,
    next: Seq,
    head: watch::Receiver<Seq>,
}

impl Follower {
    /// Follows from position `from` (1 for the whole log).
    pub fn new(log: Arc<dyn EventLog>, from: Seq) -> Self {
        let head = log.watch();
        Follower {
            log,
            next: from.max(1),
            head,
        }
    }

    /// The next position this follower will deliver.
    pub fn position(&self) -> Seq {
        self.next
    }

    /// The next records, at most `max`, waiting for them if the follower is at the head.
    /// Returns an empty batch only when the log is gone.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, LogError> {
        loop {
            // Mark the current head as seen before reading, so that an append after the read
            // still wakes the wait below.
            let head = *self.head.borrow_and_update();
            if head >= self.next {
                let batch = self.log.read(self.next, max.max(1))?;
                if let Some(last) = batch.last() {
                    if batch.first().map(|r| r.seq) != Some(self.next) {
                        return Err(LogError::Corruption {
                            seq: self.next,
                            reason: "the log skipped this position".into(),
                        });
                    }
                    self.next = last.seq + 1;
                    return Ok(batch);
                }
            }
            if self.head.changed().await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}
