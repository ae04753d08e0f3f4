//! The cluster (issue 22) as it runs: three NATS servers with JetStream on loopback ports, each
//! with its own store folder, and permledger nodes as real processes (`serve --cluster`).
//!
//! - Clients write through any node (a replica forwards to the writer) and read from other
//!   nodes with `min_seq`: they always see their write.
//! - The writer is SIGKILLed under concurrent writes, again and again: another node is the
//!   writer within 5 s, the killed one comes back as a replica, and at the end every
//!   acknowledged command is on every node exactly once, at the position it was acknowledged
//!   at, every node's chain verifies and their heads are equal.
//! - NATS servers lost under load: writes go on without one; without two they are refused
//!   (503, nothing acknowledged) while reads go on; when they return, writes resume.
//! - A folder with history is refused by an empty stream until `cluster seed` publishes it;
//!   then it and an empty folder's node hold the same log and keys, and go on from it.
//!
//! Needs `nats-server` (Debian's package; `scripts/setup` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use permledger_api::{self as api, NoPath};
use permledger_client::Client;
use permledger_log::EventLog;
use permledger_rocks::RocksLog;

/// The cluster tests start servers of their own; one at a time keeps their timing honest on a
/// two-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Three `nats-server` processes forming one JetStream cluster.
struct Nats {
    dir: PathBuf,
    clients: Vec<u16>,
    routes: Vec<u16>,
    servers: Vec<Option<Child>>,
}

impl Nats {
    fn start(dir: &Path) -> Nats {
        let clients: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nats = Nats {
            dir: dir.to_path_buf(),
            clients,
            routes,
            servers: vec![None, None, None],
        };
        for i in 0..3 {
            nats.start_one(i);
        }
        nats
    }

    fn start_one(&mut self, i: usize) {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let config = format!(
            "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\", \
             max_memory_store: 64MB, max_file_store: 1GB }}\ncluster {{ name: pl, listen: \
             127.0.0.1:{}, routes: [{}] }}\n",
            self.clients[i],
            self.dir.join(format!("n{i}")).display(),
            self.routes[i],
            routes.join(", ")
        );
        let file = self.dir.join(format!("n{i}.conf"));
        std::fs::write(&file, config).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("n{i}.log")))
            .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "nats-server is needed for the cluster tests: `bash scripts/setup` installs it",
            );
        self.servers[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn urls(&self) -> String {
        self.clients
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// One permledger node: its folder, its port, its process while it runs.
struct Node {
    name: String,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Node {
    fn new(root: &Path, name: &str) -> Node {
        let data = root.join(name);
        std::fs::create_dir_all(&data).unwrap();
        Node {
            name: name.to_string(),
            data,
            port: free_port(),
            child: None,
        }
    }

    fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self, nats: &Nats) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.with_extension("log"))
            .unwrap();
        let (child, _) = common::listening_on(
            common::bin()
                .args(["--data", self.data.to_str().unwrap(), "serve"])
                .args(["--cluster", &nats.urls(), "--node", &self.name])
                .args(["--advertise", &self.address()])
                .env("PERMLEDGER_LOG", "info")
                .stderr(log),
            &format!("127.0.0.1:{}", self.port),
            || {
                let log =
                    std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                format!(
                    "node {} did not start; its log ends:\n{}",
                    self.name,
                    lines[lines.len().saturating_sub(20)..].join("\n")
                )
            },
        );
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            common::terminate(c);
        }
    }

    fn running(&self) -> bool {
        self.child.is_some()
    }

    fn client(&self, token: &str) -> Client {
        Client::new(&self.address(), Some(token), None).unwrap()
    }

    fn health(&self) -> Option<api::HealthAnswer> {
        let c = Client::new(&self.address(), None, None).ok()?;
        c.call::<api::Health>(&NoPath {}, &(), &()).ok()?.ok()
    }

    fn role(&self) -> Option<String> {
        Some(self.health()?.cluster?.role)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The nodes' folders share one tokens file, as a cluster's nodes must: every node accepts the
/// same tokens.
fn nodes(root: &Path, names: &[&str]) -> (Vec<Node>, String) {
    let nodes: Vec<Node> = names.iter().map(|n| Node::new(root, n)).collect();
    let token = common::token(&nodes[0].data, "operator");
    for n in &nodes[1..] {
        std::fs::copy(
            nodes[0].data.join("tokens.json"),
            n.data.join("tokens.json"),
        )
        .unwrap();
    }
    (nodes, token)
}

/// Waits until exactly one running node says it is the writer and every other running node
/// says replica; answers the writer's index and how long it took.
fn one_writer(nodes: &[Node], within: Duration) -> (usize, Duration) {
    let started = Instant::now();
    loop {
        let roles: Vec<Option<String>> = nodes
            .iter()
            .map(|n| if n.running() { n.role() } else { None })
            .collect();
        let writers: Vec<usize> = (0..nodes.len())
            .filter(|&i| roles[i].as_deref() == Some("writer"))
            .collect();
        let settled = nodes
            .iter()
            .zip(&roles)
            .all(|(n, r)| !n.running() || matches!(r.as_deref(), Some("writer" | "replica")));
        if writers.len() == 1 && settled {
            return (writers[0], started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no single writer within {within:?}: {roles:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn command(json: &str) -> api::CommandRequest {
    serde_json::from_str(json).unwrap()
}

fn create_team(client_id: usize, n: usize) -> (String, api::CommandRequest) {
    let id = format!("c{client_id}-{n}");
    let json = format!(
        r#"{{"as":"ann","do":{{"type":"create_team","org":"acme","team":"t-{id}"}},
            "request_id":"{id}","idempotency_key":"{id}"}}"#
    );
    (id, command(&json))
}

/// Creates the org every command of these tests is about, through `node`.
fn create_acme(node: &Node, token: &str) -> api::CommandAnswer {
    let org =
        command(r#"{"as":"ann","do":{"type":"create_org","org":"acme","preset":"teaminbox"}}"#);
    node.client(token)
        .call::<api::SubmitCommand>(&NoPath {}, &(), &org)
        .unwrap()
        .unwrap_or_else(|r| panic!("acme through {}: {r}", node.name))
}

/// Whether `team` is visible on `node` once it holds event `seq` (a read with `min_seq`).
fn sees(node: &Node, token: &str, team: &str, seq: u64) -> bool {
    let params: api::CheckParams = serde_json::from_value(serde_json::json!({
        "user": "ann", "permission": "team.view", "scope": format!("team:{team}"),
        "min_seq": seq,
    }))
    .unwrap();
    let org = api::OrgPath {
        org: "acme".parse().unwrap(),
    };
    match node.client(token).call::<api::Check>(&org, &params, &()) {
        Ok(Ok(answer)) => answer.allowed,
        other => panic!("a read of {} with min_seq={seq}: {other:?}", node.name),
    }
}

/// Clients writing through every running node at once, each command retried with its
/// idempotency key until it is acknowledged (as a client of a cluster does across a failover).
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<String, u64>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addresses: Vec<String>, token: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(HashMap::new()));
        let threads = (0..clients)
            .map(|c| {
                let (stop, acked) = (stop.clone(), acked.clone());
                let clients: Vec<Client> = addresses
                    .iter()
                    .map(|a| Client::new(a, Some(token), None).unwrap())
                    .collect();
                std::thread::spawn(move || {
                    let mut n = 0;
                    let mut turn = c;
                    while !stop.load(Ordering::SeqCst) {
                        let (id, req) = create_team(c, n);
                        // Until acknowledged, from whichever node answers.
                        loop {
                            turn += 1;
                            let client = &clients[turn % clients.len()];
                            match client.call::<api::SubmitCommand>(&NoPath {}, &(), &req) {
                                Ok(Ok(answer)) => {
                                    acked.lock().unwrap().insert(id.clone(), answer.seq);
                                    break;
                                }
                                Ok(Err(r)) => {
                                    assert!(
                                        matches!(r.error.code.as_str(), "no_writer" | "no_quorum"),
                                        "{id} refused: {r}"
                                    );
                                }
                                Err(_) => {}
                            }
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            stop,
            acked,
            threads,
        }
    }

    /// The last acknowledged command at or below position `seq`, and its position.
    fn one_up_to(&self, seq: u64) -> (String, u64) {
        let acked = self.acked.lock().unwrap();
        let (id, at) = acked
            .iter()
            .filter(|(_, at)| **at <= seq)
            .max_by_key(|(_, at)| **at)
            .unwrap_or_else(|| panic!("no command acknowledged at or below {seq}"));
        (id.clone(), *at)
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(self) -> HashMap<String, u64> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

/// The last lines of each node's log, for a failure's message.
fn logs(nodes: &[Node]) -> String {
    nodes
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(n.data.with_extension("log")).unwrap_or_default();
            // Warnings and errors: refused commands are logged at info, many of them.
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("writer"))
                .collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            format!("--- node {}:\n{tail}\n", n.name)
        })
        .collect()
}

/// Waits until every running node holds `seq` events.
fn converged(nodes: &[Node], seq: u64, within: Duration) {
    let started = Instant::now();
    while !nodes
        .iter()
        .filter(|n| n.running())
        .all(|n| n.health().is_some_and(|h| h.seq >= seq))
    {
        assert!(
            started.elapsed() < within,
            "the nodes did not reach event {seq}: {:?}\n{}",
            nodes.iter().map(Node::health).collect::<Vec<_>>(),
            logs(nodes)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every node's log (once its server stopped): its chain verifies, every acknowledged command
/// is there exactly once at the position it was acknowledged at, and every node holds the
/// same head.
fn every_log_holds(nodes: &[Node], acked: &HashMap<String, u64>) {
    let mut heads = Vec::new();
    for node in nodes {
        let log = RocksLog::open(&node.data).unwrap();
        let report = permledger_log::verify(&log, &[], |_| {}).unwrap();
        assert!(report.is_ok(), "node {}: {report:?}", node.name);
        let mut at: HashMap<String, u64> = HashMap::new();
        for r in log.read(1, usize::MAX).unwrap() {
            let event = r.decode().unwrap();
            if let Some(id) = event.meta.request_id {
                assert!(
                    at.insert(id.clone(), r.seq).is_none(),
                    "node {}: `{id}` recorded twice",
                    node.name
                );
            }
        }
        for (id, seq) in acked {
            assert_eq!(
                at.get(id),
                Some(seq),
                "node {}: acknowledged `{id}` at {seq} is lost or moved",
                node.name
            );
        }
        heads.push((node.name.clone(), log.head().unwrap()));
    }
    assert!(
        heads.windows(2).all(|w| w[0].1 == w[1].1),
        "the nodes' heads differ: {heads:?}"
    );
}

/// Stops the load, waits until every node holds every acknowledged command and then the same
/// head as the writer, stops the nodes, and holds their logs to what was acknowledged.
fn end_with_every_log_holding(nodes: &mut [Node], load: Load) {
    let acked = load.finish();
    let last = acked.values().copied().max().unwrap();
    converged(nodes, last, Duration::from_secs(30));
    let (writer, _) = one_writer(nodes, Duration::from_secs(30));
    let head = nodes[writer].health().unwrap().seq;
    converged(nodes, head, Duration::from_secs(30));
    for n in nodes.iter_mut() {
        n.stop();
    }
    every_log_holds(nodes, &acked);
}

#[test]
fn the_writer_killed_under_load_is_replaced_and_nothing_acknowledged_is_lost() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let nats = Nats::start(root.path());
    let (mut nodes, token) = nodes(root.path(), &["a", "b", "c"]);
    for n in &mut nodes {
        n.start(&nats);
    }
    let (writer, _) = one_writer(&nodes, Duration::from_secs(30));

    // A command sent to a replica is forwarded to the writer; a read from another replica
    // with the answer's position sees it.
    let replica = (writer + 1) % 3;
    let other = (writer + 2) % 3;
    let answer = create_acme(&nodes[replica], &token);
    let (_, team) = create_team(99, 0);
    let answer = nodes[replica]
        .client(&token)
        .call::<api::SubmitCommand>(&NoPath {}, &(), &team)
        .unwrap()
        .unwrap_or_else(|r| panic!("after {answer:?}: {r}"));
    assert!(sees(&nodes[other], &token, "t-c99-0", answer.seq));
    assert!(sees(&nodes[writer], &token, "t-c99-0", answer.seq));

    // Read-your-writes from every replica under load.
    for n in 1..=20 {
        let (_, req) = create_team(98, n);
        let a = nodes[writer]
            .client(&token)
            .call::<api::SubmitCommand>(&NoPath {}, &(), &req)
            .unwrap()
            .unwrap();
        let reader = &nodes[[replica, other][n % 2]];
        assert!(sees(reader, &token, &format!("t-c98-{n}"), a.seq));
    }

    let addresses: Vec<String> = nodes.iter().map(Node::address).collect();
    let load = Load::start(addresses, &token, 4);
    for round in 0..3 {
        let before = load.count();
        let started = Instant::now();
        while load.count() < before + 50 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no progress"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (writer, _) = one_writer(&nodes, Duration::from_secs(10));
        nodes[writer].kill();
        let (next, took) = one_writer(&nodes, Duration::from_secs(20));
        assert_ne!(next, writer);
        assert!(
            took < Duration::from_secs(5),
            "round {round}: a new writer after {took:?}"
        );
        eprintln!(
            "round {round}: {} became the writer {took:?} after {} was killed",
            nodes[next].name, nodes[writer].name
        );
        // The old writer comes back as a replica and catches up.
        nodes[writer].start(&nats);
        one_writer(&nodes, Duration::from_secs(20));
    }
    end_with_every_log_holding(&mut nodes, load);
}

#[test]
fn writes_survive_one_nats_server_and_wait_for_two() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(root.path());
    let (mut nodes, token) = nodes(root.path(), &["a", "b"]);
    for n in &mut nodes {
        n.start(&nats);
    }
    let (writer, _) = one_writer(&nodes, Duration::from_secs(30));
    create_acme(&nodes[writer], &token);
    let addresses: Vec<String> = nodes.iter().map(Node::address).collect();
    let load = Load::start(addresses, &token, 2);
    let progress = |load: &Load, within: Duration, what: &str| {
        let before = load.count();
        let started = Instant::now();
        while load.count() < before + 20 {
            assert!(
                started.elapsed() < within,
                "{what}: no write acknowledged in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    };
    progress(&load, Duration::from_secs(20), "at start");

    // One server lost (the stream's leader, perhaps): writes go on after at most a pause.
    nats.kill(0);
    let paused = progress(&load, Duration::from_secs(30), "without one server");
    eprintln!("without one NATS server: 20 writes in {paused:?}");

    // Two lost: nothing is acknowledged; commands are refused with 503; reads go on.
    nats.kill(1);
    std::thread::sleep(Duration::from_secs(1));
    let frozen = load.count();
    let (_, req) = create_team(77, 0);
    let started = Instant::now();
    let refusal = loop {
        match nodes[0]
            .client(&token)
            .call::<api::SubmitCommand>(&NoPath {}, &(), &req)
        {
            Ok(Err(r)) => break r,
            Ok(Ok(a)) => panic!("acknowledged without a quorum: {a:?}"),
            Err(_) => {}
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no refusal");
    };
    assert_eq!(refusal.status, 503, "{refusal}");
    assert!(
        matches!(refusal.error.code.as_str(), "no_quorum" | "no_writer"),
        "{refusal}"
    );
    std::thread::sleep(Duration::from_secs(2));
    // (A command acknowledged just before the second loss may land within that second.)
    assert!(
        load.count() <= frozen + 2,
        "writes acknowledged without a quorum"
    );
    for n in &nodes {
        // What each node holds (a replica may not have received the writer's last batches
        // before the quorum went).
        let held = n.health().unwrap().seq;
        let (id, seq) = load.one_up_to(held);
        assert!(
            sees(n, &token, &format!("t-{id}"), seq),
            "{} without a quorum",
            n.name
        );
    }

    // Both back: writes resume.
    nats.start_one(0);
    nats.start_one(1);
    let resumed = progress(&load, Duration::from_secs(90), "after the servers returned");
    eprintln!("with the servers back: 20 writes in {resumed:?}");
    end_with_every_log_holding(&mut nodes, load);
}

#[test]
fn a_replica_in_a_service_follows_the_stream_under_load() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let nats = Nats::start(root.path());
    let (mut nodes, token) = nodes(root.path(), &["a", "b"]);
    for n in &mut nodes {
        n.start(&nats);
    }
    let (writer, _) = one_writer(&nodes, Duration::from_secs(30));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers: Vec<String> = nats.urls().split(',').map(str::to_string).collect();
    let (replica, task) = rt
        .block_on(permledger_replica::Replica::follow_stream(
            servers,
            permledger_replica::STREAM,
        ))
        .unwrap();
    create_acme(&nodes[writer], &token);
    let addresses: Vec<String> = nodes.iter().map(Node::address).collect();
    let load = Load::start(addresses, &token, 4);
    // Read-your-writes in process while the load runs: each write waited for, then checked.
    let acme: permledger_domain::OrgId = "acme".parse().unwrap();
    let ann: permledger_domain::UserId = "ann".parse().unwrap();
    let view: permledger_domain::PermissionKey = "team.view".parse().unwrap();
    let now = permledger_domain::Timestamp::from_micros(i64::MAX / 2);
    for n in 0..50 {
        let (_, req) = create_team(97, n);
        let a = nodes[writer]
            .client(&token)
            .call::<api::SubmitCommand>(&NoPath {}, &(), &req)
            .unwrap()
            .unwrap();
        rt.block_on(replica.wait_for(a.seq, Duration::from_secs(10)))
            .unwrap();
        let team: permledger_domain::Scope = format!("team:t-c97-{n}").parse().unwrap();
        assert!(replica.check(&acme, &ann, &view, &team, now));
    }
    let acked = load.finish();
    let head = nodes[writer].health().unwrap().seq;
    rt.block_on(replica.wait_for(head, Duration::from_secs(30)))
        .unwrap();
    assert_eq!(
        replica.seq(),
        head,
        "the replica folded past the writer's head"
    );
    for id in acked.keys() {
        let team: permledger_domain::Scope = format!("team:t-{id}").parse().unwrap();
        assert!(replica.check(&acme, &ann, &view, &team, now), "{id}");
    }
    assert!(replica.broken().is_none());
    assert!(!task.is_finished());
    for n in &mut nodes {
        n.stop();
    }
}

/// Records one command in `data` with the command line, as a single machine did before it
/// joined a cluster.
fn run_here(data: &Path, json: &str, key: Option<&str>) {
    let mut args = vec!["run", "--as", "ann", json];
    if let Some(k) = key {
        args.extend(["--request-id", k, "--idempotency-key", k]);
    }
    let o = common::permledger(data, &args);
    assert!(o.status.success(), "{}", common::text(&o));
}

#[test]
fn a_folder_with_history_seeds_the_stream_and_the_cluster_goes_on_from_it() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    let nats = Nats::start(root.path());
    // A history of several batches (about 5,000 generated events), then commands with keys.
    let a = root.path().join("a");
    std::fs::create_dir_all(&a).unwrap();
    let o = common::permledger(&a, &["generate", "--events", "5000"]);
    assert!(o.status.success(), "{}", common::text(&o));
    run_here(
        &a,
        r#"{"type":"create_org","org":"acme","preset":"teaminbox"}"#,
        None,
    );
    for n in 0..3 {
        let team = format!(r#"{{"type":"create_team","org":"acme","team":"t-c7-{n}"}}"#);
        run_here(&a, &team, Some(&format!("c7-{n}")));
    }
    let (head, keys) = {
        let log = RocksLog::open(&a).unwrap();
        (log.head().unwrap(), log.idempotency_entries().unwrap())
    };
    assert_eq!(keys.len(), 3);
    let (mut nodes, token) = nodes(root.path(), &["a", "b"]);

    // The folder cannot join the empty stream as it is; the refusal names the way.
    let alone = common::bin()
        .args([
            "--data",
            a.to_str().unwrap(),
            "serve",
            "--cluster",
            &nats.urls(),
        ])
        .args([
            "--node",
            "a",
            "--advertise",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!alone.status.success());
    assert!(
        common::text(&alone).contains("publish them first with `permledger cluster seed`"),
        "{}",
        common::text(&alone)
    );

    let seed =
        |data: &Path| common::permledger(data, &["cluster", "seed", "--cluster", &nats.urls()]);
    let o = seed(&a);
    assert!(o.status.success(), "{}", common::text(&o));
    let said = common::text(&o);
    let prefix = format!("seeded events 1 to {} ({} events in ", head.seq, head.seq);
    let batches: u64 = said
        .split_once(&prefix)
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    // Over 512 KiB of history: cut into batches, never a command across two.
    assert!(batches >= 2, "{said}");
    // Seeding again publishes nothing; another folder's history is refused.
    let o = seed(&a);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("nothing to seed"),
        "{}",
        common::text(&o)
    );
    let other = root.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    run_here(
        &other,
        r#"{"type":"create_org","org":"globex","preset":"teaminbox"}"#,
        None,
    );
    let o = seed(&other);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("another history"),
        "{}",
        common::text(&o)
    );

    // The seeded folder's node and an empty one: the same log, the keys with it.
    for n in &mut nodes {
        n.start(&nats);
    }
    let (writer, _) = one_writer(&nodes, Duration::from_secs(30));
    converged(&nodes, head.seq, Duration::from_secs(30));
    let replica = 1 - writer;
    // A seeded command sent again with its key, through either node, is answered as recorded.
    for node in [&nodes[0], &nodes[1]] {
        let (_, again) = create_team(7, 1);
        let answer = node
            .client(&token)
            .call::<api::SubmitCommand>(&NoPath {}, &(), &again)
            .unwrap()
            .unwrap();
        assert!(answer.replayed, "through {}: {answer:?}", node.name);
        assert!(answer.seq < head.seq);
    }
    // The cluster goes on from the seeded head.
    let (_, req) = create_team(7, 3);
    let answer = nodes[replica]
        .client(&token)
        .call::<api::SubmitCommand>(&NoPath {}, &(), &req)
        .unwrap()
        .unwrap();
    assert!(answer.seq > head.seq);
    assert!(sees(&nodes[writer], &token, "t-c7-3", answer.seq));
    assert!(sees(&nodes[replica], &token, "t-c7-3", answer.seq));

    for n in &mut nodes {
        n.stop();
    }
    let logs: Vec<RocksLog> = nodes
        .iter()
        .map(|n| RocksLog::open(&n.data).unwrap())
        .collect();
    for (log, node) in logs.iter().zip(&nodes) {
        let report = permledger_log::verify(log, &[], |_| {}).unwrap();
        assert!(report.is_ok(), "node {}: {report:?}", node.name);
    }
    assert_eq!(logs[0].head().unwrap(), logs[1].head().unwrap());
    assert_eq!(logs[0].head().unwrap().seq, answer.seq);
    assert_eq!(
        logs[0].idempotency_entries().unwrap(),
        logs[1].idempotency_entries().unwrap()
    );
    assert_eq!(logs[1].idempotency_entries().unwrap().len(), 4);
}
