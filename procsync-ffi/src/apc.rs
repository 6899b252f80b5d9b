//! Asynchronous procedure calls: timer completion routines and `QueueUserAPC`, run on
//! their thread and only during an alertable wait (`SleepEx(…, TRUE)`,
//! `WaitFor…Ex(…, TRUE)`, `SignalObjectAndWait(…, TRUE)`), which then returns
//! `WAIT_IO_COMPLETION` (TM-24, W1-09).
//!
//! Nothing queues an APC to a thread asynchronously here (`QueueUserAPC` accepts only
//! the calling thread), so each thread's queue is thread-local. A timer's completion
//! routine is recorded with the due time that the library's timer uses (taken just
//! before arming it, so it is never later than the timer's expiry): an alertable wait
//! first moves the routines that are due into the queue, and a blocking alertable wait
//! wakes up at the next due routine. So once a wait has seen the timer signaled, the
//! next alertable wait of the setting thread runs its routine, as on Windows. One call
//! per expiry observed; missed periods are coalesced (TM-13).
//!
//! It must not know which wait function is running.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procsync::Handle;

use crate::types::TimerApcRoutine;

/// One queued call.
pub type Apc = Box<dyn FnOnce()>;

thread_local! {
    static CALLS: RefCell<VecDeque<Apc>> = const { RefCell::new(VecDeque::new()) };
}

/// When a routine is due: on the clock the timer uses.
#[derive(Clone, Copy, Debug)]
pub enum Due {
    /// Relative due times: the monotonic clock.
    Mono(Instant),
    /// Absolute due times: the wall clock.
    Wall(SystemTime),
}

impl Due {
    /// Time left until due (zero once due).
    fn left(&self) -> Duration {
        match self {
            Due::Mono(i) => i.saturating_duration_since(Instant::now()),
            Due::Wall(t) => t.duration_since(SystemTime::now()).unwrap_or_default(),
        }
    }

    fn plus(self, d: Duration) -> Due {
        match self {
            Due::Mono(i) => Due::Mono(i + d),
            Due::Wall(t) => Due::Wall(t + d),
        }
    }
}

/// A timer's completion routine, waiting for its due time.
struct Armed {
    timer: Arc<Handle>,
    thread: ThreadId,
    due: Due,
    period: Duration,
    routine: TimerApcRoutine,
    arg: usize,
}

static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

fn armed() -> std::sync::MutexGuard<'static, Vec<Armed>> {
    ARMED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues `call` to the calling thread.
pub fn queue_self(call: Apc) {
    CALLS.with(|c| c.borrow_mut().push_back(call));
}

/// Forgets the routine of timer `timer` (set again or cancelled, through any handle).
pub fn disarm(timer: &Handle) {
    armed().retain(|a| !a.timer.same_object(timer));
}

/// Records `routine(arg)` for the calling thread at `due`, then every `period_ms`.
pub fn arm(
    timer: &Arc<Handle>,
    due: Due,
    period_ms: u32,
    routine: TimerApcRoutine,
    arg: *mut c_void,
) {
    disarm(timer);
    armed().push(Armed {
        timer: timer.clone(),
        thread: std::thread::current().id(),
        due,
        period: Duration::from_millis(u64::from(period_ms)),
        routine,
        arg: arg as usize,
    });
}

fn filetime_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_nanos() / 100) as u64 + 116_444_736_000_000_000
}

/// Moves this thread's due routines into its queue.
fn collect_due() {
    let me = std::thread::current().id();
    let mut fired = Vec::new();
    armed().retain_mut(|a| {
        if a.thread != me || a.due.left() > Duration::ZERO {
            return true;
        }
        fired.push((a.routine, a.arg));
        if a.period.is_zero() {
            return false;
        }
        while a.due.left() == Duration::ZERO {
            a.due = a.due.plus(a.period);
        }
        true
    });
    let now = filetime_now();
    for (routine, arg) in fired {
        if let Some(r) = routine {
            queue_self(Box::new(move || {
                // SAFETY: a C completion routine, called on its setting thread with the
                // argument it was given, as Windows does.
                unsafe { r(arg as *mut c_void, now as u32, (now >> 32) as u32) }
            }));
        }
    }
}

/// Runs the calling thread's due routines and queued calls, in order; returns how many ran.
pub fn run() -> usize {
    collect_due();
    let mut n = 0;
    while let Some(call) = CALLS.with(|c| c.borrow_mut().pop_front()) {
        call();
        n += 1;
    }
    n
}

/// Time until the calling thread's next routine is due, if it has one.
pub fn next_due() -> Option<Duration> {
    let me = std::thread::current().id();
    armed()
        .iter()
        .filter(|a| a.thread == me)
        .map(|a| a.due.left())
        .min()
}
