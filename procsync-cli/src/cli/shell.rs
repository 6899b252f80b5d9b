//! What every shell subcommand (`run`, `wait`, `set`, `ls`, …) shares: the duration
//! syntax, opening a named object whose type the caller does not know, and turning a
//! failure into a message on standard error plus a documented exit code.
//!
//! It only calls the public library API. It owns the wording of errors, never their
//! meaning: the library decides what is an error and names the object in it.

use std::fmt;
use std::time::Duration;

use procsync::{Access, Handle, ObjectKind};

use super::exit;

/// A failed subcommand: the exit code and the message for standard error.
#[derive(Debug)]
pub struct Failure {
    /// One of the codes in [`exit`].
    pub code: u8,
    /// What went wrong and what to do about it (printed after `procsync: `).
    pub message: String,
}

impl Failure {
    /// A failure with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// A usage mistake the parser could not catch (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }
}

impl From<procsync::Error> for Failure {
    fn from(e: procsync::Error) -> Failure {
        let hint = match e.code() {
            "not-found" => {
                "; a named object lives only while a process holds it \
                 (`procsync hold NAME`, or `procsync wait NAME --create TYPE`)"
            }
            "access-denied" => "; check who owns the object (`procsync inspect NAME`)",
            "invalid-name" => "; names are `Local\\x`, `Global\\x` or a bare `x`",
            _ => "",
        };
        Failure::new(exit::ERROR, format!("{} [{}]{hint}", e, e.code()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result type of the shell subcommands: `Ok(code)` is the exit code to return.
pub type Outcome = Result<u8, Failure>;

/// Prints `procsync: <message>` on standard error (always: errors are never quiet).
pub fn report(failure: &Failure) {
    eprintln!("procsync: {}", failure.message);
}

/// A status line for standard error, unless `--quiet`.
pub fn note(quiet: bool, message: impl AsRef<str>) {
    if !quiet {
        eprintln!("procsync: {}", message.as_ref());
    }
}

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h` (`500ms`, `2s`,
/// `1.5m`); a bare number means seconds; `inf` means no limit (`None`).
pub fn parse_duration(text: &str) -> Result<Option<Duration>, String> {
    let text = text.trim();
    if text == "inf" || text == "infinite" {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad_duration(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad_duration(text))?;
    Duration::try_from_secs_f64(value * scale)
        .map(Some)
        .map_err(|_| bad_duration(text))
}

fn bad_duration(text: &str) -> String {
    format!("`{text}` is not a duration; write it like 500ms, 2s, 1m, 1h or inf")
}

/// clap's value parser for `--timeout` (a duration or `inf`).
pub fn timeout_arg(text: &str) -> Result<Timeout, String> {
    parse_duration(text).map(Timeout)
}

/// A `--timeout` value: `None` waits forever.
#[derive(Debug, Clone, Copy)]
pub struct Timeout(pub Option<Duration>);

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("forever"),
            Some(d) if d.is_zero() => f.write_str("0s"),
            Some(d) => write!(f, "{d:?}"),
        }
    }
}

/// Every object type, in the order [`open_any`] tries them.
pub const KINDS: [ObjectKind; 4] = [
    ObjectKind::Event,
    ObjectKind::Mutex,
    ObjectKind::Semaphore,
    ObjectKind::Timer,
];

/// Opens the object called `name`, whatever its type (the first type that is not
/// `wrong-type`).
pub fn open_any(name: &str, access: Access) -> Result<Handle, procsync::Error> {
    let mut last = None;
    for kind in KINDS {
        match Handle::open(kind, name, access, false) {
            Ok(h) => return Ok(h),
            Err(e) if e.code() == "wrong-type" => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| procsync::Error::unsupported("no object type matched")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |n| Ok(Some(Duration::from_millis(n)));
        assert_eq!(parse_duration("500ms"), ms(500));
        assert_eq!(parse_duration("2s"), ms(2000));
        assert_eq!(parse_duration("2"), ms(2000));
        assert_eq!(parse_duration("1m"), ms(60_000));
        assert_eq!(parse_duration("1.5s"), ms(1500));
        assert_eq!(parse_duration("1h"), ms(3_600_000));
        assert_eq!(parse_duration("0"), ms(0));
        assert_eq!(parse_duration("inf"), Ok(None));
        for bad in ["", "s", "2x", "-1s", "1e3", "ms5", "1.2.3s"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("500ms"), "{err}");
        }
    }
}
