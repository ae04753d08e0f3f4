//! Checkpoints on disk (docs/decisions/0010-checkpoints.md): files of the views at a position
//! (`permledger_views::checkpoint`), kept in a folder beside the log, never part of it. Writing
//! one goes through a temporary file, synced and renamed, so a reader sees a whole checkpoint or
//! none. An open takes the newest one that matches the log and folds the tail after it; any
//! that cannot be used is passed over with a warning naming it, down to a fold of the whole log.

use std::fs;
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use permledger_domain::{OrgId, Seq, Timestamp};
use permledger_log::{Digest, EventLog, Hash, LogError};
use permledger_views::checkpoint::{self as format, CheckpointError, Header};
use permledger_views::Views;

/// The folder checkpoints live in, inside the data folder.
pub const DIR: &str = "checkpoints";

/// How many checkpoints are kept: the newest, and two to fall back on.
pub const KEEP: usize = 3;

const SUFFIX: &str = ".ckpt";

/// A temporary file left by a writer that died is removed once it is this old (a live writer
/// of the largest checkpoint finishes well within it).
const STALE: Duration = Duration::from_secs(3600);

/// The checkpoints of one ledger.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    keep: usize,
}

/// A checkpoint written.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub seq: Seq,
    pub bytes: u64,
    pub took: Duration,
}

/// A checkpoint the log agrees with, opened (`format::open`: every section of the orgs wanted
/// checked, none decoded yet), at the position and link the log agrees with.
pub struct Restored {
    pub opened: format::Opened,
    pub at: Digest,
    pub path: PathBuf,
    /// Every org's version at the checkpoint (the tail's check starts from them).
    pub versions: Vec<(OrgId, u64)>,
}

impl Restored {
    /// The opened checkpoint, and the chain check resumed at its link and org versions: what a
    /// fold of the events after it starts from.
    pub fn resume(self) -> (format::Opened, permledger_log::ChainCheck) {
        let chain =
            permledger_log::ChainCheck::resume(self.at, self.versions.iter().map(|(o, v)| (o, *v)));
        (self.opened, chain)
    }
}

impl std::fmt::Debug for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restored")
            .field("at", &self.at)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A checkpoint's file, its sections read where they lie by the thread that needs them, into a
/// buffer each thread keeps.
struct InFile {
    file: fs::File,
    /// Its length when opened: no read beyond it is tried (a damaged header can name any).
    size: u64,
    /// Where the first section starts.
    body: u64,
    path: PathBuf,
}

impl format::Source for InFile {
    fn read(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), CheckpointError> {
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let short = || CheckpointError::Truncated("it ends before its last section");
        let len = usize::try_from(len).map_err(|_| short())?;
        let at = self.body.checked_add(offset).ok_or_else(short)?;
        if at.checked_add(len as u64).is_none_or(|end| end > self.size) {
            return Err(short());
        }
        BUFFER.with(|buffer| {
            // A section read while another is in use on this thread (none today) gets its own.
            let mut own = Vec::new();
            let mut guard = buffer.try_borrow_mut();
            let buf = match guard.as_deref_mut() {
                Ok(b) => b,
                Err(_) => &mut own,
            };
            buf.resize(len, 0);
            self.file.read_exact_at(buf, at).map_err(|_| short())?;
            f(buf);
            // A large section's room is not kept for a thread that may never read again.
            if buf.capacity() > 8 << 20 {
                *buf = Vec::new();
            }
            Ok(())
        })
    }

    fn name(&self) -> String {
        format!("checkpoint `{}`", self.path.display())
    }
}

impl Checkpoints {
    /// The checkpoints in `dir`, keeping the `keep` newest when one is written.
    pub fn new(dir: impl Into<PathBuf>, keep: usize) -> Checkpoints {
        Checkpoints {
            dir: dir.into(),
            keep: keep.max(1),
        }
    }

    /// The checkpoints of the ledger in the data folder `data`.
    pub fn of_folder(data: &Path) -> Checkpoints {
        Checkpoints::new(data.join(DIR), KEEP)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every checkpoint file, newest first, by the position its name says (what it holds is
    /// read, and checked, only when it is opened). No folder: none.
    pub fn list(&self) -> io::Result<Vec<(Seq, PathBuf)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .filter(|n| n.len() == 20)
                .and_then(|n| n.parse::<Seq>().ok())
            else {
                continue;
            };
            found.push((seq, entry.path()));
        }
        found.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        Ok(found)
    }

    /// Writes the views as a checkpoint, `link` being the log's link at their position, then
    /// prunes all but the newest few. Returns once the file is durable under its final name.
    pub fn write(&self, views: &Views, link: Hash, now: Timestamp) -> io::Result<Written> {
        let started = Instant::now();
        fs::create_dir_all(&self.dir)?;
        let seq = views.seq();
        let name = format!("{seq:020}{SUFFIX}");
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let file = fs::File::create(&tmp)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let bytes = format::write_to(views, link.0, now, &mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok::<u64, io::Error>(bytes)
        })();
        let bytes = match written {
            Ok(b) => b,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let path = self.dir.join(&name);
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        self.prune();
        Ok(Written {
            path,
            seq,
            bytes,
            took: started.elapsed(),
        })
    }

    /// Removes all but the `keep` newest checkpoints, and temporary files a dead writer left.
    /// Best effort: what cannot be removed now is removed by a later write.
    fn prune(&self) {
        if let Ok(all) = self.list() {
            for (_, path) in all.into_iter().skip(self.keep) {
                let _ = fs::remove_file(path);
            }
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".tmp"))
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The newest checkpoint the log agrees with, its orgs restricted to those `wanted` keeps,
    /// or None. One is passed over, with a warning naming it and why, when its position is
    /// beyond the log's head, when the log's link there is not the one it was taken at, or when
    /// it cannot be read (cut short, changed, of another format).
    pub fn restore(
        &self,
        log: &dyn EventLog,
        wanted: &(dyn Fn(&OrgId) -> bool + Sync),
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<Restored>, LogError> {
        let listed = match self.list() {
            Ok(l) => l,
            Err(e) => {
                warn(format!(
                    "the checkpoints in `{}` cannot be listed ({e}); folding the whole log",
                    self.dir.display()
                ));
                return Ok(None);
            }
        };
        let head = log.head()?;
        for (seq, path) in listed {
            match self.try_one(log, head, seq, &path, wanted)? {
                Ok(r) => return Ok(Some(r)),
                Err(why) => warn(format!(
                    "checkpoint `{}` is passed over: {why}",
                    path.display()
                )),
            }
        }
        Ok(None)
    }

    fn try_one(
        &self,
        log: &dyn EventLog,
        head: Digest,
        named: Seq,
        path: &Path,
        wanted: &(dyn Fn(&OrgId) -> bool + Sync),
    ) -> Result<Result<Restored, String>, LogError> {
        if named > head.seq {
            return Ok(Err(format!(
                "it stands at event {named}, beyond the log's last event {}",
                head.seq
            )));
        }
        // The header first: a checkpoint the log disagrees with is not read further.
        let (header, header_end) = match read_header(path) {
            Ok(h) => h,
            Err(why) => return Ok(Err(why)),
        };
        if header.seq != named {
            return Ok(Err(format!(
                "its name says event {named} and its header event {}",
                header.seq
            )));
        }
        if header.seq > 0 {
            let link = log
                .read(header.seq, 1)?
                .into_iter()
                .find(|r| r.seq == header.seq);
            match link {
                Some(r) if r.hash.0 == header.hash => {}
                Some(_) => {
                    return Ok(Err(format!(
                        "the log's link at event {} is not the one it was taken at",
                        header.seq
                    )))
                }
                None => return Ok(Err(format!("the log has no event {}", header.seq))),
            }
        }
        // Each section read where it lies, by the thread that checks or decodes it: a reader of
        // one org reads the header, that org's sections and the event times, not the whole file.
        let started = Instant::now();
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return Ok(Err(format!("it cannot be read: {e}"))),
        };
        let size = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return Ok(Err(format!("it cannot be read: {e}"))),
        };
        let source = Arc::new(InFile {
            file,
            size,
            body: header_end,
            path: path.to_path_buf(),
        });
        let at = Digest {
            seq: header.seq,
            hash: Hash(header.hash),
        };
        let versions = header.versions().map(|(o, v)| (o.clone(), v)).collect();
        let opened = format::open(header, source, wanted);
        tracing::info!(
            path = %path.display(),
            check_ms = started.elapsed().as_millis() as u64,
            "checkpoint opened"
        );
        match opened {
            Ok(opened) => Ok(Ok(Restored {
                opened,
                at,
                versions,
                path: path.to_path_buf(),
            })),
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

/// A checkpoint file's header, reading no more of the file than it, and where its sections
/// start.
pub fn read_header(path: &Path) -> Result<(Header, u64), String> {
    let mut file = fs::File::open(path).map_err(|e| format!("it cannot be read: {e}"))?;
    let mut start = vec![0u8; 20];
    let got = read_up_to(&mut file, &mut start).map_err(|e| format!("it cannot be read: {e}"))?;
    start.truncate(got);
    let whole = match format::header_len(&start) {
        // A header's length is a few bytes an org; beyond 1 GiB the length itself is damaged.
        Some(n) if n > start.len() && n < 1 << 30 => n,
        _ => {
            return format::read_header(&start)
                .map(|(h, end)| (h, end as u64))
                .map_err(|e| e.to_string())
        }
    };
    start.resize(whole, 0);
    let more = read_up_to(&mut file, &mut start[got..]).map_err(|e| e.to_string())?;
    start.truncate(got + more);
    format::read_header(&start)
        .map(|(h, end)| (h, end as u64))
        .map_err(|e| e.to_string())
}

fn read_up_to(file: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Why a checkpoint was not written.
#[derive(Debug, thiserror::Error)]
pub enum Failed {
    #[error("the checkpoint cannot be written: {0}")]
    Io(#[from] io::Error),
    #[error("the log cannot be read: {0}")]
    Log(#[from] LogError),
    #[error("the log does not hold: {0}")]
    Tampered(permledger_log::Tamper),
    #[error("{0}")]
    Open(String),
}

impl From<crate::OpenError> for Failed {
    fn from(e: crate::OpenError) -> Failed {
        match e {
            crate::OpenError::Log(e) => Failed::Log(e),
            crate::OpenError::Tampered(t) => Failed::Tampered(t),
            other => Failed::Open(other.to_string()),
        }
    }
}

/// The log's link at `seq` (the genesis link before the first event).
pub fn link_at(log: &dyn EventLog, seq: Seq) -> Result<Hash, LogError> {
    if seq == 0 {
        return Ok(Hash::GENESIS);
    }
    match log.read(seq, 1)?.into_iter().find(|r| r.seq == seq) {
        Some(r) => Ok(r.hash),
        None => Err(LogError::Corruption {
            seq,
            reason: "the event is not in the log".into(),
        }),
    }
}

/// Writes a checkpoint at `upto` without touching the ledger that serves: its views are made
/// apart, from the newest checkpoint and the log's events after it up to `upto` (checked as an
/// open checks them), so writers never wait for it. Costs, while it runs, the memory of a
/// second copy of the views and one core. Nothing is written when the newest checkpoint an
/// open would use is already at `upto`.
pub fn behind(
    log: &dyn EventLog,
    checkpoints: &Checkpoints,
    upto: Seq,
    now: Timestamp,
    warn: &mut dyn FnMut(String),
) -> Result<Option<Written>, Failed> {
    let restored = checkpoints.restore(log, &|_| true, warn)?;
    // One there already that an open would use: nothing to write. One an open would pass over
    // (damaged anywhere, of an older format) was named in a warning, and is written anew.
    if restored.as_ref().is_some_and(|r| r.at.seq >= upto) {
        return Ok(None);
    }
    let views = crate::replay::fold_until(log, restored, upto)?;
    let link = link_at(log, upto)?;
    Ok(Some(checkpoints.write(&views, link, now)?))
}

/// Starts `work` on a thread of its own that yields the cores to every other thread of the
/// machine (Linux's SCHED_IDLE, inherited by the threads it starts): a background checkpoint
/// must not lengthen the append it runs beside. Under a load that keeps every core busy it
/// still progresses, slowly; nothing waits for it. Elsewhere, or where the policy cannot be
/// set, the thread runs at the usual priority.
pub fn spawn_background<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            yield_the_cores();
            work()
        })
}

#[cfg(target_os = "linux")]
fn yield_the_cores() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    ) {
        tracing::warn!("a background checkpoint runs at the usual priority: {e:?}");
    }
}

#[cfg(not(target_os = "linux"))]
fn yield_the_cores() {}
