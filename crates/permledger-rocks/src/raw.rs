//! RocksDB alone, for the benchmarks' physical limits: what a synced `WriteBatch` of small values
//! costs on this machine, and how fast the log's stored bytes can be iterated without decoding.
//! permledger's own figures are read against these, measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use permledger_log::LogError;
use rocksdb::{Options, WriteBatch, WriteOptions, DB};

use crate::{cf, io, RocksLog};

/// Writes synced batches of `per_batch` values of `value_len` bytes (keys: big-endian counters)
/// into a fresh database in `dir` for about `duration`; answers (values written, time taken).
pub fn synced_batches(
    dir: &Path,
    per_batch: usize,
    value_len: usize,
    duration: Duration,
) -> Result<(u64, Duration), LogError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(1 << 20);
    opts.set_recycle_log_file_num(4);
    let db = DB::open(&opts, dir).map_err(io)?;
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    let value = vec![0x5a_u8; value_len];
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < duration {
        let mut batch = WriteBatch::default();
        for _ in 0..per_batch {
            written += 1;
            batch.put(written.to_be_bytes(), &value);
        }
        db.write_opt(batch, &wo).map_err(io)?;
    }
    Ok((written, started.elapsed()))
}

impl RocksLog {
    /// Compacts every column family now, as background compaction eventually would, so that a
    /// measurement does not share the cores with it.
    pub fn compact(&self) -> Result<(), LogError> {
        for name in cf::ALL {
            self.db
                .compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Iterates every stored event's key and value (read and decompressed, never decoded);
    /// answers (events, bytes).
    pub fn raw_scan(&self) -> Result<(u64, u64), LogError> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf::EVENTS)?);
        it.seek_to_first();
        let (mut events, mut bytes) = (0u64, 0u64);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            events += 1;
            bytes += (k.len() + v.len()) as u64;
            it.next();
        }
        it.status().map_err(io)?;
        Ok((events, bytes))
    }
}
