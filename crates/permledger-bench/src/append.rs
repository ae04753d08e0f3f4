//! The append stage: concurrent submitters, each a product service onboarding people into its own
//! org (a join through an invite link, a team role, an inbox role, a grant), every command
//! acknowledged only once its group is durable. Run again with a reader asking checks in process
//! meanwhile, it measures what a check waits for while groups are being published.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use permledger_domain::{
    Command, CommandMeta, InboxId, LinkId, OrgId, PermissionKey, PresetName, RoleId, Scope, TeamId,
    UserId,
};
use permledger_ledger::{Ledger, SystemClock};
use permledger_rocks::RocksLog;

use crate::{fail, BenchError};

pub struct Appended {
    pub events: u64,
    pub commands: u64,
    pub elapsed: Duration,
    /// What the writer did meanwhile.
    pub stats: permledger_ledger::GroupStats,
    /// Each command's latency, sorted.
    pub latencies_us: Vec<u64>,
    /// When the first command was sent.
    pub started: Instant,
    /// Each command's (sent, answered), in microseconds after `started`, in no order.
    pub spans_us: Vec<(u64, u64)>,
    /// With a reader: each of its checks' latency, sorted.
    pub checks_ns: Vec<u64>,
}

/// How long the reader rests between two checks: a service asking a few thousand a second, not
/// a loop that takes a core from the writers.
const READER_PAUSE: Duration = Duration::from_micros(100);

/// Asks checks in process, one at a time with a rest between, until `deadline`, as a service
/// answering its own requests does while others write: the owner of each tenant's org, whether it
/// may reply in the org's inbox. Answers each check's latency.
fn read_while_writing(
    ledger: &Ledger,
    tenants: &[(OrgId, UserId, Scope)],
    reply: &PermissionKey,
    deadline: Instant,
) -> Vec<u64> {
    let mut ns = Vec::new();
    let now = permledger_domain::Timestamp::from_chrono(chrono::Utc::now());
    for (org, user, scope) in tenants.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        let allowed = ledger.views().check(org, user, reply, scope, now);
        ns.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(allowed);
        std::thread::sleep(READER_PAUSE);
    }
    ns
}

/// One submitter's org, set up before the clock starts.
struct Tenant {
    org: OrgId,
    owner: UserId,
    token: String,
    team: TeamId,
    inbox: InboxId,
}

fn id<T: std::str::FromStr>(s: &str) -> Result<T, BenchError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(fail("append ids"))
}

fn setup(ledger: &Ledger, t: usize) -> Result<Tenant, BenchError> {
    let org: OrgId = id(&format!("bench{t}"))?;
    let owner: UserId = id(&format!("owner{t}"))?;
    let (team, inbox): (TeamId, InboxId) = (id("support")?, id("billing")?);
    let as_owner = || CommandMeta::new(owner.clone());
    let submit = |c: Command| {
        ledger
            .submit_blocking(c, as_owner())
            .map_err(fail("append setup"))
    };
    submit(Command::CreateOrg {
        org: org.clone(),
        name: None,
        preset: PresetName::Teaminbox,
    })?;
    submit(Command::CreateTeam {
        org: org.clone(),
        team: team.clone(),
        name: None,
    })?;
    submit(Command::CreateInbox {
        org: org.clone(),
        inbox: inbox.clone(),
        team: Some(team.clone()),
        name: None,
    })?;
    let link: LinkId = id("join")?;
    let out = submit(Command::CreateInviteLink {
        org: org.clone(),
        link,
        role: None,
        max_uses: None,
        expires_at: None,
    })?;
    Ok(Tenant {
        org,
        owner,
        token: out.link_token.unwrap_or_default(),
        team,
        inbox,
    })
}

/// The `k`-th command of a tenant's onboarding cycle for user `u`.
fn command(
    t: &Tenant,
    u: &UserId,
    k: u64,
    roles: &[RoleId; 2],
    reply: &PermissionKey,
) -> (UserId, Command) {
    let org = t.org.clone();
    match k % 4 {
        0 => (
            u.clone(),
            Command::JoinByLink {
                org,
                token: t.token.clone(),
            },
        ),
        1 => (
            t.owner.clone(),
            Command::AssignRole {
                org,
                user: u.clone(),
                scope: Scope::Team(t.team.clone()),
                role: roles[0].clone(),
                expires_at: None,
            },
        ),
        2 => (
            t.owner.clone(),
            Command::AssignRole {
                org,
                user: u.clone(),
                scope: Scope::Inbox(t.inbox.clone()),
                role: roles[1].clone(),
                expires_at: None,
            },
        ),
        _ => (
            t.owner.clone(),
            Command::Grant {
                org,
                user: u.clone(),
                scope: Scope::Inbox(t.inbox.clone()),
                permission: reply.clone(),
                expires_at: None,
            },
        ),
    }
}

/// Appends from `submitters` concurrent callers for `duration`; with `reader`, a thread also asks
/// checks in process meanwhile (`Appended::checks_ns`).
pub fn run(
    dir: &Path,
    submitters: usize,
    duration: Duration,
    reader: bool,
) -> Result<Appended, BenchError> {
    let log = Arc::new(RocksLog::open(dir).map_err(fail("append"))?);
    let ledger = Ledger::open(log, Arc::new(SystemClock)).map_err(fail("append"))?;
    run_on(ledger, submitters, duration, reader)
}

/// `run` on a ledger already open (its tenants' orgs must not exist yet); shuts it down.
pub fn run_on(
    ledger: Ledger,
    submitters: usize,
    duration: Duration,
    reader: bool,
) -> Result<Appended, BenchError> {
    let tenants = (0..submitters)
        .map(|t| setup(&ledger, t))
        .collect::<Result<Vec<_>, _>>()?;
    let roles: [RoleId; 2] = [id("team_member")?, id("inbox_member")?];
    let reply: PermissionKey = id("inbox.thread.reply")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(fail("append runtime"))?;
    let started = Instant::now();
    let deadline = started + duration;
    let reading = reader.then(|| {
        let questions: Vec<(OrgId, UserId, Scope)> = tenants
            .iter()
            .map(|t| {
                (
                    t.org.clone(),
                    t.owner.clone(),
                    Scope::Inbox(t.inbox.clone()),
                )
            })
            .collect();
        let (ledger, reply) = (ledger.clone(), reply.clone());
        std::thread::spawn(move || read_while_writing(&ledger, &questions, &reply, deadline))
    });
    let results = rt.block_on(async {
        let mut handles = Vec::new();
        for (t, tenant) in tenants.into_iter().enumerate() {
            let (ledger, roles, reply) = (ledger.clone(), roles.clone(), reply.clone());
            handles.push(tokio::spawn(async move {
                let (mut events, mut commands, mut spans) = (0u64, 0u64, Vec::new());
                let mut k = 0u64;
                let mut user: UserId = id(&format!("u{t}-0"))?;
                while Instant::now() < deadline {
                    if k.is_multiple_of(4) {
                        user = id(&format!("u{t}-{}", k / 4))?;
                    }
                    let (actor, cmd) = command(&tenant, &user, k, &roles, &reply);
                    let sent = Instant::now();
                    let out = ledger
                        .submit(cmd, CommandMeta::new(actor))
                        .await
                        .map_err(fail("append"))?;
                    let from = sent.duration_since(started).as_micros() as u64;
                    spans.push((from, from + sent.elapsed().as_micros() as u64));
                    events += out.events.len() as u64;
                    commands += 1;
                    k += 1;
                }
                Ok::<_, BenchError>((events, commands, spans))
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.map_err(fail("append task"))??);
        }
        Ok::<_, BenchError>(all)
    })?;
    let elapsed = started.elapsed();
    let stats = ledger.group_stats();
    let mut checks_ns = match reading {
        Some(h) => h.join().map_err(|_| BenchError {
            stage: "append reader",
            reason: "the reader panicked".into(),
        })?,
        None => Vec::new(),
    };
    checks_ns.sort_unstable();
    drop(rt);
    ledger.shutdown();
    let mut out = Appended {
        events: 0,
        commands: 0,
        elapsed,
        stats,
        latencies_us: Vec::new(),
        started,
        spans_us: Vec::new(),
        checks_ns,
    };
    for (e, c, spans) in results {
        out.events += e;
        out.commands += c;
        out.latencies_us.extend(spans.iter().map(|(a, b)| b - a));
        out.spans_us.extend(spans);
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}
