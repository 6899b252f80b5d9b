//! A one-value hand-off between a producer thread (a reactor or a wait-all thread) and
//! the future that waits for it, with the cancellation rule the crate is built on:
//! exactly one of `complete` and `cancel` wins. A producer whose `complete` loses gets
//! its value back and must undo what it acquired; a future whose `cancel` finds a value
//! already delivered gets it back and must undo it. So a value is never both given and
//! lost, and never given twice.
//!
//! A producer may complete without waking ([`Oneshot::complete_deferred`]) and wake the
//! future once it dropped its own locks, so that the woken task never runs into them.
//!
//! It owns no procsync object and must not block: the lock is held for a state change.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The shared state of one hand-off.
#[derive(Debug)]
pub(crate) struct Oneshot<T> {
    state: Mutex<State<T>>,
    /// Mirrors `state` being `Pending` (written under the lock), so that a reactor
    /// scanning its queues reads it without taking every waiter's lock.
    pending: AtomicBool,
}

#[derive(Debug)]
enum State<T> {
    /// Nothing yet; the future's waker, once it was polled.
    Pending(Option<Waker>),
    /// Delivered, not yet taken by the future.
    Done(T),
    /// The future went away before a value arrived.
    Cancelled,
    /// The future took the value.
    Taken,
}

impl<T> Oneshot<T> {
    pub(crate) fn new() -> Oneshot<T> {
        Oneshot {
            state: Mutex::new(State::Pending(None)),
            pending: AtomicBool::new(true),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves a valid state (every change is one
        // assignment), so poisoning carries no information here.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a value would still be accepted (the future waits and nothing came yet).
    /// A hint for pruning queues: once false it stays false; `complete` decides.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Delivers `v`; `Err(v)` when the future was cancelled or already served, in which
    /// case the caller still holds whatever `v` stands for and must give it back.
    pub(crate) fn complete(&self, v: T) -> Result<(), T> {
        if let Some(w) = self.complete_deferred(v)? {
            w.wake();
        }
        Ok(())
    }

    /// [`complete`](Oneshot::complete) without the wake-up: `Ok(Some(waker))` is the
    /// future's waker, which the caller must wake (after releasing its own locks).
    pub(crate) fn complete_deferred(&self, v: T) -> Result<Option<Waker>, T> {
        let mut s = self.lock();
        match &mut *s {
            State::Pending(w) => {
                let w = w.take();
                *s = State::Done(v);
                self.pending.store(false, Ordering::Release);
                Ok(w)
            }
            _ => Err(v),
        }
    }

    /// The future's side: the value once delivered, else registers the waker.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.lock();
        match &mut *s {
            State::Pending(w) => {
                match w {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => match std::mem::replace(&mut *s, State::Taken) {
                State::Done(v) => Poll::Ready(Some(v)),
                _ => unreachable!("matched Done above"),
            },
            // Polled after completion or cancellation: nothing more will come.
            State::Taken | State::Cancelled => Poll::Ready(None),
        }
    }

    /// The future's side, when it is dropped: `Some(v)` if a value was delivered and
    /// not taken (the caller must undo it); afterwards `complete` refuses.
    pub(crate) fn cancel(&self) -> Option<T> {
        let mut s = self.lock();
        self.pending.store(false, Ordering::Release);
        match std::mem::replace(&mut *s, State::Cancelled) {
            State::Done(v) => Some(v),
            State::Taken => {
                *s = State::Taken;
                None
            }
            State::Pending(_) | State::Cancelled => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    #[test]
    fn exactly_one_of_complete_and_cancel_wins() {
        let o = Oneshot::new();
        assert!(o.is_pending());
        assert_eq!(o.complete(1), Ok(()));
        assert!(!o.is_pending());
        assert_eq!(o.complete(2), Err(2), "a second value is refused");
        assert_eq!(
            o.cancel(),
            Some(1),
            "an untaken value comes back to be undone"
        );
        assert_eq!(o.complete(3), Err(3));

        let o = Oneshot::<u32>::new();
        assert_eq!(o.cancel(), None);
        assert_eq!(o.complete(4), Err(4), "a cancelled future refuses values");

        let o = Oneshot::new();
        o.complete(5).unwrap();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(o.poll(&mut cx), Poll::Ready(Some(5)));
        assert_eq!(o.cancel(), None, "a taken value is not undone");
        assert_eq!(o.poll(&mut cx), Poll::Ready(None));
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn deferred_completion_hands_the_waker_back_unwoken() {
        use std::sync::Arc;
        use std::sync::atomic::Ordering;
        let count = Arc::new(Count(Default::default()));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let o = Oneshot::new();
        assert_eq!(
            o.complete_deferred(1).map(|w| w.is_some()),
            Ok(false),
            "never polled: no waker to wake"
        );
        let o = Oneshot::new();
        assert_eq!(o.poll(&mut cx), Poll::Pending);
        assert!(o.is_pending());
        let w = o.complete_deferred(7).expect("pending accepts a value");
        assert!(!o.is_pending(), "no longer pending once completed");
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "not woken yet");
        w.expect("the polled future's waker").wake();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(o.complete_deferred(8).err(), Some(8), "exactly one value");
        assert_eq!(o.poll(&mut cx), Poll::Ready(Some(7)));

        let o = Oneshot::<u32>::new();
        assert_eq!(o.poll(&mut cx), Poll::Pending);
        assert_eq!(o.cancel(), None);
        assert!(!o.is_pending(), "a cancelled wait is pruned");
        assert_eq!(o.complete_deferred(9).err(), Some(9));
    }
}
