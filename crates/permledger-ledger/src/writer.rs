//! The writer thread: decides commands in arrival order into groups, and hands each group to
//! the committer the moment it is free (the protocol is stated in the crate's documentation).

use super::*;

/// The writer decides; the committer makes durable, publishes and answers. While the committer
/// waits for one group's sync, the writer decides the next one from whatever arrives meanwhile, and
/// hands it over the moment the committer is free: the sync is never idle for want of a decided
/// group, and a group holds everyone who arrived during the last sync.
///
/// The writer's private state runs ahead of the published one by at most the two groups in flight.
pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: State,
    /// `Shared::failures` as of the last reset of `state`.
    pub(crate) failures_seen: u64,
    /// Groups handed to the committer.
    pub(crate) handed: u64,
    /// Idempotency keys of the last group handed over: not in the log until it is finished.
    pub(crate) previous_keys: Vec<(OrgId, String, IdempotencyEntry)>,
    pub(crate) handoff: std::sync::mpsc::SyncSender<Group>,
    pub(crate) committer: Option<JoinHandle<()>>,
}

/// The hash that ties an idempotency key to one command by one actor.
pub fn fingerprint(command: &Command, meta: &CommandMeta) -> Hash {
    let json = serde_json::to_vec(&(command, &meta.actor)).unwrap_or_default();
    Hash(*blake3::hash(&json).as_bytes())
}

fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Writer {
    pub(crate) fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut group: Option<Group> = None;
        while let Some(msg) = rx.blocking_recv() {
            if let Msg::Command(req) = msg {
                self.add(&mut group, req);
            }
            while group.as_ref().is_none_or(|g| g.requests.len() < MAX_GROUP) {
                match rx.try_recv() {
                    Ok(Msg::Command(req)) => self.add(&mut group, req),
                    Ok(Msg::Free) => {}
                    Err(_) => break,
                }
            }
            if self.committer_free() {
                if let Some(g) = group.take() {
                    self.hand_over(g);
                }
            }
        }
        // Every handle is gone: what was decided still goes to the log before the writer ends.
        if let Some(g) = group.take() {
            self.quiesce();
            self.hand_over(g);
        }
        let Writer {
            handoff, committer, ..
        } = self;
        drop(handoff);
        if let Some(c) = committer {
            let _ = c.join();
        }
    }

    fn committer_free(&self) -> bool {
        self.shared
            .finished
            .load(std::sync::atomic::Ordering::SeqCst)
            == self.handed
    }

    /// Waits until the committer has finished every group handed to it.
    fn quiesce(&self) {
        while !self.committer_free() {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    fn hand_over(&mut self, g: Group) {
        self.count(GROUPS, 1);
        self.count(COMMANDS, g.requests.len() as u64);
        let keys = g.keys.clone();
        match self.handoff.send(g) {
            Ok(()) => {
                self.handed += 1;
                self.previous_keys = keys;
            }
            // The committer is gone (it only stops when the writer does): answer, record nothing.
            Err(std::sync::mpsc::SendError(g)) => {
                for req in g.requests {
                    let _ = req.reply.send(Err(SubmitError::Closed));
                }
            }
        }
    }

    /// Decides one command into the group being gathered, starting one if needed.
    fn add(&mut self, group: &mut Option<Group>, req: Request) {
        let started = std::time::Instant::now();
        let g = match group {
            Some(g) => g,
            None => group.insert(self.begin()),
        };
        let p = self.decide_one(&req, g.now, &mut g.commits, &mut g.keys);
        g.pending.push(p);
        g.requests.push(req);
        self.timed(DECIDE_NS, started);
    }

    fn begin(&mut self) -> Group {
        let failures = self
            .shared
            .failures
            .load(std::sync::atomic::Ordering::SeqCst);
        if failures != self.failures_seen {
            // An append failed: the groups decided on top of it are void, and the log holds
            // exactly what is published. Start again from there.
            self.quiesce();
            self.state = self.published_state();
            self.previous_keys.clear();
            self.failures_seen = failures;
        }
        // One instant per group, never before the last recorded one.
        let now = match self.state.last_time {
            Some(last) => self.clock.now().max(last),
            None => self.clock.now(),
        };
        Group {
            requests: Vec::new(),
            pending: Vec::new(),
            commits: Vec::new(),
            keys: Vec::new(),
            now,
            failures,
        }
    }

    fn count(&self, stat: usize, n: u64) {
        count(&self.shared, stat, n);
    }

    fn timed(&self, stat: usize, since: std::time::Instant) -> std::time::Instant {
        timed(&self.shared, stat, since)
    }

    fn decide_one(
        &mut self,
        req: &Request,
        now: Timestamp,
        commits: &mut Vec<Commit>,
        keys_in_group: &mut Vec<(OrgId, String, IdempotencyEntry)>,
    ) -> Pending {
        let org = req.command.org().clone();
        let mut idempotency = None;
        if let Some(key) = &req.meta.idempotency_key {
            let fp = fingerprint(&req.command, &req.meta);
            let earlier = match keys_in_group
                .iter()
                .chain(self.previous_keys.iter())
                .find(|(o, k, _)| *o == org && k == key)
            {
                Some((_, _, e)) => Some(*e),
                None => match self.shared.log.idempotency(&org, key) {
                    Ok(e) => e,
                    Err(e) => return Pending::Done(Err(e.into())),
                },
            };
            if let Some(entry) = earlier {
                if entry.fingerprint == fp {
                    return Pending::Replay(entry);
                }
                return Pending::Done(Err(Rejection::conflict(format!(
                    "idempotency key `{key}` was already used for a different command"
                ))
                .into()));
            }
            idempotency = Some((key.clone(), fp));
        }
        let link_token = matches!(req.command, Command::CreateInviteLink { .. }).then(new_token);
        let ctx = Context {
            now,
            link_token: link_token.clone(),
        };
        let payloads = match decide(&self.state, &req.command, &req.meta, &ctx) {
            Ok(p) => p,
            Err(r) => return Pending::Done(Err(r.into())),
        };
        let first_version = self.state.org(&org).map_or(0, |o| o.version) + 1;
        let mut events = Vec::with_capacity(payloads.len());
        let mut pending_events = Vec::with_capacity(payloads.len());
        let causes = permledger_domain::decide::causes(&payloads, self.state.seq + 1);
        for ((version, payload), cause) in (first_version..).zip(payloads).zip(causes) {
            let event = Event {
                meta: req.meta.event_meta(
                    &org,
                    self.state.seq + 1,
                    version,
                    uuid::Uuid::now_v7(),
                    now,
                    cause,
                ),
                payload,
            };
            let bytes = match envelope::encode(&event) {
                Ok(b) => b,
                Err(e) => {
                    // Nothing of this command was applied yet beyond earlier events: undo them.
                    self.state = self.shared_state_plus(commits);
                    return Pending::Done(Err(LogError::Io(e.to_string()).into()));
                }
            };
            self.state.apply(&event);
            pending_events.push(PendingEvent {
                seq: event.meta.seq,
                org_version: version,
                bytes,
            });
            events.push(event);
        }
        let (first_seq, last_seq) = match (events.first(), events.last()) {
            (Some(f), Some(l)) => (f.meta.seq, l.meta.seq),
            _ => {
                return Pending::Done(Err(Rejection::invalid("the command records nothing").into()))
            }
        };
        let idempotency = idempotency.map(|(key, fingerprint)| {
            let entry = IdempotencyEntry {
                fingerprint,
                first_seq,
                last_seq,
            };
            keys_in_group.push((org.clone(), key.clone(), entry));
            (key, entry)
        });
        commits.push(Commit {
            org,
            expected_version: req.meta.expect_version,
            events: pending_events,
            idempotency,
        });
        Pending::Written(Outcome {
            events,
            seq: last_seq,
            replayed: false,
            link_token,
        })
    }

    /// The published state with the group's earlier commits folded in again.
    fn shared_state_plus(&self, commits: &[Commit]) -> State {
        // The group in flight must be in the published state (or void) first.
        self.quiesce();
        let mut s = self.published_state();
        for c in commits {
            for e in &c.events {
                if let Ok(ev) = envelope::decode(&e.bytes) {
                    s.apply(&ev);
                }
            }
        }
        s
    }

    fn published_state(&self) -> State {
        match self.shared.views.read() {
            Ok(g) => g.live.clone(),
            Err(p) => p.into_inner().live.clone(),
        }
    }
}
