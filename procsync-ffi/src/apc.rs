//! Per-thread APC queues (asynchronous procedure calls): timer completion routines and
//! `QueueUserAPC` run on their thread, and only during an alertable wait
//! (`SleepEx(…, TRUE)`, `WaitFor…Ex(…, TRUE)`, `SignalObjectAndWait(…, TRUE)`), which
//! then returns `WAIT_IO_COMPLETION` (TM-24, W1-09).
//!
//! Each thread that has an APC queue also has a private unnamed auto-reset event, set
//! whenever an APC is queued; an alertable wait adds it to the objects it waits on, so
//! queuing wakes the wait. APCs queued to a thread that has exited are dropped, as on
//! Windows.
//!
//! It must not know which wait function is running.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use procsync::{CreateOptions, Handle, ObjectSpec};

use crate::last_error::W;

/// One queued call.
pub type Apc = Box<dyn FnOnce() + Send>;

/// A thread's APC queue.
pub struct Queue {
    calls: Mutex<VecDeque<Apc>>,
    /// Set when a call is queued.
    pub event: Handle,
}

thread_local! {
    static MINE: OnceLock<Arc<Queue>> = const { OnceLock::new() };
}

/// The calling thread's queue (created on first use).
pub fn current() -> W<Arc<Queue>> {
    MINE.with(|q| {
        if let Some(q) = q.get() {
            return Ok(q.clone());
        }
        let spec = ObjectSpec::Event {
            manual: false,
            initial: false,
        };
        let (event, _) = Handle::create(spec, "", &CreateOptions::default())?;
        let new = Arc::new(Queue {
            calls: Mutex::new(VecDeque::new()),
            event,
        });
        Ok(q.get_or_init(|| new).clone())
    })
}

impl Queue {
    /// Queues `call` and wakes the thread's alertable wait.
    pub fn push(&self, call: Apc) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(call);
        let _ = self.event.set();
    }

    /// Runs every queued call, in order; returns how many ran.
    pub fn run(&self) -> usize {
        let mut n = 0;
        loop {
            let next = self
                .calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            match next {
                Some(call) => {
                    call();
                    n += 1;
                }
                None => return n,
            }
        }
    }
}

/// Queues `call` to a thread through a weak reference (dropped if the thread is gone).
pub fn push_to(q: &Weak<Queue>, call: Apc) {
    if let Some(q) = q.upgrade() {
        q.push(call);
    }
}
