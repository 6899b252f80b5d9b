//! Parking: where a blocked thread sleeps and how a signaller reaches it — wait blocks
//! in System V segments (`segment`), claims, doorbells and the futex sleep (`block`), the
//! word protocol of claim and doorbell on its own (`word`, model-checked in `model`).
//!
//! The model is parking_lot_core: this layer never learns what an event or a mutex
//! is. Object kinds (`obj`) decide *what* to hand over; `park` decides *who* gets it
//! (exactly one claim per wait) and wakes them. It must not touch object files.

pub(crate) mod bell;
pub(crate) mod block;
#[cfg(test)]
mod model;
pub(crate) mod segment;
pub(crate) mod spin;
#[cfg(test)]
mod stress;
pub(crate) mod word;

pub(crate) use block::{
    Claim, HeldRings, WaitBlock, granted, is_waiting, nudge, ring, ring_after_unlock,
    ring_deferred, ring_quietly, set_ids, set_members, try_claim,
};
pub(crate) use segment::Segment;
pub(crate) use spin::Spin;
