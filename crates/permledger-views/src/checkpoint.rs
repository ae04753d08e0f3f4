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
//! header         bincode   Header: position, chain hash, its base if any, and where each
//!                          section lies
//! header hash    32 bytes  BLAKE3 of everything before it
//! sections       ...       each org: its present, then its history, without members, then
//!                          its members' present and past, 8,192 members a section; last, the
//!                          event times, 1,048,576 events a section
//! ```
//!
//! A checkpoint is whole, or a delta (`write_delta`): one whose unchanged sections lie in a
//! whole checkpoint, its base, named in its header by position and header hash, so that writing
//! one costs what changed since the base rather than the whole history. A section says which of
//! the two files it lies in; there is never a third.
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
/// Format 3 added deltas and event times in sections.
pub const FORMAT: u32 = 3;

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
    /// For a delta, the whole checkpoint its other sections lie in.
    pub base: Option<BaseRef>,
    /// The event times, `TIMES_CHUNK` events a section.
    times: Vec<Section>,
    /// Every org, or for a delta those with a section of its own: the others are as in its
    /// base (`merge`).
    orgs: Vec<OrgSection>,
    /// A delta's header with its base's orgs merged in: what an open reads from.
    #[serde(skip)]
    merged: bool,
}

/// The whole checkpoint a delta's unchanged sections lie in: the one at `seq` whose header
/// hashes to `header_hash` (a file of that name with another header is not it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseRef {
    pub seq: Seq,
    pub header_hash: [u8; 32],
}

impl Header {
    /// A delta's header completed with the orgs it leaves in `base`, the header of its base
    /// (the caller has checked that it is the one named, by its hash): what `open` reads. A
    /// whole checkpoint's header is complete as it is.
    pub fn merge(mut self, base: &Header) -> Result<Header, CheckpointError> {
        let Some(named) = self.base else {
            return Ok(self);
        };
        if base.base.is_some() || base.seq != named.seq {
            return Err(CheckpointError::NoBase(named.seq));
        }
        if self.merged {
            return Ok(self);
        }
        let own: std::collections::HashSet<&OrgId> = self.orgs.iter().map(|o| &o.org).collect();
        let left: Vec<OrgSection> = base
            .orgs
            .iter()
            .filter(|o| !own.contains(&o.org))
            .map(|o| {
                let in_base = |s: &Section| Section {
                    base: true,
                    ..s.clone()
                };
                OrgSection {
                    org: o.org.clone(),
                    version: o.version,
                    live: in_base(&o.live),
                    history: in_base(&o.history),
                    live_members: o.live_members.iter().map(in_base).collect(),
                    past_members: o.past_members.iter().map(in_base).collect(),
                }
            })
            .collect();
        self.orgs.extend(left);
        self.orgs.sort_unstable_by(|a, b| a.org.cmp(&b.org));
        self.merged = true;
        Ok(self)
    }

    /// How many orgs the checkpoint holds.
    pub fn orgs(&self) -> usize {
        self.orgs.len()
    }

    /// Every org's version at the checkpoint.
    pub fn versions(&self) -> impl Iterator<Item = (&OrgId, u64)> {
        self.orgs.iter().map(|o| (&o.org, o.version))
    }

    /// The bytes of its own sections, and of those it lists lying in its base.
    fn sizes(&self) -> (u64, u64) {
        let mut sizes = (0, 0);
        for s in self
            .orgs
            .iter()
            .flat_map(|o| o.sections())
            .chain(&self.times)
        {
            if s.base {
                sizes.1 += s.len;
            } else {
                sizes.0 += s.len;
            }
        }
        sizes
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Section {
    /// Whether it lies in the base (a delta's unchanged section) rather than in this file.
    base: bool,
    /// From the first byte after the header's hash (of the file it lies in).
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

/// Event times a section: a delta refers to its base's full sections, and writes the rest.
/// (Four in unit tests.)
const TIMES_CHUNK: usize = if cfg!(test) { 4 } else { 1 << 20 };

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
    #[error("it is a delta on the checkpoint at event {0}, which is not given")]
    NoBase(Seq),
    #[error("it names no base, yet a section lies in one")]
    NotADelta,
}

/// Where a checkpoint's sections are read from: its file, read in place, or bytes in memory.
pub trait Source: Send + Sync + 'static {
    /// Calls `f` with the `len` bytes at `offset`, counted from the first section.
    fn read(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> Result<(), CheckpointError>;
    /// What it is, for a message (a file's path).
    fn name(&self) -> String;
}

/// Where a checkpoint's sections lie: its own file, and for a delta its base.
#[derive(Clone)]
pub struct Sources {
    own: Arc<dyn Source>,
    base: Option<Arc<dyn Source>>,
}

impl Sources {
    pub fn new(own: Arc<dyn Source>, base: Option<Arc<dyn Source>>) -> Sources {
        Sources { own, base }
    }

    /// The file a section lies in.
    fn of(&self, s: &Section) -> Result<&dyn Source, CheckpointError> {
        match (s.base, &self.base) {
            (false, _) => Ok(&*self.own),
            (true, Some(base)) => Ok(&**base),
            (true, None) => Err(CheckpointError::NotADelta),
        }
    }

    /// What the checkpoint is, for a message.
    pub fn name(&self) -> String {
        self.own.name()
    }
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

/// Writes the views as a whole checkpoint at their position, whose link in the log is `hash`.
/// The orgs are encoded on every core; what is written is the whole file.
pub fn write_to(
    views: &Views,
    hash: [u8; 32],
    written_at: Timestamp,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let slots: Vec<&OrgId> = views.live.orgs.keys().collect();
    let encoded = encode_orgs(views, &slots)?;
    let mut body = Body::default();
    let mut orgs: Vec<OrgSection> = encoded.into_iter().map(|e| body.org(e)).collect();
    orgs.sort_unstable_by(|a, b| a.org.cmp(&b.org));
    let times = views
        .times
        .chunks(TIMES_CHUNK)
        .map(|c| body.own(encode_times(c)))
        .collect();
    let header = Header {
        seq: views.seq(),
        hash,
        last_time: views.live.last_time,
        written_at,
        base: None,
        times,
        orgs,
        merged: false,
    };
    body.write(&header, out)
}

/// The checkpoint a delta is written after: the newest one, whole or itself a delta, its
/// header, its header's hash, and where its sections lie.
pub struct Prior<'a> {
    pub header: &'a Header,
    pub header_hash: [u8; 32],
    pub sources: &'a Sources,
}

/// What `write_delta` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// Written: this many bytes.
    Written(u64),
    /// Not written: it would hold too many bytes of its own for those it leaves in its base,
    /// and a whole checkpoint serves better (`own` and `referenced` are those bytes).
    TooLarge { own: u64, referenced: u64 },
}

/// Writes the views as a delta on the whole checkpoint `prior` is or is a delta on: the orgs
/// `changed` keeps (every org with an event since `prior`; the views must hold each of them)
/// are encoded; every other org's sections are those of `prior`, left in the base where they
/// lie there, copied byte for byte (their hashes checked) where they lie in `prior` itself;
/// the event times' sections that are whole in the base are left there. Costs what changed
/// since the base, not the whole history. Nothing is written when its own bytes would be more
/// than `most` times those it leaves in the base (`Delta::TooLarge`).
pub fn write_delta(
    views: &Views,
    changed: &(dyn Fn(&OrgId) -> bool + Sync),
    prior: &Prior<'_>,
    hash: [u8; 32],
    written_at: Timestamp,
    most: f64,
    out: &mut impl Write,
) -> std::io::Result<Delta> {
    let whole = prior.header.base.is_none();
    let base = prior.header.base.unwrap_or(BaseRef {
        seq: prior.header.seq,
        header_hash: prior.header_hash,
    });
    let ids: Vec<&OrgId> = views.live.orgs.keys().filter(|o| changed(o)).collect();
    let encoded = encode_orgs(views, &ids)?;
    let mut body = Body::default();
    let mut orgs: Vec<OrgSection> = encoded.into_iter().map(|e| body.org(e)).collect();
    let held: std::collections::HashSet<OrgId> = orgs.iter().map(|o| o.org.clone()).collect();
    let mut carry = |s: &Section| -> std::io::Result<Section> {
        if whole {
            return Ok(Section {
                base: true,
                ..s.clone()
            });
        }
        if s.base {
            return Ok(s.clone());
        }
        let mut bytes = Vec::new();
        with_section(
            prior.sources,
            s,
            &|| format!("{}'s sections", prior.sources.name()),
            |b| {
                bytes = b.to_vec();
                Ok(())
            },
        )
        .map_err(std::io::Error::other)?;
        Ok(body.own_hashed(bytes, s.hash))
    };
    // An org whose every section stays in the base is not listed: an open takes the base's
    // entry for every org a delta does not list (`Header::merge`).
    let mut in_base = 0u64;
    for o in &prior.header.orgs {
        if changed(&o.org) {
            if !held.contains(&o.org) {
                return Err(std::io::Error::other(format!(
                    "org `{}` changed, and the views written do not hold it",
                    o.org
                )));
            }
            continue;
        }
        if whole || o.sections().all(|s| s.base) {
            in_base += o.sections().map(|s| s.len).sum::<u64>();
            continue;
        }
        orgs.push(OrgSection {
            org: o.org.clone(),
            version: o.version,
            live: carry(&o.live)?,
            history: carry(&o.history)?,
            live_members: o
                .live_members
                .iter()
                .map(&mut carry)
                .collect::<Result<_, _>>()?,
            past_members: o
                .past_members
                .iter()
                .map(&mut carry)
                .collect::<Result<_, _>>()?,
        });
    }
    orgs.sort_unstable_by(|a, b| a.org.cmp(&b.org));
    let kept = prior.header.times.len();
    let times = views
        .times
        .chunks(TIMES_CHUNK)
        .enumerate()
        .map(|(i, chunk)| match prior.header.times.get(i) {
            // Every section but the last of a whole checkpoint is full; a delta refers only to
            // full ones. Times are only ever appended to, so a full one is the same here.
            Some(p) if whole && i + 1 < kept && chunk.len() == TIMES_CHUNK => Section {
                base: true,
                ..p.clone()
            },
            Some(p) if !whole && p.base && chunk.len() == TIMES_CHUNK => p.clone(),
            _ => body.own(encode_times(chunk)),
        })
        .collect();
    let header = Header {
        seq: views.seq(),
        hash,
        last_time: views.live.last_time,
        written_at,
        base: Some(base),
        times,
        orgs,
        merged: false,
    };
    let (own, times_in_base) = header.sizes();
    let referenced = in_base + times_in_base;
    if own as f64 > most * referenced as f64 {
        return Ok(Delta::TooLarge { own, referenced });
    }
    body.write(&header, out).map(Delta::Written)
}

/// The given orgs encoded on every core, each with its id.
fn encode_orgs(views: &Views, ids: &[&OrgId]) -> std::io::Result<Vec<(OrgId, EncodedOrg)>> {
    let parts = crate::in_shares(
        ids,
        |id| views.live.orgs.slot(id).map_or(1, weight_of),
        |id| {
            let part = match (views.live.orgs.get(id), views.histories.get(id)) {
                (Some(org), Some(history)) => encode_org(org, history),
                // Every org the live state knows has a history from its first event.
                _ => Err(format!("org `{id}` has no history")),
            };
            ((*id).clone(), part)
        },
    );
    parts
        .into_iter()
        .map(|(id, part)| part.map(|p| (id, p)).map_err(std::io::Error::other))
        .collect()
}

fn weight_of(org: &permledger_domain::lazy::Lazy<Org>) -> u64 {
    org.weight(|o| o.members.len() as u64)
}

/// A checkpoint's own sections, in the order they are written.
#[derive(Default)]
struct Body {
    pieces: Vec<Vec<u8>>,
    len: u64,
}

impl Body {
    fn own(&mut self, bytes: Vec<u8>) -> Section {
        let hash = *blake3::hash(&bytes).as_bytes();
        self.own_hashed(bytes, hash)
    }

    fn own_hashed(&mut self, bytes: Vec<u8>, hash: [u8; 32]) -> Section {
        let s = Section {
            base: false,
            offset: self.len,
            len: bytes.len() as u64,
            hash,
        };
        self.len += s.len;
        self.pieces.push(bytes);
        s
    }

    fn org(&mut self, (org, e): (OrgId, EncodedOrg)) -> OrgSection {
        OrgSection {
            org,
            version: e.version,
            live: self.own(e.live_base),
            history: self.own(e.history_base),
            live_members: e.live.into_iter().map(|b| self.own(b)).collect(),
            past_members: e.past.into_iter().map(|b| self.own(b)).collect(),
        }
    }

    /// The magic, the header and its hash, then the sections: the whole file. Its length.
    fn write(self, header: &Header, out: &mut impl Write) -> std::io::Result<u64> {
        let header = encode(header).map_err(std::io::Error::other)?;
        let mut head = Vec::with_capacity(MAGIC.len() + 12 + header.len() + 32);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&FORMAT.to_le_bytes());
        head.extend_from_slice(&(header.len() as u64).to_le_bytes());
        head.extend_from_slice(&header);
        let check = blake3::hash(&head);
        head.extend_from_slice(check.as_bytes());
        out.write_all(&head)?;
        for piece in &self.pieces {
            out.write_all(piece)?;
        }
        Ok(head.len() as u64 + self.len)
    }
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

/// The header alone, checked against its own hash, where the sections start, and the header's
/// hash (what a delta names its base by). `bytes` may be only the file's beginning, as long as
/// `header_len`.
pub fn read_header(bytes: &[u8]) -> Result<(Header, usize, [u8; 32]), CheckpointError> {
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
    Ok((header, end, array(&bytes[end - 32..end])))
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
    sources: &Sources,
    s: &Section,
    what: &dyn Fn() -> String,
    f: impl FnOnce(&[u8]) -> Result<R, CheckpointError>,
) -> Result<R, CheckpointError> {
    let mut f = Some(f);
    let mut out = None;
    sources.of(s)?.read(s.offset, s.len, &mut |b| {
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
    sources: Sources,
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
    sources: Sources,
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<Opened, CheckpointError> {
    match (header.base, &sources.base) {
        (Some(base), None) => return Err(CheckpointError::NoBase(base.seq)),
        (Some(base), Some(_)) if !header.merged => return Err(CheckpointError::NoBase(base.seq)),
        (None, Some(_)) => {
            return Err(CheckpointError::Decode {
                what: "header".into(),
                reason: "a base is given for a whole checkpoint".into(),
            })
        }
        _ => {}
    }
    let chosen = choose(&header, wanted);
    // The event times decode beside the hashing.
    let (checked, times) = std::thread::scope(|scope| {
        let times = scope.spawn(|| times_of(&sources, &header.times));
        let checked = check_orgs(&sources, &chosen);
        let times = times
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, times)
    });
    checked?;
    let times = times?;
    Ok(Opened {
        header,
        sources,
        chosen,
        times,
    })
}

/// The orgs of the header `wanted` keeps, in its order.
fn choose(header: &Header, wanted: impl Fn(&OrgId) -> bool) -> Vec<Arc<OrgSection>> {
    header
        .orgs
        .iter()
        .filter(|o| wanted(&o.org))
        .map(|o| Arc::new(o.clone()))
        .collect()
}

/// Every section of the orgs checked against its hash, on every core.
fn check_orgs(sources: &Sources, chosen: &[Arc<OrgSection>]) -> Result<(), CheckpointError> {
    // Read in runs of neighbouring sections, a few megabytes a read: most orgs are small, and a
    // read each would cost more than hashing them.
    let mut sections: Vec<(&OrgId, &Section)> = Vec::new();
    for o in chosen {
        sections.extend(o.sections().map(|s| (&o.org, s)));
    }
    // Runs never cross from one file to the other.
    sections.sort_unstable_by_key(|(_, s)| (s.base, s.offset));
    let mut runs: Vec<&[(&OrgId, &Section)]> = Vec::new();
    let mut start = 0;
    for i in 1..=sections.len() {
        let ends = i == sections.len() || {
            let (first, prev, next) = (sections[start].1, sections[i - 1].1, sections[i].1);
            prev.offset.checked_add(prev.len) != Some(next.offset)
                || prev.base != next.base
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
    crate::in_shares(
        &runs,
        |run| run.iter().map(|(_, s)| s.len).sum(),
        |run| check_run(sources, run),
    )
    .into_iter()
    .collect()
}

/// Every event time, from their sections in order.
fn times_of(
    sources: &Sources,
    sections: &[Section],
) -> Result<Vec<(Seq, Timestamp)>, CheckpointError> {
    let mut times = Vec::new();
    for s in sections {
        let part = with_section(sources, s, &|| "event times".into(), decode_times)?;
        if times.is_empty() {
            times = part;
        } else {
            times.extend(part);
        }
    }
    Ok(times)
}

/// About how many bytes `open` reads at once.
const RUN: u64 = 8 << 20;

/// Checks each of neighbouring sections against its hash, with one read.
fn check_run(sources: &Sources, run: &[(&OrgId, &Section)]) -> Result<(), CheckpointError> {
    let (Some((_, first)), Some((_, last))) = (run.first(), run.last()) else {
        return Ok(());
    };
    let source = sources.of(first)?;
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

    /// Where its sections lie.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The same checkpoint opened for the orgs `wanted` keeps (their sections checked), its
    /// event times taken from this one rather than decoded again: this one keeps its header and
    /// sources, and no longer its times.
    pub fn reopen(&mut self, wanted: impl Fn(&OrgId) -> bool) -> Result<Opened, CheckpointError> {
        let chosen = choose(&self.header, wanted);
        check_orgs(&self.sources, &chosen)?;
        Ok(Opened {
            header: self.header.clone(),
            sources: self.sources.clone(),
            chosen,
            times: std::mem::take(&mut self.times),
        })
    }

    /// Checks every section of every org against its hash, whatever it was opened for.
    pub fn check_whole(&self) -> Result<(), CheckpointError> {
        check_orgs(&self.sources, &choose(&self.header, |_| true))
    }

    /// Whether it was opened for every org: every section it has was checked.
    pub fn checked_whole(&self) -> bool {
        self.chosen.len() == self.header.orgs.len()
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
            let (sources, weight) = (self.sources.clone(), o.weight());
            let live = {
                let (sources, o, tail) = (sources.clone(), o.clone(), tail.clone());
                Loader::new(weight, move || {
                    made(&sources, &o, live_of(&sources, &o, &tail))
                })
            };
            let history = {
                let (sources, o) = (sources, o.clone());
                Loader::new(weight, move || {
                    made(&sources, &o, history_of(&sources, &o, &tail))
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
                let live = live_of(&self.sources, o, &[])?;
                let history = history_of(&self.sources, o, &[])?;
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
fn made<T>(sources: &Sources, o: &OrgSection, r: Result<T, CheckpointError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!(
            "org `{}` of {} cannot be read, though it was whole when opened: {e}; the file \
             changed under a running ledger (remove it: the next open folds the log instead)",
            o.org,
            sources.name()
        ),
    }
}

/// An org's present: its section, its members' sections (on every core when there are
/// several), then its events of the tail.
fn live_of(sources: &Sources, o: &OrgSection, tail: &[Event]) -> Result<Org, CheckpointError> {
    let what = || format!("section of org `{}`", o.org);
    let mut org: Org = with_section(sources, &o.live, &what, |b| decode(b, &what()))?;
    let chunks: Vec<LiveChunk> = chunks_of(sources, &o.live_members, &what)?;
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
    sources: &Sources,
    o: &OrgSection,
    tail: &[Event],
) -> Result<OrgHistory, CheckpointError> {
    let what = || format!("section of org `{}`", o.org);
    let mut history: OrgHistory = with_section(sources, &o.history, &what, |b| decode(b, &what()))?;
    let chunks: Vec<PastChunk> = chunks_of(sources, &o.past_members, &what)?;
    history.members.reserve(chunks.iter().map(Vec::len).sum());
    history.members.extend(chunks.into_iter().flatten());
    if !tail.is_empty() {
        let mut org = live_of(sources, o, &[])?;
        for e in tail {
            org.apply(e);
            history.follow(e, &org);
        }
    }
    Ok(history)
}

fn chunks_of<T: serde::de::DeserializeOwned + Send>(
    sources: &Sources,
    sections: &[Section],
    what: &(dyn Fn() -> String + Sync),
) -> Result<Vec<T>, CheckpointError> {
    let one = |s: &Section| with_section(sources, s, what, |b| decode(b, &what()));
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

/// The checkpoint in `bytes` opened for the orgs `wanted` keeps (`open`); for a delta, `base`
/// holds the bytes of its base.
pub fn open_bytes(
    bytes: &[u8],
    base: Option<&[u8]>,
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<Opened, CheckpointError> {
    let (mut header, start, _) = read_header(bytes)?;
    let base = match (header.base, base) {
        (Some(r), Some(base)) => {
            let (base_header, start, hash) = read_header(base)?;
            if hash != r.header_hash {
                return Err(CheckpointError::NoBase(r.seq));
            }
            header = header.merge(&base_header)?;
            Some(in_memory(base, start))
        }
        _ => None,
    };
    open(header, Sources::new(in_memory(bytes, start), base), wanted)
}

fn in_memory(bytes: &[u8], start: usize) -> Arc<dyn Source> {
    Arc::new(InMemory {
        bytes: bytes.to_vec(),
        start,
    })
}

/// The whole checkpoint in `bytes`, every org decoded and the check indexes built: the views
/// answer exactly as the fold of the log up to `Header::seq` does.
pub fn decode_all(bytes: &[u8]) -> Result<(Header, Views), CheckpointError> {
    let opened = open_bytes(bytes, None, |_| true)?;
    Ok((opened.header.clone(), opened.decode()?))
}

/// The checkpoint in `bytes` opened for the orgs `wanted` keeps, each decoded when first used
/// (`Opened::views`).
pub fn decode_some(
    bytes: &[u8],
    wanted: impl Fn(&OrgId) -> bool,
) -> Result<(Header, Views), CheckpointError> {
    let opened = open_bytes(bytes, None, &wanted)?;
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
        let (header, _, _) = read_header(&bytes).unwrap();
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
        let times: u64 = header.times.iter().map(|s| s.len).sum();
        let start = bytes.len() - usize::try_from(times).unwrap();
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
