//! Shared memory: the layout of object files and wait-block segments
//! ([`layout`]), validated typed access to a mapping ([`map`]), the file-lifetime
//! protocol ([`file`]) and the directory tree under the root ([`root`]).
//!
//! It must not know semantics (what "signaled" means is `obj`'s business).
//!
//! # Safety
//! This module opts back into `unsafe` to turn a mapping into a reference to a
//! [`layout::Shared`] type; see [`map::SharedMap::new`].
#![allow(unsafe_code)]

pub(crate) mod file;
pub(crate) mod layout;
pub(crate) mod map;
pub(crate) mod root;
