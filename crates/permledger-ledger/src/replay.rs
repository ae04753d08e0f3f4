//! Folding the log into the views: at open, and for a verification of the past.

use super::*;

/// Folds the whole log into the views (the live state and every org's history), reporting
/// progress as (events so far, total).
pub fn replay(log: &dyn EventLog, progress: impl FnMut(Seq, Seq)) -> Result<Views, OpenError> {
    replay_until(log, Seq::MAX, progress)
}

/// The same, stopping after the event at position `until`.
pub fn replay_until(
    log: &dyn EventLog,
    until: Seq,
    mut progress: impl FnMut(Seq, Seq),
) -> Result<Views, OpenError> {
    let total = log.head()?.seq.min(until);
    let mut state = Views::for_rebuild(usize::try_from(total).unwrap_or(0));
    fold_log(
        log,
        total,
        |event| state.apply(event),
        |seq| progress(seq, total),
    )?;
    state.index_checks();
    Ok(state)
}

/// Hands every event `1..=until` to `apply`, in order, and each batch's last position to
/// `progress`. Two threads: one scans the log and decodes the stored bytes where they lie, the
/// other (the caller's) applies; a bounded channel between them keeps memory flat.
pub(crate) fn fold_log(
    log: &dyn EventLog,
    until: Seq,
    mut apply: impl FnMut(&Event),
    mut progress: impl FnMut(Seq),
) -> Result<(), OpenError> {
    // Decoded events travel in batches small enough to stay in cache. Each batch goes back to
    // the reader once applied: its events are dropped on the thread that made them, and its
    // buffer is used again instead of asking the allocator for a fresh one.
    const BATCH: usize = 256;
    const IN_FLIGHT: usize = 16;
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Event>, OpenError>>(IN_FLIGHT);
        let (give_back, spent) = std::sync::mpsc::sync_channel::<Vec<Event>>(IN_FLIGHT + 2);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut failed = None;
            let send = |batch: &mut Vec<Event>| {
                let empty = match spent.try_recv() {
                    Ok(mut b) => {
                        b.clear();
                        b
                    }
                    Err(_) => Vec::with_capacity(BATCH),
                };
                tx.send(Ok(std::mem::replace(batch, empty))).is_ok()
            };
            let scanned = log.scan(1, &mut |seq, _, bytes| {
                if seq > until {
                    return false;
                }
                match envelope::decode(bytes) {
                    Ok(event) => batch.push(event),
                    Err(e) => {
                        failed = Some(OpenError::Decode {
                            seq,
                            reason: e.to_string(),
                        });
                        return false;
                    }
                }
                // A closed channel means the folder stopped on an error: stop reading too.
                (batch.len() < BATCH || send(&mut batch)) && seq < until
            });
            let failed = failed.or(scanned.err().map(OpenError::from));
            match failed {
                Some(e) => {
                    let _ = tx.send(Err(e));
                }
                None if !batch.is_empty() => {
                    send(&mut batch);
                }
                None => {}
            }
        });
        for batch in rx {
            let batch = batch?;
            batch.iter().for_each(&mut apply);
            if let Some(last) = batch.last() {
                progress(last.meta.seq);
            }
            // The reader may be gone (it ended) or have enough buffers: then drop it here.
            let _ = give_back.try_send(batch);
        }
        Ok(())
    })
}
