//! `permledger serve`: the HTTP API over the data folder's ledger; `permledger token create`,
//! `list` and `revoke`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use permledger_domain::{OrgId, UserId};
use permledger_ledger::{checkpoint, Checkpoints, Clock as _, SystemClock};
use permledger_server::{AppState, TokenRole, Tokens};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: String,
    /// Also keep sandboxes: isolated in-memory ledgers with a hand-set clock, created and used by
    /// operator tokens under `/v1/sandboxes` and `/sandboxes/{id}/` (`permledger scenario run
    /// --server` needs them). At most this many live at once.
    #[arg(long, num_args = 0..=1, default_missing_value = "64", value_name = "MAX")]
    sandboxes: Option<usize>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs `--tls-key`.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<std::path::PathBuf>,
    /// Append a signed digest of the log's head to this file every `--witness-every` seconds
    /// while the head moves, and once more at shutdown: a file meant to live on another system
    /// (`permledger verify --witness FILE` proves the log extends each).
    #[arg(long, value_name = "FILE")]
    witness: Option<std::path::PathBuf>,
    /// Seconds between two witness statements.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", requires = "witness",
          value_parser = clap::value_parser!(u64).range(1..))]
    witness_every: u64,
    /// Write a checkpoint of the views (in the background, from the previous one and the log)
    /// each time this many events have been appended since the last one; 0: never by count.
    #[arg(long, default_value_t = 1_000_000, value_name = "EVENTS")]
    checkpoint_events: u64,
    /// Also write one this many minutes after the last, if any event came since; 0: never by
    /// time. One is written at every clean shutdown either way.
    #[arg(long, default_value_t = 30, value_name = "MINUTES")]
    checkpoint_minutes: u64,
    /// Join a cluster: the NATS servers of its JetStream stream, comma-separated
    /// (`nats://10.0.0.1:4222,nats://10.0.0.2:4222`). One node at a time is the writer; every
    /// node keeps its own log and views and serves every read; a command sent to another node
    /// is forwarded to the writer. Needs `--node` and `--advertise`.
    #[arg(long, value_delimiter = ',', value_name = "NATS_URLS",
          requires_all = ["node", "advertise"], conflicts_with = "sandboxes")]
    cluster: Vec<String>,
    /// This node's name in the cluster, unique among its nodes.
    #[arg(long, requires = "cluster", value_name = "NAME")]
    node: Option<String>,
    /// The address other nodes forward commands to while this node is the writer: its own
    /// HTTP(S) base address as they reach it (`http://10.0.0.1:7878`).
    #[arg(long, requires = "cluster", value_name = "URL")]
    advertise: Option<String>,
    /// Replicas of the stream and of the writer's lease, when this node is the first and
    /// creates them (at most the number of NATS servers).
    #[arg(long, default_value_t = 3, requires = "cluster", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=5))]
    cluster_replicas: u64,
}

/// A cluster node's view of itself, for the HTTP edge.
struct NodeHealth(permledger_cluster::Node);

impl permledger_server::Cluster for NodeHealth {
    fn health(&self) -> permledger_api::ClusterHealth {
        let s = self.0.status();
        permledger_api::ClusterHealth {
            node: s.node,
            role: s.role.as_str().to_string(),
            why: s.why,
            writer: s.writer.as_ref().map(|l| l.node.clone()),
            writer_address: s.writer.map(|l| l.address),
            lag_events: s.lag_events,
            lag_ms: s.lag_ms,
            nats_trouble: s.nats_trouble,
        }
    }
}

#[derive(clap::Subcommand)]
pub enum TokenArgs {
    /// Create a bearer token; its secret is printed once and only its hash is stored.
    Create {
        /// The org the token is bound to.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        org: Option<OrgId>,
        /// Bind the token to every org instead.
        #[arg(long)]
        all: bool,
        /// `service` (commands and queries), `auditor` (queries and audit only) or `operator`.
        #[arg(long, default_value = "service")]
        role: TokenRole,
        /// What the token is for ("billing service"): recorded with every command it submits.
        #[arg(long)]
        name: Option<String>,
        /// Bind the token to one person: it reads the audit as that person only, and submits
        /// commands as no one else.
        #[arg(long)]
        user: Option<UserId>,
    },
    /// List the tokens (id, org, role, creation time); secrets are never stored, so never shown.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id: no server accepts it again (a running one within a second).
    Revoke {
        /// The token's id, as `token create` printed it and `token list` shows it.
        id: String,
    },
}

pub fn token(data: &Path, args: TokenArgs) -> anyhow::Result<u8> {
    match args {
        TokenArgs::Create {
            org,
            all: _,
            role,
            name,
            user,
        } => {
            let new = permledger_server::tokens::NewToken {
                org,
                role,
                name,
                user,
            };
            let (record, secret) = permledger_server::tokens::create(data, new)?;
            let scope = record
                .org
                .map_or("every org".to_string(), |o| format!("org `{o}`"));
            let person = record
                .user
                .as_ref()
                .map_or(String::new(), |u| format!(", bound to {u}"));
            eprintln!(
                "token {} for {scope}, role {}{person}; keep the secret, it is not shown again:",
                record.id,
                role.as_str()
            );
            out!("{secret}");
            Ok(0)
        }
        TokenArgs::List { json } => {
            let records = permledger_server::tokens::list(data)?;
            let mut out = std::io::stdout().lock();
            if !json {
                writeln!(
                    out,
                    "{:<36}  {:<8}  {:<20}  {:<20}  {:<12}  name",
                    "id", "role", "org", "created", "user"
                )?;
            }
            for r in records {
                if json {
                    let line = serde_json::json!({
                        "id": r.id, "org": r.org, "role": r.role, "created_at": r.created_at,
                        "name": r.name, "user": r.user,
                    });
                    writeln!(out, "{line}")?;
                } else {
                    let org = r.org.map_or("(every org)".to_string(), |o| o.to_string());
                    let role = r.role.as_str();
                    let user = r.user.map_or(String::new(), |u| u.to_string());
                    let name = r.name.unwrap_or_default();
                    writeln!(
                        out,
                        "{:<36}  {role:<8}  {org:<20}  {:<20}  {user:<12}  {name}",
                        r.id, r.created_at
                    )?;
                }
            }
            Ok(0)
        }
        TokenArgs::Revoke { id } => {
            let gone = permledger_server::tokens::revoke(data, &id)?;
            eprintln!(
                "revoked token {} ({}); a running server refuses it within a second",
                gone.id,
                gone.role.as_str()
            );
            Ok(0)
        }
    }
}

pub fn serve(data: &Path, args: ServeArgs, read_only: bool) -> anyhow::Result<u8> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(permledger_server::tls::config(cert, key)?),
        _ => None,
    };
    // `--read-only`: an inspection, beside or instead of the server that writes; a damaged log
    // is served up to its last good event, and every answer says so.
    if read_only && !args.cluster.is_empty() {
        anyhow::bail!("`--read-only` inspects a folder; a cluster node (`--cluster`) writes to it");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stopping = Arc::new(tokio::sync::watch::Sender::new(false));
    let (ledger, node) = if read_only {
        (crate::data::read_ledger(data, true, None)?, None)
    } else if !args.cluster.is_empty() {
        let (Some(name), Some(advertise)) = (&args.node, &args.advertise) else {
            anyhow::bail!("`--cluster` needs `--node NAME` and `--advertise URL`");
        };
        let mut opts = permledger_cluster::Options::new(
            args.cluster.clone(),
            name.clone(),
            advertise.trim_end_matches('/').to_string(),
        );
        opts.replicas = args.cluster_replicas as usize;
        let local = crate::data::open_log(data)?;
        eprintln!(
            "joining the cluster at {} as `{name}`",
            args.cluster.join(",")
        );
        let joining = rt.block_on(permledger_cluster::Joining::connect(opts, local))?;
        let ledger = crate::data::open_server_on(data, joining.log())?;
        let _in_runtime = rt.enter();
        let node = joining.start(ledger.clone(), stopping.subscribe());
        (ledger, Some(node))
    } else {
        (crate::data::open_server(data)?, None)
    };
    let tokens = Tokens::load(data)?;
    // A writer's folder always has its key; one opened to inspect may not have one yet.
    let signer = if read_only {
        crate::data::existing_key(data)?.map(Arc::new)
    } else {
        Some(Arc::new(crate::data::signing_key(data)?))
    };
    let mut witness = match (&args.witness, &signer) {
        (None, _) => None,
        (Some(path), Some(key)) => Some(crate::witness::Witness::open(path, key.clone())?),
        (Some(_), None) => anyhow::bail!(
            "`--witness` signs digests, and `{}` has no signing key yet: open it once without \
             `--read-only`",
            data.display()
        ),
    };
    let state = AppState {
        ledger: ledger.clone(),
        tokens: Arc::new(tokens),
        clock: Arc::new(SystemClock),
        metrics: Default::default(),
        stopping,
        sandboxes: args
            .sandboxes
            .map(|max| Arc::new(permledger_server::sandbox::Sandboxes::new(max))),
        console: Arc::new(permledger_server::console::Sessions::new(tls.is_some())),
        signer,
        cluster: node
            .clone()
            .map(|n| Arc::new(NodeHealth(n)) as Arc<dyn permledger_server::Cluster>),
    };
    let stopping = state.stopping.clone();
    // The witness states the head every so often while the server runs, off the request
    // threads; a failed write is reported and retried at the next turn.
    let witnessing = witness.take().map(|mut w| {
        let ledger = ledger.clone();
        let mut stop = state.stopping.subscribe();
        let every = std::time::Duration::from_secs(args.witness_every);
        rt.spawn(async move {
            loop {
                // An append and its sync: off the async workers' turn.
                let stated = tokio::task::block_in_place(|| w.state(&ledger, SystemClock.now()));
                if let Err(e) = stated {
                    tracing::error!("the witness missed a statement: {e:#}");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            w
        })
    });
    let checkpointing = if read_only {
        None
    } else {
        Some(background_checkpoints(
            ledger.clone(),
            Checkpoints::of_folder(data),
            args.checkpoint_events,
            args.checkpoint_minutes,
            state.stopping.subscribe(),
        )?)
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen).await?;
        out!("listening on {}", listener.local_addr()?);
        if let Some(why) = ledger.read_only() {
            eprintln!("reading only: every command is refused; {why}");
        }
        tracing::info!(data = %data.display(), "serving");
        let shutdown = async move {
            shutdown_signal().await;
            // Change feeds end, so that the graceful drain of in-flight requests can finish.
            stopping.send_replace(true);
        };
        match tls {
            Some(config) => {
                let listener = permledger_server::tls::TlsListener::new(listener, config)?;
                permledger_server::serve(state, listener, shutdown).await?
            }
            None => permledger_server::serve(state, listener, shutdown).await?,
        }
        anyhow::Ok(())
    })?;
    let witness = witnessing.and_then(|task| rt.block_on(task).ok());
    // The drain is over: a writer appends nothing more (its lease lapses, and another node
    // takes it).
    if let Some(node) = node {
        node.stop_writing();
    }
    drop(rt);
    if let Some(t) = checkpointing {
        let _ = t.join();
    }
    // The drain is over, so every acknowledged command is in the head: the last statement
    // covers them all.
    if let Some(mut w) = witness {
        if let Some(last) = w.state(&ledger, SystemClock.now())? {
            eprintln!("witnessed {}:{} in the witness file", last.seq, last.hash);
        }
    }
    // Every command already submitted is committed before the writer stops; then the final
    // views are checkpointed, so that the next open folds nothing.
    if read_only {
        ledger.shutdown();
    } else {
        match ledger.shutdown_with_checkpoint(&Checkpoints::of_folder(data), SystemClock.now()) {
            Some(Ok(w)) => eprintln!(
                "checkpoint at event {} written ({:.1} MB in {} ms)",
                w.seq,
                w.bytes as f64 / 1e6,
                w.took.as_millis()
            ),
            Some(Err(e)) => eprintln!("warning: no checkpoint at shutdown: {e}"),
            None => {}
        }
    }
    eprintln!("stopped; every acknowledged command is durable");
    Ok(0)
}

/// Writes checkpoints behind the serving ledger on a thread that yields the cores to every
/// other (`checkpoint::behind`: from the previous checkpoint and the log, so writers never
/// wait; `checkpoint::spawn_background`), every `events` events or
/// `minutes` minutes since the last, until the server stops.
fn background_checkpoints(
    ledger: permledger_ledger::Ledger,
    store: Checkpoints,
    events: u64,
    minutes: u64,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let latest = |store: &Checkpoints| store.list().ok().and_then(|l| l.first().map(|c| c.0));
    checkpoint::spawn_background("permledger-checkpoint", move || {
        let mut last_seq = latest(&store).unwrap_or(0);
        let mut last_time = std::time::Instant::now();
        while !*stopping.borrow() {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let seq = ledger.seq();
            let by_count = events > 0 && seq >= last_seq.saturating_add(events);
            let by_time = minutes > 0
                && seq > last_seq
                && last_time.elapsed()
                    >= std::time::Duration::from_secs(minutes.saturating_mul(60));
            if !(by_count || by_time) || ledger.read_only().is_some() {
                continue;
            }
            let warn = &mut |w: String| tracing::warn!("{w}");
            match checkpoint::behind(&**ledger.log(), &store, seq, SystemClock.now(), warn) {
                Ok(Some(w)) => tracing::info!(
                    seq = w.seq,
                    bytes = w.bytes,
                    ms = w.took.as_millis() as u64,
                    "checkpoint written"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!("no checkpoint at event {seq}: {e}"),
            }
            // After a failure too: the next try waits for as many events or minutes again.
            last_seq = seq;
            last_time = std::time::Instant::now();
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
