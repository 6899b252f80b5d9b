//! The handle layer's public vocabulary: a handle's rights ([`Access`]), the options of a
//! create ([`CreateOptions`]), a waitable timer's due time ([`TimerDue`]) and an object's
//! state as a query reports it ([`ObjectState`], [`Owner`]).
//!
//! Plain data only: it must not import anything of this crate, so that every other
//! file of the handle layer can use it.

use std::time::Duration;

/// Rights a handle carries (Win32 access masks reduced to two, see docs/SEMANTICS.md,
/// "Decisions").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access(u8);

impl Access {
    /// Wait on the object (`SYNCHRONIZE`).
    pub const SYNCHRONIZE: Access = Access(1);
    /// Change its state: set/reset/pulse, release a semaphore, set/cancel a timer
    /// (`*_MODIFY_STATE`).
    pub const MODIFY: Access = Access(2);
    /// Both (`*_ALL_ACCESS`).
    pub const ALL: Access = Access(3);
    /// No right at all (an open with it fails, CO-09).
    pub const NONE: Access = Access(0);

    /// Both masks together.
    pub fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }

    /// Whether every right of `other` is in `self`.
    #[inline]
    pub fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Options of a create call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Permission bits of a new named object (default 0600); ignored for an existing one.
    pub mode: Option<u32>,
    /// Whether the handle is inheritable (CO-11, CO-12).
    pub inherit: bool,
}

/// A waitable timer's due time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerDue {
    /// After this long, on the monotonic clock.
    Relative(Duration),
    /// At this wall-clock time (milliseconds since the Unix epoch).
    AbsoluteUnixMs(u64),
}

/// A mutex's owner as seen by the calling thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Unowned.
    None,
    /// The calling thread.
    Current,
    /// Another thread, in this or another process.
    Other,
}

/// An object's state (NtQueryEvent / NtQueryMutant / NtQuerySemaphore / NtQueryTimer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectState {
    /// An event.
    Event {
        /// Manual-reset.
        manual: bool,
        /// Signaled.
        signaled: bool,
    },
    /// A mutex.
    Mutex {
        /// Who owns it.
        owner: Owner,
        /// Recursion count (0 when unowned).
        recursion: u32,
        /// Abandoned and not yet re-acquired (AB-04).
        abandoned: bool,
    },
    /// A semaphore.
    Semaphore {
        /// Current count.
        count: u32,
        /// Maximum count.
        max: u32,
    },
    /// A waitable timer.
    Timer {
        /// Manual-reset (notification).
        manual: bool,
        /// Signaled.
        signaled: bool,
        /// Armed (will expire).
        armed: bool,
    },
}
