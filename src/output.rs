//! Writing to standard output without panicking when the reader goes away.

/// `println!` that returns the error instead of panicking, so that output piped into `head` ends
/// quietly when the reader goes away (`main` exits 0 on a broken pipe).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` as `out!` does it.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}
