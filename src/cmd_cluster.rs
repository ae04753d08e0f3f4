//! `permledger cluster …`: what an operator does to a cluster from a folder (decision 0011).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use permledger_log::EventLog;

#[derive(clap::Subcommand)]
pub enum ClusterArgs {
    /// Publish this folder's history into the cluster's stream, so that the folder's ledger
    /// becomes the cluster's first node (stop its server first). An empty stream receives the
    /// whole log; one holding a prefix of it (an interrupted seed) receives the rest; one
    /// holding anything else is refused and left as it is. The chain is verified first.
    Seed(SeedArgs),
}

#[derive(clap::Args)]
pub struct SeedArgs {
    /// The NATS servers of the cluster's JetStream stream, comma-separated
    /// (`nats://10.0.0.1:4222,nats://10.0.0.2:4222`), as given to `serve --cluster`.
    #[arg(long, value_delimiter = ',', value_name = "NATS_URLS", required = true)]
    cluster: Vec<String>,
    /// Replicas of the stream and of the writer's lease, should this seed create them (at
    /// most the number of NATS servers).
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=5))]
    cluster_replicas: u64,
}

pub fn run(data: &Path, args: ClusterArgs) -> anyhow::Result<u8> {
    match args {
        ClusterArgs::Seed(args) => seed(data, args),
    }
}

fn seed(data: &Path, args: SeedArgs) -> anyhow::Result<u8> {
    if !data.is_dir() {
        anyhow::bail!("there is no ledger in `{}`", data.display());
    }
    // Opened for writing: a server still running on the folder holds it, and is named.
    let log = permledger_rocks::RocksLog::open(data)
        .with_context(|| format!("cannot open the log in `{}`", data.display()))?;
    let head = log.head()?;
    if head.seq == 0 {
        out!(
            "`{}` holds no events: nothing to seed (a node joins with an empty folder as it is)",
            data.display()
        );
        return Ok(0);
    }
    let bar = crate::data::progress_bar(head.seq, "verifying");
    let verified = permledger_log::verify(&log, &[], |n| bar.set_position(n))?;
    bar.finish_and_clear();
    if let Err(tamper) = verified {
        out!("TAMPERED: {tamper}; nothing was published");
        return Ok(crate::EXIT_TAMPERED);
    }
    let keys = log.idempotency_entries()?;
    let mut opts =
        permledger_cluster::Options::new(args.cluster.clone(), "seed".into(), String::new());
    opts.replicas = args.cluster_replicas as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bar = crate::data::progress_bar(head.seq, "seeding");
    let seeded = rt.block_on(async {
        let nats = permledger_cluster::stream::Nats::connect(&opts).await?;
        permledger_cluster::seed::seed(&nats, &log, keys, Duration::from_secs(30), |n, _| {
            bar.set_position(n)
        })
        .await
    });
    bar.finish_and_clear();
    let seeded =
        seeded.with_context(|| format!("seeding the stream at {}", args.cluster.join(",")))?;
    if seeded.events == 0 {
        out!(
            "the stream already holds this log to its last event {}: nothing to seed",
            seeded.head
        );
    } else {
        out!(
            "seeded events {} to {} ({} events in {} batches); the stream ends at message {} \
             with event {}",
            seeded.from,
            seeded.head.seq,
            seeded.events,
            seeded.batches,
            seeded.stream,
            seeded.head
        );
    }
    out!(
        "start this folder's node with `permledger --data {} serve --cluster {} --node NAME \
         --advertise URL`; other nodes join with empty folders",
        data.display(),
        args.cluster.join(",")
    );
    Ok(0)
}
