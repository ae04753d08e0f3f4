//! `permledger verify` and `permledger digest`: prove the log has not been rewritten, on a data
//! folder or through a running server.

use std::path::{Path, PathBuf};

use permledger_api as api;
use permledger_client::Client;
use permledger_log::{Digest, PublicKey, SignedDigest, Tamper};

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// A digest kept earlier: `SEQ:HASH` (from `permledger digest`), or a signed digest (the
    /// JSON line `digest --signed` prints): prove the log still extends it.
    #[arg(long)]
    digest: Option<GivenDigest>,
    /// A witness file (`serve --witness`): check the signature of every digest in it and
    /// prove the log extends each, naming the first it does not.
    #[arg(long, value_name = "FILE")]
    witness: Option<PathBuf>,
    /// The ledger's public key, as `permledger key show` printed it and you kept it elsewhere:
    /// signatures must be this key's. Without it they are checked against the ledger's own
    /// key, which an attacker who rewrote the folder could have replaced.
    #[arg(long, value_name = "ed25519:HEX")]
    key: Option<PublicKey>,
}

/// A digest on the command line: plain, or a signed statement (JSON).
#[derive(Debug, Clone)]
pub enum GivenDigest {
    Plain(Digest),
    Signed(Box<SignedDigest>),
}

impl std::str::FromStr for GivenDigest {
    type Err = String;
    fn from_str(s: &str) -> Result<GivenDigest, String> {
        let s = s.trim();
        if s.starts_with('{') {
            let signed: SignedDigest = serde_json::from_str(s)
                .map_err(|e| format!("not a signed digest (as `digest --signed` prints): {e}"))?;
            signed.digest().map_err(|e| e.to_string())?;
            Ok(GivenDigest::Signed(Box::new(signed)))
        } else {
            s.parse().map(GivenDigest::Plain)
        }
    }
}

#[derive(clap::Args)]
pub struct DigestArgs {
    /// Print the digest as a statement signed with the ledger's key (one JSON line with the
    /// time, the key and the signature), as a witness file holds them.
    #[arg(long)]
    signed: bool,
}

#[derive(clap::Subcommand)]
pub enum KeyArgs {
    /// Print the ledger's public key (`ed25519:` and 64 hex digits), to keep elsewhere and give
    /// to `verify --key`. The key is made with the folder.
    Show,
}

/// What a verification is asked to prove: digests kept earlier, each with where it came from
/// and, when signed, its statement.
struct Kept {
    digest: Digest,
    /// Empty for `--digest`, else `witness line N`.
    from: String,
    signed: Option<SignedDigest>,
}

impl Kept {
    fn describe(&self) -> String {
        let signed = self
            .signed
            .as_ref()
            .map_or(String::new(), |s| format!(", signed {}", s.time));
        if self.from.is_empty() {
            format!("digest {}{signed}", self.digest)
        } else {
            format!("{} (digest {}{signed})", self.from, self.digest)
        }
    }
}

/// Reads `--digest` and `--witness`.
fn kept(args: &VerifyArgs) -> anyhow::Result<Vec<Kept>> {
    let mut out = Vec::new();
    match &args.digest {
        None => {}
        Some(GivenDigest::Plain(digest)) => out.push(Kept {
            digest: *digest,
            from: String::new(),
            signed: None,
        }),
        Some(GivenDigest::Signed(signed)) => out.push(Kept {
            digest: signed
                .digest()
                .map_err(|e| anyhow::anyhow!("`--digest`: {e}"))?,
            from: String::new(),
            signed: Some((**signed).clone()),
        }),
    }
    if let Some(path) = &args.witness {
        for stated in crate::witness::read(path)? {
            let digest = stated
                .signed
                .digest()
                .map_err(|e| anyhow::anyhow!("witness line {}: {e}", stated.line))?;
            out.push(Kept {
                digest,
                from: format!("witness line {}", stated.line),
                signed: Some(stated.signed),
            });
        }
    }
    Ok(out)
}

/// Checks every signature against the trusted key: `--key`, else the ledger's own (`own`,
/// fetched only when a signature needs it). Returns the first that fails, in words.
fn check_signatures(
    kept: &[Kept],
    given: Option<PublicKey>,
    own: impl FnOnce() -> anyhow::Result<PublicKey>,
) -> anyhow::Result<Option<String>> {
    if kept.iter().all(|k| k.signed.is_none()) {
        return Ok(None);
    }
    let trusted = match given {
        Some(k) => k,
        None => {
            let k = own()?;
            eprintln!(
                "note: signatures are checked against the ledger's own key {k}; give `--key` \
                 the one `permledger key show` printed when you kept it, to rule out a replaced key"
            );
            k
        }
    };
    for k in kept {
        if let Some(s) = &k.signed {
            if let Err(problem) = s.check(&trusted) {
                return Ok(Some(format!("{}: {problem}", k.describe())));
            }
        }
    }
    Ok(None)
}

/// The kept digest a tamper finding is about, when it is about one: the first (in the order
/// given) stated for the position where the log departs from it.
fn departs(kept: &[Kept], t: &Tamper) -> Option<String> {
    let seq = match t {
        Tamper::DigestMismatch { seq } => *seq,
        Tamper::DigestBeyondHead { digest_seq, .. } => *digest_seq,
        _ => return None,
    };
    kept.iter()
        .find(|k| k.digest.seq == seq)
        .map(|k| format!("the log does not extend {}: {t}", k.describe()))
}

fn extends(kept: &[Kept]) -> anyhow::Result<()> {
    match kept {
        [] => {}
        [one] => out!("the log extends {}", one.describe()),
        many => {
            let last = many.iter().max_by_key(|k| k.digest.seq).map(Kept::describe);
            out!(
                "the log extends all {} digests kept (the latest: {})",
                many.len(),
                last.unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub fn verify(data: &Path, args: VerifyArgs) -> anyhow::Result<u8> {
    let kept = kept(&args)?;
    let log = crate::data::read_log(data)?;
    let forged = check_signatures(&kept, args.key, || match crate::data::existing_key(data)? {
        Some(k) => Ok(k.public()),
        None => anyhow::bail!(
            "`{}` has no signing key to check signatures with: give `--key`",
            data.display()
        ),
    })?;
    if let Some(why) = forged {
        out!("TAMPERED: {why}");
        return Ok(crate::EXIT_TAMPERED);
    }
    let digests: Vec<Digest> = kept.iter().map(|k| k.digest).collect();
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "verifying");
    let result = permledger_log::verify(&*log, &digests, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            out!(
                "ok: {} events verified, head {}",
                report.events,
                report.head
            );
            extends(&kept)?;
            checkpoints_agree(data, &*log)
        }
        Err(tamper) => {
            out!(
                "TAMPERED: {}",
                departs(&kept, &tamper).unwrap_or_else(|| tamper.to_string())
            );
            Ok(crate::EXIT_TAMPERED)
        }
    }
}

/// Each checkpoint in the folder compared with a fold of the log up to it: an open trusts a
/// checkpoint the log's link agrees with, so one that holds other views is a failed
/// verification (exit 3), named with its first difference.
fn checkpoints_agree(data: &Path, log: &dyn permledger_log::EventLog) -> anyhow::Result<u8> {
    let store = permledger_ledger::Checkpoints::of_folder(data);
    if store.list()?.is_empty() {
        return Ok(0);
    }
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "comparing checkpoints");
    let compared = permledger_ledger::compare_checkpoints(log, &store, |n| bar.set_position(n))
        .map_err(crate::data::damaged)?;
    bar.finish_and_clear();
    let mut code = 0;
    for c in compared {
        match c.agrees {
            Ok(()) => out!(
                "ok: checkpoint at event {} agrees with a fold of the log ({})",
                c.seq,
                c.path.display()
            ),
            Err(why) => {
                out!(
                    "CHECKPOINT WRONG: `{}` ({why}); an open whose log agrees at its position \
                     would start from it: delete it",
                    c.path.display()
                );
                code = crate::EXIT_TAMPERED;
            }
        }
    }
    Ok(code)
}

/// The same through a server: the chain of the log it serves, and the digests when some are
/// given (`POST /v1/verify`, an operator's or auditor's token). Signatures are checked here,
/// against `--key` or the key the server signs with.
pub fn remote_verify(client: &Client, args: VerifyArgs) -> anyhow::Result<u8> {
    let kept = kept(&args)?;
    let forged = check_signatures(&kept, args.key, || {
        match client.call::<api::GetDigest>(&api::NoPath {}, &(), &())? {
            Ok(a) => a.signed.map(|s| s.key).ok_or_else(|| {
                anyhow::anyhow!("the server signs no digest: give `--key` to check signatures")
            }),
            Err(refusal) => anyhow::bail!("the server refused its digest: {refusal}"),
        }
    })?;
    if let Some(why) = forged {
        out!("TAMPERED: {why}");
        return Ok(crate::EXIT_TAMPERED);
    }
    let digests: Vec<api::DigestText> = kept
        .iter()
        .map(|k| api::DigestText(k.digest.to_string()))
        .collect();
    // A long witness goes in turns; each is a whole verification of the chain.
    let mut turns: Vec<&[api::DigestText]> = digests.chunks(api::MAX_DIGESTS).collect();
    if turns.is_empty() {
        turns.push(&[]);
    }
    let mut last = None;
    for turn in turns {
        let req = api::VerifyRequest {
            chain: true,
            projections: false,
            past: Vec::new(),
            digest: None,
            digests: turn.to_vec(),
        };
        let answer = match client.call::<api::Verify>(&api::NoPath {}, &(), &req)? {
            Ok(a) => a,
            Err(refusal) => return crate::cmd_run::print_refusal(&refusal),
        };
        let chain = answer
            .chain
            .ok_or_else(|| anyhow::anyhow!("the server answered no chain finding"))?;
        match (chain.ok, chain.head, chain.problem) {
            (true, Some(head), _) => last = Some((chain.events.unwrap_or_default(), head)),
            (_, _, problem) => {
                let problem = problem.unwrap_or_else(|| "the server found the chain broken".into());
                // The server names the position; the kept digest there says which one it was.
                let about = chain
                    .departs_from
                    .and_then(|seq| kept.iter().find(|k| k.digest.seq == seq))
                    .map(|k| format!("the log does not extend {}: ", k.describe()));
                out!("TAMPERED: {}{problem}", about.unwrap_or_default());
                return Ok(crate::EXIT_TAMPERED);
            }
        }
    }
    let (events, head) = last.unwrap_or_default();
    out!(
        "ok: {events} events verified by {}, head {head}",
        client.base()
    );
    extends(&kept)?;
    Ok(0)
}

pub fn digest(data: &Path, args: DigestArgs) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    // The head must name the last stored event: a digest of a damaged end proves nothing.
    if let Some(t) = log.damage() {
        return Err(crate::data::Damaged(t).into());
    }
    let head = log.head()?;
    if args.signed {
        let Some(key) = crate::data::existing_key(data)? else {
            anyhow::bail!(
                "`{}` has no signing key yet: `permledger key show` makes it",
                data.display()
            );
        };
        out!(
            "{}",
            key.sign(
                head,
                permledger_ledger::Clock::now(&permledger_ledger::SystemClock)
            )
        );
    } else {
        out!("{head}");
    }
    Ok(0)
}

/// The head of the log a server serves (`GET /v1/digest`).
pub fn remote_digest(client: &Client, args: DigestArgs) -> anyhow::Result<u8> {
    match client.call::<api::GetDigest>(&api::NoPath {}, &(), &())? {
        Ok(a) if args.signed => match a.signed {
            Some(s) => {
                out!("{s}");
                Ok(0)
            }
            None => anyhow::bail!("the server signs no digest (its folder has no signing key)"),
        },
        Ok(a) => {
            out!("{}", a.digest);
            Ok(0)
        }
        Err(refusal) => crate::cmd_run::print_refusal(&refusal),
    }
}

/// `permledger key show`.
pub fn key(data: &Path, args: KeyArgs) -> anyhow::Result<u8> {
    match args {
        KeyArgs::Show => {
            let key = crate::data::signing_key(data)?;
            out!("{}", key.public());
            Ok(0)
        }
    }
}

/// Projections live in memory and are rebuilt from the log on every start; this does it
/// explicitly, with a progress bar on a terminal, and prints the rate. The chain is checked as
/// the log is read, so the events folded are exactly positions 1 to the head.
pub fn rebuild(data: &Path) -> anyhow::Result<u8> {
    let log = crate::data::read_log(data)?;
    let total = log.head()?.seq;
    let bar = crate::data::progress_bar(total, "rebuilding");
    let started = std::time::Instant::now();
    let mut folded = 0;
    let views = permledger_ledger::replay(&*log, |done, _| {
        folded = done;
        bar.set_position(done)
    })
    .map_err(crate::data::damaged)?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    let rate = folded as f64 / elapsed.as_secs_f64().max(1e-9);
    out!(
        "rebuilt {folded} events of {} orgs in {:.3} s ({rate:.0} events/s), every link checked",
        views.histories.len(),
        elapsed.as_secs_f64(),
    );
    Ok(0)
}

/// Writes a checkpoint of the folder's views at the log's head (beside a running server too:
/// the log is read, and the checkpoint written into `DATA/checkpoints`), so that the next
/// open folds only what comes after it.
pub fn checkpoint(data: &Path) -> anyhow::Result<u8> {
    let store = permledger_ledger::Checkpoints::of_folder(data);
    let log = crate::data::read_log(data)?;
    let head = log.head()?.seq;
    let now = permledger_domain::Timestamp::from_chrono(chrono::Utc::now());
    // From the newest checkpoint an open would use and the log after it, checked as an open
    // checks them; one that cannot be used is named in a warning and written anew.
    let written = permledger_ledger::checkpoint::behind(&*log, &store, head, now, &mut |w| {
        eprintln!("warning: {w}")
    })
    .map_err(|e| match e {
        permledger_ledger::checkpoint::Failed::Tampered(t) => crate::data::Damaged(t).into(),
        other => anyhow::Error::from(other),
    })?;
    match written {
        Some(written) => out!(
            "checkpoint at event {} written to {} ({:.1} MB in {} ms)",
            written.seq,
            written.path.display(),
            written.bytes as f64 / 1e6,
            written.took.as_millis()
        ),
        None => out!(
            "the newest checkpoint is already at the log's head, event {head}: {}",
            store
                .list()?
                .first()
                .map_or_else(String::new, |(_, p)| p.display().to_string())
        ),
    }
    Ok(0)
}
