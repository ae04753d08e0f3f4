//! The crash test: a child process appends under load from several tasks and is killed with
//! SIGKILL at random moments, again and again on the same folder. After each kill every
//! acknowledged command is present exactly once, positions are contiguous, and verify passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use permledger_log::EventLog;
use permledger_rocks::RocksLog;

/// A small deterministic generator, so that a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn acknowledged_commands_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Lcg(0x5eed);
    let mut acked: HashMap<String, u64> = HashMap::new();
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_permledger"))
            .args([
                "--data",
                dir.path().to_str().unwrap(),
                "load",
                "--tasks",
                "8",
                "--commands",
                "100000",
            ])
            .args(["--tag", &format!("r{round}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Kill at a random moment once the child is appending.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledged nothing");
        let mut lines = vec![first];
        let until = Instant::now() + Duration::from_millis(50 + rng.next() % 400);
        while Instant::now() < until {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(5)) {
                lines.push(l);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        let mut this_round = 0;
        for line in lines {
            // Only whole lines count: a line cut by the kill was never fully acknowledged to us.
            let parts: Vec<&str> = line.split(' ').collect();
            if let ["ack", seq, id] = parts[..] {
                acked.insert(id.to_string(), seq.parse().unwrap());
                this_round += 1;
            }
        }
        assert!(this_round > 0, "round {round} acknowledged nothing");

        let log = RocksLog::open(dir.path()).unwrap();
        let report = permledger_log::verify(&log, &[], |_| {}).unwrap().unwrap();
        let records = log.read(1, usize::MAX).unwrap();
        assert_eq!(records.len() as u64, report.events);
        let mut seen = HashSet::new();
        let mut by_id = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1, "positions are contiguous");
            let e = r.decode().unwrap();
            if let Some(id) = e.meta.request_id {
                assert!(seen.insert(id.clone()), "request `{id}` was recorded twice");
                by_id.insert(id, r.seq);
            }
        }
        for (id, seq) in &acked {
            assert_eq!(
                by_id.get(id),
                Some(seq),
                "acknowledged `{id}` at {seq} is lost or moved"
            );
        }
    }
}
