//! A deterministic generator of realistic ledgers: many orgs of Pareto-distributed sizes (the
//! largest with up to 100,000 users, 1,000 teams and 10,000 inboxes), custom roles, assignments,
//! grants with expiry, and churn (role changes, suspensions, removals, ownership transfers).
//!
//! Every command is decided by the domain against the state so far, so the log holds only events
//! the ledger itself would have recorded; the events go to the log in large synced appends. The
//! same seed and size give the same log, link for link.

use permledger_domain::command::{Command, CommandMeta, Context, PresetName};
use permledger_domain::{
    decide, Event, EventMeta, InboxId, OrgId, RoleId, Scope, State, TeamId, Timestamp, UserId,
};
use permledger_log::{envelope, Commit, EventLog, LogError, PendingEvent};

/// SplitMix64: small, fast and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A Pareto-distributed size in `min..=max` (shape 1.16: the 80/20 rule).
    pub fn pareto(&mut self, min: u64, max: u64) -> u64 {
        let u = self.unit().max(1e-12);
        let x = min as f64 / u.powf(1.0 / 1.16);
        (x as u64).clamp(min, max)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub orgs: u64,
    pub largest_org_users: u64,
    pub commands: u64,
    pub refused: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the log failed: {0}")]
    Log(#[from] LogError),
    #[error("the target log is not empty (head {0}): generate into a fresh folder")]
    NotEmpty(u64),
    #[error("an event does not encode: {0}")]
    Encode(String),
}

const PAGE: usize = 8192;

struct Writer<'a> {
    log: &'a dyn EventLog,
    state: State,
    now: Timestamp,
    pending: Vec<Commit>,
    pending_events: usize,
    summary: Summary,
    tokens: u64,
    limit: u64,
}

fn id<T: std::str::FromStr>(s: String) -> Option<T> {
    s.parse().ok()
}

impl Writer<'_> {
    fn full(&self) -> bool {
        self.summary.events >= self.limit
    }

    /// Decides a command; refused ones (rare, from churn colliding) are counted and skipped.
    fn run(&mut self, actor: &UserId, cmd: Command) -> Result<Option<String>, GenerateError> {
        if self.full() {
            return Ok(None);
        }
        self.summary.commands += 1;
        self.now = Timestamp::from_micros(self.now.micros() + 1_000_000);
        self.tokens += 1;
        let token = matches!(cmd, Command::CreateInviteLink { .. })
            .then(|| format!("gen-token-{}", self.tokens));
        let ctx = Context {
            now: self.now,
            link_token: token.clone(),
        };
        let payloads = match decide(&self.state, &cmd, &CommandMeta::new(actor.clone()), &ctx) {
            Ok(p) => p,
            Err(_) => {
                self.summary.refused += 1;
                return Ok(None);
            }
        };
        let org = cmd.org().clone();
        let first = self.state.org(&org).map_or(0, |o| o.version) + 1;
        let mut commit = Commit {
            org: org.clone(),
            expected_version: None,
            events: Vec::new(),
            idempotency: None,
        };
        for (version, payload) in (first..).zip(payloads) {
            let seq = self.state.seq + 1;
            let event = Event {
                meta: EventMeta {
                    seq,
                    org: org.clone(),
                    org_version: version,
                    event_id: uuid::Uuid::from_u64_pair(self.now.micros() as u64, seq),
                    recorded_at: self.now,
                    actor: actor.clone(),
                    reason: None,
                    request_id: None,
                    principal: Some(permledger_domain::Principal::Local),
                    cause: None,
                },
                payload,
            };
            let bytes =
                envelope::encode(&event).map_err(|e| GenerateError::Encode(e.to_string()))?;
            self.state.apply(&event);
            commit.events.push(PendingEvent {
                seq,
                org_version: version,
                bytes,
            });
            self.summary.events += 1;
        }
        self.pending_events += commit.events.len();
        self.pending.push(commit);
        if self.pending_events >= PAGE {
            self.flush()?;
        }
        Ok(token)
    }

    fn flush(&mut self) -> Result<(), GenerateError> {
        if !self.pending.is_empty() {
            self.log.append(&self.pending)?;
            self.pending.clear();
            self.pending_events = 0;
        }
        Ok(())
    }
}

/// Generates about `events` events (it stops at the first command past the budget) into an empty log.
pub fn generate(
    log: &dyn EventLog,
    events: u64,
    seed: u64,
    mut progress: impl FnMut(u64),
) -> Result<Summary, GenerateError> {
    let head = log.head()?.seq;
    if head != 0 {
        return Err(GenerateError::NotEmpty(head));
    }
    let mut rng = Rng::new(seed);
    let mut w = Writer {
        log,
        state: State::default(),
        now: Timestamp::from_micros(1_767_225_600_000_000), // 2026-01-01T00:00:00Z
        pending: Vec::new(),
        pending_events: 0,
        summary: Summary::default(),
        tokens: 0,
        limit: events,
    };
    // The largest org gets a tenth of the budget in users (capped at 100,000); the rest Pareto.
    let largest = (events / 10).clamp(5, 100_000);
    let mut n = 0u64;
    while !w.full() {
        let users = if n == 0 {
            largest
        } else {
            rng.pareto(5, largest)
        };
        org(&mut w, &mut rng, n, users)?;
        w.summary.orgs += 1;
        w.summary.largest_org_users = w.summary.largest_org_users.max(users);
        n += 1;
        progress(w.summary.events);
    }
    w.flush()?;
    progress(w.summary.events);
    Ok(w.summary)
}

fn org(w: &mut Writer<'_>, rng: &mut Rng, n: u64, users: u64) -> Result<(), GenerateError> {
    let (Some(org), Some(owner)) = (
        id::<OrgId>(format!("org{n}")),
        id::<UserId>(format!("o{n}-owner")),
    ) else {
        return Ok(());
    };
    let teams = (users / 100).clamp(1, 1000);
    let inboxes = (teams * 10).min(10_000);
    w.run(
        &owner,
        Command::CreateOrg {
            org: org.clone(),
            name: None,
            preset: PresetName::Teaminbox,
        },
    )?;
    let team = |t: u64| id::<TeamId>(format!("t{t}"));
    let inbox = |i: u64| id::<InboxId>(format!("i{i}"));
    let role = |r: &str| id::<RoleId>(r.to_string());
    for t in 0..teams {
        if let Some(team) = team(t) {
            w.run(
                &owner,
                Command::CreateTeam {
                    org: org.clone(),
                    team,
                    name: None,
                },
            )?;
        }
    }
    for i in 0..inboxes {
        if let Some(inbox) = inbox(i) {
            w.run(
                &owner,
                Command::CreateInbox {
                    org: org.clone(),
                    inbox,
                    team: team(i % teams),
                    name: None,
                },
            )?;
        }
    }
    let (Some(triage), Some(lead)) = (role("triage"), role("lead")) else {
        return Ok(());
    };
    let patterns = |ps: &[&str]| ps.iter().filter_map(|p| p.parse().ok()).collect::<Vec<_>>();
    w.run(
        &owner,
        Command::DefineRole {
            org: org.clone(),
            role: triage.clone(),
            name: None,
            kind: permledger_domain::ScopeKind::Inbox,
            permissions: patterns(&["inbox.thread.view", "inbox.thread.assign"]),
        },
    )?;
    w.run(
        &owner,
        Command::DefineRole {
            org: org.clone(),
            role: lead.clone(),
            name: None,
            kind: permledger_domain::ScopeKind::Team,
            permissions: patterns(&[
                "team.view",
                "team.members.manage",
                "inbox.view",
                "inbox.members.manage",
                "inbox.thread.*",
            ]),
        },
    )?;
    let Some(link) = id(format!("join{n}")) else {
        return Ok(());
    };
    let token = w
        .run(
            &owner,
            Command::CreateInviteLink {
                org: org.clone(),
                link,
                role: None,
                max_uses: None,
                expires_at: None,
            },
        )?
        .unwrap_or_default();
    let inbox_roles: Vec<RoleId> = ["inbox_member", "inbox_observer", "inbox_admin", "triage"]
        .iter()
        .filter_map(|r| role(r))
        .collect();
    let team_roles: Vec<RoleId> = ["team_member", "team_admin", "lead"]
        .iter()
        .filter_map(|r| role(r))
        .collect();
    let reply: Option<permledger_domain::PermissionKey> = "inbox.thread.reply".parse().ok();
    let mut joined: Vec<UserId> = Vec::new();
    for u in 0..users {
        if w.full() {
            return Ok(());
        }
        let Some(user) = id::<UserId>(format!("o{n}-u{u}")) else {
            continue;
        };
        w.run(
            &user,
            Command::JoinByLink {
                org: org.clone(),
                token: token.clone(),
            },
        )?;
        let t = rng.below(teams);
        if let Some(team) = team(t) {
            let r = team_roles[usize::from(rng.below(10) == 0)].clone();
            w.run(
                &owner,
                Command::AssignRole {
                    org: org.clone(),
                    user: user.clone(),
                    scope: Scope::Team(team),
                    role: r,
                    expires_at: None,
                },
            )?;
        }
        for _ in 0..1 + rng.below(3) {
            let i = (t + teams * rng.below(10)).min(inboxes - 1);
            if let Some(inbox) = inbox(i) {
                let r = inbox_roles[rng.below(inbox_roles.len() as u64) as usize].clone();
                w.run(
                    &owner,
                    Command::AssignRole {
                        org: org.clone(),
                        user: user.clone(),
                        scope: Scope::Inbox(inbox),
                        role: r,
                        expires_at: None,
                    },
                )?;
            }
        }
        if rng.below(5) == 0 {
            if let (Some(inbox), Some(p)) = (inbox(rng.below(inboxes)), reply.clone()) {
                let expires = (rng.below(2) == 0).then(|| {
                    Timestamp::from_micros(
                        w.now.micros() + rng.below(90 * 86_400) as i64 * 1_000_000,
                    )
                });
                w.run(
                    &owner,
                    Command::Grant {
                        org: org.clone(),
                        user: user.clone(),
                        scope: Scope::Inbox(inbox),
                        permission: p,
                        expires_at: expires,
                    },
                )?;
            }
        }
        joined.push(user);
        // Churn among those who joined before.
        if joined.len() > 10 && rng.below(20) == 0 {
            let victim = joined[rng.below(joined.len() as u64) as usize].clone();
            match rng.below(4) {
                0 => {
                    w.run(
                        &owner,
                        Command::SuspendMember {
                            org: org.clone(),
                            user: victim,
                        },
                    )?;
                }
                1 => {
                    w.run(
                        &owner,
                        Command::RemoveMember {
                            org: org.clone(),
                            user: victim,
                        },
                    )?;
                }
                _ => {
                    if let Some(team) = team(rng.below(teams)) {
                        let r = team_roles[rng.below(team_roles.len() as u64) as usize].clone();
                        w.run(
                            &owner,
                            Command::AssignRole {
                                org: org.clone(),
                                user: victim,
                                scope: Scope::Team(team),
                                role: r,
                                expires_at: None,
                            },
                        )?;
                    }
                }
            }
        }
    }
    // Ownership changes hands in one org out of three.
    if rng.below(3) == 0 {
        if let Some(next) = joined
            .get(rng.below(joined.len().max(1) as u64) as usize)
            .cloned()
        {
            w.run(
                &owner,
                Command::ReactivateMember {
                    org: org.clone(),
                    user: next.clone(),
                },
            )?;
            w.run(
                &owner,
                Command::TransferOwnership {
                    org: org.clone(),
                    to: next,
                    former_owner_role: None,
                },
            )?;
        }
    }
    Ok(())
}
