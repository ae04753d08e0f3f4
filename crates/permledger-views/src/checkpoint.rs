//! Checkpoints: the views at one position, written to bytes so that an open can start there and
//! fold only the log's tail (docs/decisions/0010-checkpoints.md). A checkpoint is never part of
//! the log and never needed for correctness: one that cannot be read, or that disagrees with the
//! log, is ignored and the log folded whole.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic          8 bytes   "PLCKPT\r\n"
//! format         u32       FORMAT
//! header length  u64
//! header         bincode   Header: position, chain hash, and where each section lies
//! header hash    32 bytes  BLAKE3 of everything before it
//! sections       ...       each org: its present, then its history, without members, then
//!                          its members' present and past, 8,192 members a section; last, the
//!                          event times
//! ```
//!
//! Each section carries its own BLAKE3 hash in the header. An open (`open`) reads and checks
//! every section of the orgs it is for, on every core, and decodes only the event times: each
//! org is decoded when first used (`Opened::views`, the views' lazy maps), its present apart
//! from its history, a large org's members on every core. A reader of a few orgs checks and
//! decodes only theirs.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use permledger_domain::lazy::Loader;
use permledger_domain::state::{Hashed, Member, Org};
use permledger_domain::{Event, OrgId, Seq, State, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::history::MemberHist;
use crate::{OrgHistory, Views};

/// The first bytes of every checkpoint file.
pub const MAGIC: &[u8; 8] = b"PLCKPT\r\n";

/// The layout written today. A file of another format is not read (the log is folded instead).
pub const FORMAT: u32 = 2;

/// bincode's standard configuration, spelled out: a default changing upstream changes nothing.
const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Where a checkpoint stands, and where its sections lie in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The last position folded in.
    pub seq: Seq,
    /// The log's link at `seq`: an open uses the checkpoint only if the log has the same.
    pub hash: [u8; 32],
    /// The recorded time of the last event folded in.
    pub last_time: Option<Timestamp>,
    /// When the checkpoint was written (the writer's clock; informative).
    pub written_at: Timestamp,
    times: Section,
    orgs: Vec<OrgSection>,
}

impl Header {
    /// How many orgs the checkpoint holds.
    pub fn orgs(&self) -> usize {
        self.orgs.len()
    }

    /// Every org's version at the checkpoint.
    pub fn versions(&self) -> impl Iterator<Item = (&OrgId, u64)> {
        self.orgs.iter().map(|o| (&o.org, o.version))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Section {
    /// From the first byte after the header's hash.
    offset: u64,
    len: u64,
    hash: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct OrgSection {
    org: OrgId,
    /// The org's version (its event count) at the checkpoint: a fold of the tail checks each
    /// event's version against it, for every org, read or not.
    version: u64,
    /// The org's present without its members.
    live: Section,
    /// Its history without its members.
    history: Section,
    /// Its members' present and history, `CHUNK` members a section.
    live_members: Vec<Section>,
    past_members: Vec<Section>,
}

/// Members a section: a large org's members decode on every core. (Three in unit tests, so that
/// small orgs span several sections.)
const CHUNK: usize = if cfg!(test) { 3 } else { 8192 };

type LiveChunk = Vec<(UserId, Box<Member>)>;
type PastChunk = Vec<(UserId, Box<MemberHist>)>;

/// Why a checkpoint's bytes cannot be used. Each names what is wrong, for the warning that says
/// which file was passed over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("it is not a checkpoint (its first bytes are not permledger's)")]
    NotACheckpoint,
    #[error("it is of format {found}; this build reads format {FORMAT}")]
    Format { found: u32 },
    #[error("it is cut short: {0}")]
    Truncated(&'static str),
    #[error("its {0} does not match its checksum")]
    Checksum(String),
    #[error("its {what} does not decode: {reason}")]
    Decode { what: String, reason: String },
}

/// Where a checkpoint's sections are read from: its file, read in place, or bytes in memory.
pub trait Source: Send + Sync + 'static {
    /// Calls `f` with the `len` bytes at `offset`, counted from the first section.
    fn read(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), CheckpointError>;
    /// What it is, for a message (a file's path).
    fn name(&self) -> String;
}

/// A whole checkpoint in memory.
struct InMemory {
    bytes: Vec<u8>,
    start: usize,
}

impl Source for InMemory {
    fn read(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), CheckpointError> {
        let from = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(self.start));
        let to = from.and_then(|f| f.checked_add(usize::try_from(len).ok()?));
        match (from, to) {
            (Some(from), Some(to)) if to <= self.bytes.len() => {
                f(&self.bytes[from..to]);
                Ok(())
            }
            _ => Err(CheckpointError::Truncated(
                "it ends before its last section",
            )),
        }
    }

    fn name(&self) -> String {
        "a checkpoint in memory".into()
    }
}

/// Writes the views as a checkpoint at their position, whose link in the log is `hash`. The orgs
/// are encoded on every core; what is written is the whole file.
pub fn write_to(
    views: &Views,
    hash: [u8; 32],
    written_at: Timestamp,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let parts = views.map_orgs(|id, org| match views.histories.get(id) {
        Some(history) => encode_org(org, history),
        // Every org the live state knows has a history from its first event.
        None => Err(format!("org `{id}` has no history")),
    });
    let mut body: Vec<(OrgId, EncodedOrg)> = Vec::with_capacity(parts.len());
    for (id, part) in parts {
        body.push((id, part.map_err(std::io::Error::other)?));
    }
    // In id order: the same views always make the same bytes.
    body.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let times = encode_times(&views.times);
    let mut offset = 0u64;
    let mut section = |bytes: &[u8]| {
        let s = Section {
            offset,
            len: bytes.len() as u64,
            hash: *blake3::hash(bytes).as_bytes(),
        };
        offset += s.len;
        s
    };
    let orgs = body
        .iter()
        .map(|(org, e)| OrgSection {
            org: org.clone(),
            version: e.version,
            live: section(&e.live_base),
            history: section(&e.history_base),
            live_members: e.live.iter().map(|b| section(b)).collect(),
            past_members: e.past.iter().map(|b| section(b)).collect(),
        })
        .collect();
    let header = Header {
        seq: views.seq(),
        hash,
        last_time: views.live.last_time,
        written_at,
        times: section(&times),
        orgs,
    };
    let header = encode(&header).map_err(std::io::Error::other)?;
    let mut head = Vec::with_capacity(MAGIC.len() + 12 + header.len() + 32);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT.to_le_bytes());
    head.extend_from_slice(&(header.len() as u64).to_le_bytes());
    head.extend_from_slice(&header);
    let check = blake3::hash(&head);
    head.extend_from_slice(check.as_bytes());
    out.write_all(&head)?;
    for (_, e) in &body {
        for bytes in [&e.live_base, &e.history_base]
            .into_iter()
            .chain(&e.live)
            .chain(&e.past)
        {
            out.write_all(bytes)?;
        }
    }
    out.write_all(&times)?;
    Ok(head.len() as u64 + offset)
}

/// One org's sections, encoded.
struct EncodedOrg {
    version: u64,
    live_base: Vec<u8>,
    history_base: Vec<u8>,
    live: Vec<Vec<u8>>,
    past: Vec<Vec<u8>>,
}

fn encode_org(org: &Org, history: &OrgHistory) -> Result<EncodedOrg, String> {
    // In id order within the org too: the same views, the same bytes.
    let mut live: Vec<(&UserId, &Member)> = org.members.iter().map(|(u, m)| (u, &**m)).collect();
    live.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut past: Vec<(&UserId, &MemberHist)> =
        history.members.iter().map(|(u, m)| (u, &**m)).collect();
    past.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(EncodedOrg {
        version: org.version,
        live_base: encode(org)?,
        history_base: encode(history)?,
        live: live.chunks(CHUNK).map(encode).collect::<Result<_, _>>()?,
        past: past.chunks(CHUNK).map(encode).collect::<Result<_, _>>()?,
    })
}

/// The views as bytes (`write_to` into memory).
pub fn to_bytes(views: &Views, hash: [u8; 32], written_at: Timestamp) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a vector fails only if an org has no history, which `apply` never allows.
    let _ = write_to(views, hash, written_at, &mut out);
    out
}

/// The header alone, checked against its own hash, and where the sections start: where the
/// checkpoint stands. `bytes` may be only the file's beginning, as long as `header_len`.
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize), CheckpointError> {
    let fixed = MAGIC.len() + 12;
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(if bytes.len() < MAGIC.len() {
            CheckpointError::Truncated("it ends before its first bytes")
        } else {
            CheckpointError::NotACheckpoint
        });
    }
    if bytes.len() < fixed {
        return Err(CheckpointError::Truncated("it ends inside its header"));
    }
    let format = u32::from_le_bytes(array(&bytes[8..12]));
    if format != FORMAT {
        return Err(CheckpointError::Format { found: format });
    }
    let len = usize::try_from(u64::from_le_bytes(array(&bytes[12..20])))
        .map_err(|_| CheckpointError::Truncated("its header's length is beyond memory"))?;
    let end = fixed
        .checked_add(len)
        .and_then(|e| e.checked_add(32))
        .ok_or(CheckpointError::Truncated(
            "its header's length is beyond memory",
        ))?;
    if bytes.len() < end {
        return Err(CheckpointError::Truncated("it ends inside its header"));
    }
    if blake3::hash(&bytes[..end - 32]).as_bytes() != &bytes[end - 32..end] {
        return Err(CheckpointError::Checksum("header".into()));
    }
    let header: Header = decode(&bytes[fixed..end - 32], "header")?;
    Ok((header, end))
}

/// How many bytes the header of a file starting with `bytes` takes (at least 20 are needed), so
/// that a reader can read no more than it.
pub fn header_len(bytes: &[u8]) -> Option<usize> {
    let len = u64::from_le_bytes(array(bytes.get(12..20)?));
    usize::try_from(len)
        .ok()?
        .checked_add(MAGIC.len() + 12 + 32)
}

/// `f` of a section's bytes, once they are read and match their hash.
fn with_section<R>(
    source: &dyn Source,
    s: &Section,
    what: &dyn Fn() -> String,
    f: impl FnOnce(&[u8]) -> Result<R, CheckpointError>,
) -> Result<R, CheckpointError> {
    let mut f = Some(f);
    let mut out = None;
    source.read(s.offset, s.len, &mut |b| {
        out = Some(
            if b.len() as u64 == s.len && blake3::hash(b).as_bytes() == &s.hash {
                match f.take() {
                    Some(f) => f(b),
                    None => Err(CheckpointError::Truncated("a section was read twice")),
                }
            } else {
                Err(CheckpointError::Checksum(what()))
            },
        );
    })?;
    out.unwrap_or(Err(CheckpointError::Truncated(
        "a section could not be read",
    )))
}

/// A checkpoint opened: its header read, every section of the orgs it is opened for checked
/// against its hash, and the event times decoded. Its orgs are decoded when first used
/// (`views`), or all at once (`decode`).
pub struct Opened {
    header: Header,
    source: Arc<dyn Source>,
    /// The orgs opened for, in the header's order.
    chosen: Vec<Arc<OrgSection>>,
    times: Vec<(Seq, Timestamp)>,
}

/// Opens a checkpoint whose header is `header` (`read_header`) and whose sections `source`
/// reads, for the orgs `wanted` keeps: each of their sections and the event times are read and
/// checked on every core, so that a checkpoint changed anywhere they lie is refused here, not
/// when an org is first used.
pub fn open(
    header: Header,
    source: Arc<dyn Source>,
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<Opened, CheckpointError> {
    let chosen: Vec<Arc<OrgSection>> = header
        .orgs
        .iter()
        .filter(|o| wanted(&o.org))
        .map(|o| Arc::new(o.clone()))
        .collect();
    // Read in runs of neighbouring sections, a few megabytes a read: most orgs are small, and a
    // read each would cost more than hashing them.
    let mut sections: Vec<(&OrgId, &Section)> = Vec::new();
    for o in &chosen {
        sections.extend(o.sections().map(|s| (&o.org, s)));
    }
    sections.sort_unstable_by_key(|(_, s)| s.offset);
    let mut runs: Vec<&[(&OrgId, &Section)]> = Vec::new();
    let mut start = 0;
    for i in 1..=sections.len() {
        let ends = i == sections.len() || {
            let (first, prev, next) = (sections[start].1, sections[i - 1].1, sections[i].1);
            prev.offset.checked_add(prev.len) != Some(next.offset)
                || next
                    .offset
                    .saturating_add(next.len)
                    .saturating_sub(first.offset)
                    > RUN
        };
        if ends {
            runs.push(&sections[start..i]);
            start = i;
        }
    }
    // The event times decode beside the hashing.
    let (checked, times) = std::thread::scope(|scope| {
        let times = scope.spawn(|| {
            with_section(
                &*source,
                &header.times,
                &|| "event times".into(),
                decode_times,
            )
        });
        let checked = crate::in_shares(
            &runs,
            |run| run.iter().map(|(_, s)| s.len).sum(),
            |run| check_run(&*source, run),
        );
        let times = times
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, times)
    });
    checked.into_iter().collect::<Result<(), _>>()?;
    let times = times?;
    Ok(Opened {
        header,
        source,
        chosen,
        times,
    })
}

/// About how many bytes `open` reads at once.
const RUN: u64 = 8 << 20;

/// Checks each of neighbouring sections against its hash, with one read.
fn check_run(source: &dyn Source, run: &[(&OrgId, &Section)]) -> Result<(), CheckpointError> {
    let (Some((_, first)), Some((_, last))) = (run.first(), run.last()) else {
        return Ok(());
    };
    let len = last
        .offset
        .saturating_add(last.len)
        .saturating_sub(first.offset);
    let mut found = Ok(());
    source.read(first.offset, len, &mut |bytes| {
        for (org, s) in run {
            let from = usize::try_from(s.offset - first.offset).ok();
            let to = from.and_then(|f| f.checked_add(usize::try_from(s.len).ok()?));
            let piece = from.zip(to).and_then(|(f, t)| bytes.get(f..t));
            if piece.is_none_or(|b| blake3::hash(b).as_bytes() != &s.hash) {
                found = Err(CheckpointError::Checksum(format!("section of org `{org}`")));
                return;
            }
        }
    })?;
    found
}

impl OrgSection {
    fn sections(&self) -> impl Iterator<Item = &Section> {
        [&self.live, &self.history]
            .into_iter()
            .chain(&self.live_members)
            .chain(&self.past_members)
    }

    /// About how many members it holds: what decoding it costs, for sharing work out.
    fn weight(&self) -> u64 {
        (self.live_members.len() * CHUNK) as u64 + 1
    }
}

impl Opened {
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The views at the checkpoint, then `tail` (the log's events after it, in order), each org
    /// it was opened for decoded when first used, with its own events of the tail folded in
    /// then. Events of orgs created in the tail are folded now if `wanted` keeps them; of the
    /// others, only the position and time are kept.
    pub fn views(mut self, tail: &[Event], wanted: impl Fn(&OrgId) -> bool) -> Views {
        let times = std::mem::take(&mut self.times);
        let mut views = self.empty_views(times);
        let mut theirs: Hashed<OrgId, Vec<Event>> = Hashed::default();
        for o in &self.chosen {
            theirs.insert(o.org.clone(), Vec::new());
        }
        for e in tail {
            match theirs.get_mut(&e.meta.org) {
                Some(events) => {
                    events.push(e.clone());
                    views.pass(e);
                }
                None if wanted(&e.meta.org) => views.apply(e),
                None => views.pass(e),
            }
        }
        views.live.orgs.reserve(self.chosen.len());
        views.histories.reserve(self.chosen.len());
        for o in self.chosen {
            let tail: Arc<[Event]> = theirs.remove(&o.org).unwrap_or_default().into();
            let (source, weight) = (self.source.clone(), o.weight());
            let live = {
                let (source, o, tail) = (source.clone(), o.clone(), tail.clone());
                Loader::new(weight, move || {
                    made(&*source, &o, live_of(&*source, &o, &tail))
                })
            };
            let history = {
                let (source, o) = (source, o.clone());
                Loader::new(weight, move || {
                    made(&*source, &o, history_of(&*source, &o, &tail))
                })
            };
            views.checks.insert(o.org.clone(), OnceLock::new());
            views.live.orgs.insert_later(o.org.clone(), live);
            views.histories.insert_later(o.org.clone(), history);
        }
        views
    }

    /// Every org decoded now, on every core, and the check indexes built: what `verify`
    /// compares with a fold of the log, where a section that does not decode is an answer
    /// rather than a failure later.
    pub fn decode(mut self) -> Result<Views, CheckpointError> {
        let times = std::mem::take(&mut self.times);
        let mut views = self.empty_views(times);
        let decoded = crate::in_shares(
            &self.chosen,
            |o| o.weight(),
            |o| {
                let live = live_of(&*self.source, o, &[])?;
                let history = history_of(&*self.source, o, &[])?;
                Ok::<_, CheckpointError>((o.org.clone(), live, history))
            },
        );
        for d in decoded {
            let (org, live, history) = d?;
            views.live.orgs.insert(org.clone(), live);
            views.histories.insert(org, history);
        }
        views.index_checks();
        Ok(views)
    }

    fn empty_views(&self, times: Vec<(Seq, Timestamp)>) -> Views {
        Views {
            live: State {
                orgs: Default::default(),
                seq: self.header.seq,
                last_time: self.header.last_time,
            },
            histories: Default::default(),
            checks: Hashed::default(),
            checks_deferred: false,
            times,
        }
    }
}

/// An org's value made for a lazy view: its sections were checked when the checkpoint was
/// opened, so one that fails now was changed on disk since, under a running ledger, and no
/// answer can be given from it.
fn made<T>(source: &dyn Source, o: &OrgSection, r: Result<T, CheckpointError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!(
            "org `{}` of {} cannot be read, though it was whole when opened: {e}; the file \
             changed under a running ledger (remove it: the next open folds the log instead)",
            o.org,
            source.name()
        ),
    }
}

/// An org's present: its section, its members' sections (on every core when there are
/// several), then its events of the tail.
fn live_of(source: &dyn Source, o: &OrgSection, tail: &[Event]) -> Result<Org, CheckpointError> {
    let what = || format!("section of org `{}`", o.org);
    let mut org: Org = with_section(source, &o.live, &what, |b| decode(b, &what()))?;
    let chunks: Vec<LiveChunk> = chunks_of(source, &o.live_members, &what)?;
    org.members.reserve(chunks.iter().map(Vec::len).sum());
    org.members.extend(chunks.into_iter().flatten());
    for e in tail {
        org.apply(e);
    }
    Ok(org)
}

/// An org's history, then its events of the tail (followed beside its present, which the
/// history needs after each event).
fn history_of(
    source: &dyn Source,
    o: &OrgSection,
    tail: &[Event],
) -> Result<OrgHistory, CheckpointError> {
    let what = || format!("section of org `{}`", o.org);
    let mut history: OrgHistory = with_section(source, &o.history, &what, |b| decode(b, &what()))?;
    let chunks: Vec<PastChunk> = chunks_of(source, &o.past_members, &what)?;
    history.members.reserve(chunks.iter().map(Vec::len).sum());
    history.members.extend(chunks.into_iter().flatten());
    if !tail.is_empty() {
        let mut org = live_of(source, o, &[])?;
        for e in tail {
            org.apply(e);
            history.follow(e, &org);
        }
    }
    Ok(history)
}

fn chunks_of<T: serde::de::DeserializeOwned + Send>(
    source: &dyn Source,
    sections: &[Section],
    what: &(dyn Fn() -> String + Sync),
) -> Result<Vec<T>, CheckpointError> {
    let one = |s: &Section| with_section(source, s, what, |b| decode(b, &what()));
    if sections.len() < 2 {
        return sections.iter().map(one).collect();
    }
    let mut numbered: Vec<(usize, Result<T, CheckpointError>)> = crate::in_shares(
        &sections.iter().enumerate().collect::<Vec<_>>(),
        |(_, s)| s.len,
        |(i, s)| (*i, one(s)),
    );
    numbered.sort_unstable_by_key(|(i, _)| *i);
    numbered.into_iter().map(|(_, c)| c).collect()
}

/// The checkpoint in `bytes` opened for the orgs `wanted` keeps (`open`).
pub fn open_bytes(
    bytes: &[u8],
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<Opened, CheckpointError> {
    let (header, start) = read_header(bytes)?;
    let source = Arc::new(InMemory {
        bytes: bytes.to_vec(),
        start,
    });
    open(header, source, wanted)
}

/// The whole checkpoint in `bytes`, every org decoded and the check indexes built: the views
/// answer exactly as the fold of the log up to `Header::seq` does.
pub fn decode_all(bytes: &[u8]) -> Result<(Header, Views), CheckpointError> {
    let opened = open_bytes(bytes, |_| true)?;
    Ok((opened.header.clone(), opened.decode()?))
}

/// The checkpoint in `bytes` opened for the orgs `wanted` keeps, each decoded when first used
/// (`Opened::views`).
pub fn decode_some(
    bytes: &[u8],
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<(Header, Views), CheckpointError> {
    let opened = open_bytes(bytes, &wanted)?;
    Ok((opened.header.clone(), opened.views(&[], wanted)))
}

/// The event times as the steps between them: positions step by one, times by little, so each
/// takes a byte or three. Their count, then each event's position step and time step (zigzag),
/// as LEB128 varints: decoded by a loop of its own, since an open decodes ten million of them
/// before it answers.
fn encode_times(times: &[(Seq, Timestamp)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(times.len() * 3 + 10);
    put_varint(&mut out, times.len() as u64);
    let mut prev = (0u64, 0i64);
    for (s, t) in times {
        let dt = t.micros().wrapping_sub(prev.1);
        put_varint(&mut out, s.wrapping_sub(prev.0));
        put_varint(&mut out, ((dt << 1) ^ (dt >> 63)) as u64);
        prev = (*s, t.micros());
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn decode_times(bytes: &[u8]) -> Result<Vec<(Seq, Timestamp)>, CheckpointError> {
    let bad = |reason: &str| CheckpointError::Decode {
        what: "event times".into(),
        reason: reason.into(),
    };
    let mut at = 0usize;
    let mut next = || -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(at)?;
            at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    let count = next().ok_or_else(|| bad("its count does not decode"))?;
    // Each event takes two bytes at least: a count beyond that is damage, not a reason to
    // reserve memory.
    let count = usize::try_from(count)
        .ok()
        .filter(|c| c.saturating_mul(2) <= bytes.len())
        .ok_or_else(|| bad("its count is beyond its length"))?;
    let mut times = Vec::with_capacity(count);
    let mut prev = (0u64, 0i64);
    for _ in 0..count {
        let (Some(ds), Some(zz)) = (next(), next()) else {
            return Err(bad("it ends inside an event"));
        };
        let dt = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
        prev = (prev.0.wrapping_add(ds), prev.1.wrapping_add(dt));
        times.push((prev.0, Timestamp::from_micros(prev.1)));
    }
    if next().is_some() {
        return Err(bad("bytes are left over"));
    }
    Ok(times)
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    bincode::serde::encode_to_vec(value, CONFIG).map_err(|e| e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, CheckpointError> {
    match bincode::serde::decode_from_slice(bytes, CONFIG) {
        Ok((value, read)) if read == bytes.len() => Ok(value),
        Ok(_) => Err(CheckpointError::Decode {
            what: what.to_string(),
            reason: "bytes are left over".into(),
        }),
        Err(e) => Err(CheckpointError::Decode {
            what: what.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&bytes[..N]);
    a
}

impl Views {
    /// The first difference between these views and `other`, in words, or None when they hold
    /// the same present, the same histories and the same event times (the check indexes are
    /// built from the present, so they answer the same). For `verify`, which compares a
    /// checkpoint's views with a fold of the log, and for tests.
    pub fn difference(&self, other: &Views) -> Option<String> {
        if self.seq() != other.seq() {
            return Some(format!(
                "they stand at positions {} and {}",
                self.seq(),
                other.seq()
            ));
        }
        if self.live.last_time != other.live.last_time {
            return Some("their last events' times differ".into());
        }
        if self.times != other.times {
            let i = self
                .times
                .iter()
                .zip(&other.times)
                .position(|(a, b)| a != b)
                .unwrap_or(self.times.len().min(other.times.len()));
            return Some(format!("their event times differ from the {}th on", i + 1));
        }
        let mut ids: Vec<&OrgId> = self
            .live
            .orgs
            .keys()
            .chain(other.live.orgs.keys())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            match (self.live.orgs.get(id), other.live.orgs.get(id)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(_), Some(_)) => return Some(format!("org `{id}`'s present differs")),
                _ => return Some(format!("org `{id}` is in one and not the other")),
            }
            if self.histories.get(id) != other.histories.get(id) {
                return Some(format!("org `{id}`'s history differs"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use permledger_domain::testkit::TestLedger;

    use super::*;

    /// The event times read back exactly, whatever their steps (backwards, the extremes);
    /// cut or padded, they are refused.
    #[test]
    fn event_times_read_back_exactly_and_refuse_damage() {
        let times: Vec<(Seq, Timestamp)> = vec![
            (1, Timestamp::from_micros(5)),
            (2, Timestamp::from_micros(3)),
            (3, Timestamp::from_micros(i64::MAX)),
            (u64::MAX, Timestamp::from_micros(i64::MIN)),
            (7, Timestamp::from_micros(0)),
        ];
        for t in [&times[..0], &times[..1], &times[..]] {
            assert_eq!(decode_times(&encode_times(t)).unwrap(), t);
        }
        let bytes = encode_times(&times);
        for cut in 0..bytes.len() {
            assert!(decode_times(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode_times(&padded).is_err());
        // A count far beyond the bytes reserves nothing.
        assert!(decode_times(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    /// An org whose members span several sections, and one whose members fit in one: both read
    /// back whole, together or alone, and a change in any member section is seen.
    #[test]
    fn members_in_several_sections_read_back_whole() {
        let mut l = TestLedger::from_story(&[]);
        for (org, members) in [("big", 11), ("small", 2)] {
            let o = format!(r#""org":"{org}""#);
            let owner = format!("owner-{org}");
            l.run(
                &owner,
                &format!(r#"{{"type":"create_org",{o},"preset":"teaminbox"}}"#),
            )
            .unwrap();
            for i in 0..members {
                let invite = format!(
                    r#"{{"type":"invite",{o},"invite":"i{i}","email":"u{i}@x.test","role":"org_member"}}"#
                );
                l.run(&owner, &invite).unwrap();
                l.run(
                    &format!("u{i}"),
                    &format!(r#"{{"type":"accept_invite",{o},"invite":"i{i}"}}"#),
                )
                .unwrap();
            }
        }
        let mut views = Views::new();
        for e in &l.events {
            views.apply(e);
        }
        let bytes = to_bytes(&views, [3; 32], l.now);
        let (header, _) = read_header(&bytes).unwrap();
        let big = header
            .orgs
            .iter()
            .find(|o| o.org.as_str() == "big")
            .unwrap();
        assert_eq!((big.live_members.len(), big.past_members.len()), (4, 4));
        let (_, whole) = decode_all(&bytes).unwrap();
        assert_eq!(whole.difference(&views), None);
        let (_, alone) = decode_some(&bytes, |o| o.as_str() == "big").unwrap();
        let id = OrgId::new("big").unwrap();
        assert_eq!(alone.live.org(&id), views.live.org(&id));
        assert_eq!(alone.histories.get(&id), views.histories.get(&id));
        let start = bytes.len() - usize::try_from(header.times.len).unwrap();
        for i in (start - 200)..start {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                decode_all(&bad).is_err(),
                "a change at byte {i} went unseen"
            );
        }
    }
}
