//! Scenario files (scenarios.md), the public acceptance contract: a strict parser, a runner that
//! plays every step against the in-memory log and against RocksDB and then applies the three
//! oracles, and a coverage report of what a set of files exercises.

pub mod coverage;
pub mod format;
pub mod remote;
pub mod run;
pub mod target;

pub use run::{run_file, run_file_on, run_text, run_text_on, Backend, Failure, FileResult};

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
