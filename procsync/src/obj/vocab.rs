//! The public vocabulary of objects: their kinds and what creates one (`ObjectSpec`).
//! A leaf: plain data and validation, nothing that touches a file or a lock.

use crate::error::{Error, Result};
use crate::shm::layout::*;

/// The four object types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// Manual- or auto-reset event.
    Event,
    /// Recursive, thread-owned mutex.
    Mutex,
    /// Counting semaphore with a maximum.
    Semaphore,
    /// Waitable timer.
    Timer,
}

impl ObjectKind {
    pub(crate) fn code(self) -> u32 {
        match self {
            ObjectKind::Event => KIND_EVENT,
            ObjectKind::Mutex => KIND_MUTEX,
            ObjectKind::Semaphore => KIND_SEMAPHORE,
            ObjectKind::Timer => KIND_TIMER,
        }
    }

    pub(super) fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            KIND_EVENT => ObjectKind::Event,
            KIND_MUTEX => ObjectKind::Mutex,
            KIND_SEMAPHORE => ObjectKind::Semaphore,
            KIND_TIMER => ObjectKind::Timer,
            _ => return None,
        })
    }

    /// "an event", "a mutex", …: the name with its article, for messages.
    pub(crate) fn a_name(self) -> &'static str {
        match self {
            ObjectKind::Event => "an event",
            ObjectKind::Mutex => "a mutex",
            ObjectKind::Semaphore => "a semaphore",
            ObjectKind::Timer => "a timer",
        }
    }

    /// Lowercase name, as in messages and the REPL.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Event => "event",
            ObjectKind::Mutex => "mutex",
            ObjectKind::Semaphore => "semaphore",
            ObjectKind::Timer => "timer",
        }
    }
}

/// What a new object is, with its immutable parameters and initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectSpec {
    /// An event: manual-reset or auto-reset, initially set or not.
    Event {
        /// Manual-reset (notification) rather than auto-reset (synchronization).
        manual: bool,
        /// Created signaled.
        initial: bool,
    },
    /// A mutex, optionally owned by the creating thread (only if newly created, CO-03).
    Mutex {
        /// The creating thread owns it (recursion 1).
        owned: bool,
    },
    /// A semaphore; `initial ≤ max`, `1 ≤ max ≤ 0x7FFF_FFFF` (SM-01, SM-02).
    Semaphore {
        /// Initial count.
        initial: u32,
        /// Maximum count.
        max: u32,
    },
    /// A waitable timer.
    Timer {
        /// Manual-reset (notification) rather than synchronization.
        manual: bool,
    },
}

impl ObjectSpec {
    /// The kind of object this creates.
    pub fn kind(&self) -> ObjectKind {
        match self {
            ObjectSpec::Event { .. } => ObjectKind::Event,
            ObjectSpec::Mutex { .. } => ObjectKind::Mutex,
            ObjectSpec::Semaphore { .. } => ObjectKind::Semaphore,
            ObjectSpec::Timer { .. } => ObjectKind::Timer,
        }
    }

    /// Checks the parameters (SM-01).
    pub(crate) fn validate(&self) -> Result<()> {
        if let ObjectSpec::Semaphore { initial, max } = *self {
            if max == 0 || max > MAX_SEMAPHORE {
                return Err(Error::invalid(format!(
                    "a semaphore maximum must be between 1 and {MAX_SEMAPHORE}, not {max}"
                )));
            }
            if initial > max {
                return Err(Error::invalid(format!(
                    "a semaphore's initial count ({initial}) may not exceed its maximum ({max})"
                )));
            }
        }
        Ok(())
    }

    pub(super) fn param(&self) -> u32 {
        match *self {
            ObjectSpec::Event { manual, .. } | ObjectSpec::Timer { manual } => u32::from(manual),
            ObjectSpec::Mutex { .. } => 0,
            ObjectSpec::Semaphore { max, .. } => max,
        }
    }

    pub(super) fn initial_state(&self) -> u64 {
        match *self {
            ObjectSpec::Event { initial, .. } => u64::from(initial),
            ObjectSpec::Semaphore { initial, .. } => u64::from(initial),
            ObjectSpec::Mutex { .. } | ObjectSpec::Timer { .. } => 0,
        }
    }
}
