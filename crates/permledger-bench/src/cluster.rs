//! `bench --cluster`: the cluster of decision 0011 measured beside the single node, in one run.
//! It starts its own three NATS servers (Debian's `nats-server`) on loopback ports with their
//! own store folders.
//!
//! - `append_events_per_s`, `append_p99_us`: the single node's append, as the main bench runs
//!   it (64 submitters, one command each in flight).
//! - `cluster_append_events_per_s`, `cluster_append_p99_us`: the same load on a cluster
//!   writer in this process (its batches published to the stream, acknowledged by a quorum,
//!   then appended to its RocksDB), with a replica node following in this process too.
//! - `replica_lag_p50_ms`, `replica_lag_p99_ms`: that replica's lag under that load, each batch
//!   from the stream's acknowledgement to its fold into the replica's views.
//! - `replica_check_p99_ns` against `writer_check_p99_ns`: a `Replica` fed from the stream (the
//!   in-service replica) answering checks, against the writer's own views.
//! - `failover_ms`: nodes as real processes (`opts.cli`); the writer SIGKILLed, until another
//!   node says it is the writer; the median of three.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use permledger_cluster::{Joining, Node, Options as ClusterOptions, Role};
use permledger_domain::{OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_ledger::{Ledger, SystemClock};
use permledger_rocks::RocksLog;

use crate::{append, fail, per_s, quantile, BenchError, Options, Report};

fn free_port() -> Result<u16, BenchError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(fail("cluster ports"))?;
    Ok(l.local_addr().map_err(fail("cluster ports"))?.port())
}

/// Three `nats-server` processes forming one JetStream cluster; killed when dropped.
struct NatsServers {
    urls: Vec<String>,
    servers: Vec<Child>,
}

impl NatsServers {
    fn start(dir: &Path) -> Result<NatsServers, BenchError> {
        let clients = (0..3).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let routes = (0..3).map(|_| free_port()).collect::<Result<Vec<_>, _>>()?;
        let all_routes: Vec<String> = routes
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let mut servers = Vec::new();
        for i in 0..3 {
            let config = format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\", \
                 max_memory_store: 256MB, max_file_store: 8GB }}\ncluster {{ name: bench, \
                 listen: 127.0.0.1:{}, routes: [{}] }}\n",
                clients[i],
                dir.join(format!("n{i}")).display(),
                routes[i],
                all_routes.join(", ")
            );
            let file = dir.join(format!("n{i}.conf"));
            std::fs::write(&file, config).map_err(fail("nats config"))?;
            let child = Command::new("nats-server")
                .arg("-c")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| BenchError {
                    stage: "nats-server",
                    reason: format!("{e} (`bash scripts/setup` installs Debian's nats-server)"),
                })?;
            servers.push(child);
        }
        Ok(NatsServers {
            urls: clients
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect(),
            servers,
        })
    }
}

impl Drop for NatsServers {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

/// A node in this process: its ledger over the cluster's log.
fn node_here(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    name: &str,
    urls: &[String],
    stopping: &tokio::sync::watch::Sender<bool>,
) -> Result<Node, BenchError> {
    let local = Arc::new(RocksLog::open(dir).map_err(fail("cluster node"))?);
    let opts = ClusterOptions::new(urls.to_vec(), name.into(), format!("in-process:{name}"));
    let joining = rt
        .block_on(Joining::connect(opts, local))
        .map_err(fail("cluster node"))?;
    let ledger =
        Ledger::open(joining.log(), Arc::new(SystemClock)).map_err(fail("cluster node"))?;
    let _in = rt.enter();
    Ok(joining.start(ledger, stopping.subscribe()))
}

fn wait_role(nodes: &[&Node], role: Role, within: Duration) -> Result<usize, BenchError> {
    let started = Instant::now();
    loop {
        if let Some(i) = nodes.iter().position(|n| n.status().role == role) {
            return Ok(i);
        }
        if started.elapsed() > within {
            return Err(BenchError {
                stage: "cluster",
                reason: format!("no node became {} within {within:?}", role.as_str()),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The checks both views answer: each tenant's first users, may they reply in its inbox.
fn questions(submitters: usize) -> Result<Vec<(OrgId, UserId, Scope)>, BenchError> {
    let mut q = Vec::new();
    for t in 0..submitters {
        for u in 0..8 {
            q.push((
                format!("bench{t}").parse().map_err(fail("checks"))?,
                format!("u{t}-{u}").parse().map_err(fail("checks"))?,
                "inbox:billing".parse().map_err(fail("checks"))?,
            ));
        }
    }
    Ok(q)
}

/// The p99 of `n` checks each of two views, asked in turns of a thousand, so that both meet
/// the same machine (the other nodes' tasks, the NATS servers) rather than one a quieter moment.
fn check_p99_ns(
    n: usize,
    questions: &[(OrgId, UserId, Scope)],
    mut first: impl FnMut(&OrgId, &UserId, &Scope) -> bool,
    mut second: impl FnMut(&OrgId, &UserId, &Scope) -> bool,
) -> (f64, f64) {
    let mut ns = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let asked: Vec<_> = questions.iter().cycle().take(n).collect();
    for turn in asked.chunks(1000) {
        for (which, check) in [
            &mut first as &mut dyn FnMut(&OrgId, &UserId, &Scope) -> bool,
            &mut second,
        ]
        .into_iter()
        .enumerate()
        {
            for (org, user, scope) in turn {
                let t = Instant::now();
                std::hint::black_box(check(org, user, scope));
                ns[which].push(t.elapsed().as_nanos() as u64);
            }
        }
    }
    let [mut a, mut b] = ns;
    a.sort_unstable();
    b.sort_unstable();
    (quantile(&a, 0.99), quantile(&b, 0.99))
}

pub fn run(opts: &Options, mut say: impl FnMut(&str)) -> Result<Report, BenchError> {
    let mut r = Report::default();
    std::fs::create_dir_all(&opts.dir).map_err(fail("work folder"))?;
    let work = tempfile::Builder::new()
        .prefix("permledger-bench-cluster-")
        .tempdir_in(&opts.dir)
        .map_err(fail("work folder"))?;

    say(&format!(
        "one node: appending from {} concurrent submitters",
        opts.submitters
    ));
    let single = append::run(
        &work.path().join("single"),
        opts.submitters,
        opts.write_time,
        false,
    )?;
    let single_rate = per_s(single.events, single.elapsed);
    r.add(
        "append_events_per_s",
        single_rate,
        "events/s",
        "one node alone, measured in this run",
    );
    r.add(
        "append_p99_us",
        quantile(&single.latencies_us, 0.99),
        "us",
        "one node alone",
    );

    say("starting three NATS servers");
    let nats = NatsServers::start(work.path())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(fail("cluster runtime"))?;
    let stopping = tokio::sync::watch::Sender::new(false);
    let a = node_here(&rt, &work.path().join("a"), "a", &nats.urls, &stopping)?;
    let b = node_here(&rt, &work.path().join("b"), "b", &nats.urls, &stopping)?;
    let writer = wait_role(&[&a, &b], Role::Writer, Duration::from_secs(30))?;
    let (writer, replica) = if writer == 0 { (&a, &b) } else { (&b, &a) };
    wait_role(&[replica], Role::Replica, Duration::from_secs(30))?;

    say(&format!(
        "cluster writer: appending from {} concurrent submitters, a replica following",
        opts.submitters
    ));
    let ledger = writer.ledger().clone();
    let cluster = append::run_on(ledger.clone(), opts.submitters, opts.write_time, false)?;
    let cluster_rate = per_s(cluster.events, cluster.elapsed);
    r.add(
        "cluster_append_events_per_s",
        cluster_rate,
        "events/s",
        format!(
            "target: at least half the one-node append ({:.2} of it)",
            cluster_rate / single_rate.max(1.0)
        ),
    );
    r.add(
        "cluster_append_p99_us",
        quantile(&cluster.latencies_us, 0.99),
        "us",
        "acknowledged by a quorum of 3 NATS servers, then the writer's RocksDB",
    );
    let head = ledger.seq();
    let started = Instant::now();
    while replica.ledger().seq() < head && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lags = replica.lag_samples_us();
    lags.sort_unstable();
    r.add(
        "replica_lag_p50_ms",
        quantile(&lags, 0.5) / 1000.0,
        "ms",
        format!(
            "{} batches, stream acknowledgement to the replica's fold",
            lags.len()
        ),
    );
    r.add(
        "replica_lag_p99_ms",
        quantile(&lags, 0.99) / 1000.0,
        "ms",
        "target: under 20 ms on loopback",
    );

    say("a replica in this process, fed from the stream: checks");
    let (in_service, _task) = rt
        .block_on(permledger_replica::Replica::follow_stream(
            nats.urls.clone(),
            permledger_replica::STREAM,
        ))
        .map_err(fail("in-service replica"))?;
    rt.block_on(in_service.wait_for(head, Duration::from_secs(120)))
        .map_err(fail("in-service replica"))?;
    let q = questions(opts.submitters)?;
    let reply: PermissionKey = "inbox.thread.reply".parse().map_err(fail("checks"))?;
    let now = Timestamp::from_chrono(chrono::Utc::now());
    let n = opts.checks;
    let (own, theirs) = check_p99_ns(
        n,
        &q,
        |o, u, s| ledger.views().check(o, u, &reply, s, now),
        |o, u, s| in_service.check(o, u, &reply, s, now),
    );
    r.add("writer_check_p99_ns", own, "ns", "the writer's own views");
    r.add(
        "replica_check_p99_ns",
        theirs,
        "ns",
        format!(
            "target: within 1.5x of the writer's own ({:.2}x)",
            theirs / own.max(1.0)
        ),
    );
    stopping.send_replace(true);
    a.stop_writing();
    b.stop_writing();
    drop(rt);
    drop(nats);

    if let Some(cli) = &opts.cli {
        say("failover: nodes as processes, the writer SIGKILLed three times");
        let ms = failover(cli, &work.path().join("failover"))?;
        r.add(
            "failover_ms",
            ms,
            "ms",
            "median of 3: the writer's SIGKILL to another node saying it writes; target under 5,000",
        );
    }
    Ok(r)
}

/// A node as a process of `cli`, serving on `port`.
fn spawn_node(
    cli: &Path,
    dir: &Path,
    name: &str,
    port: u16,
    urls: &str,
) -> Result<Child, BenchError> {
    let data: PathBuf = dir.join(name);
    std::fs::create_dir_all(&data).map_err(fail("failover"))?;
    Command::new(cli)
        .args(["--data", &data.to_string_lossy(), "serve"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--cluster", urls, "--node", name])
        .args(["--advertise", &format!("http://127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(fail("failover"))
}

fn role(port: u16) -> Option<String> {
    let c = permledger_client::Client::new(&format!("http://127.0.0.1:{port}"), None, None).ok()?;
    let h = c
        .call::<permledger_api::Health>(&permledger_api::NoPath {}, &(), &())
        .ok()?
        .ok()?;
    Some(h.cluster?.role)
}

fn failover(cli: &Path, dir: &Path) -> Result<f64, BenchError> {
    std::fs::create_dir_all(dir).map_err(fail("failover"))?;
    let nats = NatsServers::start(dir)?;
    let urls = nats.urls.join(",");
    let names = ["a", "b", "c"];
    let ports = names
        .iter()
        .map(|_| free_port())
        .collect::<Result<Vec<_>, _>>()?;
    let mut children: Vec<Option<Child>> = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| spawn_node(cli, dir, n, *p, &urls).map(Some))
        .collect::<Result<_, _>>()?;
    let writer_among = |children: &[Option<Child>], within: Duration| {
        let started = Instant::now();
        loop {
            for (i, p) in ports.iter().enumerate() {
                if children[i].is_some() && role(*p).as_deref() == Some("writer") {
                    return Ok((i, started.elapsed()));
                }
            }
            if started.elapsed() > within {
                return Err(BenchError {
                    stage: "failover",
                    reason: format!("no writer within {within:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut took = Vec::new();
    let result = (|| {
        for _ in 0..3 {
            let (w, _) = writer_among(&children, Duration::from_secs(60))?;
            // Every other node following before the writer goes.
            std::thread::sleep(Duration::from_secs(1));
            if let Some(mut c) = children[w].take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let (_, t) = writer_among(&children, Duration::from_secs(60))?;
            took.push(t.as_secs_f64() * 1000.0);
            children[w] = Some(spawn_node(cli, dir, names[w], ports[w], &urls)?);
        }
        Ok::<_, BenchError>(())
    })();
    for c in children.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(nats);
    result?;
    took.sort_by(f64::total_cmp);
    Ok(took[took.len() / 2])
}
