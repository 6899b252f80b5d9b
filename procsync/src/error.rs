//! The crate's one error type. Win32 wait outcomes are not errors (see
//! [`crate::WaitOutcome`]); everything here is a failed call that changed nothing
//! unless its message says otherwise. It converts to and from [`std::io::Error`].

use std::path::PathBuf;

use rustix::io::Errno;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a procsync call can fail. Messages are lowercase, name the object and end
/// with the remedy; [`Error::code`] gives the stable code used by `procsync repl`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Open of a name that does not exist (Win32 `ERROR_FILE_NOT_FOUND`).
    #[error(
        "no object is named `{name}`; create it first or check the spelling (names are case-sensitive)"
    )]
    NotFound {
        /// The name as given.
        name: String,
    },
    /// The name exists as another type, or the operation does not apply to this type
    /// (Win32 `ERROR_INVALID_HANDLE`).
    #[error("{what}; use a handle of the right type")]
    WrongType {
        /// What was attempted on what.
        what: String,
    },
    /// A name that procsync refuses (Win32 `ERROR_INVALID_NAME`).
    #[error("invalid object name `{name}`: {why}")]
    InvalidName {
        /// The name, shortened when very long.
        name: String,
        /// Why it is refused, and what to do instead.
        why: &'static str,
    },
    /// A bad count, size or option (Win32 `ERROR_INVALID_PARAMETER`).
    #[error("invalid argument: {why}")]
    InvalidArgument {
        /// What was wrong, and the valid range.
        why: String,
    },
    /// The same object twice in one wait-all (Win32 `ERROR_INVALID_PARAMETER`, `STATUS_INVALID_PARAMETER_MIX`).
    #[error(
        "object at index {second} is the same object as index {first}; a wait-all may list each object once"
    )]
    DuplicateObject {
        /// Lower index.
        first: usize,
        /// Higher index.
        second: usize,
    },
    /// Mutex released by a thread that does not own it (Win32 `ERROR_NOT_OWNER`).
    #[error(
        "this thread does not own the mutex; only the owning thread may release it, once per acquisition"
    )]
    NotOwner,
    /// A mutex's recursion count would overflow (Win32 `ERROR_MUTANT_LIMIT_EXCEEDED`).
    #[error(
        "the mutex is already held {0} times by this thread; release it before acquiring again"
    )]
    RecursionLimit(u32),
    /// Semaphore release past its maximum (Win32 `ERROR_TOO_MANY_POSTS`).
    #[error(
        "releasing {count} would pass the semaphore maximum of {max} (count is {current}); nothing was changed"
    )]
    TooManyPosts {
        /// Requested release.
        count: u32,
        /// The semaphore's maximum.
        max: u32,
        /// The count at the time of the call.
        current: u32,
    },
    /// The handle lacks the right, or the file's permissions forbid the open (Win32 `ERROR_ACCESS_DENIED`).
    #[error("access denied: {what}")]
    AccessDenied {
        /// What was refused, and how to get the right.
        what: String,
    },
    /// A handle value that names no handle of this process, or a handle closed by a
    /// duplication with close-source (Win32 `ERROR_INVALID_HANDLE`).
    #[error("{0}")]
    InvalidHandle(String),
    /// A handle that cannot be passed on as asked.
    #[error("{0}")]
    NotInheritable(String),
    /// A capability this build does not have.
    #[error("{0}")]
    Unsupported(String),
    /// A file that is not a valid object (bad magic, version, size, or impossible values).
    #[error("`{path}` is not a valid procsync object ({why}); delete it and recreate the object")]
    Corrupt {
        /// The file (or `<unnamed>`).
        path: PathBuf,
        /// What failed validation.
        why: &'static str,
    },
    /// An object's internal lock is kept by a live process past the lock bound.
    #[error("{what}; try again, or find and stop that process")]
    Busy {
        /// Which object, and why.
        what: String,
    },
    /// A limit was reached (descriptors, memory, queue slots, wait blocks).
    #[error("{what}: limit reached; {remedy}")]
    Exhausted {
        /// Which resource.
        what: &'static str,
        /// What to do.
        remedy: &'static str,
    },
    /// Anything else from the operating system.
    #[error("{op} failed: {source}")]
    Os {
        /// The operation, in words.
        op: &'static str,
        /// The underlying error ([`std::io::Error::raw_os_error`] gives its errno).
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The stable code of `procsync repl` (see `docs/REPL.md`): `not-found`, `wrong-type`, ….
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } | Error::InvalidHandle(_) => "not-found",
            Error::WrongType { .. } => "wrong-type",
            Error::InvalidName { .. } => "invalid-name",
            Error::InvalidArgument { .. } | Error::RecursionLimit(_) => "invalid-argument",
            Error::DuplicateObject { .. } => "duplicate-object",
            Error::NotOwner => "not-owner",
            Error::TooManyPosts { .. } => "too-many-posts",
            Error::AccessDenied { .. } => "access-denied",
            Error::NotInheritable(_) => "not-inheritable",
            Error::Unsupported(_) => "unsupported",
            Error::Corrupt { .. }
            | Error::Exhausted { .. }
            | Error::Busy { .. }
            | Error::Os { .. } => "io",
        }
    }

    /// The errno of an [`Error::Os`], `None` for every other error.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The [`std::io::ErrorKind`] this error converts to (see `From<Error> for
    /// io::Error`).
    pub fn io_kind(&self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            Error::NotFound { .. } | Error::InvalidHandle(_) => K::NotFound,
            Error::WrongType { .. }
            | Error::InvalidName { .. }
            | Error::InvalidArgument { .. }
            | Error::DuplicateObject { .. }
            | Error::RecursionLimit(_)
            | Error::TooManyPosts { .. }
            | Error::NotInheritable(_) => K::InvalidInput,
            Error::NotOwner | Error::AccessDenied { .. } => K::PermissionDenied,
            Error::Unsupported(_) => K::Unsupported,
            Error::Corrupt { .. } => K::InvalidData,
            Error::Exhausted { what, .. } if what.contains("memory") => K::OutOfMemory,
            Error::Exhausted { what, .. } if what.contains("space") => K::StorageFull,
            Error::Exhausted { .. } => K::Other,
            Error::Busy { .. } => K::WouldBlock,
            Error::Os { source, .. } => source.kind(),
        }
    }

    pub(crate) fn os(op: &'static str, errno: Errno) -> Self {
        match errno {
            Errno::MFILE | Errno::NFILE => Error::Exhausted {
                what: "open file descriptors (each object costs a process two)",
                remedy: "close handles you no longer need, or raise the hard limit (`ulimit -n` as root, `LimitNOFILE=` for a service): procsync already raises the soft limit up to it by itself",
            },
            Errno::NOMEM => Error::Exhausted {
                what: "memory for a shared mapping",
                remedy: "close handles you no longer need or raise the mapping limit (vm.max_map_count)",
            },
            Errno::NOSPC => Error::Exhausted {
                what: "space on the shared-memory file system",
                remedy: "free space under the procsync root (/dev/shm) or enlarge it",
            },
            _ => Error::Os {
                op,
                source: std::io::Error::from_raw_os_error(errno.raw_os_error()),
            },
        }
    }

    pub(crate) fn invalid(why: impl Into<String>) -> Self {
        Error::InvalidArgument { why: why.into() }
    }
}

impl From<Error> for std::io::Error {
    /// An `io::Error` of [`Error::io_kind`] that carries the procsync error: get it back
    /// with `get_ref()`/`into_inner()` and a downcast, or with `Error::from`.
    ///
    /// ```
    /// let e = procsync::Event::open("").unwrap_err(); // the empty name cannot be opened
    /// let io: std::io::Error = e.into();
    /// assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
    /// let back = procsync::Error::from(io);
    /// assert_eq!(back.code(), "invalid-name");
    /// ```
    fn from(e: Error) -> std::io::Error {
        std::io::Error::new(e.io_kind(), e)
    }
}

impl From<std::io::Error> for Error {
    /// The procsync error inside an `io::Error` made from one; any other I/O error
    /// becomes an [`Error::Os`].
    fn from(e: std::io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = e.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        Error::Os {
            op: "an I/O operation",
            source: e,
        }
    }
}
