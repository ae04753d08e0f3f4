//! The committer thread: appends a group in one durable write, publishes it one command at a
//! time, and answers each caller (the protocol is stated in the crate's documentation).

use super::*;

pub(crate) struct Committer {
    pub(crate) shared: Arc<Shared>,
    /// To wake the writer when a group is finished; weak, so that the queue still closes when
    /// every ledger handle is gone.
    pub(crate) wake: mpsc::WeakSender<Msg>,
}

impl Committer {
    pub(crate) fn run(self, groups: std::sync::mpsc::Receiver<Group>) {
        let mut finished = None;
        while let Ok(group) = groups.recv() {
            if let Some(since) = finished {
                timed(&self.shared, IDLE_NS, since);
            }
            self.commit(group);
            finished = Some(std::time::Instant::now());
            self.shared
                .finished
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // The writer may be holding a decided group until now.
            if let Some(tx) = self.wake.upgrade() {
                let _ = tx.try_send(Msg::Free);
            }
        }
    }

    fn commit(&self, g: Group) {
        use std::sync::atomic::Ordering::SeqCst;
        if g.failures != self.shared.failures.load(SeqCst) {
            // Decided on top of a group whose append failed: none of it may be recorded. It is
            // answered as that group was (a cluster's `NotWriter` or `NoQuorum` says why, and
            // that the command may be sent again).
            let last = match self.shared.last_failure.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            let e = match last {
                Some(e @ (LogError::NotWriter(_) | LogError::NoQuorum(_))) => e,
                _ => LogError::Stopped(
                    "an earlier group failed to commit; this command was not recorded".into(),
                ),
            };
            for req in g.requests {
                let _ = req.reply.send(Err(SubmitError::Log(e.clone())));
            }
            return;
        }
        let Group {
            requests,
            pending,
            commits,
            ..
        } = g;
        let mut since = std::time::Instant::now();
        let rest = if commits.is_empty() {
            requests.into_iter().zip(pending).collect()
        } else {
            let appended = self.shared.log.append(&commits);
            since = timed(&self.shared, APPEND_NS, since);
            if let Err(e) = appended {
                tracing::error!(error = %e, "a group of {} commands failed to commit", commits.len());
                // The log holds none of the group; the writer starts again from what is published.
                match self.shared.last_failure.lock() {
                    Ok(mut g) => *g = Some(e.clone()),
                    Err(p) => *p.into_inner() = Some(e.clone()),
                }
                self.shared.failures.fetch_add(1, SeqCst);
                for (req, p) in requests.into_iter().zip(pending) {
                    let answer = match p {
                        Pending::Done(Err(r @ SubmitError::Rejected(_))) => Err(r),
                        _ => Err(SubmitError::Log(e.clone())),
                    };
                    let _ = req.reply.send(answer);
                }
                return;
            }
            self.publish(requests, pending)
        };
        self.answer(rest);
        timed(&self.shared, PUBLISH_NS, since);
    }

    /// Folds the durable group into the published views, in order, one command at a time, and
    /// answers each committed command as soon as its events are in; then announces the group's
    /// last position. The write lock is taken for one command's events, not the whole group's: a
    /// reader waits for at most one command being folded in, and sees a prefix of the durable log
    /// with every command whole. An answered caller's next read sees its write, and its next
    /// command reaches the writer while the rest of the group is folded in. Answers that need no
    /// folding are handed back for later.
    fn publish(&self, requests: Vec<Request>, pending: Vec<Pending>) -> Vec<(Request, Pending)> {
        let mut last = None;
        let mut rest = Vec::new();
        for (req, p) in requests.into_iter().zip(pending) {
            match p {
                Pending::Written(o) => {
                    {
                        let mut views = match self.shared.views.write() {
                            Ok(g) => g,
                            Err(p) => p.into_inner(),
                        };
                        for event in &o.events {
                            views.apply(event);
                        }
                    }
                    last = Some(o.seq);
                    let _ = req.reply.send(Ok(o));
                }
                p => rest.push((req, p)),
            }
        }
        if let Some(last) = last {
            self.shared.published.send_replace(last);
        }
        rest
    }

    /// Answers the commands that were refused or replayed.
    fn answer(&self, answers: Vec<(Request, Pending)>) {
        for (req, p) in answers {
            let answer = match p {
                Pending::Done(a) => a,
                Pending::Written(o) => Ok(o),
                Pending::Replay(entry) => self.replayed(entry),
            };
            let _ = req.reply.send(answer);
        }
    }

    fn replayed(&self, entry: IdempotencyEntry) -> Result<Outcome, SubmitError> {
        let n = usize::try_from(entry.last_seq - entry.first_seq + 1).unwrap_or(usize::MAX);
        let records = self.shared.log.read(entry.first_seq, n)?;
        let events = records
            .iter()
            .map(permledger_log::Record::decode_stored)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outcome {
            events,
            seq: entry.last_seq,
            replayed: true,
            link_token: None,
        })
    }
}
