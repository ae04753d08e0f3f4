//! Files handed to people: CSV that a spreadsheet opens safely, and the digest every export
//! carries so that it can be tied to `permledger verify --digest`.
//!
//! CSV follows RFC 4180 (a cell with a comma, a quote or a line break is quoted, quotes
//! doubled), and OWASP's guidance on formula injection: a cell that begins with `=`, `+`, `-`,
//! `@`, a tab or a carriage return is prefixed with `'`, so that a user id `=2+3` or a reason
//! `=HYPERLINK(...)` reads as text, never as a live formula. Commands refuse control characters
//! in reasons and names; the quoting keeps older records with line breaks in one cell.

use permledger_domain::Seq;
use serde::{Deserialize, Serialize};

use crate::audit::AuditEntry;

/// The position and chain link an export covers: `permledger verify --digest SEQ:HASH` proves
/// the log still extends it, so the file can be tied to the log it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Covers {
    pub seq: Seq,
    /// The chain link at `seq`, 64 hex digits.
    pub hash: String,
}

impl Covers {
    /// `SEQ:HASH`, as `permledger verify --digest` takes it.
    pub fn digest(&self) -> String {
        format!("{}:{}", self.seq, self.hash)
    }
}

/// The first cell of the line that ends every CSV export, followed by the digest.
pub const CSV_DIGEST_MARK: &str = "#digest";

/// One cell, neutralized and quoted as it must be.
pub fn csv_cell(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// One CSV line of cells, with its line ending.
pub fn csv_line<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> String {
    let mut line = cells
        .into_iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The line that ends a CSV export: `#digest,SEQ:HASH`.
pub fn csv_digest_line(covers: &Covers) -> String {
    csv_line([CSV_DIGEST_MARK, &covers.digest()])
}

/// The columns of the audit trail as CSV, in order.
pub const AUDIT_COLUMNS: &[&str] = &[
    "seq",
    "time",
    "action",
    "summary",
    "actor",
    "principal",
    "user",
    "email",
    "scope",
    "role",
    "permission",
    "expires_at",
    "changes",
    "reason",
    "request_id",
    "cause_seq",
    "cause",
];

/// Every change of an entry as `field: from -> to`, separated by `; `.
pub fn changes_text(e: &AuditEntry) -> String {
    e.changes
        .iter()
        .map(|c| {
            format!(
                "{}: {} -> {}",
                c.field,
                c.from.as_deref().unwrap_or("(none)"),
                c.to.as_deref().unwrap_or("(none)")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An entry's cells, in `AUDIT_COLUMNS`' order.
pub fn audit_cells(e: &AuditEntry) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    vec![
        e.seq.to_string(),
        e.time.to_string(),
        e.action.clone(),
        e.summary.clone(),
        e.actor.to_string(),
        opt(e.principal.as_ref().map(|p| p.to_string())),
        opt(e.user.as_ref().map(|u| u.to_string())),
        opt(e.email.clone()),
        e.scope.to_string(),
        opt(e.role.as_ref().map(|r| r.to_string())),
        opt(e.permission.clone()),
        opt(e.expires_at.map(|t| t.to_string())),
        changes_text(e),
        opt(e.reason.clone()),
        opt(e.request_id.clone()),
        opt(e.cause.as_ref().map(|c| c.seq.to_string())),
        opt(e.cause.as_ref().map(|c| c.summary.clone())),
    ]
}

/// The line that ends a JSON Lines export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DigestLine {
    /// What the export covers: every entry up to this position.
    pub digest: Covers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_text() {
        for (raw, cell) in [
            ("=2+3", "'=2+3"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("a,b", "\"a,b\""),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_cell(raw), cell, "{raw:?}");
        }
    }
}
