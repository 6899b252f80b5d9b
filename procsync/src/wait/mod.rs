//! Waiting: one object, any of up to 64, all of up to 64, signal-and-wait.
//!
//! A waiter first tries every object lock-free. If it must block, it takes a *wait
//! block* in its namespace's table (`shm::table`): one futex word of its own (`wake`)
//! and a claim word. It queues an entry naming that block in each object, then sleeps
//! on `wake` alone, however many objects it waits on. Signalers hand objects over
//! under their lock (`obj::queue::satisfy_locked`), claiming a wait-any waiter with a
//! single compare-and-swap on its claim word so that exactly one object satisfies it.
//! Wait-all waiters are rung, then re-check their set themselves under all its locks
//! ([`all`]).
//!
//! It must not touch an object's state except through `obj`.

pub(crate) mod abandon;
pub(crate) mod all;
pub(crate) mod any;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::obj::Object;
use crate::shm::layout::*;
use crate::shm::table::Table;

/// Win32 wait results (`WAIT_OBJECT_0 + i`, `WAIT_ABANDONED_0 + i`, `WAIT_TIMEOUT`).
/// Failures (`WAIT_FAILED`) are `Err`.
#[must_use = "a wait may time out or report an abandoned mutex; match on the outcome"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Object `i` (0 for a single wait or a wait-all) was acquired.
    Signaled(usize),
    /// Mutex `i` was acquired, abandoned by its previous owner; this is reported once.
    Abandoned(usize),
    /// The timeout passed; nothing was acquired or changed (TO-05).
    TimedOut,
}

/// Largest number of objects in one wait (LM-01, `MAXIMUM_WAIT_OBJECTS`).
pub const MAX_WAIT_OBJECTS: usize = 64;

/// A wait block held for the duration of one blocking wait.
pub(crate) struct WaitBlock {
    pub table: Arc<Table>,
    pub index: u32,
    pub generation: u32,
}

impl WaitBlock {
    /// Takes a block in the table serving `objs` (the global one if any object is
    /// global) and arms it: claim = WAITING with a fresh generation.
    pub(crate) fn take(objs: &[&Arc<Object>]) -> crate::Result<WaitBlock> {
        let key = if objs.iter().any(|o| o.table_key == GLOBAL_TABLE) {
            GLOBAL_TABLE
        } else {
            objs[0].table_key
        };
        let owner = objs.iter().find(|o| o.table_key == key).unwrap_or(&objs[0]);
        let table = owner.table_arc(key)?;
        let index = table.alloc()?;
        let b = table.block(index).expect("alloc returns an index in range");
        let generation = ((b.claim.load(Ordering::Relaxed) >> 32) as u32).wrapping_add(1);
        b.claim
            .store(claim(generation, CLAIM_WAITING), Ordering::Release);
        Ok(WaitBlock {
            table,
            index,
            generation,
        })
    }

    pub(crate) fn block(&self) -> &Block {
        self.table
            .block(self.index)
            .expect("index checked at alloc")
    }

    /// Current claim state, if this wait's generation still holds the block.
    pub(crate) fn state(&self) -> u32 {
        let c = self.block().claim.load(Ordering::Acquire);
        if (c >> 32) as u32 != self.generation {
            CLAIM_CANCELLED
        } else {
            c as u32
        }
    }

    /// WAITING => CANCELLED; on failure returns the claim that won.
    pub(crate) fn cancel(&self) -> Result<(), u32> {
        let b = self.block();
        match b.claim.compare_exchange(
            claim(self.generation, CLAIM_WAITING),
            claim(self.generation, CLAIM_CANCELLED),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(c) => Err(c as u32),
        }
    }

    /// WAITING => `state`, by the waiter itself.
    pub(crate) fn claim_self(&self, state: u32) -> bool {
        self.block()
            .claim
            .compare_exchange(
                claim(self.generation, CLAIM_WAITING),
                claim(self.generation, state),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

impl Drop for WaitBlock {
    fn drop(&mut self) {
        self.table.free(self.index);
    }
}

/// Turns a claim word into an outcome.
pub(crate) fn outcome_of(state: u32) -> Option<WaitOutcome> {
    if state & CLAIM_SIGNALED != 0 {
        Some(WaitOutcome::Signaled((state & 0xFF) as usize))
    } else if state & CLAIM_ABANDONED != 0 {
        Some(WaitOutcome::Abandoned((state & 0xFF) as usize))
    } else {
        None
    }
}
