//! Deadlines on CLOCK_MONOTONIC (`std::time::Instant`). The clock is read only when a
//! timeout is finite and non-zero.

use std::time::{Duration, Instant};

/// When a wait gives up. `Never` is INFINITE; `Now` is a poll (timeout 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Timeout 0: test the state and return.
    Now,
    /// A finite timeout, absolute on the monotonic clock.
    At(Instant),
    /// INFINITE.
    Never,
}

impl Deadline {
    /// `None` means infinite.
    pub(crate) fn after(timeout: Option<Duration>) -> Self {
        match timeout {
            None => Deadline::Never,
            Some(d) if d.is_zero() => Deadline::Now,
            // An overflow (a timeout of centuries) is as good as infinite.
            Some(d) => Instant::now()
                .checked_add(d)
                .map_or(Deadline::Never, Deadline::At),
        }
    }

    /// Time left, `Some(ZERO)` when passed, `None` when infinite.
    pub(crate) fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(t) => Some(t.saturating_duration_since(Instant::now())),
            Deadline::Never => None,
        }
    }

    /// The earlier of two deadlines.
    pub(crate) fn min(self, other: Deadline) -> Deadline {
        match (self, other) {
            (Deadline::Now, _) | (_, Deadline::Now) => Deadline::Now,
            (Deadline::Never, d) | (d, Deadline::Never) => d,
            (Deadline::At(a), Deadline::At(b)) => Deadline::At(a.min(b)),
        }
    }
}

/// Nanoseconds on CLOCK_MONOTONIC (the clock of relative due times).
pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Monotonic)
}

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME (the clock of absolute due times).
pub(crate) fn realtime_ns() -> u64 {
    clock_ns(rustix::time::ClockId::Realtime)
}

fn clock_ns(id: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(id);
    (t.tv_sec.max(0) as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec.max(0) as u64)
}
