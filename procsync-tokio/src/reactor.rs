//! The reactor pool: a few threads, each blocked in one procsync `wait_any` over a
//! private control event (index 0) and up to [`OBJECTS_PER_REACTOR`] objects that async
//! waits are pending on. When a reactor acquires object `i` it hands it to the first
//! still-pending future queued on that object (FIFO), or gives it back if there is none
//! (cancel safety, TO-06). Setting the control event makes the reactor re-read its
//! registrations: new objects, cancelled waiters, mutex unlocks. It is set only when
//! the reactor would not re-read anyway (`ReactorState::rereads`: it is delivering,
//! or the event is already set), and a delivery wakes the task's waker after the pool
//! lock is dropped.
//!
//! Every object is served by exactly one reactor (keyed by [`ObjKey`]), so a reactor
//! that owns a mutex for a task never lists that mutex again until the task lets it
//! go: Win32 mutexes are recursive per thread, and listing it would hand the same
//! mutex to a second task.
//!
//! Threads: a reactor is started only when every running one serves a full set of
//! objects, so their number is at most ⌈peak distinct pending objects / 63⌉, capped by
//! [`max_reactor_threads`]. A reactor with nothing to serve for [`REACTOR_IDLE`] exits
//! and closes its handles, so an idle process holds no procsync handle of ours (and
//! leaves no file behind when it exits).
//!
//! Lock order: the pool lock, then a waiter's lock (inside `Oneshot`). procsync calls
//! that may block (`wait_any`) run with no lock held; releases and sets may run under
//! the pool lock (they never block).
//!
//! It must not call procsync internals, only its public API.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::time::Duration;

use procsync::{CreateOptions, Error, Handle, MAX_WAIT_OBJECTS, ObjectSpec, Result, WaitOutcome};

use crate::delivery::{Delivered, MutexOwner, UnlockDone};
use crate::object::{ObjKey, Target, Undo, give_back};
use crate::oneshot::Oneshot;

/// Objects one reactor waits on (the 64th slot of its wait is the control event).
pub const OBJECTS_PER_REACTOR: usize = MAX_WAIT_OBJECTS - 1;

/// Default cap on reactor threads: 1024 × 63 = 64 512 distinct objects pending at once.
pub const DEFAULT_MAX_REACTOR_THREADS: usize = 1024;

static MAX_REACTORS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_REACTOR_THREADS);

/// How long a reactor with nothing to serve waits before it exits.
pub const REACTOR_IDLE: Duration = Duration::from_secs(1);

/// Stack of a reactor thread: it only runs `wait_any` and the bookkeeping here.
const REACTOR_STACK: usize = 256 * 1024;

/// The future's side of one pending wait.
pub(crate) type Waiter = Oneshot<Result<Delivered>>;

/// Sets the cap on reactor threads (default [`DEFAULT_MAX_REACTOR_THREADS`]). With `n`
/// reactors at most `n × 63` distinct objects can have async waits pending at once; a
/// wait that would need more fails with [`Error::Exhausted`]. Lowering it below the
/// number already running stops no thread.
pub fn set_max_reactor_threads(n: usize) {
    MAX_REACTORS.store(n.max(1), Ordering::Relaxed);
}

/// The cap on reactor threads.
pub fn max_reactor_threads() -> usize {
    MAX_REACTORS.load(Ordering::Relaxed)
}

/// Reactor threads started and not yet done closing their handles.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many reactor threads are running. It drops only once an exiting reactor has
/// closed every handle it held.
pub fn reactor_threads() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// One object a reactor serves, with the waits queued on it.
struct Entry {
    target: Target,
    /// FIFO of (waiter, index of this object in the waiter's list).
    queue: VecDeque<(Arc<Waiter>, usize)>,
    /// A mutex this reactor owns for a task's guard: not listed until unlocked.
    held: bool,
    /// An unlock was asked for (guard dropped); the inner value hears the result.
    unlock: Option<Option<UnlockDone>>,
}

impl Entry {
    fn listed(&self) -> bool {
        !self.held && self.queue.iter().any(|(w, _)| w.is_pending())
    }
}

struct ReactorState {
    control: Arc<Handle>,
    entries: Vec<Entry>,
    /// The reactor will read its registrations again before it next sleeps (it is
    /// delivering, or its control event is already set): a change needs no new set.
    /// Cleared when it takes its snapshot of what to wait on.
    rereads: bool,
}

struct PoolState {
    /// Which reactor serves each object with pending waits or a held guard.
    objects: HashMap<ObjKey, usize>,
    /// Indexed by reactor number; `None` once that reactor exited (the number is
    /// reused by the next reactor started).
    reactors: Vec<Option<ReactorState>>,
}

struct Pool {
    st: Mutex<PoolState>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Every change under this lock leaves the maps consistent before any call that
        // could panic, so a poisoned lock is still usable.
        self.st.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        st: Mutex::new(PoolState {
            objects: HashMap::new(),
            reactors: Vec::new(),
        }),
    })
}

impl PoolState {
    fn entry(&mut self, r: usize, key: ObjKey) -> Option<&mut Entry> {
        self.reactors[r]
            .as_mut()?
            .entries
            .iter_mut()
            .find(|e| e.target.key == key)
    }

    /// The control event to set so that reactor `r` reads its registrations again;
    /// `None` if it will anyway (or is gone). Each call that gets `Some` must set it.
    fn control(&mut self, r: usize) -> Option<Arc<Handle>> {
        let rs = self.reactors[r].as_mut()?;
        if rs.rereads {
            return None;
        }
        rs.rereads = true;
        Some(rs.control.clone())
    }

    /// Reactor `r` is awake and reads its registrations before it sleeps again.
    fn rereading(&mut self, r: usize) {
        if let Some(rs) = self.reactors[r].as_mut() {
            rs.rereads = true;
        }
    }

    /// A reactor with room for one more object, starting one if all are full.
    fn place(&mut self) -> Result<usize> {
        if let Some(r) = self.reactors.iter().position(|r| {
            r.as_ref()
                .is_some_and(|r| r.entries.len() < OBJECTS_PER_REACTOR)
        }) {
            return Ok(r);
        }
        let max = max_reactor_threads();
        if self.reactors.iter().flatten().count() >= max {
            return Err(Error::Exhausted {
                what: "procsync-tokio reactor threads (63 distinct objects each)",
                remedy: "have fewer distinct objects pending at once, or raise the cap with procsync_tokio::set_max_reactor_threads",
            });
        }
        let (control, _) = Handle::create(
            ObjectSpec::Event {
                manual: false,
                initial: false,
            },
            "",
            &CreateOptions::default(),
        )?;
        let r = match self.reactors.iter().position(Option::is_none) {
            Some(r) => r,
            None => {
                self.reactors.push(None);
                self.reactors.len() - 1
            }
        };
        self.reactors[r] = Some(ReactorState {
            control: Arc::new(control),
            entries: Vec::new(),
            rereads: true,
        });
        LIVE.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name(format!("procsync-reactor-{r}"))
            .stack_size(REACTOR_STACK)
            .spawn(move || {
                run(r);
                LIVE.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            LIVE.fetch_sub(1, Ordering::SeqCst);
            self.reactors[r] = None;
            return Err(Error::unsupported(format!(
                "starting a reactor thread failed ({e}); raise the thread limit or wait on fewer objects"
            )));
        }
        Ok(r)
    }
}

/// Queues `waiter` on each of `targets` (index = position in the list) and wakes the
/// reactors that must list something new. Returns the reactors involved. On error the
/// waiter is cancelled (what was queued is pruned) and nothing stays registered.
pub(crate) fn register(targets: &[Target], waiter: &Arc<Waiter>) -> Result<Vec<usize>> {
    let mut st = pool().lock();
    let mut involved: Vec<usize> = Vec::new();
    let mut poke: Vec<Arc<Handle>> = Vec::new();
    let mut failed = None;
    for (i, t) in targets.iter().enumerate() {
        let r = match st.objects.get(&t.key) {
            Some(&r) => r,
            None => match st.place() {
                Ok(r) => {
                    let rs = st.reactors[r]
                        .as_mut()
                        .expect("place returns a running reactor");
                    rs.entries.push(Entry {
                        target: t.clone(),
                        queue: VecDeque::new(),
                        held: false,
                        unlock: None,
                    });
                    st.objects.insert(t.key, r);
                    r
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            },
        };
        let e = st
            .entry(r, t.key)
            .expect("the object map names this reactor");
        let was_listed = e.listed();
        e.queue.push_back((waiter.clone(), i));
        if !involved.contains(&r) {
            involved.push(r);
        }
        if !was_listed && !e.held {
            poke.extend(st.control(r));
        }
    }
    if failed.is_some() {
        let _ = waiter.cancel();
        let more: Vec<Arc<Handle>> = involved.iter().filter_map(|&r| st.control(r)).collect();
        poke.extend(more);
    }
    drop(st);
    poke.dedup_by(|a, b| Arc::ptr_eq(a, b));
    for c in poke {
        let _ = c.set();
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(involved),
    }
}

/// Wakes reactors so they prune waiters that are no longer pending.
pub(crate) fn poke(reactors: &[usize]) {
    let controls: Vec<Arc<Handle>> = {
        let mut st = pool().lock();
        reactors.iter().filter_map(|&r| st.control(r)).collect()
    };
    for c in controls {
        let _ = c.set();
    }
}

/// Asks reactor `r` to release the mutex `key` it holds for a guard.
pub(crate) fn request_unlock(r: usize, key: ObjKey, done: Option<UnlockDone>) {
    let control = {
        let mut st = pool().lock();
        match st.entry(r, key) {
            Some(e) if e.held => {
                e.unlock = Some(done);
                match st.control(r) {
                    Some(c) => c,
                    None => return,
                }
            }
            _ => {
                drop(st);
                if let Some(d) = done {
                    let _ = d.complete(Err(procsync::Error::NotOwner));
                }
                return;
            }
        }
    };
    let _ = control.set();
}

/// The reactor thread's loop; returns when the reactor retires, after which its
/// handles (all locals here) are closed.
fn run(r: usize) {
    loop {
        let (control, listed, unlocks, pruned) = prepare(r);
        // Handles of pruned entries close here, outside the pool lock.
        drop(pruned);
        for (h, done) in unlocks {
            // This thread is the owner: it acquired the mutex for the task.
            let res = h.release(1);
            if let Some(d) = done {
                let _ = d.complete(res);
            }
        }
        let mut refs: Vec<&Handle> = Vec::with_capacity(listed.len() + 1);
        refs.push(&control);
        refs.extend(listed.iter().map(|t| &*t.handle));
        let timeout = listed.is_empty().then_some(REACTOR_IDLE);
        match procsync::wait_any(&refs, timeout) {
            Ok(WaitOutcome::Signaled(0)) => {}
            Ok(WaitOutcome::TimedOut) => {
                if retire(r) {
                    return;
                }
            }
            Ok(WaitOutcome::Signaled(i)) => deliver(r, &listed[i - 1], false),
            Ok(WaitOutcome::Abandoned(i)) => deliver(r, &listed[i - 1], true),
            Err(e) => fail(r, &listed, &e),
        }
    }
}

/// Ends reactor `r` if it still serves nothing (a registration may have come in since
/// its wait timed out). Its handles close when the caller drops them.
fn retire(r: usize) -> bool {
    let mut st = pool().lock();
    let idle = st.reactors[r]
        .as_ref()
        .is_some_and(|rs| rs.entries.is_empty());
    if idle {
        let rs = st.reactors[r].take();
        drop(st);
        drop(rs);
    }
    idle
}

type Prepared = (
    Arc<Handle>,
    Vec<Target>,
    Vec<(Arc<Handle>, Option<UnlockDone>)>,
    Vec<Entry>,
);

/// Under the pool lock: takes unlock requests, prunes entries nobody waits on, and
/// lists the objects to wait on.
fn prepare(r: usize) -> Prepared {
    let mut st = pool().lock();
    let PoolState { objects, reactors } = &mut *st;
    let rs = reactors[r]
        .as_mut()
        .expect("a running reactor has its slot");
    // From here on a change must set the control event again.
    rs.rereads = false;
    let mut unlocks = Vec::new();
    for e in rs.entries.iter_mut() {
        if let Some(done) = e.unlock.take() {
            unlocks.push((e.target.handle.clone(), done));
            e.held = false;
        }
        e.queue.retain(|(w, _)| w.is_pending());
    }
    let mut pruned = Vec::new();
    let mut i = 0;
    while i < rs.entries.len() {
        let e = &rs.entries[i];
        if !e.held && e.queue.is_empty() {
            objects.remove(&e.target.key);
            pruned.push(rs.entries.swap_remove(i));
        } else {
            i += 1;
        }
    }
    let listed = rs
        .entries
        .iter()
        .filter(|e| e.listed())
        .map(|e| e.target.clone())
        .collect();
    (rs.control.clone(), listed, unlocks, pruned)
}

/// Reactor `r` acquired `t`: hand it to the first pending waiter, or give it back.
/// A manual-reset event or timer is consumed by no wait, so every waiter queued on it
/// is released at once, as Win32 releases every thread waiting at the set (or pulse).
fn deliver(r: usize, t: &Target, abandoned: bool) {
    let mut st = pool().lock();
    st.rereading(r);
    let is_mutex = t.is_mutex();
    if t.undo == Undo::Nothing {
        let mut wake = Vec::new();
        if let Some(e) = st.entry(r, t.key) {
            for (w, idx) in e.queue.drain(..) {
                if let Ok(Some(waker)) = w.complete_deferred(Ok(Delivered {
                    outcome: WaitOutcome::Signaled(idx),
                    taken: Vec::new(),
                    owner: None,
                })) {
                    wake.push(waker);
                }
            }
        }
        drop(st);
        wake.into_iter().for_each(Waker::wake);
        return;
    }
    if let Some(e) = st.entry(r, t.key) {
        while let Some((w, idx)) = e.queue.pop_front() {
            let d = Delivered {
                outcome: if abandoned {
                    WaitOutcome::Abandoned(idx)
                } else {
                    WaitOutcome::Signaled(idx)
                },
                taken: if is_mutex {
                    Vec::new()
                } else {
                    vec![t.clone()]
                },
                owner: is_mutex.then_some(MutexOwner::Reactor {
                    reactor: r,
                    key: t.key,
                }),
            };
            if let Ok(waker) = w.complete_deferred(Ok(d)) {
                if is_mutex {
                    e.held = true;
                }
                drop(st);
                if let Some(waker) = waker {
                    waker.wake();
                }
                return;
            }
        }
    }
    drop(st);
    // Nobody wants it any more: as if the waiter had timed out before the signal.
    // For a mutex this thread is the owner, so the release is valid here.
    give_back(t);
}

/// The reactor's wait failed: fail the waits on the objects at fault (a handle that
/// no longer works), or on all listed objects if none can be singled out.
fn fail(r: usize, listed: &[Target], err: &Error) {
    let culprits: Vec<&Target> = listed
        .iter()
        .filter(|t| t.handle.query().is_err())
        .collect();
    let culprits = if culprits.is_empty() {
        listed.iter().collect()
    } else {
        culprits
    };
    let mut st = pool().lock();
    st.rereading(r);
    for t in culprits {
        if let Some(e) = st.entry(r, t.key) {
            for (w, _) in e.queue.drain(..) {
                let why = match t.handle.query() {
                    Err(e) => e,
                    Ok(_) => Error::unsupported(format!(
                        "the reactor's wait on this object failed: {err}"
                    )),
                };
                let _ = w.complete(Err(why));
            }
        }
    }
}
