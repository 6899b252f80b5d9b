//! Bells (`procsync::detached::Bell`): the way a belled sleep ends without a futex wait
//! of its own. The runtime's bell is a pipe in its epoll; a signaller writes a message
//! naming the rung wait (docs/ASYNC.md, "How it works: bells"). Here: registering a
//! belled sleep, reading the bell, the one futex wait per segment on its fallback word
//! (for signallers that cannot reach the bell), and the counts of how sleeps ended.
//!
//! It shares the driver's slots and ring with `uring`, whose child it is.
#![allow(unsafe_code)] // the words a sleep gave: read here, slept on by the kernel

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use io_uring::{IoUring, opcode};
use procsync::detached::{Bell, BellKey, BellSleep, SleepOn};

use super::{Driver, FUTEX2_SIZE_U32, MATCH_ANY, SWEEP_TAG, Slot, Slots, key, lock};

/// Up to this many belled sleeps pending, a ring of the bell is told by their doorbells
/// (no read of the pipe); beyond, by the pipe's messages.
const SCAN_BELLED: usize = 64;

/// While doorbells tell, the bell's pipe is still read this often (in times it turned
/// readable), so that it does not fill: a sleep's ring writes one message, and about
/// `SCAN_BELLED` sleeps are rung per time, so the pipe holds some 32 KiB at most between
/// reads, below the smallest pipe. Should it fill all the same, signallers ring the
/// fallback word: slower, not lost.
const READ_BELL_EVERY: u32 = 64;

/// How the io_uring path's sleeps ended in this process so far, by what ended them
/// ([`wake_counts`]): for monitoring and tests, not a synchronization tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WakeCounts {
    /// Rung through the runtime's bell (the usual way: a pipe in its epoll).
    pub bell: u64,
    /// Rung through a segment's fallback word: a signaller that could not reach the
    /// bell (another user than the waiter's, a non-dumpable waiter, a full pipe).
    pub fallback: u64,
    /// A futex wait of their own completed (sleeps that cannot use the bell: waits on
    /// `Global\` objects or waitable timers, a full queue, `PROCSYNC_TOKIO_BELL=0`).
    pub futex: u64,
    /// Ended by the once-a-second safety-net re-check.
    pub sweep: u64,
}

static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

const C_BELL: usize = 0;

const C_FALLBACK: usize = 1;

pub(super) const C_FUTEX: usize = 2;

pub(super) const C_SWEEP: usize = 3;

pub(super) fn count(which: usize, n: usize) {
    if n > 0 {
        COUNTS[which].fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// How the io_uring path's sleeps have ended so far, in this process.
pub fn wake_counts() -> WakeCounts {
    let c = |i: usize| COUNTS[i].load(Ordering::Relaxed);
    WakeCounts {
        bell: c(C_BELL),
        fallback: c(C_FALLBACK),
        futex: c(C_FUTEX),
        sweep: c(C_SWEEP),
    }
}

/// A hasher for keys that are already well spread (bell keys, word addresses): one
/// multiplication, not SipHash (the map is touched twice per belled sleep).
#[derive(Default)]
pub(super) struct Spread(u64);

impl std::hash::Hasher for Spread {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

pub(super) type SpreadMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Spread>>;

pub(super) struct BellFd(pub(super) Bell);

impl AsRawFd for BellFd {
    fn as_raw_fd(&self) -> RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

/// A fallback word's futex wait completed: every belled sleep that relies on it is
/// woken to re-check (and, sleeping again, registers anew: the first to do so submits
/// the word's next futex wait). Called with the slots' lock held.
pub(super) fn refall(slots: &mut Slots, addr: usize, wake: &mut Vec<Waker>) {
    let keys: Vec<u64> = slots
        .slots
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| matches!(s, Slot::Belled(_, _, _, a, _) if *a == addr))
        .map(|(i, (g, _))| key(i, *g))
        .collect();
    let before = wake.len();
    for k in keys {
        wake.extend(slots.ring(k, 0));
    }
    count(C_FALLBACK, wake.len() - before);
    // Every belled sleep of the word was just rung (and so no longer relies on it): the
    // next one to register submits a new futex wait, from a value read before its own
    // announce.
    slots.fallbacks.remove(&addr);
}

/// Queues `e`, submitting to make room if the queue is full; `false` if it could not.
///
/// # Safety
/// What `e` points to must stay valid until its completion.
unsafe fn push(ring: &mut IoUring, e: &io_uring::squeue::Entry) -> bool {
    // SAFETY: the caller's promise.
    while unsafe { ring.submission().push(e) }.is_err() {
        if ring.submit().is_err() {
            return false;
        }
    }
    true
}

impl Driver {
    /// The runtime's bell, for [`DetachedWait::set_bell`].
    pub(crate) fn bell(&self) -> Option<&Bell> {
        self.bell.as_ref().map(|b| &b.get_ref().0)
    }

    /// Registers a belled sleep (`on.bell()` is `bell`): it ends when the bell brings
    /// its key, when its fallback word changes (one futex wait per word, submitted
    /// here if none is outstanding), or at the sweep. Returns the key to
    /// [`poll`](Self::poll) it with. It cannot fail: a futex wait or sweep timer that
    /// cannot be queued is left to the next registration.
    pub(crate) fn park(&self, on: &SleepOn, bell: &BellSleep, waker: Waker) -> u64 {
        let fb = bell.fallback();
        let addr = fb.addr() as usize;
        let mut slots = lock(&self.slots);
        let swept = on.until();
        let door = on.words()[0];
        let key = slots.put(Slot::Belled(
            Some(waker),
            swept,
            bell.key(),
            addr,
            (door.addr() as usize, door.expected()),
        ));
        slots.belled.insert(bell.key(), key);
        // A ring between the wait's announce and now found no slot to complete (a
        // drain of the bell, or a fallback's re-check, on another worker): it changed
        // the doorbell (or the fallback word) first, so look. A ring after this look
        // finds the slot (the bell is drained, the fallback re-checked, under this lock).
        // SAFETY: the doorbell is valid until the next call on its wait, which waits for
        // this slot; the fallback word for the life of the process (`BellSleep`).
        let moved = unsafe {
            (*door.addr()).load(Ordering::Acquire) != door.expected()
                || (*fb.addr()).load(Ordering::Acquire) != fb.expected()
        };
        if moved {
            let _ = slots.ring(key, 0);
        }
        // One futex wait per fallback word, from this wait's value (read before its
        // announce). The flags are set now, under the lock, and undone below if the
        // request cannot be queued (as `submit` does).
        let fallback = (!slots.fallbacks.contains_key(&addr)).then(|| {
            let fkey = slots.put(Slot::Fallback(addr));
            slots.fallbacks.insert(addr, fkey);
            fkey
        });
        let sweep = swept.is_some() && !std::mem::replace(&mut slots.sweeping, true);
        drop(slots);
        if fallback.is_none() && !sweep {
            return key;
        }
        // Taken after the slots' lock is let go (the order elsewhere is ring, then
        // slots); a completion of the entries finds their slots in place.
        let mut ring = lock(&self.ring);
        let queued_fallback = fallback.map(|fkey| {
            let e = opcode::FutexWait::new(
                fb.addr().cast::<u32>(),
                u64::from(fb.expected()),
                MATCH_ANY,
                FUTEX2_SIZE_U32,
            )
            .build()
            .user_data(fkey);
            // SAFETY: the fallback word is in a wait-block segment of this process,
            // attached for the life of the process.
            unsafe { push(&mut ring, &e) }
        });
        let queued_sweep = sweep && {
            let e = opcode::Timeout::new(&*self.every)
                .build()
                .user_data(SWEEP_TAG);
            // SAFETY: the sweep's period lives in the driver, after the ring.
            unsafe { push(&mut ring, &e) }
        };
        super::enter(&mut ring);
        if queued_fallback == Some(false) || (sweep && !queued_sweep) {
            // Not queued: undo, so that the next belled sleep tries again (meanwhile
            // the belled sleeps still hear the bell, and the sweep re-checks them).
            let mut slots = lock(&self.slots);
            if let (Some(fkey), Some(false)) = (fallback, queued_fallback) {
                if slots.fallbacks.get(&addr) == Some(&fkey) {
                    slots.fallbacks.remove(&addr);
                }
                slots.release(fkey);
            }
            if sweep && !queued_sweep {
                slots.sweeping = false;
            }
        }
        key
    }

    /// The bell turned readable: completes the sleeps it rang. With few belled sleeps
    /// pending, their doorbells say which were rung (a signaller rings the doorbell
    /// before the bell) and the pipe is read only every [`READ_BELL_EVERY`] times, to
    /// keep it from filling; with many, its messages say.
    pub(super) fn drain_bell(&self) {
        let Some(bell) = self.bell() else { return };
        let mut wake = Vec::new();
        {
            let mut slots = lock(&self.slots);
            slots.unread += 1;
            let keys: Vec<u64> =
                if slots.belled.len() <= SCAN_BELLED && slots.unread < READ_BELL_EVERY {
                    slots
                        .belled
                        .values()
                        .copied()
                        .filter(|&k| match slots.peek(k) {
                            Some(Slot::Belled(.., (door, expected))) => {
                                // SAFETY: a doorbell of this process's own wait-block
                                // segments, attached for the life of the process.
                                let w = unsafe { &*(*door as *const std::sync::atomic::AtomicU32) };
                                w.load(Ordering::Acquire) != *expected
                            }
                            _ => false,
                        })
                        .collect()
                } else {
                    slots.unread = 0;
                    let mut rung = Vec::new();
                    let whole = bell.drain(|k| rung.push(k)).unwrap_or(false);
                    if whole {
                        rung.iter()
                            .filter_map(|k| slots.belled.get(k).copied())
                            .collect()
                    } else {
                        slots.belled.values().copied().collect()
                    }
                };
            let before = wake.len();
            for k in keys {
                wake.extend(slots.ring(k, 0));
            }
            count(C_BELL, wake.len() - before);
        }
        for w in wake {
            w.wake();
        }
    }
}

impl Slots {
    /// A belled sleep ended (completed or dropped): its bell key names it no more.
    pub(super) fn unbell(&mut self, bell: BellKey, slot: u64) {
        if self.belled.get(&bell) == Some(&slot) {
            self.belled.remove(&bell);
        }
    }

    /// Completes belled sleep `slot` with `res`; its waker, if it has one.
    pub(super) fn ring(&mut self, slot: u64, res: i32) -> Option<Waker> {
        let s = self.get(slot)?;
        if !matches!(s, Slot::Belled(..)) {
            return None;
        }
        let Slot::Belled(w, _, bell, _, _) = std::mem::replace(s, Slot::Done(res)) else {
            unreachable!("matched above");
        };
        self.unbell(bell, slot);
        w
    }
}

#[cfg(test)]
mod tests {
    use std::task::{Context, Poll, Waker};

    use procsync::detached::{DetachedWait, Progress};
    use procsync::{CreateOptions, Handle, ObjectSpec};

    use super::super::{Ended, driver};

    /// A ring can reach the driver between a wait's announce and its registration (the
    /// driver drains the bell on another worker): the registration looks at the
    /// doorbell and the fallback word, so the wait is completed, not left to the
    /// once-a-second re-check.
    #[test]
    fn a_ring_before_the_registration_is_not_lost() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Some(d) = driver() else {
                eprintln!("SKIPPED: no io_uring futex waits here");
                return;
            };
            let spec = ObjectSpec::Event {
                manual: false,
                initial: false,
            };
            for by_fallback in [false, true] {
                let (h, _) = Handle::create(spec, "", &CreateOptions::default()).unwrap();
                let mut w = DetachedWait::new(&[&h], None).unwrap();
                w.set_bell(d.bell().expect("a bell"));
                let Ok(Progress::Sleep(on)) = w.start() else {
                    panic!("the event is not set: the wait sleeps");
                };
                let bell = *on.bell().expect("an unnamed event's wait uses the bell");
                if by_fallback {
                    // SAFETY: the fallback word lives as long as the process.
                    unsafe { &*bell.fallback().addr() }
                        .fetch_add(1, std::sync::atomic::Ordering::Release);
                } else {
                    h.set().unwrap(); // hands the event over and rings the bell
                    d.drain_bell(); // ... which finds no slot yet
                }
                let key = d.park(&on, &bell, Waker::noop().clone());
                let mut cx = Context::from_waker(Waker::noop());
                assert!(
                    matches!(d.poll(key, &mut cx), Poll::Ready(Ok(Ended::Woken))),
                    "completed at its registration (by_fallback: {by_fallback})"
                );
                if !by_fallback {
                    assert!(matches!(
                        w.woken(),
                        Ok(Progress::Done(procsync::WaitOutcome::Signaled(0)))
                    ));
                }
            }
        });
    }
}
