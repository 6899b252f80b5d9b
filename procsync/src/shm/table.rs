//! Wait-block tables: where a blocked waiter's one futex word lives, reachable by every
//! signaler of every object it waits on.
//!
//! One table per namespace directory (`.waits`): waits on `Local\` and unnamed objects
//! use the waiter's own user's table (mode 0600 in a 0700 directory, so only that user
//! can touch it); waits that include a `Global\` object use the global table (mode
//! 0666, since signalers of a global object may be any user: see docs/ARCHITECTURE.md,
//! "What a signaler can do to a waiter"). Tables follow the same flock lifetime as
//! objects; this process keeps the ones it used open while it holds any handle.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use super::file::{Mode, NamedFile};
use super::layout::*;
use super::map::SharedMap;
use super::root::{self, Namespace};
use crate::error::{Error, Result};
use crate::sys::{fs, thread};

/// File name of a namespace's table.
pub(crate) const TABLE_FILE: &str = ".waits";

/// An open, validated wait-block table.
#[derive(Debug)]
pub(crate) struct Table {
    map: SharedMap<TableFile>,
    _file: NamedFile,
    pub key: u32,
}

impl Table {
    /// Block `i`, if in range.
    #[inline]
    pub(crate) fn block(&self, i: u32) -> Option<&Block> {
        self.map.get().blocks.get(i as usize)
    }

    /// Takes a free block for the calling thread; reclaims blocks of dead threads when
    /// the table is full.
    pub(crate) fn alloc(&self) -> Result<u32> {
        let me = thread::me();
        let blocks = &self.map.get().blocks;
        let n = blocks.len();
        let start = (me.tid as usize).wrapping_mul(2_654_435_761) % n;
        for pass in 0..2 {
            for k in 0..n {
                let i = (start + k) % n;
                let b = &blocks[i];
                let cur = b.owner.load(Ordering::Relaxed);
                let free = cur == 0 || (pass == 1 && !thread::ident_alive(cur));
                if free
                    && b.owner
                        .compare_exchange(cur, me.ident, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    b.pid.store(me.pid, Ordering::Relaxed);
                    return Ok(i as u32);
                }
            }
        }
        Err(Error::Exhausted {
            what: "wait blocks of this namespace (4096 threads blocked at once)",
            remedy: "let some waits finish, or split the waiters over namespaces",
        })
    }

    /// Returns block `i` (allocated by this thread) to the free pool.
    pub(crate) fn free(&self, i: u32) {
        if let Some(b) = self.block(i) {
            let c = b.claim.load(Ordering::Relaxed);
            b.claim
                .store(claim((c >> 32) as u32, CLAIM_IDLE), Ordering::Relaxed);
            b.owner.store(0, Ordering::Release);
        }
    }
}

fn init_table(fd: BorrowedFd<'_>) -> Result<()> {
    let os = |e| Error::os("initialising a wait-block table", e);
    fs::set_len(fd, TABLE_SIZE as u64).map_err(os)?;
    let mut head = [0u8; 24];
    head[0..8].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
    head[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    head[12..16].copy_from_slice(&(TABLE_BLOCKS as u32).to_le_bytes());
    head[16..24].copy_from_slice(&crate::sys::thread::pid_namespace().to_le_bytes());
    // Random starting generations, so that entries left by a replaced table never
    // match a block of this one.
    let mut gens = vec![0u8; TABLE_BLOCKS * 4];
    getrandom::fill(&mut gens)
        .map_err(|_| Error::os("reading random bytes", rustix::io::Errno::IO))?;
    let mut blocks = vec![0u8; TABLE_BLOCKS * 64];
    for i in 0..TABLE_BLOCKS {
        // claim = gen << 32 | IDLE, little-endian: the generation is bytes 12..16 of the block.
        blocks[i * 64 + 12..i * 64 + 16].copy_from_slice(&gens[i * 4..i * 4 + 4]);
    }
    fs::write_at(fd, &head, 0).map_err(os)?;
    fs::write_at(fd, &blocks, 64).map_err(os)
}

fn open_table(ns: &Arc<Namespace>) -> Result<Table> {
    let mode = if ns.kind == root::NsKind::Global {
        0o666
    } else {
        0o600
    };
    let init = |fd: BorrowedFd<'_>| init_table(fd);
    let (file, _) = NamedFile::open(
        ns,
        TABLE_FILE,
        Mode::Create { mode, init: &init },
        TABLE_FILE,
    )?;
    let corrupt = |why| Error::Corrupt {
        path: ns.path.join(TABLE_FILE),
        why,
    };
    let map = SharedMap::<TableFile>::new(file.fd()).map_err(|e| match e {
        None => corrupt("wrong size"),
        Some(e) => Error::os("mapping a wait-block table", e),
    })?;
    let h = &map.get().header;
    if h.magic.load(Ordering::Relaxed) != TABLE_MAGIC {
        return Err(corrupt("bad magic"));
    }
    if h.version.load(Ordering::Relaxed) != LAYOUT_VERSION {
        return Err(corrupt("unknown layout version"));
    }
    if h.capacity.load(Ordering::Relaxed) != TABLE_BLOCKS as u32 {
        return Err(corrupt("bad capacity"));
    }
    let (theirs, ours) = (
        h.pid_ns.load(Ordering::Relaxed),
        crate::sys::thread::pid_namespace(),
    );
    if theirs != ours && theirs != 0 && ours != 0 {
        return Err(Error::Unsupported(format!(
            "the procsync root `{}` is in use from another PID namespace; procsync objects are \
             shared within one PID namespace: give this one its own PROCSYNC_ROOT",
            ns.path.display()
        )));
    }
    Ok(Table {
        map,
        _file: file,
        key: ns.table_key,
    })
}

/// Open tables, and the number of live handles of this process per root: a root's
/// tables are let go when its count drops to zero.
#[derive(Default)]
struct Registry {
    /// Root → table key → table; looked up by `&Path`, without allocating.
    tables: HashMap<PathBuf, HashMap<u32, Arc<Table>>>,
    handles: HashMap<PathBuf, usize>,
}
static TABLES: OnceLock<Mutex<Registry>> = OnceLock::new();

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    TABLES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The table `key` under `root`, opened on first use and kept while this process holds
/// handles of that root.
pub(crate) fn get(root_path: &Path, key: u32) -> Result<Arc<Table>> {
    if let Some(t) = registry().tables.get(root_path).and_then(|m| m.get(&key)) {
        return Ok(t.clone());
    }
    let ns = root::namespace_for_table(root_path, key)?;
    let t = Arc::new(open_table(&ns)?);
    let mut reg = registry();
    Ok(reg
        .tables
        .entry(root_path.to_path_buf())
        .or_default()
        .entry(key)
        .or_insert(t)
        .clone())
}

/// Counts a new handle of this process under `root`.
pub(crate) fn handle_opened(root_path: &Path) {
    *registry()
        .handles
        .entry(root_path.to_path_buf())
        .or_insert(0) += 1;
}

/// Counts a closed handle; the last one of a root lets its tables go (and so their
/// files, when no other process holds them).
pub(crate) fn handle_closed(root_path: &Path) {
    let mut reg = registry();
    let Some(n) = reg.handles.get_mut(root_path) else {
        return;
    };
    *n -= 1;
    if *n == 0 {
        reg.handles.remove(root_path);
        let dropped = reg.tables.remove(root_path);
        drop(reg);
        drop(dropped);
    }
}
