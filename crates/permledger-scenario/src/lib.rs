//! Scenario files (scenarios.md), the public acceptance contract: a strict parser, a runner that
//! plays every step against the in-memory log and against RocksDB and then applies the three
//! oracles, and a coverage report of what a set of files exercises.
//!
//! Without the default `runner` feature only the parser is built (no ledger, no RocksDB): the
//! fuzz targets use it so.

#[cfg(feature = "runner")]
pub mod coverage;
pub mod format;
#[cfg(feature = "runner")]
pub mod remote;
#[cfg(feature = "runner")]
pub mod run;
#[cfg(feature = "runner")]
pub mod target;

#[cfg(feature = "runner")]
pub use run::{run_file, run_file_on, run_text, run_text_on, Backend, Failure, FileResult};

#[cfg(feature = "runner")]
/// Runs files and renders scenarios.md's report: one line per failed step, then `N passed, M failed`.
pub fn report(results: &[FileResult]) -> (String, bool) {
    let mut out = String::new();
    let mut failed = 0;
    for r in results {
        if !r.passed() {
            failed += 1;
            for f in &r.failures {
                out.push_str(&format!("{}: {f}\n", r.path));
            }
        }
    }
    out.push_str(&format!(
        "{} passed, {failed} failed\n",
        results.len() - failed
    ));
    (out, failed == 0)
}
