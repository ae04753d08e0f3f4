//! Checks over HTTP on loopback: the real router and server (axum, two worker threads) over the
//! rebuilt ledger, and a client of keep-alive connections on a thread of its own, each sending
//! one check after another as a product service does. The floor is the same client against a
//! bare axum route of the same path answering a constant body of the same size: what HTTP itself
//! costs on these cores, which the check is read against.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use permledger_domain::OrgId;
use permledger_ledger::{Ledger, SystemClock};
use permledger_server::tokens::{hash_secret, TokenRecord, TokenRole, Tokens};
use permledger_server::AppState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::{fail, reads, BenchError};

pub struct Served {
    pub requests: u64,
    pub elapsed: Duration,
    /// Each request's latency, sorted.
    pub latencies_us: Vec<u64>,
}

const SECRET: &str = "permledger-bench-token";

/// Which server answers the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// permledger's router over the ledger.
    Permledger,
    /// A bare route answering a constant body the size of a check's answer.
    Floor,
}

pub fn run(
    ledger: &Ledger,
    org: &OrgId,
    target: Target,
    connections: usize,
    duration: Duration,
    seed: u64,
) -> Result<Served, BenchError> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(fail("http server"))?;
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(fail("http server"))?;
    let addr = listener.local_addr().map_err(fail("http server"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let server = match target {
        Target::Permledger => {
            let state = AppState {
                ledger: ledger.clone(),
                tokens: Arc::new(Tokens::from_records(vec![TokenRecord {
                    id: "bench".into(),
                    hash: hash_secret(SECRET),
                    org: Some(org.clone()),
                    role: TokenRole::Service,
                    created_at: String::new(),
                    name: None,
                    user: None,
                }])),
                clock: Arc::new(SystemClock),
                metrics: Default::default(),
                stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
                sandboxes: None,
                console: Default::default(),
                signer: None,
                cluster: None,
            };
            server_rt.spawn(permledger_server::serve(state, listener, stopped))
        }
        Target::Floor => {
            let body = floor_body(ledger)?;
            let router = axum::Router::new().route(
                "/v1/orgs/{org}/check",
                axum::routing::get(move || {
                    let body = body.clone();
                    async move {
                        (
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            body,
                        )
                    }
                }),
            );
            server_rt.spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(stopped)
                    .await
            })
        }
    };

    let sample = reads::Sample::of_largest(ledger)?;
    let requests: Arc<Vec<String>> = Arc::new(
        sample
            .questions(8192, &mut permledger_workload::Rng::new(seed ^ 0x4077))
            .into_iter()
            .map(|q| {
                format!(
                    "GET /v1/orgs/{org}/check?{} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {SECRET}\r\n\r\n",
                    sample.path(q)
                )
            })
            .collect(),
    );
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail("http client"))?;
        rt.block_on(async move {
            let started = Instant::now();
            let deadline = started + duration;
            let tasks: Vec<_> = (0..connections)
                .map(|c| tokio::spawn(connection(addr, requests.clone(), c * 512, deadline)))
                .collect();
            let mut latencies = Vec::new();
            for t in tasks {
                latencies.extend(t.await.map_err(fail("http client"))??);
            }
            Ok::<_, BenchError>((latencies, started.elapsed()))
        })
    });
    let joined = client.join();
    let _ = stop.send(());
    let _ = server_rt.block_on(server);
    let (mut latencies, elapsed) = joined.map_err(|_| BenchError {
        stage: "http client",
        reason: "the client thread panicked".into(),
    })??;
    latencies.sort_unstable();
    Ok(Served {
        requests: latencies.len() as u64,
        elapsed,
        latencies_us: latencies,
    })
}

/// A check's answer as the server writes it at the ledger's head: the floor's constant body.
fn floor_body(ledger: &Ledger) -> Result<String, BenchError> {
    let at = permledger_views::Moment {
        seq: ledger.seq(),
        time: permledger_domain::Timestamp::from_chrono(chrono::Utc::now()),
    };
    serde_json::to_string(&permledger_api::CheckAnswer::plain(false, at))
        .map_err(fail("http floor"))
}

/// One keep-alive connection sending checks until the deadline; answers each latency.
async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<String>>,
    first: usize,
    deadline: Instant,
) -> Result<Vec<u64>, BenchError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(fail("http client"))?;
    stream.set_nodelay(true).map_err(fail("http client"))?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let (mut line, mut body) = (String::new(), Vec::new());
    let mut latencies = Vec::new();
    let mut i = first;
    while Instant::now() < deadline {
        let req = &requests[i % requests.len()];
        i += 1;
        let sent = Instant::now();
        write
            .write_all(req.as_bytes())
            .await
            .map_err(fail("http client"))?;
        let mut length = 0usize;
        let mut status = None;
        loop {
            line.clear();
            if read
                .read_line(&mut line)
                .await
                .map_err(fail("http client"))?
                == 0
            {
                return Err(BenchError {
                    stage: "http client",
                    reason: "the server closed the connection".into(),
                });
            }
            if line == "\r\n" {
                break;
            }
            if status.is_none() {
                status = line.split(' ').nth(1).map(str::to_string);
            } else if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        read.read_exact(&mut body)
            .await
            .map_err(fail("http client"))?;
        if status.as_deref() != Some("200") {
            return Err(BenchError {
                stage: "http client",
                reason: format!("status {status:?}: {}", String::from_utf8_lossy(&body)),
            });
        }
        latencies.push(sent.elapsed().as_micros() as u64);
    }
    Ok(latencies)
}
