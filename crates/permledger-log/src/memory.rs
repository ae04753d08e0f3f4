//! The in-memory log: the reference implementation, used by tests and the scenario runner.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use permledger_domain::{OrgId, Seq};
use tokio::sync::watch;

use crate::{link_commits, Commit, Digest, EventLog, Hash, IdempotencyEntry, LogError, Record};

#[derive(Default)]
struct Inner {
    records: Vec<Record>,
    orgs: HashMap<OrgId, Vec<Seq>>,
    idempotency: HashMap<(OrgId, String), IdempotencyEntry>,
}

pub struct MemoryLog {
    inner: Mutex<Inner>,
    head: watch::Sender<Seq>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        MemoryLog {
            inner: Mutex::new(Inner::default()),
            head: watch::Sender::new(0),
        }
    }
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, LogError> {
        self.inner
            .lock()
            .map_err(|_| LogError::Io("the in-memory log's lock was poisoned".into()))
    }

    /// Replaces the bytes of one stored event, as an intruder would; for verifier tests.
    pub fn tamper(&self, seq: Seq, bytes: Vec<u8>) -> Result<(), LogError> {
        let mut inner = self.lock()?;
        let idx =
            usize::try_from(seq.saturating_sub(1)).map_err(|e| LogError::Io(e.to_string()))?;
        match inner.records.get_mut(idx) {
            Some(r) => {
                r.bytes = bytes;
                Ok(())
            }
            None => Err(LogError::Io(format!("no event {seq}"))),
        }
    }
}

impl Inner {
    fn head(&self) -> Digest {
        self.records.last().map_or(
            Digest {
                seq: 0,
                hash: Hash::GENESIS,
            },
            |r| Digest {
                seq: r.seq,
                hash: r.hash,
            },
        )
    }
}

impl EventLog for MemoryLog {
    fn append(&self, commits: &[Commit]) -> Result<(), LogError> {
        let mut inner = self.lock()?;
        let (links, head) = link_commits(
            inner.head(),
            |org| Ok(inner.orgs.get(org).map_or(0, |v| v.len() as u64)),
            commits,
        )?;
        let mut links = links.into_iter();
        for c in commits {
            let seqs = inner.orgs.entry(c.org.clone()).or_default();
            seqs.extend(c.events.iter().map(|e| e.seq));
            if let Some((key, entry)) = &c.idempotency {
                inner
                    .idempotency
                    .insert((c.org.clone(), key.clone()), *entry);
            }
            let records = c.events.iter().zip(links.by_ref()).map(|(e, hash)| Record {
                seq: e.seq,
                hash,
                bytes: e.bytes.clone(),
            });
            inner.records.extend(records);
        }
        drop(inner);
        self.head.send_replace(head.seq);
        Ok(())
    }

    fn read(&self, from: Seq, limit: usize) -> Result<Vec<Record>, LogError> {
        let inner = self.lock()?;
        let start = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
        Ok(inner
            .records
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }

    fn read_org(
        &self,
        org: &OrgId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, LogError> {
        let inner = self.lock()?;
        let Some(seqs) = inner.orgs.get(org) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(from_version.max(1) - 1).unwrap_or(usize::MAX);
        Ok(seqs
            .iter()
            .skip(start)
            .take(limit)
            .filter_map(|s| inner.records.get(usize::try_from(*s - 1).ok()?).cloned())
            .collect())
    }

    fn head(&self) -> Result<Digest, LogError> {
        Ok(self.lock()?.head())
    }

    fn org_version(&self, org: &OrgId) -> Result<u64, LogError> {
        Ok(self.lock()?.orgs.get(org).map_or(0, |v| v.len() as u64))
    }

    fn idempotency(&self, org: &OrgId, key: &str) -> Result<Option<IdempotencyEntry>, LogError> {
        Ok(self
            .lock()?
            .idempotency
            .get(&(org.clone(), key.to_string()))
            .copied())
    }

    fn watch(&self) -> watch::Receiver<Seq> {
        self.head.subscribe()
    }
}
