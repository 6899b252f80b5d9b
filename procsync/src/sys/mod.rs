//! The platform layer: the only code that names rustix or libc. Everything above
//! speaks in terms of shared futex words, descriptors, mappings and thread identities.
//!
//! It must not know about objects, names or semantics. Linux is the only backend today;
//! the contract below (futex on a shared word, wait on several words, an advisory lock
//! per open description, a sealed anonymous file, liveness of a thread) is what a
//! FreeBSD (`_umtx_op`, `flock`, `SHM_ANON`) or macOS (`os_sync_wait_on_address`) port
//! would implement.
//!
//! # Safety
//! This module opts back into `unsafe` for `mmap`/`munmap`, the raw `tgkill` system
//! call, and (`unix.rs`) the `pre_exec` hook of a child and taking ownership of a
//! descriptor number inherited across `exec`, and (`htm.rs`) the instructions of a
//! hardware transaction; each block states its invariant.
#![allow(unsafe_code)]

pub(crate) mod fdlimit;
pub(crate) mod fs;
pub(crate) mod futex;
pub(crate) mod htm;
pub(crate) mod mmap;
pub(crate) mod pidfd;
pub(crate) mod pipe;
pub(crate) mod sock;
pub(crate) mod sysv;
pub(crate) mod thread;
pub(crate) mod time;
pub(crate) mod unix;

pub(crate) use rustix::io::Errno;
