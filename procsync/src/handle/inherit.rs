//! Handle inheritance into child processes, and the adoption of handles that arrived
//! from outside (inherited, or duplicated into this process).
//!
//! **Parent.** [`CommandExt::inherit_procsync_handles`] (Win32's `bInheritHandles =
//! TRUE`) does two things to a `std::process::Command`: a `pre_exec` hook that clears
//! close-on-exec on exactly the descriptors of the handles marked inheritable (each only
//! if it still names the same file after the fork: `fstat` + `fcntl`, both
//! async-signal-safe), and the environment variable [`INHERIT_ENV`] describing them:
//!
//! ```text
//! PROCSYNC_INHERITED=VALUE:KIND:ACCESS:DEV:INO[,VALUE:KIND:ACCESS:DEV:INO…]
//! e.g.  PROCSYNC_INHERITED=7:event:sm:64768:1234,9:semaphore:s:0:5678
//! ```
//!
//! `VALUE` is the handle's value, which is also its descriptor number in the child
//! (HI-02); `ACCESS` is `s`, `m` or `sm`; `DEV:INO` identify the object file, so that a
//! stale variable (a grandchild started without the extension) never makes a process
//! adopt an unrelated descriptor. Every other descriptor of the library is
//! close-on-exec, so non-inheritable handles never reach the child (HI-03, HI-04).
//!
//! **Child.** [`inherited`] enumerates what the child got and [`adopt`] takes one handle
//! by value (HI-09); both read the variable once, check each descriptor, set
//! close-on-exec on it again (an inherited handle stays inheritable, as on Windows, but
//! passes on only through the extension) and map the object. A named object's
//! namespace and file name come from `/proc/self/fd/N`, so the last-close protocol still
//! unlinks the name wherever the last handle closes.
//!
//! **Lifetime.** The inherited descriptor *is* the parent's open description, so it
//! holds the same shared `flock`: the object lives while either process holds it, and
//! whichever closes (or is killed) last removes the name.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::core::Handle;
use super::pending::{self, Origin};
use super::registry::{self, lock};
use super::vocab::Access;
use crate::error::{Error, Result};
use crate::obj::{Backing, NsKey, Object, ObjectKind};
use crate::shm::file::NamedFile;
use crate::shm::layout::GLOBAL_NS;
use crate::shm::root::{self, NsKind};
use crate::sys::{fs, unix};

/// The environment variable that tells a child which handles it inherited.
pub const INHERIT_ENV: &str = "PROCSYNC_INHERITED";

/// Handle inheritance for [`std::process::Command`].
pub trait CommandExt {
    /// Lets the child inherit every handle marked inheritable (at create or open, or
    /// with [`Handle::set_inheritable`]) at the moment of this call, under the same
    /// values, and tells it which through [`INHERIT_ENV`]. Call it right before
    /// `spawn`; a child started without it inherits nothing.
    fn inherit_procsync_handles(&mut self) -> &mut Command;
}

impl CommandExt for Command {
    fn inherit_procsync_handles(&mut self) -> &mut Command {
        let list = registry::inheritable();
        if list.is_empty() {
            self.env_remove(INHERIT_ENV);
        } else {
            let entries: Vec<&str> = list.iter().map(|(_, e)| e.as_str()).collect();
            self.env(INHERIT_ENV, entries.join(","));
        }
        unix::keep_on_exec(self, list.into_iter().map(|(k, _)| k).collect());
        self
    }
}

/// Inherited entries that could not be adopted, by value: why (for [`adopt`]).
static FAILED: OnceLock<Mutex<HashMap<u64, String>>> = OnceLock::new();

fn failed() -> std::sync::MutexGuard<'static, HashMap<u64, String>> {
    lock(FAILED.get_or_init(Default::default))
}

/// Reads [`INHERIT_ENV`] once and parks every inherited handle until it is adopted.
fn take_inheritance() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(text) = std::env::var_os(INHERIT_ENV) else {
            return;
        };
        for entry in text.to_string_lossy().split(',').filter(|e| !e.is_empty()) {
            let Some((value, kind, access, dev, ino)) = parse_entry(entry) else {
                continue;
            };
            let Ok(raw) = i32::try_from(value) else {
                continue;
            };
            // A descriptor that is not open or names another file: a stale variable.
            let Some(fd) = unix::claim_inherited(raw, dev, ino) else {
                continue;
            };
            match handle_from_fd(fd, Some(kind), access, true) {
                Ok(h) => {
                    pending::park(Origin::Inherited, h);
                }
                Err(e) => {
                    failed().insert(value, e.to_string());
                }
            }
        }
    });
}

fn parse_entry(entry: &str) -> Option<(u64, ObjectKind, Access, u64, u64)> {
    let mut w = entry.split(':');
    let value = w.next()?.parse().ok()?;
    let kind = registry::parse_kind(w.next()?)?;
    let access = registry::parse_access(w.next()?)?;
    let dev = w.next()?.parse().ok()?;
    let ino = w.next()?.parse().ok()?;
    w.next()
        .is_none()
        .then_some((value, kind, access, dev, ino))
}

/// The handles this process inherited and has not adopted yet, with their values
/// (the same values as in the parent, HI-02). Descriptors that the environment names
/// but that are not open here, or name another file, are skipped.
pub fn inherited() -> Result<Vec<(u64, Handle)>> {
    take_inheritance();
    Ok(pending::take_inherited())
}

/// Takes the handle with value `value` that this process inherited or received by
/// duplication (HI-09, `adopt V B` in the REPL). Each such handle is adopted once;
/// a value that names no waiting handle is [`Error::InvalidHandle`].
pub fn adopt(value: u64) -> Result<Handle> {
    take_inheritance();
    if let Some(h) = pending::take(value) {
        return Ok(h);
    }
    if let Some(why) = failed().get(&value) {
        return Err(Error::NotInheritable(format!(
            "inherited handle {value} cannot be used: {why}"
        )));
    }
    if registry::find(value).is_some() {
        return Err(Error::InvalidHandle(format!(
            "handle {value} is already in use in this process (adopted, created or opened here); use the handle you have"
        )));
    }
    Err(Error::InvalidHandle(format!(
        "no handle with value {value} was inherited or received by duplication; check the value (`handle A` in the sending process)"
    )))
}

/// Where an object file lives, read back from its path.
struct Located {
    root: PathBuf,
    ns: NsKind,
    /// Owner of a `Local\` namespace (`local-<uid>`).
    uid: u32,
    /// The file name shown, if it can be an object's (a description that created its
    /// file shows the `O_TMPFILE` name `#<inode>` instead).
    guess: Option<String>,
}

/// `<root>/local-<uid>/<file>` or `<root>/global/<file>`.
fn locate(path: &Path) -> Option<Located> {
    let guess = path
        .file_name()?
        .to_str()
        .filter(|f| f.starts_with('o') || f.starts_with('h'))
        .map(str::to_string);
    let dir = path.parent()?;
    let root = dir.parent()?.to_path_buf();
    let (ns, uid) = match dir.file_name()?.to_str()? {
        "global" => (NsKind::Global, 0),
        d => (NsKind::Local, d.strip_prefix("local-")?.parse().ok()?),
    };
    root.is_absolute().then_some(Located {
        root,
        ns,
        uid,
        guess,
    })
}

/// The user's spelling of a name, decoded from its file name when possible.
fn display_name(ns: NsKind, file: &str) -> String {
    let prefix = if ns == NsKind::Global {
        "Global\\"
    } else {
        "Local\\"
    };
    let Some(enc) = file.strip_prefix('o') else {
        return format!("{prefix}<hashed name {file}>");
    };
    let b = enc.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(byte) = enc
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    format!("{prefix}{}", String::from_utf8_lossy(&out))
}

fn not_an_object(fd: &OwnedFd, why: &str) -> Error {
    Error::NotInheritable(format!(
        "descriptor {} is not a procsync object ({why}); only handles can be passed",
        fd.as_raw_fd()
    ))
}

/// Makes a handle of `fd`, a descriptor that arrived from outside (inherited, passed
/// over the endpoint, or taken with `pidfd_getfd`). `fd` becomes the object's
/// descriptor and, lent to the handle, its value: the handle's value is `fd`'s number
/// (renumbered first only if it is standard input, output or error, which an inherited
/// one never is). Checks that it is an object file:
/// a sealed memfd (unnamed) or a file in a namespace directory (named; a `Local\` file
/// must belong to that namespace's user), then maps and validates it like an open.
pub(super) fn handle_from_fd(
    fd: OwnedFd,
    kind: Option<ObjectKind>,
    access: Access,
    inherit: bool,
) -> Result<Handle> {
    let fd =
        unix::above_stdio(fd).map_err(|e| Error::os("renumbering a received descriptor", e))?;
    let st = fs::stat_fd(fd.as_fd()).map_err(|e| Error::os("checking a received descriptor", e))?;
    if !st.is_file {
        return Err(not_an_object(&fd, "not a regular file"));
    }
    let path =
        unix::fd_path(fd.as_fd()).map_err(|e| Error::os("reading a descriptor's path", e))?;
    let text = path.to_string_lossy().into_owned();
    let euid = fs::euid();
    let (backing, file_path, root_path, key, display) = if text.starts_with("/memfd:") {
        if !unix::size_sealed(fd.as_fd()) {
            return Err(not_an_object(&fd, "an unsealed memfd"));
        }
        (
            Backing::Unnamed(fd),
            PathBuf::from("<unnamed>"),
            root::current_root(),
            euid,
            "<unnamed>".to_string(),
        )
    } else {
        let live = PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text));
        let Some(mut l) = locate(&live) else {
            return Err(not_an_object(&fd, "not in a procsync namespace directory"));
        };
        if l.ns == NsKind::Local && st.uid != l.uid {
            return Err(Error::AccessDenied {
                what: format!(
                    "`{}` is in the namespace of uid {} but owned by uid {}; refusing it",
                    live.display(),
                    l.uid,
                    st.uid
                ),
            });
        }
        let current = root::current_root();
        if std::fs::canonicalize(&current).is_ok_and(|c| c == l.root) {
            l.root = current;
        }
        let ns = match l.ns {
            NsKind::Global => root::namespace(&l.root, NsKind::Global).ok(),
            NsKind::Local if l.uid == euid => root::namespace(&l.root, NsKind::Local).ok(),
            NsKind::Local => root::namespace_of(&l.root, l.uid).ok(),
        };
        let global = l.ns == NsKind::Global;
        // Without its namespace (the name was removed, or this user may not enter the
        // directory) the object still works through the descriptor; this process just
        // never unlinks the name, which the next opener then removes as an orphan.
        let adopted = match &ns {
            Some(ns) => NamedFile::adopt(ns, l.guess.as_deref(), fd),
            None => Err(fd),
        };
        let dir = live.parent().map(Path::to_path_buf).unwrap_or_default();
        match adopted {
            Ok(file) => {
                let display = display_name(l.ns, file.name());
                let file_path = dir.join(file.name());
                let key = if global { GLOBAL_NS } else { l.uid };
                (Backing::Named(file), file_path, l.root, key, display)
            }
            Err(fd) => {
                let display = format!("<removed name in {}>", dir.display());
                let key = if global { GLOBAL_NS } else { euid };
                (Backing::Unnamed(fd), live, l.root, key, display)
            }
        }
    };
    let obj = Object::map(backing, file_path, root_path, NsKey::of(key), display)?;
    if let Some(k) = kind
        && k != obj.kind
    {
        return Err(Error::WrongType {
            what: format!(
                "the passed handle is {}, not {}",
                obj.kind.a_name(),
                k.a_name()
            ),
        });
    }
    // The object was just mapped: this first handle takes its descriptor as its value.
    Handle::new_of(obj, Some((st.dev, st.ino)), access, inherit)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::*;
    use crate::handle::vocab::CreateOptions;
    use crate::obj::ObjectSpec;
    use crate::test_root::TestRoot;
    use crate::wait::WaitOutcome;

    const POLL: Option<Duration> = Some(Duration::ZERO);

    fn objects(r: &TestRoot) -> usize {
        r.files()
            .iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with('o'))
            })
            .count()
    }

    #[test]
    #[rustfmt::skip]
    fn environment_entries_parse_strictly() {
        let ok = |e| parse_entry(e).is_some();
        let table = [
            ("7:event:sm:1:2", true),
            ("9:semaphore:s:0:5678", true),
            ("3:mutex:m:1:1", true),
            ("3:timer:-:1:1", true),
            ("3:gizmo:sm:1:1", false),
            ("3:event:rw:1:1", false),
            ("x:event:sm:1:1", false),
            ("3:event:sm:1", false),
            ("3:event:sm:1:2:3", false),
            ("", false),
        ];
        for (entry, want) in table {
            assert_eq!(ok(entry), want, "{entry}");
        }
        assert_eq!(parse_entry("7:event:s:1:2"), Some((7, ObjectKind::Event, Access::SYNCHRONIZE, 1, 2)));
    }

    #[test]
    fn paths_are_located_in_their_namespace() {
        let l = locate(Path::new("/r/x/local-1000/ofoo")).expect("local");
        assert_eq!(
            (l.root.as_path(), l.ns, l.uid),
            (Path::new("/r/x"), NsKind::Local, 1000)
        );
        assert_eq!(l.guess.as_deref(), Some("ofoo"));
        let g = locate(Path::new("/r/global/#4711")).expect("global");
        assert_eq!((g.ns, g.guess), (NsKind::Global, None));
        for bad in [
            "/r/other/ofoo",
            "/r/local-x/ofoo",
            "ofoo",
            "/ofoo",
            "local-0/ofoo",
        ] {
            assert!(locate(Path::new(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn file_names_decode_to_the_users_spelling() {
        assert_eq!(display_name(NsKind::Local, "oa%2Fb%20c"), "Local\\a/b c");
        assert_eq!(display_name(NsKind::Global, "ox%2"), "Global\\x%2");
        assert!(display_name(NsKind::Global, "habc").contains("hashed"));
    }

    #[test]
    fn a_passed_descriptor_is_a_holder_and_its_last_close_removes_the_name() {
        let r = TestRoot::new();
        let spec = ObjectSpec::Event {
            manual: true,
            initial: false,
        };
        let (h, _) = Handle::create(spec, "Local\\passed", &CreateOptions::default()).unwrap();
        let fd = h.slot.with_fd(unix::dup_cloexec).unwrap().unwrap();
        let g = handle_from_fd(fd, Some(ObjectKind::Event), Access::SYNCHRONIZE, false).unwrap();
        assert!(g.same_object(&h));
        assert_ne!(g.value(), h.value());
        assert_eq!(g.access(), Access::SYNCHRONIZE);
        h.set().unwrap();
        drop(h);
        assert_eq!(objects(&r), 1, "the passed handle keeps the name");
        assert!(matches!(g.set(), Err(Error::AccessDenied { .. })));
        assert_eq!(g.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        drop(g);
        assert_eq!(objects(&r), 0, "the last close removed the name");
    }

    #[test]
    fn foreign_files_and_unsealed_memfds_are_refused() {
        let r = TestRoot::new();
        let spec = ObjectSpec::Semaphore { initial: 1, max: 2 };
        // A valid object file outside any namespace directory.
        std::fs::create_dir_all(&r.0).unwrap();
        let path = r.0.join("ostray");
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        crate::obj::init_file(f.as_fd(), &spec).unwrap();
        let fd = OwnedFd::from(f);
        assert!(matches!(
            handle_from_fd(fd, None, Access::ALL, false),
            Err(Error::NotInheritable(_))
        ));
        // A valid object in a memfd that was never sealed.
        let m = fs::memfd("t").unwrap();
        crate::obj::init_file(m.as_fd(), &spec).unwrap();
        assert!(matches!(
            handle_from_fd(m, None, Access::ALL, false),
            Err(Error::NotInheritable(_))
        ));
        // The wrong type.
        let (h, _) = Handle::create(spec, "", &CreateOptions::default()).unwrap();
        let fd = h.slot.with_fd(unix::dup_cloexec).unwrap().unwrap();
        assert!(matches!(
            handle_from_fd(fd, Some(ObjectKind::Event), Access::ALL, false),
            Err(Error::WrongType { .. })
        ));
    }

    #[test]
    fn a_descriptor_taken_with_pidfd_getfd_is_adopted() {
        // The pull fallback for a source without an endpoint, on this very process.
        let _r = TestRoot::new();
        let spec = ObjectSpec::Semaphore { initial: 1, max: 1 };
        let (h, _) = Handle::create(spec, "Local\\getfd", &CreateOptions::default()).unwrap();
        let me = crate::sys::thread::getpid();
        let fd = unix::take_from_process(me, h.value()).unwrap();
        let g = handle_from_fd(fd, None, Access::ALL, false).unwrap();
        assert!(g.same_object(&h));
        assert_eq!(g.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        assert_eq!(h.release(1).unwrap(), 0);
        assert!(unix::take_from_process(me, 100_000).is_err());
    }

    #[test]
    fn received_handles_are_adopted_once() {
        let _r = TestRoot::new();
        let (h, _) = Handle::create(
            ObjectSpec::Event {
                manual: false,
                initial: false,
            },
            "",
            &CreateOptions::default(),
        )
        .unwrap();
        let me = crate::sys::thread::getpid();
        let v = h.duplicate_into(me, Some(Access::MODIFY), true).unwrap();
        assert_ne!(v, h.value());
        assert!(
            matches!(adopt(h.value()), Err(Error::InvalidHandle(_))),
            "a live handle is not adoptable"
        );
        let g = adopt(v).unwrap();
        assert_eq!(
            (g.value(), g.access(), g.is_inheritable()),
            (v, Access::MODIFY, true)
        );
        assert!(
            matches!(adopt(v), Err(Error::InvalidHandle(_))),
            "adopted once"
        );
        g.set().unwrap();
        assert_eq!(h.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        // HD-04 and HD-05: more rights fail, and close-source closes the source anyway.
        let v = g.value();
        assert!(matches!(
            crate::duplicate_from(me, v, Some(Access::ALL), false, true),
            Err(Error::AccessDenied { .. })
        ));
        assert!(g.is_closed());
        assert!(matches!(g.set(), Err(Error::InvalidHandle(_))));
        assert!(matches!(
            crate::duplicate_from(me, v, None, false, false),
            Err(Error::InvalidHandle(_))
        ));
    }

    /// HD-01 with a lent value: the first handle of an open has its object's own
    /// descriptor as its value, which stays open while a duplicate keeps the object;
    /// once that handle is closed, its value is no handle's (adopt, pull and
    /// close-source refuse it, no new handle gets it, inheritance skips it), and the
    /// name goes with the last handle.
    #[test]
    fn a_closed_first_handles_value_is_refused_while_its_object_lives() {
        let r = TestRoot::new();
        let spec = ObjectSpec::Event {
            manual: true,
            initial: false,
        };
        let opts = CreateOptions {
            inherit: true,
            ..CreateOptions::default()
        };
        let (h, _) = Handle::create(spec, "Local\\lent", &opts).unwrap();
        let v = h.value();
        assert_eq!(v, u64::from(h.obj().backing_fd_number()), "lent");
        let d = h.duplicate(None).unwrap();
        assert_ne!(d.value(), v);
        drop(h);
        assert!(
            fs::stat_fd(d.obj().backing_fd()).is_ok(),
            "still the object's"
        );
        assert!(registry::find(v).is_none());
        assert!(matches!(adopt(v), Err(Error::InvalidHandle(_))));
        let me = crate::sys::thread::getpid();
        assert!(matches!(
            crate::duplicate_from(me, v, None, false, false),
            Err(Error::InvalidHandle(_))
        ));
        assert!(!pending::close_from_outside(v));
        assert!(
            registry::inheritable()
                .iter()
                .all(|(k, _)| k.fd as u64 != v)
        );
        let e = d.duplicate(None).unwrap();
        assert!(e.value() != v && e.value() != d.value());
        d.set().unwrap();
        drop(d);
        assert_eq!(objects(&r), 1, "the last duplicate keeps the name");
        assert_eq!(e.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        drop(e);
        assert_eq!(objects(&r), 0, "the last close removed the name");
    }

    /// Close-source on a handle whose value is lent by its object: the handle is
    /// closed at once, the duplicate taken before works, and the name goes when both
    /// are dropped.
    #[test]
    fn close_source_of_a_lent_value() {
        let r = TestRoot::new();
        let spec = ObjectSpec::Semaphore { initial: 1, max: 1 };
        let (h, _) = Handle::create(spec, "Local\\lent-close", &CreateOptions::default()).unwrap();
        let v = h.value();
        let me = crate::sys::thread::getpid();
        let g = crate::duplicate_from(me, v, None, false, true).unwrap();
        assert!(h.is_closed());
        assert!(matches!(h.release(1), Err(Error::InvalidHandle(_))));
        assert!(registry::find(v).is_none());
        assert_eq!(g.wait(POLL).unwrap(), WaitOutcome::Signaled(0));
        drop(h);
        assert_eq!(objects(&r), 1);
        drop(g);
        assert_eq!(objects(&r), 0);
    }
}
