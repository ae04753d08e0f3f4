//! Checkpoints on disk (docs/decisions/0010-checkpoints.md): files of the views at a position
//! (`permledger_views::checkpoint`), kept in a folder beside the log, never part of it. Writing
//! one goes through a temporary file, synced and renamed, so a reader sees a whole checkpoint or
//! none. An open takes the newest one that matches the log and folds the tail after it; any
//! that cannot be used is passed over with a warning naming it, down to a fold of the whole log.
//!
//! A checkpoint is written as a delta on the whole one before it where it can
//! (`{seq}-{base}.ckpt` beside `{base}.ckpt`): only the orgs with events since the newest
//! checkpoint are encoded, so that writing one costs what changed, not the history. A whole one
//! is written when there is none to build on, or when a delta would hold more than it leaves
//! in its base.

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

/// A delta is written only while its own bytes are at most this share of those it leaves in
/// its base; past it, a whole checkpoint (the next delta's base) costs less to open and keep.
const DELTA_MOST: f64 = 1.0;

/// The header hashes of whole checkpoints every section of which this process has checked
/// (opened whole, or written): a delta refers to its base's sections without reading them, so
/// a base is checked whole once before the first delta on it.
static CHECKED: std::sync::Mutex<Vec<[u8; 32]>> = std::sync::Mutex::new(Vec::new());

fn checked(hash: &[u8; 32]) -> bool {
    CHECKED.lock().is_ok_and(|c| c.contains(hash))
}

fn mark_checked(hash: [u8; 32]) {
    if let Ok(mut c) = CHECKED.lock() {
        if !c.contains(&hash) {
            c.push(hash);
        }
    }
}

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
    /// Its header's hash (a delta written after it names its base by it).
    pub header_hash: [u8; 32],
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
            let Some((seq, _)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            found.push((seq, entry.path()));
        }
        found.sort_unstable_by_key(|c| std::cmp::Reverse(c.0));
        Ok(found)
    }

    /// Writes the views as a checkpoint of `log` at their position: a delta on the whole
    /// checkpoint before it where one can be (only the orgs with events since the newest
    /// checkpoint encoded), else a whole one. Prunes all but the newest few and their bases.
    /// Returns once the file is durable under its final name.
    pub fn write(
        &self,
        log: &dyn EventLog,
        views: &Views,
        now: Timestamp,
    ) -> Result<Written, Failed> {
        let started = Instant::now();
        let link = link_at(log, views.seq())?;
        let quiet = &mut |w: String| tracing::warn!("{w}");
        if let Some(prior) = self.prior(log, views.seq(), quiet)? {
            // Already there: nothing to write.
            if prior.restored.at.seq == views.seq() {
                let path = prior.restored.path;
                return Ok(Written {
                    bytes: fs::metadata(&path)?.len(),
                    path,
                    seq: views.seq(),
                    took: started.elapsed(),
                });
            }
            if let Some(written) = self.write_delta(views, &prior, link, now, started)? {
                return Ok(written);
            }
        }
        Ok(self.write_whole(views, link, now)?)
    }

    /// Writes the views as a whole checkpoint, `link` being the log's link at their position,
    /// then prunes all but the newest few and their bases.
    pub fn write_whole(&self, views: &Views, link: Hash, now: Timestamp) -> io::Result<Written> {
        let started = Instant::now();
        let written = self.write_file(views.seq(), None, started, |out| {
            format::write_to(views, link.0, now, out).map(Some)
        })?;
        let written = written.ok_or_else(|| io::Error::other("nothing was written"))?;
        // Written here: every section is as it was made.
        if let Ok((_, _, hash)) = read_header(&written.path) {
            mark_checked(hash);
        }
        Ok(written)
    }

    /// The views as a delta after `prior`, or None when it would be too large.
    fn write_delta(
        &self,
        views: &Views,
        prior: &Prior,
        link: Hash,
        now: Timestamp,
        started: Instant,
    ) -> io::Result<Option<Written>> {
        let header = prior.restored.opened.header();
        let base = header.base.map_or(header.seq, |b| b.seq);
        let changed = |o: &OrgId| prior.changed.contains(o);
        let against = format::Prior {
            header,
            header_hash: prior.restored.header_hash,
            sources: prior.restored.opened.sources(),
        };
        self.write_file(
            views.seq(),
            Some(base),
            started,
            |out| match format::write_delta(
                views, &changed, &against, link.0, now, DELTA_MOST, out,
            )? {
                format::Delta::Written(bytes) => Ok(Some(bytes)),
                format::Delta::TooLarge { own, referenced } => {
                    tracing::info!(
                        own,
                        referenced,
                        "a delta would hold more than it leaves in its base; writing a whole \
                         checkpoint"
                    );
                    Ok(None)
                }
            },
        )
    }

    /// Writes a checkpoint file at `seq` (a delta on `base`, if given) through a temporary
    /// file: `body` writes it, or answers None to write nothing.
    fn write_file(
        &self,
        seq: Seq,
        base: Option<Seq>,
        started: Instant,
        body: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<Option<u64>>,
    ) -> io::Result<Option<Written>> {
        fs::create_dir_all(&self.dir)?;
        let name = match base {
            Some(base) => format!("{seq:020}-{base:020}{SUFFIX}"),
            None => format!("{seq:020}{SUFFIX}"),
        };
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| {
            let file = fs::File::create(&tmp)?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let Some(bytes) = body(&mut out)? else {
                return Ok(None);
            };
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok::<Option<u64>, io::Error>(Some(bytes))
        })();
        let bytes = match written {
            Ok(Some(b)) => b,
            Ok(None) => {
                let _ = fs::remove_file(&tmp);
                return Ok(None);
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let path = self.dir.join(&name);
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()?;
        // A whole checkpoint at the same position as a delta serves every open the delta did.
        if base.is_none() {
            if let Ok(all) = self.list() {
                for (s, p) in all {
                    if s == seq && p != path {
                        let _ = fs::remove_file(p);
                    }
                }
            }
        }
        self.prune();
        Ok(Some(Written {
            path,
            seq,
            bytes,
            took: started.elapsed(),
        }))
    }

    /// The newest checkpoint the log agrees with, opened for no org (its header, its base's
    /// header and its event times checked), its base checked whole once, and the orgs with
    /// events after it up to `upto` (the tail's chain checked as an open checks it). None when
    /// there is none to build a delta on.
    fn prior(
        &self,
        log: &dyn EventLog,
        upto: Seq,
        warn: &mut dyn FnMut(String),
    ) -> Result<Option<Prior>, Failed> {
        let Some(restored) = self.restore(log, &|_| false, warn)? else {
            return Ok(None);
        };
        let header = restored.opened.header();
        if header.seq > upto {
            return Ok(None);
        }
        let base_hash = header.base.map_or(restored.header_hash, |b| b.header_hash);
        if !checked(&base_hash) {
            // The base itself, every section of it: a delta's open checked only those it
            // refers to, and the next delta may refer to others.
            let whole = match header.base {
                None => restored.opened.check_whole().map_err(|e| e.to_string()),
                Some(b) => check_whole(
                    &restored
                        .path
                        .with_file_name(format!("{:020}{SUFFIX}", b.seq)),
                    &b.header_hash,
                ),
            };
            match whole {
                Ok(()) => mark_checked(base_hash),
                Err(e) => {
                    warn(format!(
                        "checkpoint `{}` is passed over: {e}",
                        restored.path.display()
                    ));
                    return Ok(None);
                }
            }
        }
        let chain = permledger_log::ChainCheck::resume(
            restored.at,
            restored.versions.iter().map(|(o, v)| (o, *v)),
        );
        let changed = crate::replay::orgs_touched(log, chain, upto)?;
        Ok(Some(Prior { restored, changed }))
    }

    /// Removes all but the `keep` newest checkpoints, and temporary files a dead writer left.
    /// Best effort: what cannot be removed now is removed by a later write.
    fn prune(&self) {
        if let Ok(all) = self.list() {
            let bases: Vec<Seq> = all
                .iter()
                .take(self.keep)
                .filter_map(|(_, p)| base_named(p))
                .collect();
            for (seq, path) in all.into_iter().skip(self.keep) {
                if !(bases.contains(&seq) && base_named(&path).is_none()) {
                    let _ = fs::remove_file(path);
                }
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
        let (header, header_end, header_hash) = match read_header(path) {
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
        let (header, sources) = match sources_for(path, header, header_end) {
            Ok(found) => found,
            Err(why) => return Ok(Err(why)),
        };
        let at = Digest {
            seq: header.seq,
            hash: Hash(header.hash),
        };
        let versions = header.versions().map(|(o, v)| (o.clone(), v)).collect();
        let base_hash = header.base.map_or(header_hash, |b| b.header_hash);
        let opened = format::open(header, sources, wanted);
        tracing::info!(
            path = %path.display(),
            check_ms = started.elapsed().as_millis() as u64,
            "checkpoint opened"
        );
        match opened {
            Ok(opened) => {
                // Every section of a whole checkpoint checked; a delta's open checks only the
                // base's sections it refers to.
                if opened.checked_whole() && opened.header().base.is_none() {
                    mark_checked(base_hash);
                }
                Ok(Ok(Restored {
                    opened,
                    at,
                    versions,
                    header_hash,
                    path: path.to_path_buf(),
                }))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Every org of the checkpoint at `path` decoded, every section checked: what `verify`
    /// compares with a fold of the log.
    pub fn decode_file(&self, path: &Path) -> Result<(Header, Views), String> {
        let (header, end, _) = read_header(path)?;
        let (header, sources) = sources_for(path, header, end)?;
        let opened = format::open(header, sources, |_| true).map_err(|e| e.to_string())?;
        let header = opened.header().clone();
        let views = opened.decode().map_err(|e| e.to_string())?;
        Ok((header, views))
    }
}

/// Every section of the whole checkpoint at `path`, whose header must hash to `hash`, checked.
fn check_whole(path: &Path, hash: &[u8; 32]) -> Result<(), String> {
    let (header, end, found) = read_header(path)
        .map_err(|why| format!("its base `{}` cannot be used: {why}", path.display()))?;
    if &found != hash || header.base.is_some() {
        return Err(format!(
            "its base `{}` is not the checkpoint it was written on",
            path.display()
        ));
    }
    let (header, sources) = sources_for(path, header, end)?;
    format::open(header, sources, |_| true)
        .map(|_| ())
        .map_err(|e| format!("its base `{}`: {e}", path.display()))
}

/// What a delta is written after (`Checkpoints::prior`).
struct Prior {
    restored: Restored,
    changed: std::collections::HashSet<OrgId>,
}

/// The position a checkpoint's file name says, and its base's for a delta.
fn parse_name(name: &str) -> Option<(Seq, Option<Seq>)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let number = |n: &str| {
        (n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse::<Seq>().ok())
            .flatten()
    };
    match stem.split_once('-') {
        None => Some((number(stem)?, None)),
        Some((seq, base)) => Some((number(seq)?, Some(number(base)?))),
    }
}

/// The base a delta's file name names; None for a whole checkpoint.
fn base_named(path: &Path) -> Option<Seq> {
    path.file_name()?.to_str().and_then(parse_name)?.1
}

/// A checkpoint's file and, for a delta, its base's, each read in place by the thread that
/// needs a section, into a buffer each thread keeps; the base checked to be the one the delta
/// was written on (its header's hash).
fn sources_for(
    path: &Path,
    mut header: Header,
    header_end: u64,
) -> Result<(Header, format::Sources), String> {
    let in_file = |path: &Path, body: u64| -> Result<Arc<dyn format::Source>, String> {
        let file = fs::File::open(path).map_err(|e| format!("it cannot be read: {e}"))?;
        let size = file
            .metadata()
            .map_err(|e| format!("it cannot be read: {e}"))?
            .len();
        Ok(Arc::new(InFile {
            file,
            size,
            body,
            path: path.to_path_buf(),
        }))
    };
    let base = match header.base {
        None => None,
        Some(b) => {
            let named = path.with_file_name(format!("{:020}{SUFFIX}", b.seq));
            let (base, end, hash) = read_header(&named)
                .map_err(|why| format!("its base `{}` cannot be used: {why}", named.display()))?;
            let not_it = || {
                format!(
                    "its base `{}` is not the checkpoint it was written on",
                    named.display()
                )
            };
            if hash != b.header_hash {
                return Err(not_it());
            }
            header = header.merge(&base).map_err(|_| not_it())?;
            Some(in_file(&named, end)?)
        }
    };
    Ok((
        header,
        format::Sources::new(in_file(path, header_end)?, base),
    ))
}

/// A checkpoint file's header, reading no more of the file than it, where its sections start,
/// and its hash.
pub fn read_header(path: &Path) -> Result<(Header, u64, [u8; 32]), String> {
    let mut file = fs::File::open(path).map_err(|e| format!("it cannot be read: {e}"))?;
    let mut start = vec![0u8; 20];
    let got = read_up_to(&mut file, &mut start).map_err(|e| format!("it cannot be read: {e}"))?;
    start.truncate(got);
    let whole = match format::header_len(&start) {
        // A header's length is a few bytes an org; beyond 1 GiB the length itself is damaged.
        Some(n) if n > start.len() && n < 1 << 30 => n,
        _ => {
            return format::read_header(&start)
                .map(|(h, end, hash)| (h, end as u64, hash))
                .map_err(|e| e.to_string())
        }
    };
    start.resize(whole, 0);
    let more = read_up_to(&mut file, &mut start[got..]).map_err(|e| e.to_string())?;
    start.truncate(got + more);
    format::read_header(&start)
        .map(|(h, end, hash)| (h, end as u64, hash))
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
/// apart from the newest checkpoint and the log's events after it up to `upto` (checked as an
/// open checks them), so writers never wait for it. Where the newest checkpoint can be built
/// on, only the orgs with events since it are decoded and encoded, and the checkpoint is a
/// delta (`Checkpoints::write`): it costs the tail, not the history. Otherwise every org is,
/// at the cost, while it runs, of a second copy of the views. Nothing is written when the
/// newest checkpoint an open would use is already at `upto`.
pub fn behind(
    log: &dyn EventLog,
    checkpoints: &Checkpoints,
    upto: Seq,
    now: Timestamp,
    warn: &mut dyn FnMut(String),
) -> Result<Option<Written>, Failed> {
    let started = Instant::now();
    // One an open would pass over (damaged anywhere, of an older format) is named in a warning,
    // once, and built on by none.
    let mut said: Vec<String> = Vec::new();
    let warn = &mut |w: String| {
        if !said.contains(&w) {
            warn(w.clone());
            said.push(w);
        }
    };
    if let Some(mut prior) = checkpoints.prior(log, upto, warn)? {
        if prior.restored.at.seq >= upto {
            return Ok(None);
        }
        let touched = &prior.changed;
        // The event times already decoded go with it.
        let changed = prior.restored.opened.reopen(|o| touched.contains(o));
        let r = &prior.restored;
        match changed {
            Ok(opened) => {
                let start = Restored {
                    opened,
                    at: r.at,
                    path: r.path.clone(),
                    header_hash: r.header_hash,
                    versions: r.versions.clone(),
                };
                let found = started.elapsed();
                let views = crate::replay::fold_until(log, Some(start), upto)?;
                let folded = started.elapsed();
                let link = link_at(log, upto)?;
                if let Some(w) = checkpoints.write_delta(&views, &prior, link, now, started)? {
                    tracing::info!(
                        seq = w.seq,
                        changed_orgs = prior.changed.len(),
                        prior_ms = found.as_millis() as u64,
                        fold_ms = (folded - found).as_millis() as u64,
                        write_ms = (w.took - folded).as_millis() as u64,
                        bytes = w.bytes,
                        "delta checkpoint written"
                    );
                    return Ok(Some(w));
                }
            }
            Err(e) => warn(format!(
                "checkpoint `{}` is passed over: {e}",
                r.path.display()
            )),
        }
    }
    let restored = checkpoints.restore(log, &|_| true, warn)?;
    if restored.as_ref().is_some_and(|r| r.at.seq >= upto) {
        return Ok(None);
    }
    let views = crate::replay::fold_until(log, restored, upto)?;
    let link = link_at(log, upto)?;
    Ok(Some(checkpoints.write_whole(&views, link, now)?))
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
