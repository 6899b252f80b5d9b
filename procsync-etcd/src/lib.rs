//! # procsync-etcd
//!
//! procsync's objects across hosts: **events** (manual and auto-reset), **mutexes**
//! (recursive, thread-owned, abandonment reported once) and **semaphores** named
//! `Cluster\name`, kept in an etcd v3 cluster, with the same wait functions (one,
//! any, all — atomically, in one etcd transaction — and signal-and-wait). No consensus
//! of our own: state lives in etcd keys, changes are etcd transactions, liveness is an
//! etcd lease per client, and every acquisition returns a **fencing token** (the etcd
//! revision that granted it).
//!
//! ```no_run
//! use procsync_etcd::{Cluster, Units, wait_any};
//! use std::time::Duration;
//!
//! let c = Cluster::connect("http://127.0.0.1:2379")?;
//! let (slots, _) = c.create_semaphore("Cluster\\builds", 4, 4, Units::Leased)?;
//! let got = slots.wait(Some(Duration::from_secs(30)))?;
//! println!("{:?} with token {}", got.outcome, got.token);
//! slots.release(1)?;
//! # Ok::<(), procsync_etcd::Error>(())
//! ```
//!
//! The key layout, the transaction of every operation, the failure behaviour and what
//! differs from Win32 are in `docs/ETCD.md`.

mod b64;
mod client;
mod error;
mod fence;
mod http;
mod keys;
mod objects;
mod session;
mod settle;
mod state;
mod tx;
mod wait;

#[doc(hidden)]
pub mod recipe;
#[doc(hidden)]
pub mod testing;

pub use error::{Error, Result};
pub use fence::{FencedKey, Refused};
pub use keys::{CLUSTER_PREFIX, MAX_NAME};
pub use objects::{Handle, ObjectInfo, Units};
pub use procsync::{Created, ObjectKind, WaitOutcome};
pub use session::{Cluster, Config, ENV_ENDPOINTS};
pub use wait::{Acquired, signal_and_wait, wait_all, wait_any};
