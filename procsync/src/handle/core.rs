//! The [`Handle`] type and the wait functions over handles.
//!
//! It sits on the handle layer's lower files (the vocabulary, the registry of values, the
//! timer callback threads, names); they must not import it.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::registry::ValueFd;
use super::vocab::{Access, CreateOptions, ObjectState, Owner};
use super::{callback, mapped, name, registry};
use crate::error::{Error, Result};
use crate::obj::{
    self, Backing, Fast, NsKey, Object, ObjectKind, ObjectSpec, event, mutex, semaphore, timer,
};
use crate::shm::file::{Created, FirstLook, Mode, NamedFile};
use crate::shm::layout::GLOBAL_NS;
use crate::shm::root::{self, NsKind};
use crate::sys::time::Deadline;
use crate::sys::{fs, thread, unix};
use crate::wait::{self, MAX_WAIT_OBJECTS, WaitOutcome, abandon};

/// A process-local reference to an object. Dropping it closes it (HC-01); the object
/// goes away with its last handle in any process (LT-01).
#[derive(Debug)]
pub struct Handle {
    pub(super) obj: Arc<Object>,
    /// Unique in this process, for per-handle bookkeeping (timer callbacks).
    pub(super) serial: u64,
    access: Access,
    /// Value, inherit flag and the value's descriptor (see `handle::registry`).
    pub(super) slot: Arc<registry::Slot>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        callback::stop(self.serial, &self.obj);
        // The value's descriptor closes before the object (a field, dropped after this).
        registry::unregister(&self.slot);
    }
}

impl Handle {
    fn new(obj: Arc<Object>, access: Access, inherit: bool) -> Result<Handle> {
        Handle::new_of(obj, None, access, inherit)
    }

    /// [`Handle::new`] for an object whose file's device and inode the caller knows
    /// (`None`: look them up). The first handle of an object takes the object's own
    /// descriptor as its value ([`Object::lend_backing`]); every later one a private
    /// duplicate of it.
    pub(super) fn new_of(
        obj: Arc<Object>,
        file: Option<(u64, u64)>,
        access: Access,
        inherit: bool,
    ) -> Result<Handle> {
        let fd = if obj.lend_backing() {
            ValueFd::Lent(obj.clone())
        } else {
            ValueFd::Own(
                unix::dup_cloexec(obj.backing_fd())
                    .map_err(|e| Error::os("duplicating a handle's descriptor", e))?,
            )
        };
        let slot = registry::register(fd, file, obj.kind, access, inherit)?;
        Ok(Handle::with_slot(obj, access, slot))
    }

    fn with_slot(obj: Arc<Object>, access: Access, slot: Arc<registry::Slot>) -> Handle {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        Handle {
            obj,
            serial,
            access,
            slot,
        }
    }

    /// Creates an object, or opens the existing one of that name (CO-01, CO-02). The
    /// empty name creates an unnamed object (NM-11, NM-12). A name held by another type
    /// fails with [`Error::WrongType`] and changes nothing (NM-03). Parameters are
    /// validated even when the object exists (CO-05).
    pub fn create(spec: ObjectSpec, name: &str, opts: &CreateOptions) -> Result<(Handle, Created)> {
        spec.validate()?;
        let mode = opts.mode.unwrap_or(0o600);
        if mode & !0o777 != 0 {
            return Err(Error::invalid(format!(
                "mode {mode:o} has bits outside 0777"
            )));
        }
        let parsed = name::parse(name)?;
        let root_path = root::current_root();
        let (obj, created, file) = match parsed {
            None => {
                let fd = fs::memfd("procsync")
                    .map_err(|e| Error::os("creating an unnamed object", e))?;
                let map = obj::init_file(fd.as_fd(), &spec)?;
                fs::seal_size(fd.as_fd()).map_err(|e| Error::os("sealing an unnamed object", e))?;
                let o = Object::map_fresh(
                    Backing::Unnamed(fd),
                    map,
                    PathBuf::from("<unnamed>"),
                    root_path,
                    NsKey::own(fs::euid()),
                    "<unnamed>".into(),
                )?;
                (o, Created::New, None)
            }
            Some(n) => {
                let init = |fd: std::os::fd::BorrowedFd<'_>| obj::init_file(fd, &spec);
                let o = open_named(&root_path, &n, name, Mode::Create { mode, init: &init })?;
                (o.obj, o.created, Some(o.file))
            }
        };
        if obj.kind != spec.kind() {
            return Err(Error::WrongType {
                what: format!(
                    "`{name}` exists as {}, not {}",
                    obj.kind.a_name(),
                    spec.kind().a_name()
                ),
            });
        }
        let h = Handle::new_of(obj, file, Access::ALL, opts.inherit)?;
        if let (Created::New, ObjectSpec::Mutex { owned: true }) = (created, spec) {
            // CO-03: only a new mutex is taken by its creator.
            if let Fast::Acquired(_) = h.obj().try_acquire_fast() {
                abandon::note_owned(h.obj());
            }
        }
        Ok((h, created))
    }

    /// Opens an existing named object of type `kind` with `access` (CO-08..10).
    pub fn open(kind: ObjectKind, name: &str, access: Access, inherit: bool) -> Result<Handle> {
        let Some(n) = name::parse(name)? else {
            return Err(Error::InvalidName {
                name: String::new(),
                why: "the empty name cannot be opened; give the object's name",
            });
        };
        if access == Access::NONE {
            return Err(Error::AccessDenied {
                what: format!(
                    "opening `{name}` with no access right; ask for synchronize, modify or all"
                ),
            });
        }
        let Opened { obj, file, .. } = open_named(&root::current_root(), &n, name, Mode::Open)?;
        if obj.kind != kind {
            return Err(Error::WrongType {
                what: format!("`{name}` is {}, not {}", obj.kind.a_name(), kind.a_name()),
            });
        }
        Handle::new_of(obj, Some(file), access, inherit)
    }

    pub(crate) fn obj(&self) -> &Arc<Object> {
        &self.obj
    }

    /// The object's type.
    pub fn kind(&self) -> ObjectKind {
        self.obj.kind
    }

    /// The rights of this handle.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Whether children inherit this handle.
    pub fn is_inheritable(&self) -> bool {
        self.slot.inherit.load(Ordering::Relaxed)
    }

    /// The handle's value: how a child that inherits it, or another process that
    /// duplicates it, names it (the number of a descriptor of the object's file that is
    /// this handle's alone: unique in the process while the handle lives, HD-01).
    pub fn value(&self) -> u64 {
        self.slot.value
    }

    /// Fails once the handle was closed from outside (another process pulled it with
    /// close-source): HC-03.
    #[inline]
    pub(super) fn check_open(&self) -> Result<()> {
        if self.slot.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    #[cold]
    fn closed_error(&self) -> Error {
        Error::InvalidHandle(format!(
            "handle {} was closed by a duplication with close-source; drop it",
            self.slot.value
        ))
    }

    /// Whether two handles name the same object (HD-14).
    pub fn same_object(&self, other: &Handle) -> bool {
        self.obj.id == other.obj.id
    }

    #[inline]
    pub(super) fn need(
        &self,
        kind: ObjectKind,
        op: &str,
        right: Option<Access>,
    ) -> Result<&Object> {
        self.check_open()?;
        let o = &*self.obj;
        if o.kind != kind {
            return Err(o.wrong_type(op));
        }
        if let Some(r) = right
            && !self.access.contains(r)
        {
            return Err(self.lacks(op, right_name(r)));
        }
        Ok(o)
    }

    /// The `access-denied` error for `op`, which needs `right`.
    #[cold]
    fn lacks(&self, op: &str, right: &str) -> Error {
        Error::AccessDenied {
            what: format!(
                "`{op}` needs the `{right}` right, which this handle of `{}` lacks; open it with that right",
                self.obj.display
            ),
        }
    }

    /// `SetEvent`: returns the previous state. A set with waiters hands the signal over
    /// at once (EV-08, EV-09).
    pub fn set(&self) -> Result<bool> {
        event::set(self.need(ObjectKind::Event, "set", Some(Access::MODIFY))?)
    }

    /// `ResetEvent`: returns the previous state.
    pub fn reset(&self) -> Result<bool> {
        event::reset(self.need(ObjectKind::Event, "reset", Some(Access::MODIFY))?)
    }

    /// `PulseEvent` (legacy, racy by design as on Windows: only threads waiting at this
    /// instant are released; see PU-06). Returns the previous state.
    pub fn pulse(&self) -> Result<bool> {
        event::pulse(self.need(ObjectKind::Event, "pulse", Some(Access::MODIFY))?)
    }

    /// `ReleaseSemaphore(count)` → previous count; `ReleaseMutex` (count must be 1) →
    /// previous recursion count. Releasing a mutex needs ownership, not a right (AM-07).
    #[inline]
    pub fn release(&self, count: u32) -> Result<u32> {
        match self.kind() {
            ObjectKind::Semaphore => self.release_semaphore(count),
            ObjectKind::Mutex if count == 1 => self.release_mutex(),
            _ => self.release_full(count),
        }
    }

    /// [`Handle::release`] the whole way: every check, every error.
    #[inline(never)]
    fn release_full(&self, count: u32) -> Result<u32> {
        match self.kind() {
            ObjectKind::Semaphore => semaphore::release(
                self.need(ObjectKind::Semaphore, "release", Some(Access::MODIFY))?,
                count,
            ),
            ObjectKind::Mutex => {
                if count != 1 {
                    return Err(Error::invalid(
                        "a mutex is released once per call; count must be 1",
                    ));
                }
                self.release_mutex()
            }
            _ => Err(self.obj.wrong_type("release")),
        }
    }

    /// Gives back one acquisition that a wait on this object made, as if that wait had
    /// timed out just before the signal (TO-06): for code that waits on others' behalf
    /// and learns only afterwards that nobody wants the result (an async adaptor whose
    /// future was dropped, a pool whose client went away). A semaphore gets its unit
    /// back, an auto-reset event or timer its signal, and the object goes to the next
    /// waiter in line, as after a signal. An auto-reset event that a later `set` found
    /// unset and set again keeps the given-back signal *banked* instead of merging the
    /// two, so that every `set` that reported "was not set" is consumed exactly once
    /// (docs/SEMANTICS.md, TO-06a). A manual-reset object is unchanged: a wait
    /// consumed nothing. A semaphore at its maximum (someone over-released meanwhile)
    /// drops the unit.
    ///
    /// Needs the `modify` right. A mutex is refused: its owner thread releases it. Call
    /// it only for an acquisition that was made: otherwise it is a signal out of thin
    /// air.
    pub fn give_back(&self) -> Result<()> {
        self.check_open()?;
        if self.obj.owned() {
            return Err(self
                .obj
                .wrong_type("give_back (a mutex is released by its owner thread: `release`)"));
        }
        if !self.access.contains(Access::MODIFY) {
            return Err(self.lacks("give_back", right_name(Access::MODIFY)));
        }
        obj::signal::give_back(&self.obj, thread::ident())
    }

    /// `ReleaseMutex` on a handle known to be a mutex (the typed wrappers), inlined at
    /// the call site.
    #[inline]
    pub(super) fn release_mutex(&self) -> Result<u32> {
        self.check_open()?;
        let me = thread::ident();
        mutex::release(&self.obj, me)
    }

    /// [`Handle::release`] on a handle known to be a semaphore (the typed wrappers):
    /// the lock-free release inlined at the call site; a closed handle or a missing
    /// right the full way, which reports it.
    #[inline]
    pub(super) fn release_semaphore(&self, count: u32) -> Result<u32> {
        if self.may(Access::MODIFY) {
            semaphore::release(&self.obj, count)
        } else {
            self.release_full(count)
        }
    }

    /// [`Handle::wait`] for an object of type `kind` (the object's own: a constant in the
    /// typed wrappers, where the lock-free attempt compiles to that type's few
    /// instructions at the call site); anything else takes the full way.
    #[inline]
    pub(super) fn wait_as(
        &self,
        kind: ObjectKind,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome> {
        if self.may(Access::SYNCHRONIZE)
            && let Fast::Acquired(a) = self.obj.try_acquire_as(kind)
        {
            return Ok(self.acquired(kind, a));
        }
        self.wait_full(timeout)
    }

    /// Open, with `right`: what the inlined fast paths check before they touch the
    /// object (the full paths report which one failed).
    #[inline]
    fn may(&self, right: Access) -> bool {
        !self.slot.closed.load(Ordering::Relaxed) && self.access.contains(right)
    }

    /// The outcome of a lock-free acquisition of this handle's object, of type `kind`
    /// (`a`: abandoned).
    #[inline]
    fn acquired(&self, kind: ObjectKind, a: bool) -> WaitOutcome {
        if kind == ObjectKind::Mutex {
            abandon::note_owned(&self.obj);
        }
        if a {
            WaitOutcome::Abandoned(0)
        } else {
            WaitOutcome::Signaled(0)
        }
    }

    /// `WaitForSingleObject`: `None` waits forever, `Some(ZERO)` polls.
    #[inline]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<WaitOutcome> {
        self.wait_as(self.obj.kind, timeout)
    }

    /// [`Handle::wait`] past the lock-free attempt: the checks that report, then the
    /// wait engine (which tries again before it queues).
    #[inline(never)]
    fn wait_full(&self, timeout: Option<Duration>) -> Result<WaitOutcome> {
        self.check_sync("wait")?;
        wait::any::wait_any(&[&self.obj], Deadline::after(timeout))
    }

    #[inline]
    fn check_sync(&self, op: &str) -> Result<()> {
        self.check_open()?;
        if self.access.contains(Access::SYNCHRONIZE) {
            Ok(())
        } else {
            Err(self.lacks(op, "synchronize"))
        }
    }

    /// The object's state.
    pub fn query(&self) -> Result<ObjectState> {
        self.check_open()?;
        let o = &self.obj;
        Ok(match o.kind {
            ObjectKind::Event => {
                let (manual, signaled) = event::query(o);
                ObjectState::Event { manual, signaled }
            }
            ObjectKind::Semaphore => {
                let (count, max) = semaphore::query(o)?;
                ObjectState::Semaphore { count, max }
            }
            ObjectKind::Mutex => {
                let me = thread::ident();
                let mut v = mutex::query(o);
                if v.owner != 0 && v.owner != me && !thread::ident_alive(v.owner) {
                    // AB-04: a dead owner means free + abandoned.
                    mutex::abandon_if_dead(o, v.owner)?;
                    v = mutex::query(o);
                }
                let owner = match v.owner {
                    0 => Owner::None,
                    x if x == me => Owner::Current,
                    _ => Owner::Other,
                };
                ObjectState::Mutex {
                    owner,
                    recursion: v.recursion,
                    abandoned: v.abandoned,
                }
            }
            ObjectKind::Timer => {
                let (manual, signaled, armed) = timer::query(o)?;
                ObjectState::Timer {
                    manual,
                    signaled,
                    armed,
                }
            }
        })
    }

    /// How many threads, in all processes, are blocked waiting on this object right now
    /// (queued wait-any and wait-all waiters, and those that found its queue full).
    ///
    /// Not a Win32 call: tests and operators use it to know that a waiter is queued
    /// instead of sleeping. Entries of waits that ended or of dead threads are not counted.
    pub fn waiters(&self) -> Result<usize> {
        self.check_open()?;
        crate::obj::queue::waiters(&self.obj)
    }

    /// `DuplicateHandle` within this process: same object, the same or fewer rights
    /// (`None` = same access, HD-02); asking for more fails (HD-04).
    pub fn duplicate(&self, access: Option<Access>) -> Result<Handle> {
        let access = self.duplicate_access(access)?;
        self.check_open()?;
        Handle::new(self.obj.clone(), access, false)
    }

    /// The rights of a duplicate of this handle that asks for `access` (`None` = the
    /// same, HD-02); more rights than this handle has fail (HD-04).
    pub(super) fn duplicate_access(&self, access: Option<Access>) -> Result<Access> {
        let access = access.unwrap_or(self.access);
        if !self.access.contains(access) {
            return Err(Error::AccessDenied {
                what: "a duplicate may not have more rights than its source".into(),
            });
        }
        Ok(access)
    }

    /// `SetHandleInformation(HANDLE_FLAG_INHERIT)`: whether a child started through
    /// [`crate::CommandExt::inherit_procsync_handles`] inherits this handle (HI-05).
    pub fn set_inheritable(&self, on: bool) -> Result<()> {
        self.check_open()?;
        self.slot.inherit.store(on, Ordering::Relaxed);
        Ok(())
    }
}

fn right_name(r: Access) -> &'static str {
    if r == Access::SYNCHRONIZE {
        "synchronize"
    } else {
        "modify"
    }
}

/// What [`open_named`] found or made.
struct Opened {
    obj: Arc<Object>,
    created: Created,
    /// Device and inode of the object's file.
    file: (u64, u64),
}

/// Opens or creates the named object `n` (see `shm::file` for the protocol). A name
/// this process holds already is served by [`held_already`].
fn open_named(
    root_path: &std::path::Path,
    n: &name::Name,
    display: &str,
    how: Mode<'_>,
) -> Result<Opened> {
    let ns = root::namespace(root_path, n.ns)?;
    crate::shm::file::sweep_orphans(&ns);
    let key = if ns.kind == NsKind::Global {
        GLOBAL_NS
    } else {
        ns.table_key
    };
    let first = match held_already(&ns, root_path, &n.file, display, key) {
        Ok(held) => return Ok(held),
        Err(first) => first,
    };
    let (file, created, fresh) = NamedFile::open(&ns, &n.file, how, display, first)?;
    let st = *file.file_id();
    // A `Local\` namespace is looked up by the caller's effective uid (`table_key`).
    if ns.kind == NsKind::Local && st.uid != ns.table_key {
        return Err(Error::AccessDenied {
            what: format!(
                "the file of `{display}` is not owned by you (uid {}); refusing it, remove it",
                st.uid
            ),
        });
    }
    let path = ns.path.join(&n.file);
    let backing = Backing::Named(file);
    let root = root_path.to_path_buf();
    let ns_key = match ns.kind {
        NsKind::Local => NsKey::own(ns.table_key),
        NsKind::Global => NsKey::of(key),
    };
    let obj = match fresh {
        Some(map) => Object::map_fresh(backing, map, path, root, ns_key, display.into())?,
        None => Object::map(backing, path, root, ns_key, display.into())?,
    };
    mapped::insert(&st, &obj);
    Ok(Opened {
        obj,
        created,
        file: (st.dev, st.ino),
    })
}

/// The object this process already maps from the file that `file` names, opened under
/// the same spelling and root and unchanged since (see `handle::mapped` for why that
/// is safe): the name is opened and stated, but not probed, locked or mapped again.
/// `Err` sends the caller through the full protocol (which also reports whatever is
/// wrong with the name), with what this open found as its first step.
fn held_already(
    ns: &root::Namespace,
    root_path: &std::path::Path,
    file: &str,
    display: &str,
    key: u32,
) -> std::result::Result<Opened, Option<FirstLook>> {
    if !crate::shm::file::any_live() {
        return Err(None);
    }
    let fresh = match fs::open_file_at(ns.dir.as_fd(), file) {
        Ok(fd) => fd,
        Err(e) => return Err(Some((Err(e), None))),
    };
    let Ok(st) = fs::stat_fd(fresh.as_fd()) else {
        return Err(None);
    };
    let obj = if st.is_file && (ns.kind == NsKind::Global || st.uid == ns.table_key) {
        mapped::find(&st, |o| {
            o.display == display && o.ns_key == key && o.root == root_path
        })
    } else {
        None
    };
    let Some(obj) = obj else {
        return Err(Some((Ok(fresh), Some(st))));
    };
    // Closed before the handle duplicates the object's descriptor: an open needs one
    // descriptor at a time whichever path serves it (the full protocol's own open
    // becomes the object's descriptor and the first handle's value), so a process at
    // its descriptor limit gets the same error from both.
    drop(fresh);
    Ok(Opened {
        obj,
        created: Created::Existing,
        file: (st.dev, st.ino),
    })
}

pub(super) fn check_list<'a>(handles: &[&'a Handle]) -> Result<Vec<&'a Arc<Object>>> {
    check_handles(handles)?;
    Ok(handles.iter().map(|h| &h.obj).collect())
}

/// [`check_list`], keeping the objects (one without an allocation).
pub(super) fn check_list_owned(handles: &[&Handle]) -> Result<crate::wait::detached::Objs> {
    use crate::wait::detached::Objs;
    check_handles(handles)?;
    Ok(match handles {
        [one] => Objs::One(one.obj.clone()),
        _ => Objs::Many(handles.iter().map(|h| h.obj.clone()).collect()),
    })
}

fn check_handles(handles: &[&Handle]) -> Result<()> {
    if handles.is_empty() || handles.len() > MAX_WAIT_OBJECTS {
        return Err(Error::invalid(format!(
            "a wait takes 1 to {MAX_WAIT_OBJECTS} objects, not {}",
            handles.len()
        )));
    }
    for h in handles {
        h.check_sync("wait")?;
    }
    Ok(())
}

/// `WaitForMultipleObjects(bWaitAll = FALSE)`: acquires the lowest-index signaled
/// object (WY-03), or the first one handed over while blocked; 1 to 64 handles of any
/// types, duplicates allowed (WY-08).
pub fn wait_any(handles: &[&Handle], timeout: Option<Duration>) -> Result<WaitOutcome> {
    let refs = check_list(handles)?;
    wait::any::wait_any(&refs, Deadline::after(timeout))
}

/// `WaitForMultipleObjects(bWaitAll = TRUE)`: acquires every object in one atomic step,
/// or nothing (WL-02..04). The same object twice is [`Error::DuplicateObject`] (WL-07).
pub fn wait_all(handles: &[&Handle], timeout: Option<Duration>) -> Result<WaitOutcome> {
    let refs = check_list(handles)?;
    wait::all::wait_all(&refs, Deadline::after(timeout))
}

/// `SignalObjectAndWait`: signals `signal` (event set, semaphore release 1, mutex
/// release) and waits on `wait`. Both handles are checked first, so an error leaves
/// both untouched (SW-02); a failed signal means no wait (SW-06, SW-07).
pub fn signal_and_wait(
    signal: &Handle,
    wait: &Handle,
    timeout: Option<Duration>,
) -> Result<WaitOutcome> {
    wait.check_sync("signalandwait")?;
    match signal.kind() {
        ObjectKind::Event => {
            signal.set()?;
        }
        ObjectKind::Semaphore => {
            signal.release(1)?;
        }
        ObjectKind::Mutex => {
            signal.check_sync("signalandwait")?;
            signal.release_mutex()?;
        }
        ObjectKind::Timer => return Err(signal.obj.wrong_type("signalandwait (signal side)")),
    }
    wait.wait(timeout)
}
