//! The RocksDB event log: the log of record. One synced `WriteBatch` per group of commits holds the
//! events, the org index, the idempotency keys and the log head, so that a reader or a
//! restart sees either all of a group or none of it. A storage error stops writes for good.

pub mod cf;
pub mod raw;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use permledger_domain::{OrgId, Seq};
use permledger_log::{
    link_commits, Commit, Digest, EventLog, Hash, IdempotencyEntry, LogError, Record, Tamper,
};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction, IteratorMode, Options,
    ReadOptions, WriteBatch, WriteOptions, DB,
};
use tokio::sync::watch;

/// How many of RocksDB's diagnostic logs (`LOG`, `LOG.old.*`) a folder keeps.
pub const INFO_LOGS_KEPT: usize = 5;

pub struct RocksLog {
    db: DB,
    /// For `temporary()`: the folder, removed once the database (declared first) is closed.
    _temp: Option<tempfile::TempDir>,
    path: PathBuf,
    /// Serializes appends and holds the head they build on; `Some(reason)` once writes stopped.
    writer: Mutex<WriterState>,
    head: watch::Sender<Seq>,
    /// What was wrong with the stored head when the log opened.
    damage: Option<Tamper>,
}

struct WriterState {
    head: Digest,
    stopped: Option<String>,
    /// Each org's version as stored, learned on first use and kept by every write: an append
    /// then reads nothing before it writes.
    versions: permledger_domain::state::Hashed<OrgId, u64>,
}

/// A column family of `db`, or the error naming the one that is missing.
fn handle<'a>(db: &'a DB, name: &str) -> Result<&'a ColumnFamily, LogError> {
    db.cf_handle(name)
        .ok_or_else(|| LogError::Io(format!("column family `{name}` is missing")))
}

fn io(e: rocksdb::Error) -> LogError {
    LogError::Io(e.to_string())
}

fn corrupt(seq: Seq, reason: impl Into<String>) -> LogError {
    LogError::Corruption {
        seq,
        reason: reason.into(),
    }
}

impl RocksLog {
    /// Every idempotency key the log holds, with its org and entry, in key order: what
    /// `permledger cluster seed` sends with the commands they name.
    pub fn idempotency_entries(&self) -> Result<Vec<(OrgId, String, IdempotencyEntry)>, LogError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf::IDEMPOTENCY)?, IteratorMode::Start)
        {
            let (k, v) = item.map_err(io)?;
            let bad = || corrupt(0, "an idempotency entry is malformed".to_string());
            let (org, key) = cf::idempotency_key_parts(&k).ok_or_else(bad)?;
            let org = OrgId::new(org).map_err(|_| bad())?;
            let key = key.to_string();
            let entry = cf::idempotency_entry(&v).ok_or_else(bad)?;
            out.push((org, key, entry));
        }
        Ok(out)
    }

    /// A log in a fresh temporary folder, removed when the log is dropped (tests, scenario runs).
    pub fn temporary() -> Result<RocksLog, LogError> {
        let dir = tempfile::Builder::new()
            .prefix("permledger-")
            .tempdir()
            .map_err(|e| LogError::Io(format!("cannot create a temporary folder: {e}")))?;
        let mut log = Self::open(dir.path())?;
        log._temp = Some(dir);
        Ok(log)
    }

    /// Opens (creating if needed) the log in `path`, for writing: this process holds the folder.
    pub fn open(path: impl AsRef<Path>) -> Result<RocksLog, LogError> {
        let path = path.as_ref().to_path_buf();
        std::fs::create_dir_all(&path)
            .map_err(|e| LogError::Io(format!("cannot create `{}`: {e}", path.display())))?;
        let mut opts = Self::options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // A layout 1 folder still holds the retired column family, which must be opened to be dropped.
        let retired = DB::list_cf(&Options::default(), &path)
            .unwrap_or_default()
            .iter()
            .any(|name| name == cf::RETIRED_ORG_HEADS);
        let cfs = cf::ALL
            .iter()
            .copied()
            .chain(retired.then_some(cf::RETIRED_ORG_HEADS))
            .map(Self::descriptor);
        let mut db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(|e| held(e, &path))?;
        settle_layout(&mut db, &path)?;
        Self::over(db, path, None)
    }

    /// Opens the log in `path` for reading only, beside a process that may hold it for writing
    /// (a server): what was stored when it opens, never anything later, and nothing is written
    /// (the folder is neither created nor brought up to this build's layout). Every append fails.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<RocksLog, LogError> {
        let path = path.as_ref().to_path_buf();
        if !path.join("CURRENT").is_file() {
            return Err(LogError::Io(format!(
                "there is no ledger in `{}` (`run`, `import`, `generate` and `serve` make one; \
                 `--data` or PERMLEDGER_DATA name another folder)",
                path.display()
            )));
        }
        let present = DB::list_cf(&Options::default(), &path).map_err(io)?;
        let cfs = present
            .iter()
            .filter(|name| cf::ALL.contains(&name.as_str()))
            .map(|name| Self::descriptor(name));
        let db =
            DB::open_cf_descriptors_read_only(&Self::options(), &path, cfs, false).map_err(io)?;
        check_layout(&db, &path)?;
        Self::over(db, path, Some("the log was opened for reading only".into()))
    }

    /// The options every open shares.
    fn options() -> Options {
        let mut opts = Options::default();
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        opts.set_recycle_log_file_num(4);
        // RocksDB's own diagnostic log starts afresh at every open and keeps the old ones (1,000
        // by default): a folder opened by every command would fill with them. Keep the last few,
        // none larger than a few megabytes.
        opts.set_keep_log_file_num(INFO_LOGS_KEPT);
        opts.set_max_log_file_size(4 << 20);
        opts
    }

    fn descriptor(name: &str) -> ColumnFamilyDescriptor {
        let mut o = Options::default();
        if name == cf::EVENTS {
            o.set_compression_type(DBCompressionType::Lz4);
        }
        ColumnFamilyDescriptor::new(name, o)
    }

    /// The log over an opened database. A stored head that does not name the last stored event
    /// (with its link) stops every write: the folder was tampered with, and the reader that
    /// checks the chain (an open's fold, `verify`) says how.
    fn over(db: DB, path: PathBuf, stopped: Option<String>) -> Result<RocksLog, LogError> {
        let mut log = RocksLog {
            db,
            _temp: None,
            path,
            writer: Mutex::new(WriterState {
                head: Digest {
                    seq: 0,
                    hash: Hash::GENESIS,
                },
                stopped,
                versions: Default::default(),
            }),
            head: watch::Sender::new(0),
            damage: None,
        };
        let (head, damage) = log.load_head()?;
        if let Ok(mut w) = log.writer.lock() {
            w.head = head;
            if let Some(d) = &damage {
                tracing::error!(damage = %d, "the stored head disagrees with the stored events; writes are stopped");
                w.stopped.get_or_insert(d.to_string());
            }
        }
        log.head.send_replace(head.seq);
        log.damage = damage;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, LogError> {
        handle(&self.db, name)
    }

    /// Reads the stored head, and checks it against the last stored event.
    fn load_head(&self) -> Result<(Digest, Option<Tamper>), LogError> {
        let meta = self.cf(cf::META)?;
        let stored = match self.db.get_cf(meta, cf::HEAD).map_err(io)? {
            None => Digest {
                seq: 0,
                hash: Hash::GENESIS,
            },
            Some(v) => {
                let seq =
                    cf::u64_at(&v, 0).ok_or_else(|| corrupt(0, "the stored head is malformed"))?;
                let hash: [u8; 32] = v
                    .get(8..40)
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(|| corrupt(seq, "the stored head is malformed"))?;
                Digest {
                    seq,
                    hash: Hash(hash),
                }
            }
        };
        let last = self
            .db
            .iterator_cf(self.cf(cf::EVENTS)?, IteratorMode::End)
            .next()
            .transpose()
            .map_err(io)?;
        let last = match &last {
            Some((k, v)) => Some(Self::split(k, v)?),
            None => None,
        };
        let (last_seq, last_link) = last.map_or((0, Hash::GENESIS), |(seq, link, _)| (seq, link));
        let damage = if stored.seq > last_seq {
            Some(Tamper::Truncated {
                after: last_seq,
                head: stored.seq,
            })
        } else if stored.seq < last_seq {
            Some(Tamper::BeyondHead {
                head: stored.seq,
                last: last_seq,
            })
        } else if stored.hash != last_link {
            Some(Tamper::HeadMismatch { seq: last_seq })
        } else {
            None
        };
        Ok((stored, damage))
    }

    fn record(key: &[u8], value: &[u8]) -> Result<Record, LogError> {
        let (seq, hash, bytes) = Self::split(key, value)?;
        Ok(Record {
            seq,
            hash,
            bytes: bytes.to_vec(),
        })
    }

    /// A stored event's position, link and envelope bytes, borrowed from its key and value.
    fn split<'a>(key: &[u8], value: &'a [u8]) -> Result<(Seq, Hash, &'a [u8]), LogError> {
        let seq = cf::u64_at(key, 0)
            .filter(|_| key.len() == 8)
            .ok_or_else(|| corrupt(0, "an event key is malformed"))?;
        let Some((hash, bytes)) = value.split_first_chunk::<32>() else {
            return Err(corrupt(seq, "the stored value is shorter than its link"));
        };
        Ok((seq, Hash(*hash), bytes))
    }

    /// The org's version as stored: the version in its last index entry (0 when it has none).
    fn stored_org_version(&self, org: &OrgId) -> Result<u64, LogError> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf::ORG_INDEX)?);
        it.seek_for_prev(cf::org_index_key(org.as_str(), u64::MAX));
        let prefix = cf::org_index_prefix(org.as_str());
        match it.key() {
            Some(k) if k.starts_with(&prefix) => cf::u64_at(k, prefix.len())
                .filter(|_| k.len() == prefix.len() + 8)
                .ok_or_else(|| corrupt(0, format!("an index key of org `{org}` is malformed"))),
            _ => it.status().map(|()| 0).map_err(io),
        }
    }

    /// `append`, synced to disk before it returns or not.
    fn append_with(&self, commits: &[Commit], sync: bool) -> Result<(), LogError> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| LogError::Stopped("a writer panicked".into()))?;
        if let Some(reason) = &w.stopped {
            return Err(LogError::Stopped(reason.clone()));
        }
        match self.write_group(commits, w.head, &w.versions, sync) {
            Ok(head) => {
                w.head = head;
                for c in commits {
                    if let Some(last) = c.events.last() {
                        w.versions.insert(c.org.clone(), last.org_version);
                    }
                }
                drop(w);
                self.head.send_replace(head.seq);
                Ok(())
            }
            Err(e @ (LogError::Io(_) | LogError::Corruption { .. })) => {
                tracing::error!(error = %e, "storage failed; writes are stopped");
                w.stopped = Some(e.to_string());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn write_group(
        &self,
        commits: &[Commit],
        head: Digest,
        versions: &permledger_domain::state::Hashed<OrgId, u64>,
        sync: bool,
    ) -> Result<Digest, LogError> {
        let (links, new_head) = link_commits(
            head,
            |org| match versions.get(org) {
                Some(v) => Ok(*v),
                None => self.stored_org_version(org),
            },
            commits,
        )?;
        let events = self.cf(cf::EVENTS)?;
        let index = self.cf(cf::ORG_INDEX)?;
        let idem = self.cf(cf::IDEMPOTENCY)?;
        let mut batch = WriteBatch::default();
        let mut value = Vec::new();
        let mut links = links.iter();
        for c in commits {
            for (pending, hash) in c.events.iter().zip(links.by_ref()) {
                value.clear();
                value.extend_from_slice(&hash.0);
                value.extend_from_slice(&pending.bytes);
                batch.put_cf(events, cf::seq_key(pending.seq), &value);
                batch.put_cf(
                    index,
                    cf::org_index_key(c.org.as_str(), pending.org_version),
                    pending.seq.to_be_bytes(),
                );
            }
            if let Some((key, entry)) = &c.idempotency {
                let mut v = Vec::with_capacity(48);
                v.extend_from_slice(&entry.fingerprint.0);
                v.extend_from_slice(&entry.first_seq.to_be_bytes());
                v.extend_from_slice(&entry.last_seq.to_be_bytes());
                batch.put_cf(idem, cf::idempotency_key(c.org.as_str(), key), v);
            }
        }
        let mut h = Vec::with_capacity(40);
        h.extend_from_slice(&new_head.seq.to_be_bytes());
        h.extend_from_slice(&new_head.hash.0);
        batch.put_cf(self.cf(cf::META)?, cf::HEAD, h);
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo).map_err(io)?;
        Ok(new_head)
    }
}

/// The error of an open for writing; a folder another process holds is said in words.
fn held(e: rocksdb::Error, path: &Path) -> LogError {
    let text = e.to_string();
    if text.contains("LOCK")
        && (text.contains("temporarily unavailable") || text.contains("lock hold"))
    {
        LogError::Io(format!(
            "`{}` is held by another permledger process (a server?): stop it to write here, \
             or send the command through it with `--server`",
            path.display()
        ))
    } else {
        io(e)
    }
}

/// Checks, without writing, that this build reads the folder's layout.
fn check_layout(db: &DB, path: &Path) -> Result<(), LogError> {
    let layout = db.get_cf(handle(db, cf::META)?, cf::LAYOUT).map_err(io)?;
    match layout {
        None => Ok(()),
        Some(v)
            if v.as_slice() == cf::LAYOUT_VERSION.to_be_bytes()
                || v.as_slice() == cf::LAYOUT_WITH_ORG_HEADS.to_be_bytes() =>
        {
            Ok(())
        }
        Some(v) => Err(unknown_layout(&v, path)),
    }
}

fn unknown_layout(v: &[u8], path: &Path) -> LogError {
    let layout = match <[u8; 4]>::try_from(v) {
        Ok(b) => u32::from_be_bytes(b).to_string(),
        Err(_) => format!("{v:?}"),
    };
    LogError::Io(format!(
        "`{}` holds a log of layout {layout}, which this build cannot read (it reads \
         layouts {} and {}; a newer permledger wrote it?)",
        path.display(),
        cf::LAYOUT_WITH_ORG_HEADS,
        cf::LAYOUT_VERSION
    ))
}

/// Checks the folder's layout, bringing a layout 1 folder up to date: its org heads repeat what
/// the org index says, so they are dropped. A folder of an unknown layout is refused, its layout
/// mark and data left as they are.
fn settle_layout(db: &mut DB, path: &Path) -> Result<(), LogError> {
    let layout = db.get_cf(handle(db, cf::META)?, cf::LAYOUT).map_err(io)?;
    let current = cf::LAYOUT_VERSION.to_be_bytes();
    match layout {
        Some(v) if v.as_slice() == current => return Ok(()),
        None => {}
        Some(v) if v.as_slice() == cf::LAYOUT_WITH_ORG_HEADS.to_be_bytes() => {}
        Some(v) => return Err(unknown_layout(&v, path)),
    }
    if db.cf_handle(cf::RETIRED_ORG_HEADS).is_some() {
        db.drop_cf(cf::RETIRED_ORG_HEADS).map_err(io)?;
    }
    db.put_cf(handle(db, cf::META)?, cf::LAYOUT, current)
        .map_err(io)
}

impl EventLog for RocksLog {
    fn append(&self, commits: &[Commit]) -> Result<(), LogError> {
        self.append_with(commits, true)
    }

    fn append_unsynced(&self, commits: &[Commit]) -> Result<(), LogError> {
        self.append_with(commits, false)
    }

    fn damage(&self) -> Option<Tamper> {
        self.damage.clone()
    }

    fn read(&self, from: Seq, limit: usize) -> Result<Vec<Record>, LogError> {
        let start = cf::seq_key(from.max(1));
        let iter = self.db.iterator_cf(
            self.cf(cf::EVENTS)?,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::with_capacity(limit.min(4096));
        for item in iter.take(limit) {
            let (k, v) = item.map_err(io)?;
            out.push(Self::record(&k, &v)?);
        }
        Ok(out)
    }

    /// One raw iterator over the events, its bytes lent to `visit` straight from RocksDB's blocks.
    /// A scan reads each block once, so it leaves the block cache alone (`fill_cache` off): the
    /// cache's bookkeeping would cost more than it saves, and the hot blocks of the serving
    /// reads stay cached.
    fn scan(
        &self,
        from: Seq,
        visit: &mut dyn FnMut(Seq, &Hash, &[u8]) -> bool,
    ) -> Result<(), LogError> {
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        ro.set_readahead_size(2 << 20);
        let mut it = self.db.raw_iterator_cf_opt(self.cf(cf::EVENTS)?, ro);
        it.seek(cf::seq_key(from.max(1)));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let (seq, hash, bytes) = Self::split(k, v)?;
            if !visit(seq, &hash, bytes) {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(io)
    }

    fn read_org(
        &self,
        org: &OrgId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LogError> {
        let start = cf::org_index_key(org.as_str(), from_version.max(1));
        let end = cf::org_index_key(org.as_str(), u64::MAX);
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end);
        let snapshot = self.db.snapshot();
        ro.set_snapshot(&snapshot);
        let index = self.db.iterator_cf_opt(
            self.cf(cf::ORG_INDEX)?,
            ro,
            IteratorMode::From(&start, Direction::Forward),
        );
        let events = self.cf(cf::EVENTS)?;
        let mut out = Vec::new();
        for item in index.take(limit) {
            let (_, v) = item.map_err(io)?;
            let seq = cf::u64_at(&v, 0)
                .ok_or_else(|| corrupt(0, format!("an index entry of org `{org}` is malformed")))?;
            let value = snapshot
                .get_cf(events, cf::seq_key(seq))
                .map_err(io)?
                .ok_or_else(|| corrupt(seq, format!("indexed for org `{org}` but absent")))?;
            out.push(Self::record(&cf::seq_key(seq), &value)?);
        }
        Ok(out)
    }

    fn head(&self) -> Result<Digest, LogError> {
        self.writer
            .lock()
            .map(|w| w.head)
            .map_err(|_| LogError::Stopped("a writer panicked".into()))
    }

    fn org_version(&self, org: &OrgId) -> Result<u64, LogError> {
        self.stored_org_version(org)
    }

    fn idempotency(&self, org: &OrgId, key: &str) -> Result<Option<IdempotencyEntry>, LogError> {
        let Some(v) = self
            .db
            .get_cf(
                self.cf(cf::IDEMPOTENCY)?,
                cf::idempotency_key(org.as_str(), key),
            )
            .map_err(io)?
        else {
            return Ok(None);
        };
        let entry = cf::idempotency_entry(&v).ok_or_else(|| {
            corrupt(
                0,
                format!("the idempotency entry `{key}` of org `{org}` is malformed"),
            )
        })?;
        Ok(Some(entry))
    }

    fn watch(&self) -> watch::Receiver<Seq> {
        self.head.subscribe()
    }
}
