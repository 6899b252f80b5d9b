//! The commands of `procsync repl` (see `docs/REPL.md`) as values: what [`super::parse`]
//! produces from a line and the REPL executes. Plain data with no behaviour beyond
//! [`Command::waits_forever`]; it must not depend on the library, so that the syntax
//! can be tested without any object.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Most objects one `waitany` or `waitall` may list (Win32 `MAXIMUM_WAIT_OBJECTS`).
pub const MAX_WAIT_OBJECTS: usize = 64;

/// One non-blank, non-comment input line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    /// `T` of an `@T ` prefix; `None` means thread `main`, answered without a prefix.
    pub thread: Option<String>,
    /// What to do, or why the line is not a command.
    pub command: Result<Command, SyntaxError>,
}

/// A malformed line, answered with `err <code> <message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// `invalid-argument`, or `invalid-name` for a name that is not text.
    pub code: &'static str,
    pub message: String,
}

impl SyntaxError {
    /// An `invalid-argument` error.
    pub fn new(message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            code: "invalid-argument",
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An object type, as written in `create` and `open`: the library's own.
pub use procsync::ObjectKind as Kind;

/// The type and initial state of a new object: the library's own.
pub use procsync::ObjectSpec as Spec;

/// An `access=` list. `all` is kept apart from `synchronize,modify` so that the library,
/// not the CLI, decides what "all" covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessSpec {
    /// `all` (alone or in the list).
    All,
    /// A subset of `synchronize` and `modify`; at least one is set.
    Rights {
        /// `synchronize`: may wait.
        synchronize: bool,
        /// `modify`: may set, reset, pulse, release, arm.
        modify: bool,
    },
}

/// When a timer first fires (`settimer A due=MS|at=UNIX_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// `due=MS`: milliseconds from now.
    Relative(Duration),
    /// `at=UNIX_MS`: milliseconds since the Unix epoch, wall clock.
    AtUnixMs(u64),
}

/// One REPL command, its words checked and converted; aliases are not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `create KIND A [name=N] … [inherit] [mode=OCTAL]`
    Create {
        /// Alias for the new handle.
        alias: String,
        /// Type and initial state.
        spec: Spec,
        /// Object name; empty = unnamed (also for an explicit `name=`).
        name: String,
        /// `mode=` permission bits, `None` = the library default.
        mode: Option<u32>,
        /// `inherit`
        inherit: bool,
    },
    /// `open KIND A name=N [access=LIST] [inherit]`
    Open {
        /// Expected type.
        kind: Kind,
        /// Alias for the new handle.
        alias: String,
        /// Object name (may be empty: the library then refuses it).
        name: String,
        /// Requested rights (default `all`).
        access: AccessSpec,
        /// `inherit`
        inherit: bool,
    },
    /// `set A`
    Set(String),
    /// `reset A`
    Reset(String),
    /// `pulse A`
    Pulse(String),
    /// `release A [count=C]`
    Release {
        /// The semaphore or mutex.
        alias: String,
        /// Count to release (default 1).
        count: u32,
    },
    /// `settimer A due=MS|at=UNIX_MS [period=MS]`
    SetTimer {
        /// The timer.
        alias: String,
        /// First expiry.
        due: Due,
        /// Period in milliseconds; 0 = one-shot.
        period_ms: u32,
    },
    /// `cancel A`
    Cancel(String),
    /// `wait A [timeout=MS|inf]`
    Wait {
        /// The object.
        alias: String,
        /// `None` = infinite.
        timeout: Option<Duration>,
    },
    /// `waitany A1 A2 … [timeout=MS|inf]`
    WaitAny {
        /// 1..=64 objects.
        aliases: Vec<String>,
        /// `None` = infinite.
        timeout: Option<Duration>,
    },
    /// `waitall A1 A2 … [timeout=MS|inf]`
    WaitAll {
        /// 1..=64 objects.
        aliases: Vec<String>,
        /// `None` = infinite.
        timeout: Option<Duration>,
    },
    /// `signalandwait S W [timeout=MS|inf]`
    SignalAndWait {
        /// Object to signal.
        signal: String,
        /// Object to wait on.
        wait: String,
        /// `None` = infinite.
        timeout: Option<Duration>,
    },
    /// `query A`
    Query(String),
    /// `waiters A`: how many threads are blocked waiting on A.
    Waiters(String),
    /// `dup A B [access=LIST] [close-source]`
    Dup {
        /// Source alias.
        source: String,
        /// New alias.
        target: String,
        /// `None` = the source's access.
        access: Option<AccessSpec>,
        /// `close-source`: drop alias A afterwards.
        close_source: bool,
    },
    /// `inheritable A on|off`
    Inheritable {
        /// The handle.
        alias: String,
        /// `on`
        on: bool,
    },
    /// `handle A`
    HandleValue(String),
    /// `pid`
    Pid,
    /// `dup-from PID V B [access=LIST] [close-source]`
    DupFrom {
        /// Process holding the handle.
        pid: u32,
        /// The handle's value in that process.
        value: u64,
        /// New alias here.
        target: String,
        /// `None` = the source's access.
        access: Option<AccessSpec>,
        /// `close-source`: close V in process PID.
        close_source: bool,
    },
    /// `dup-to PID A [access=LIST] [close-source]`
    DupTo {
        /// Receiving process.
        pid: u32,
        /// Handle to send.
        alias: String,
        /// `None` = the source's access.
        access: Option<AccessSpec>,
        /// `close-source`: drop alias A afterwards.
        close_source: bool,
    },
    /// `adopt V B`
    Adopt {
        /// Handle value received by duplication or inheritance.
        value: u64,
        /// New alias.
        target: String,
    },
    /// `spawn in=PATH out=PATH`
    Spawn {
        /// The child's command source.
        input: PathBuf,
        /// Where the child writes its answers.
        output: PathBuf,
    },
    /// `close A`
    Close(String),
    /// `sleep MS`
    Sleep(Duration),
    /// `help [COMMAND]`: the command names, or one command's syntax.
    Help(Option<String>),
    /// `exit`: end the process (no answer).
    Exit,
    /// `exit-thread`: end the thread that runs it.
    ExitThread,
}

impl Command {
    /// Whether the command may block (a wait with a timeout other than 0, or a
    /// `sleep`). REPL.md: on `exit`, commands still blocked get no answer, and the
    /// process exits at once — it does not wait for such a command to finish.
    pub fn waits_forever(&self) -> bool {
        match self {
            Command::Wait { timeout, .. }
            | Command::WaitAny { timeout, .. }
            | Command::WaitAll { timeout, .. }
            | Command::SignalAndWait { timeout, .. } => timeout != &Some(Duration::ZERO),
            Command::Sleep(_) => true,
            _ => false,
        }
    }
}
