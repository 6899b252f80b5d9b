//! A wait-any that no thread blocks in: the same protocol as `any` (try, queue,
//! sleep, cancel), with the sleep left to the caller. The async waits use it: their
//! futures sleep in an io_uring futex wait on the words a [`Turn::Sleep`] names, and
//! come back with how it ended, so that a wake-up reaches the runtime thread that
//! polls the future directly, with no thread in between.
//!
//! - The block is leased (`park::WaitBlock::arm_leased`), not the thread's: any number
//!   of detached waits may be pending in one thread.
//! - The waiter's identity in queue entries is the process's, not a thread's
//!   (`thread::detached_ident`): the wait outlives no process, and no thread that
//!   signals mistakes it for itself. For that reason a detached wait takes no mutex
//!   (a mutex is owned by a thread): a list holding one is refused.
//! - No spinning: a detached wait never occupies the thread that drives it.
//! - [`Detached::cancel`] ends a pending wait as a timeout would (TO-06), and gives back
//!   what a signaller handed over meanwhile (`signal::give_back`: a semaphore unit
//!   released, an auto-reset event set again or, if a later set found it unset and
//!   set it, a signal banked so that the two do not merge), to the next waiter in
//!   line, under the object's lock.
//!
//! It must not sleep: every call returns as soon as it has looked.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use super::any::{self, Queued, Sleeper, Step};
use super::{WaitOutcome, needs_public};
use crate::error::{Error, Result};
use crate::obj::ObjectKind;
use crate::obj::{Object, signal};
use crate::park::WaitBlock;
use crate::park::bell::BellRef;
use crate::sys::futex::Woke;
use crate::sys::thread;
use crate::sys::time::Deadline;

/// A belled sleep (`park::bell`): the key of the bell message that ends it, and the
/// segment's fallback word with the value it held before the announce.
pub(crate) type BellSleep = (u64, *const AtomicU32, u32);

/// What the caller does next.
pub(crate) enum Turn {
    /// The wait is over.
    Done(WaitOutcome),
    /// Sleep until one of `words` no longer holds its value (or is woken), or `until`;
    /// then call [`Detached::turn`] with how the sleep ended. The addresses stay valid
    /// until the next call on the wait, or its drop.
    Sleep {
        /// The doorbell and the value to sleep on.
        doorbell: (*const AtomicU32, u32),
        /// Empty when the doorbell is the only word; else every word, the doorbell first.
        words: Vec<(*const AtomicU32, u32)>,
        until: Deadline,
        /// `until` is the deadline or a timer's due time, not a periodic re-check.
        exact: bool,
        /// Woken through the bell, not by a `FUTEX_WAKE` of `words`.
        bell: Option<BellSleep>,
    },
}

struct Armed {
    wb: WaitBlock,
    q: Queued,
    sleeper: Sleeper,
    /// The bell the block names (its signallers ring it instead of the doorbell).
    bell: Option<BellRef>,
}

/// A pending detached wait-any; see the module doc.
pub(crate) struct Detached {
    objs: Objs,
    deadline: Deadline,
    me: u64,
    armed: Option<Armed>,
    /// The block of a wait that `cancel` ended: kept until the drop, since the caller
    /// may still have a futex sleep on its doorbell (the module doc).
    spent: Option<WaitBlock>,
    started: bool,
    /// Done or cancelled: a further turn is a caller's mistake, not a new wait.
    over: bool,
    /// The process that made the wait: a forked child must not touch its block.
    pid: u32,
    /// The caller's bell, for the sleeps that can use it.
    bell: Option<BellRef>,
}

impl Detached {
    /// What a detached wait refuses: a mutex among `objs` (owned by a thread; a
    /// detached wait has none).
    pub(crate) fn check(objs: &Objs) -> Result<()> {
        match objs.as_slice().iter().find(|o| o.owned()) {
            Some(o) => Err(o.wrong_type(
                "a detached wait (a mutex is owned by a thread; wait for it from one)",
            )),
            None => Ok(()),
        }
    }

    /// A wait on `objs` (1 to 64) that [`check`](Self::check) passed; nothing happens
    /// before the first [`turn`](Self::turn). Infallible, so that a caller boxing it
    /// builds it in place (it is a few hundred bytes, which a `Result` in between made
    /// the caller copy twice).
    #[inline]
    pub(crate) fn new_checked(objs: Objs, deadline: Deadline) -> Detached {
        Detached {
            objs,
            deadline,
            me: thread::detached_ident(),
            armed: None,
            spent: None,
            started: false,
            over: false,
            pid: thread::me().pid,
            bell: None,
        }
    }

    /// Asks that the wait's sleeps be rung through `bell` where they can: a wait with no
    /// deadline and no waitable timer, on a private block, queued in every object
    /// (`Turn::Sleep::bell` says when).
    pub(crate) fn set_bell(&mut self, bell: BellRef) {
        self.bell = Some(bell);
    }

    /// Advances the wait: `woke` is how the sleep that the previous turn asked for
    /// ended (`None` on the first turn).
    pub(crate) fn turn(&mut self, woke: Option<Woke>) -> Result<Turn> {
        if self.over {
            return Err(Error::invalid(
                "this detached wait is over (done or cancelled): start a new one",
            ));
        }
        let turn = self.turn_inner(woke);
        if !matches!(turn, Ok(Turn::Sleep { .. })) {
            self.over = true;
        }
        turn
    }

    fn turn_inner(&mut self, woke: Option<Woke>) -> Result<Turn> {
        let objs = std::mem::take(&mut self.objs);
        let turn = with_lists(objs.as_slice(), |refs, uniq| {
            self.turn_with(refs, uniq, woke)
        });
        self.objs = objs;
        turn
    }

    fn turn_with(
        &mut self,
        refs: &[&Arc<Object>],
        uniq: &[(usize, &Arc<Object>)],
        woke: Option<Woke>,
    ) -> Result<Turn> {
        let (me, deadline) = (self.me, self.deadline);
        if !self.started {
            self.started = true;
            if let Some(outcome) = any::try_now(uniq, me, deadline, false)? {
                return Ok(Turn::Done(outcome));
            }
        }
        let mut woke = woke;
        loop {
            let Some(a) = &mut self.armed else {
                if deadline == Deadline::Now || deadline.remaining() == Some(Duration::ZERO) {
                    return Ok(Turn::Done(WaitOutcome::TimedOut));
                }
                let wb = WaitBlock::arm_leased(needs_public(refs))?;
                let q = any::enqueue(&wb, uniq, me, deadline, false);
                let sleeper = Sleeper::new(uniq, &q.overflow, false, deadline, true);
                // A belled sleep has no word but the bell's: no overflow `seq`, no
                // instant to keep (a deadline, a timer's due time).
                let bell = self.bell.filter(|_| {
                    !wb.public()
                        && q.overflow.is_empty()
                        && deadline == Deadline::Never
                        && !uniq.iter().any(|(_, o)| o.kind == ObjectKind::Timer)
                });
                self.armed = Some(Armed {
                    wb,
                    q,
                    sleeper,
                    bell,
                });
                woke = None;
                continue;
            };
            if a.q.failure.is_none() && a.q.took.is_none() {
                // Before the announce (in `step`): the bell, and the fallback's value.
                let rung_by = a.bell.map(|b| {
                    let (key, word, value) = a.wb.set_bell(b);
                    (key, word as *const AtomicU32, value)
                });
                match a
                    .sleeper
                    .step(&a.wb, uniq, &a.q.overflow, me, woke, &mut a.q.failure)
                {
                    Step::Sleep {
                        bell, slice, exact, ..
                    } => {
                        let more = a.sleeper.more(uniq, &a.q.overflow, &a.q.watch);
                        let mut words = Vec::new(); // no allocation for the doorbell alone
                        if !more.is_empty() {
                            words.push((a.wb.doorbell() as *const AtomicU32, bell));
                            words.extend(more.into_iter().map(|(w, v)| (w as *const AtomicU32, v)));
                        }
                        return Ok(Turn::Sleep {
                            doorbell: (a.wb.doorbell() as *const AtomicU32, bell),
                            words,
                            until: slice,
                            exact,
                            bell: rung_by,
                        });
                    }
                    Step::Done(took) => a.q.took = took,
                }
            }
            let Armed { wb, q, .. } = self.armed.take().expect("armed above");
            match any::conclude(&wb, uniq, refs, me, q)? {
                Some(outcome) => return Ok(Turn::Done(outcome)),
                // A forged claim on a public block: queue again, same deadline.
                None => continue,
            }
        }
    }

    /// Ends a pending wait as if it had timed out: what a signaller handed over before
    /// the cancel took effect is given back to the object (and so to its next waiter).
    pub(crate) fn cancel(&mut self) -> Result<()> {
        self.over = true;
        if self.pid != thread::me().pid {
            // A forked child: the block, its claim and its entries are the parent's.
            std::mem::forget(self.armed.take());
            return Ok(());
        }
        let Some(Armed { wb, q, .. }) = self.armed.take() else {
            return Ok(());
        };
        let me = self.me;
        let concluded = with_lists(self.objs.as_slice(), |refs, uniq| {
            any::conclude(&wb, uniq, refs, me, q)
        });
        // The claim is final now (no signaller rings this generation again), but a
        // futex sleep of the caller's may still be on the doorbell: the block is given
        // back only when the wait is dropped.
        self.spent = Some(wb);
        match concluded? {
            Some(WaitOutcome::Signaled(i) | WaitOutcome::Abandoned(i)) => {
                signal::give_back(&self.objs.as_slice()[i], self.me)
            }
            Some(WaitOutcome::TimedOut) | None => Ok(()),
        }
    }
}

/// A detached wait's objects: most waits name one, which then needs no allocation.
#[derive(Default)]
pub(crate) enum Objs {
    /// Only while a turn has them out (`Detached::turn_inner`).
    #[default]
    Taken,
    One(Arc<Object>),
    Many(Vec<Arc<Object>>),
}

impl Objs {
    pub(crate) fn as_slice(&self) -> &[Arc<Object>] {
        match self {
            Objs::Taken => &[],
            Objs::One(o) => std::slice::from_ref(o),
            Objs::Many(v) => v,
        }
    }
}

/// Runs `f` with the list as references and its distinct objects (first occurrence,
/// with its index, `any::with_distinct`): the references on the stack for the short
/// lists most waits have (a detached wait is turned at least twice, and allocations
/// were a fifth of its cost), else in a vector.
fn with_lists<R>(
    objs: &[Arc<Object>],
    f: impl FnOnce(&[&Arc<Object>], &[(usize, &Arc<Object>)]) -> R,
) -> R {
    const SHORT: usize = 4;
    match objs {
        [first, ..] if objs.len() <= SHORT => {
            let mut refs = [first; SHORT];
            for (r, o) in refs.iter_mut().zip(objs) {
                *r = o;
            }
            let refs = &refs[..objs.len()];
            any::with_distinct(refs, |uniq| f(refs, uniq))
        }
        _ => {
            let refs: Vec<&Arc<Object>> = objs.iter().collect();
            any::with_distinct(&refs, |uniq| f(&refs, uniq))
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        let _ = self.cancel();
        if self.pid != thread::me().pid {
            std::mem::forget(self.spent.take());
        }
    }
}
