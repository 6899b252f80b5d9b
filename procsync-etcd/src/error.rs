//! The crate's error type. Wait outcomes (signaled, abandoned, timed out) are not errors
//! (see [`procsync::WaitOutcome`]); everything here is a failed call. Codes match the
//! library's [`procsync::Error::code`] where the meaning is the same, and add
//! `unavailable` and `session-lost` for what only a networked backend can do.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every way a cluster call can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Open of a name that does not exist.
    NotFound {
        /// The name as given.
        name: String,
    },
    /// The name exists as another type, or the operation does not apply to this type.
    WrongType {
        /// What was attempted on what.
        what: String,
    },
    /// A name this backend refuses.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// A bad count, option or endpoint.
    InvalidArgument {
        /// What was wrong, and the valid range.
        why: String,
    },
    /// The same object twice in one wait-all.
    DuplicateObject {
        /// Lower index.
        first: usize,
        /// Higher index.
        second: usize,
    },
    /// Mutex released by a thread that does not own it.
    NotOwner,
    /// Semaphore release past its maximum.
    TooManyPosts {
        /// Requested release.
        count: u32,
        /// The semaphore's maximum.
        max: u32,
        /// The count at the time of the call.
        current: u32,
    },
    /// No etcd member answered before the call's deadline or grace period. Whether a
    /// mutation took effect is unknown only where the message says so; a wait that ends
    /// this way acquired nothing that the caller may use (see docs/ETCD.md, "Failure").
    Unavailable {
        /// What failed, with the last transport or server error.
        what: String,
    },
    /// This client's session lease has expired (process paused, host cut off): every
    /// hold it had is gone and its fencing tokens are stale. Connect a new [`crate::Cluster`].
    SessionLost,
    /// etcd answered with something this client does not understand.
    Protocol {
        /// What was unexpected.
        what: String,
    },
}

impl Error {
    /// The stable code, shared with `procsync repl` where the meaning is the same:
    /// `not-found`, `wrong-type`, `invalid-name`, `invalid-argument`, `duplicate-object`,
    /// `not-owner`, `too-many-posts`, and this backend's `unavailable`, `session-lost`, `io`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not-found",
            Error::WrongType { .. } => "wrong-type",
            Error::InvalidName { .. } => "invalid-name",
            Error::InvalidArgument { .. } => "invalid-argument",
            Error::DuplicateObject { .. } => "duplicate-object",
            Error::NotOwner => "not-owner",
            Error::TooManyPosts { .. } => "too-many-posts",
            Error::Unavailable { .. } => "unavailable",
            Error::SessionLost => "session-lost",
            Error::Protocol { .. } => "io",
        }
    }

    pub(crate) fn invalid(why: impl Into<String>) -> Error {
        Error::InvalidArgument { why: why.into() }
    }

    pub(crate) fn protocol(what: impl Into<String>) -> Error {
        Error::Protocol { what: what.into() }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound { name } => write!(
                f,
                "no cluster object is named `{name}`; create it first or check the spelling (names are case-sensitive)"
            ),
            Error::WrongType { what } => write!(f, "{what}; use a handle of the right type"),
            Error::InvalidName { name, why } => write!(f, "invalid cluster name `{name}`: {why}"),
            Error::InvalidArgument { why } => write!(f, "invalid argument: {why}"),
            Error::DuplicateObject { first, second } => write!(
                f,
                "object at index {second} is the same object as index {first}; a wait-all may list each object once"
            ),
            Error::NotOwner => write!(
                f,
                "this thread does not own the mutex; only the owning thread may release it, once per acquisition"
            ),
            Error::TooManyPosts {
                count,
                max,
                current,
            } => write!(
                f,
                "releasing {count} would pass the semaphore maximum of {max} (count is {current}); nothing was changed"
            ),
            Error::Unavailable { what } => write!(
                f,
                "etcd unavailable: {what}; check that the endpoints are right and a quorum of members is up"
            ),
            Error::SessionLost => write!(
                f,
                "this client's etcd session lease expired (paused or cut off past its TTL): its holds are gone and its fencing tokens are stale; connect a new Cluster"
            ),
            Error::Protocol { what } => write!(
                f,
                "unexpected answer from etcd: {what}; check that the endpoint is an etcd v3.4+ client URL"
            ),
        }
    }
}

impl std::error::Error for Error {}
