//! In-process reads on the largest org: checks at the present as a service asks them (take the
//! published views, find the org, check), and checks at random past moments.

use std::hint::black_box;
use std::time::Instant;

use permledger_domain::check;
use permledger_domain::{OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_ledger::Ledger;
use permledger_views::At;
use permledger_workload::Rng;

use crate::{quantile, BenchError};

/// Live role assignments and grants across every org.
pub fn live_facts(views: &permledger_views::Views) -> u64 {
    let mut n = 0u64;
    for org in views.live.orgs.values() {
        for m in org.members.values() {
            n += u64::from(m.roles.org.is_some())
                + m.roles.teams.len() as u64
                + m.roles.inboxes.len() as u64;
            n += m.grants.org.as_ref().map_or(0, |g| g.len() as u64)
                + m.grants.teams.values().map(|g| g.len() as u64).sum::<u64>()
                + m.grants
                    .inboxes
                    .values()
                    .map(|g| g.len() as u64)
                    .sum::<u64>();
        }
    }
    n
}

/// What the checks are drawn from: the largest org's members, catalog and scopes.
pub struct Sample {
    pub org: OrgId,
    pub members: usize,
    users: Vec<UserId>,
    permissions: Vec<PermissionKey>,
    scopes: Vec<Scope>,
    created: u64,
}

impl Sample {
    pub(crate) fn of_largest(ledger: &Ledger) -> Result<Sample, BenchError> {
        let views = ledger.views();
        let (id, org) = views
            .live
            .orgs
            .iter()
            .max_by_key(|(_, o)| o.members.len())
            .ok_or_else(|| BenchError {
                stage: "checks",
                reason: "the log holds no org".into(),
            })?;
        let scopes = std::iter::once(Scope::Org)
            .chain(org.teams.keys().cloned().map(Scope::Team))
            .chain(org.inboxes.keys().cloned().map(Scope::Inbox))
            .collect();
        Ok(Sample {
            org: id.clone(),
            members: org.members.len(),
            users: org.members.keys().cloned().collect(),
            permissions: org.catalog.iter().map(|d| d.key.clone()).collect(),
            scopes,
            created: views.histories.get(id).map_or(1, |h| h.created()),
        })
    }

    /// `n` random (user, permission, scope) questions, as indexes.
    pub(crate) fn questions(&self, n: usize, rng: &mut Rng) -> Vec<(usize, usize, usize)> {
        (0..n)
            .map(|_| {
                (
                    rng.below(self.users.len() as u64) as usize,
                    rng.below(self.permissions.len() as u64) as usize,
                    rng.below(self.scopes.len() as u64) as usize,
                )
            })
            .collect()
    }

    /// The query string of a check, percent-encoded.
    pub fn path(&self, q: (usize, usize, usize)) -> String {
        use permledger_api::encode;
        format!(
            "user={}&permission={}&scope={}",
            encode(self.users[q.0].as_str()),
            encode(self.permissions[q.1].as_str()),
            encode(&self.scopes[q.2].to_string())
        )
    }
}

pub struct Checks {
    pub org: OrgId,
    pub members: usize,
    pub p50_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// p99 of the timer and lock alone.
    pub floor_ns: f64,
    pub per_s: f64,
}

/// One question as a service holds it: its own copy of the ids, just parsed from its request.
struct Question {
    user: UserId,
    permission: PermissionKey,
    scope: Scope,
}

impl Sample {
    /// The questions, each with ids of its own, laid out in the order they are asked: the
    /// harness's random lookups into the sample add no cache misses to the checks it times.
    fn materialize(&self, qs: &[(usize, usize, usize)]) -> Vec<Question> {
        qs.iter()
            .map(|q| Question {
                user: self.users[q.0].clone(),
                permission: self.permissions[q.1].clone(),
                scope: self.scopes[q.2].clone(),
            })
            .collect()
    }
}

/// One check as a service in the same process asks it: take the published views, ask.
fn ask(ledger: &Ledger, org: &OrgId, q: &Question, now: Timestamp) -> bool {
    ledger
        .views()
        .check(org, &q.user, &q.permission, &q.scope, now)
}

pub fn checks(ledger: &Ledger, n: usize, seed: u64) -> Result<Checks, BenchError> {
    let s = Sample::of_largest(ledger)?;
    let mut rng = Rng::new(seed ^ 0xc4ec);
    let qs = s.materialize(&s.questions(n, &mut rng));
    let now = Timestamp::from_chrono(chrono_now());
    // Warm up, then time each check alone.
    for q in qs.iter().take(10_000) {
        black_box(ask(ledger, &s.org, q, now));
    }
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    for q in &qs {
        let t = Instant::now();
        black_box(ask(ledger, &s.org, q, now));
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    // What the timer and the views' lock cost alone: the floor under every sample.
    let mut floor: Vec<u64> = (0..n.min(100_000))
        .map(|_| {
            let t = Instant::now();
            black_box(ledger.views().seq());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    floor.sort_unstable();
    // Throughput on one core, without the timer around each check.
    let started = Instant::now();
    let mut allowed = 0usize;
    for q in &qs {
        allowed += usize::from(black_box(ask(ledger, &s.org, q, now)));
    }
    let per_s = qs.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);
    black_box(allowed);
    Ok(Checks {
        org: s.org.clone(),
        members: s.members,
        p50_ns: quantile(&ns, 0.5),
        p90_ns: quantile(&ns, 0.9),
        p99_ns: quantile(&ns, 0.99),
        floor_ns: quantile(&floor, 0.99),
        per_s,
    })
}

pub struct AsOf {
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Checks at random past positions of the largest org's life: resolve the moment, find the org as
/// it was, check at that moment's time.
pub fn asof_checks(ledger: &Ledger, n: usize, seed: u64) -> Result<AsOf, BenchError> {
    let s = Sample::of_largest(ledger)?;
    let mut rng = Rng::new(seed ^ 0xa50f);
    let qs = s.materialize(&s.questions(n, &mut rng));
    let head = ledger.seq();
    let now = Timestamp::from_chrono(chrono_now());
    let mut ns: Vec<u64> = Vec::with_capacity(n);
    for q in &qs {
        let at = At::Seq(s.created + rng.below(head - s.created + 1));
        let t = Instant::now();
        let views = ledger.views();
        let allowed = match views.moment(Some(&at), now) {
            Ok(m) => views
                .org_at(&s.org, m.seq)
                .is_some_and(|o| check::check(&o, &q.user, &q.permission, &q.scope, m.time)),
            Err(_) => false,
        };
        drop(views);
        black_box(allowed);
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    Ok(AsOf {
        p50_us: quantile(&ns, 0.5) / 1000.0,
        p99_us: quantile(&ns, 0.99) / 1000.0,
    })
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
