//! The `permledger` binary: a thin shell over the crates. One module per subcommand.

#[macro_use]
mod output;

mod cmd_bench;
mod cmd_check;
mod cmd_cluster;
mod cmd_demo;
mod cmd_generate;
mod cmd_load;
mod cmd_query;
mod cmd_run;
mod cmd_scenario;
mod cmd_serve;
mod cmd_transfer;
mod cmd_verify;
mod data;
mod witness;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the projections are millions of small maps and strings; glibc's allocator spent a
/// third of a rebuild in malloc and free, and more returning pages it then faulted back in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 done or allowed, 1 error, 2 denied or refused, 3 verification failed, 64 a
/// command line that does not parse (sysexits' EX_USAGE, so that a script can tell "no" from
/// "wrong question").
pub const EXIT_DENIED: u8 = 2;
pub const EXIT_TAMPERED: u8 = 3;
pub const EXIT_USAGE: u8 = 64;

/// The client of `--server`, when one is named.
fn client(
    server: &Option<String>,
    token: &Option<String>,
    ca_cert: &Option<std::path::PathBuf>,
) -> anyhow::Result<Option<permledger_client::Client>> {
    server
        .as_deref()
        .map(|s| permledger_client::Client::new(s, token.as_deref(), ca_cert.as_deref()))
        .transpose()
        .map_err(Into::into)
}

/// True when the error is the reader of standard output having gone away.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[derive(Parser)]
#[command(
    name = "permledger",
    version,
    about = "An event-sourced permission ledger"
)]
struct Cli {
    /// The data folder (created by the commands that write; never by those that read).
    #[arg(long, global = true, env = "PERMLEDGER_DATA")]
    data: Option<std::path::PathBuf>,
    /// Open the folder for reading only, to inspect it: a damaged log is read up to its last good
    /// event (with a warning) instead of refused; `serve` answers reads and refuses every command.
    #[arg(long, global = true)]
    read_only: bool,
    /// Talk to a running server (`http://HOST:PORT`) instead of the data folder (`run`, `check`,
    /// `query`, `digest`, `verify`, and `scenario run` against a server started with
    /// `--sandboxes`; the other commands refuse it).
    #[arg(long, global = true, env = "PERMLEDGER_SERVER")]
    server: Option<String>,
    /// The bearer token for `--server`.
    #[arg(long, global = true, env = "PERMLEDGER_TOKEN")]
    token: Option<String>,
    /// A PEM certificate to trust for an `https://` server (one with a self-signed or private
    /// certificate); otherwise Mozilla's roots are trusted.
    #[arg(long, global = true, env = "PERMLEDGER_CA_CERT", value_name = "PEM")]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a realistic org from a fixture story in a fresh folder and print a few answers.
    Demo(cmd_demo::Args),
    /// Issue one command (scenario JSON) as a user.
    Run(cmd_run::Args),
    /// Ask whether a user holds a permission on a scope, with the facts that decide it.
    Check(cmd_check::Args),
    /// Read the views: who-can, permissions, scopes, members, audit, diff (now or `--at` a moment).
    #[command(subcommand)]
    Query(cmd_query::QueryArgs),
    /// Walk the log, recompute every hash link, and report the first tampered event.
    Verify(cmd_verify::VerifyArgs),
    /// Print the log's head (`SEQ:HASH`) to keep outside the system; `--signed`, as a
    /// statement signed with the ledger's key.
    Digest(cmd_verify::DigestArgs),
    /// The ledger's signing key (Ed25519, kept in the data folder beside the log).
    #[command(subcommand)]
    Key(cmd_verify::KeyArgs),
    /// Rebuild every projection from the log and report how long it took.
    Rebuild,
    /// Write a checkpoint of the views at the log's head into `DATA/checkpoints` (beside a
    /// running server too), so that opens fold only what follows it.
    Checkpoint,
    /// Write the whole log as JSON Lines (position, link, stored bytes, decoded event).
    Export(cmd_transfer::ExportArgs),
    /// Load a log written by `export` into an empty folder, refusing a file whose chain is broken.
    Import(cmd_transfer::ImportArgs),
    /// Serve the HTTP API.
    Serve(cmd_serve::ServeArgs),
    /// Generate a deterministic, realistic ledger (Pareto-sized orgs, roles, grants, churn) into an empty folder.
    Generate(cmd_generate::Args),
    /// Measure permledger against this machine's limits: append, rebuild, checks now and in the
    /// past, HTTP; a table, or one JSON object with `--json`.
    Bench(cmd_bench::Args),
    /// Manage bearer API tokens.
    #[command(subcommand)]
    Token(cmd_serve::TokenArgs),
    /// Operate on a cluster from a folder: `seed` its stream with this folder's history.
    #[command(subcommand)]
    Cluster(cmd_cluster::ClusterArgs),
    /// Run scenario files, or report what they cover.
    #[command(subcommand)]
    Scenario(cmd_scenario::Args),
    /// Append under load from several tasks, printing `ack SEQ REQUEST_ID` per durable command.
    #[command(hide = true)]
    Load(cmd_load::Args),
}

/// Why a command cannot run as asked: `--server` on a command that only works on a folder
/// (instead of silently using the local one), or `--read-only` on one that writes.
fn refuse(command: &Cmd, server: bool, read_only: bool) -> Option<String> {
    let name = match command {
        Cmd::Demo(_) => "demo",
        Cmd::Run(_) => "run",
        Cmd::Check(_) => "check",
        Cmd::Query(_) => "query",
        Cmd::Verify(_) => "verify",
        Cmd::Digest(_) => "digest",
        Cmd::Key(_) => "key",
        Cmd::Rebuild => "rebuild",
        Cmd::Checkpoint => "checkpoint",
        Cmd::Export(_) => "export",
        Cmd::Import(_) => "import",
        Cmd::Serve(_) => "serve",
        Cmd::Generate(_) => "generate",
        Cmd::Bench(_) => "bench",
        Cmd::Token(_) => "token",
        Cmd::Cluster(_) => "cluster",
        Cmd::Scenario(_) => "scenario",
        Cmd::Load(_) => "load",
    };
    let remote = matches!(
        command,
        Cmd::Run(_)
            | Cmd::Check(_)
            | Cmd::Query(_)
            | Cmd::Verify(_)
            | Cmd::Digest(_)
            | Cmd::Scenario(_)
    );
    if server && !remote {
        return Some(format!(
            "`{name}` works on a data folder, not through a server: drop `--server` (or \
             PERMLEDGER_SERVER) and name the folder with `--data`"
        ));
    }
    let writes = matches!(
        command,
        Cmd::Demo(_) | Cmd::Run(_) | Cmd::Import(_) | Cmd::Generate(_) | Cmd::Load(_)
    );
    if read_only && writes {
        return Some(format!("`{name}` writes to the folder; drop `--read-only`"));
    }
    if read_only && server {
        return Some("`--read-only` opens a data folder; it has no meaning with `--server`".into());
    }
    None
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PERMLEDGER_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let data = cli.data.unwrap_or_else(data::default_dir);
    if let Some(refusal) = refuse(&cli.command, cli.server.is_some(), cli.read_only) {
        eprintln!("error: {refusal}");
        return ExitCode::from(EXIT_USAGE);
    }
    let inspect = cli.read_only;
    let result = match cli.command {
        Cmd::Demo(args) => cmd_demo::run(args),
        Cmd::Run(args) => match client(&cli.server, &cli.token, &cli.ca_cert) {
            Ok(Some(c)) => cmd_run::remote(&c, args),
            Ok(None) => cmd_run::run(&data, args),
            Err(e) => Err(e),
        },
        Cmd::Check(args) => match client(&cli.server, &cli.token, &cli.ca_cert) {
            Ok(Some(c)) => cmd_check::remote(&c, args),
            Ok(None) => cmd_check::run(&data, args, inspect),
            Err(e) => Err(e),
        },
        Cmd::Query(args) => match client(&cli.server, &cli.token, &cli.ca_cert) {
            Ok(Some(c)) => cmd_query::remote(&c, args),
            Ok(None) => cmd_query::run(&data, args, inspect),
            Err(e) => Err(e),
        },
        Cmd::Verify(args) => match client(&cli.server, &cli.token, &cli.ca_cert) {
            Ok(Some(c)) => cmd_verify::remote_verify(&c, args),
            Ok(None) => cmd_verify::verify(&data, args),
            Err(e) => Err(e),
        },
        Cmd::Digest(args) => match client(&cli.server, &cli.token, &cli.ca_cert) {
            Ok(Some(c)) => cmd_verify::remote_digest(&c, args),
            Ok(None) => cmd_verify::digest(&data, args),
            Err(e) => Err(e),
        },
        Cmd::Key(args) => cmd_verify::key(&data, args),
        Cmd::Rebuild => cmd_verify::rebuild(&data),
        Cmd::Checkpoint => cmd_verify::checkpoint(&data),
        Cmd::Scenario(args) => match (&cli.token, client(&cli.server, &cli.token, &cli.ca_cert)) {
            (_, Ok(None)) => cmd_scenario::run(args, &permledger_scenario::Backend::Local),
            (Some(_), Ok(Some(client))) => {
                cmd_scenario::run(args, &permledger_scenario::Backend::Server(client))
            }
            (None, Ok(Some(_))) => Err(anyhow::anyhow!(
                "`--server` needs `--token` (an operator token)"
            )),
            (_, Err(e)) => Err(e),
        },
        Cmd::Serve(args) => cmd_serve::serve(&data, args, inspect),
        Cmd::Generate(args) => cmd_generate::run(&data, args),
        Cmd::Bench(args) => cmd_bench::run(args),
        Cmd::Export(args) => cmd_transfer::export(&data, args),
        Cmd::Import(args) => cmd_transfer::import(&data, args),
        Cmd::Token(args) => cmd_serve::token(&data, args),
        Cmd::Cluster(args) => cmd_cluster::run(&data, args),
        Cmd::Load(args) => cmd_load::run(&data, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if data::is_damage(&e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_TAMPERED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
