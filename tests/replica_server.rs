//! A replica inside a service, fed by one server without a cluster (issue 22, decision 0011):
//! `Replica::follow_server` reads `GET /v1/records` of a real `permledger serve`.
//!
//! - Under concurrent writes it reads each writer's own write once it waited for its position,
//!   and ends at the server's head holding every acknowledged command.
//! - The server SIGKILLed and started again on the same folder and port: the replica resumes
//!   after the last record it folded and converges again.
//! - A token bound to an org is refused the records: the replica folds nothing and says why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use permledger_api::{self as api, NoPath};
use permledger_client::Client;
use permledger_domain::{OrgId, PermissionKey, Scope, Timestamp, UserId};
use permledger_replica::Replica;

/// `serve` on `listen` (a fixed address, so that a restarted server is found where it was).
fn serve_on(data: &Path, listen: &str) -> Child {
    let (child, addr) = common::listening_on(
        common::bin()
            .args(["--data", data.to_str().unwrap(), "serve"])
            .stderr(Stdio::null()),
        listen,
        String::new,
    );
    assert_eq!(addr, listen);
    child
}

fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn submit(client: &Client, json: &str) -> u64 {
    let req: api::CommandRequest = serde_json::from_str(json).unwrap();
    client
        .call::<api::SubmitCommand>(&NoPath {}, &(), &req)
        .unwrap()
        .unwrap_or_else(|r| panic!("{json} refused: {r}"))
        .seq
}

fn create_team(team: &str) -> String {
    format!(r#"{{"as":"ann","do":{{"type":"create_team","org":"acme","team":"{team}"}}}}"#)
}

struct Question {
    org: OrgId,
    ann: UserId,
    view: PermissionKey,
    now: Timestamp,
}

impl Question {
    fn new() -> Question {
        Question {
            org: "acme".parse().unwrap(),
            ann: "ann".parse().unwrap(),
            view: "team.view".parse().unwrap(),
            now: Timestamp::from_micros(i64::MAX / 2),
        }
    }

    fn sees(&self, replica: &Replica, team: &str) -> bool {
        let scope: Scope = format!("team:{team}").parse().unwrap();
        replica.check(&self.org, &self.ann, &self.view, &scope, self.now)
    }

    /// The replica reaches the server's head within `within`, no further, and sees every team.
    fn caught_up(
        &self,
        replica: &Replica,
        client: &Client,
        rt: &tokio::runtime::Runtime,
        teams: &[String],
        within: Duration,
    ) {
        let head = client
            .call::<api::GetDigest>(&NoPath {}, &(), &())
            .unwrap()
            .unwrap()
            .seq;
        rt.block_on(replica.wait_for(head, within)).unwrap();
        assert_eq!(replica.seq(), head);
        for team in teams {
            assert!(self.sees(replica, team), "{team}");
        }
    }
}

/// Why the replica is not following, once it says so within `within`.
fn trouble_within(replica: &Replica, within: Duration) -> String {
    let started = Instant::now();
    loop {
        if let Some(t) = replica.trouble() {
            return t;
        }
        assert!(
            started.elapsed() < within,
            "no trouble seen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `per_writer` teams from each of `writers` threads; answers the teams written.
fn load(client: &Client, round: &str, writers: usize, per_writer: usize) -> Vec<String> {
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let client = client.clone();
            let round = round.to_string();
            std::thread::spawn(move || {
                (0..per_writer)
                    .map(|n| {
                        let team = format!("{round}-w{w}-{n}");
                        submit(&client, &create_team(&team));
                        team
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

#[test]
fn a_replica_follows_a_server_under_load_and_across_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = common::token(&data, "operator");
    let listen = free_address();
    let mut server = serve_on(&data, &listen);
    let client = Client::new(&format!("http://{listen}"), Some(&token), None).unwrap();
    submit(
        &client,
        r#"{"as":"ann","do":{"type":"create_org","org":"acme","preset":"teaminbox"}}"#,
    );
    let (replica, following) = Replica::follow_server(client.clone());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let q = Question::new();

    // Writes from four threads while this one writes and reads its own writes from the replica.
    let background = {
        let client = client.clone();
        std::thread::spawn(move || load(&client, "a", 4, 100))
    };
    for n in 0..50 {
        let team = format!("mine-{n}");
        let seq = submit(&client, &create_team(&team));
        rt.block_on(replica.wait_for(seq, Duration::from_secs(10)))
            .unwrap();
        assert!(q.sees(&replica, &team), "{team} at {seq}");
    }
    let written = background.join().unwrap();
    q.caught_up(&replica, &client, &rt, &written, Duration::from_secs(10));

    // The server killed: the replica keeps answering from what it holds, says why it is not
    // following, and resumes once the server is back.
    server.kill().unwrap();
    server.wait().unwrap();
    trouble_within(&replica, Duration::from_secs(30));
    assert!(q.sees(&replica, &written[0]));
    let mut server = serve_on(&data, &listen);
    let more = load(&client, "b", 2, 50);
    let all: Vec<String> = written.iter().chain(&more).cloned().collect();
    q.caught_up(&replica, &client, &rt, &all, Duration::from_secs(30));
    assert_eq!(replica.trouble(), None);
    assert_eq!(replica.broken(), None);
    assert!(!following.is_finished());
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_token_bound_to_an_org_is_refused_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = common::permledger(&data, &["token", "create", "--org", "acme"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let bound = String::from_utf8(o.stdout).unwrap().trim().to_string();
    let (mut server, addr) = common::serve_with(&data, &[]);
    let client = Client::new(&format!("http://{addr}"), Some(&bound), None).unwrap();
    submit(
        &client,
        r#"{"as":"ann","do":{"type":"create_org","org":"acme","preset":"teaminbox"}}"#,
    );
    let (replica, _following) = Replica::follow_server(client);
    let trouble = trouble_within(&replica, Duration::from_secs(10));
    assert_eq!(
        trouble,
        "the server refused the records: 403 forbidden: the log's records are the whole \
         ledger's; this token is bound to org `acme`"
    );
    assert_eq!(replica.seq(), 0);
    server.kill().unwrap();
    server.wait().unwrap();
}
