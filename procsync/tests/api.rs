//! The Rust-facing API (README.md, "Using it from Rust"): guards and permits, builders and
//! `open` forms, the typed timer, and the `std::io::Error` conversions. Semantics item ids are
//! cited where a test pins one; the cross-process behaviour of the same calls is exercised by
//! the examples (`tests/examples.rs`), which run as real processes.
//!
//! Each test runs in a child process of this test binary whose `PROCSYNC_ROOT` is a fresh
//! directory (so nothing here changes the environment of a running process), and checks
//! that no file is left under it once every handle is closed (LT-01).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use procsync::{
    Access, Created, Error, Event, Handle, Mutex, ObjectKind, ObjectState, Owner, Semaphore, Timer,
    WaitOutcome, wait_all, wait_any,
};

const CHILD_VAR: &str = "PROCSYNC_API_TEST_CHILD";
const ZERO: Option<Duration> = Some(Duration::ZERO);

fn files_below(p: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Runs `body` in a child process (this binary, running only `test`) with a fresh
/// `PROCSYNC_ROOT`; then checks that the child passed and left no file, and removes the root.
fn in_fresh_root(test: &str, body: fn()) {
    in_fresh_root_under(&std::env::temp_dir(), test, body);
}

/// [`in_fresh_root`] with the root on tmpfs (`/dev/shm`, where the default root lives),
/// for tests that create thousands of files: on a disk file system each create and
/// unlink is a journalled metadata change, slow and at the mercy of other I/O.
fn in_fresh_shm_root(test: &str, body: fn()) {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    in_fresh_root_under(&base, test, body);
}

fn in_fresh_root_under(base: &Path, test: &str, body: fn()) {
    if std::env::var(CHILD_VAR).is_ok_and(|v| v == test) {
        body();
        return;
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let root = base.join(format!(
        "procsync-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("creating the test root");
    let out = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, test)
        .env("PROCSYNC_ROOT", &root)
        .output()
        .expect("running the test binary as a child");
    let mut left = Vec::new();
    files_below(&root, &mut left);
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        out.status.success(),
        "`{test}` failed in its child ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        left.is_empty(),
        "files left after every handle closed: {left:?}"
    );
}

fn owner(m: &Mutex) -> (Owner, u32, bool) {
    match m.query().unwrap() {
        ObjectState::Mutex {
            owner,
            recursion,
            abandoned,
        } => (owner, recursion, abandoned),
        other => panic!("a mutex queried as {other:?}"),
    }
}

fn count(s: &Semaphore) -> u32 {
    match s.query().unwrap() {
        ObjectState::Semaphore { count, .. } => count,
        other => panic!("a semaphore queried as {other:?}"),
    }
}

/// Runs `f` on another thread and returns its result (the other thread is a different
/// owner for mutex purposes).
fn on_other_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("the other thread")
}

#[test]
fn mutex_guard_releases_on_drop_and_counts_recursion() {
    in_fresh_root("mutex_guard_releases_on_drop_and_counts_recursion", || {
        let m = Arc::new(Mutex::builder().name("Local\\api-guard").create().unwrap());
        {
            let g1 = m.lock().unwrap();
            assert!(!g1.is_abandoned());
            assert_eq!(owner(&m), (Owner::Current, 1, false));
            let g2 = m.try_lock().unwrap().expect("recursive acquire (MX-09)");
            assert_eq!(owner(&m), (Owner::Current, 2, false));
            drop(g2);
            assert_eq!(owner(&m), (Owner::Current, 1, false));
            // Held here: another thread gets nothing, from every form.
            let m2 = m.clone();
            let (try_lock, lock_for, lock_until) = on_other_thread(move || {
                (
                    m2.try_lock().unwrap().is_none(),
                    m2.lock_for(Duration::from_millis(1)).unwrap().is_none(),
                    m2.lock_until(Instant::now()).unwrap().is_none(),
                )
            });
            assert!(try_lock && lock_for && lock_until);
            g1.unlock().unwrap();
        }
        assert_eq!(owner(&m), (Owner::None, 0, false));
        // Released: another thread takes it, and its guard releases it on that thread.
        let m2 = m.clone();
        assert!(on_other_thread(move || m2
            .lock_for(Duration::from_secs(10))
            .unwrap()
            .is_some()));
        assert_eq!(owner(&m), (Owner::None, 0, false));
    });
}

#[test]
fn mutex_guard_reports_abandonment_once() {
    in_fresh_root("mutex_guard_reports_abandonment_once", || {
        // AB-01, AB-02: the owner thread exits holding it (its guard forgotten).
        let m = Arc::new(Mutex::builder().create().unwrap());
        let m2 = m.clone();
        on_other_thread(move || std::mem::forget(m2.lock().unwrap()));
        let g = m.lock().unwrap();
        assert!(g.is_abandoned());
        drop(g);
        let g = m.lock().unwrap();
        assert!(!g.is_abandoned(), "abandonment is reported once");
    });
}

#[test]
fn mutex_win32_forms_still_work_beside_the_guard() {
    in_fresh_root("mutex_win32_forms_still_work_beside_the_guard", || {
        let m = Mutex::builder().initially_owned().create().unwrap(); // CO-03
        assert_eq!(owner(&m), (Owner::Current, 1, false));
        assert_eq!(m.unlock().unwrap(), 1);
        assert_eq!(m.wait(None).unwrap(), WaitOutcome::Signaled(0));
        assert_eq!(m.unlock().unwrap(), 1);
        assert_eq!(m.unlock().unwrap_err().code(), "not-owner"); // MX-04
    });
}

#[test]
fn semaphore_permits_give_back_or_forget() {
    in_fresh_root("semaphore_permits_give_back_or_forget", || {
        let s = Semaphore::builder().max(3).initial(2).create().unwrap();
        let a = s.acquire().unwrap();
        let b = s.try_acquire().unwrap().expect("a second unit");
        assert!(s.try_acquire().unwrap().is_none());
        assert!(s.acquire_for(Duration::from_millis(1)).unwrap().is_none());
        assert!(s.acquire_until(Instant::now()).unwrap().is_none());
        assert_eq!(count(&s), 0);
        drop(a);
        assert_eq!(count(&s), 1);
        b.forget();
        assert_eq!(count(&s), 1, "a forgotten permit keeps its unit");
        let c = s.acquire().unwrap();
        assert_eq!(
            c.release().unwrap(),
            0,
            "release() returns the previous count"
        );
        // The Win32 form: give back the forgotten unit explicitly.
        assert_eq!(s.release(1).unwrap(), 1);
        assert_eq!(s.release(2).unwrap_err().code(), "too-many-posts"); // SM-04
    });
}

#[test]
fn builder_options_are_applied() {
    in_fresh_root("builder_options_are_applied", || {
        let name = "Local\\api-builder";
        let (e, created) = Event::builder()
            .manual_reset()
            .initially_set()
            .name(name)
            .mode(0o640)
            .inheritable(true)
            .create_or_open()
            .unwrap();
        assert_eq!(created, Created::New);
        assert!(e.is_inheritable());
        assert_eq!(
            e.query().unwrap(),
            ObjectState::Event {
                manual: true,
                signaled: true
            }
        );
        // The mode lands on the object's file (the only file under the root but tables).
        let root = PathBuf::from(std::env::var_os("PROCSYNC_ROOT").unwrap());
        let mut files = Vec::new();
        files_below(&root, &mut files);
        let modes: Vec<u32> = files
            .iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .map(|p| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(p).unwrap().permissions().mode() & 0o777
            })
            .collect();
        assert_eq!(modes, [0o640], "object files: {files:?}");

        // Second create: opens, says so, keeps the existing state (CO-02).
        let (again, created) = Event::builder().name(name).create_or_open().unwrap();
        assert_eq!(created, Created::Existing);
        assert!(again.same_object(&e) && !again.is_inheritable());

        // Open with reduced rights (CO-08): may wait, may not set.
        let w = Event::builder()
            .name(name)
            .access(Access::SYNCHRONIZE)
            .inheritable(true)
            .open()
            .unwrap();
        assert!(w.is_inheritable());
        assert_eq!(w.access(), Access::SYNCHRONIZE);
        assert_eq!(w.set().unwrap_err().code(), "access-denied");
        assert_eq!(w.wait(ZERO).unwrap(), WaitOutcome::Signaled(0));
        let w2 = Event::open_with(name, Access::MODIFY).unwrap();
        assert_eq!(w2.wait(ZERO).unwrap_err().code(), "access-denied");

        // Type checks: the name is an event (NM-03), a handle converts only to its type.
        let err = Mutex::open(name).unwrap_err();
        assert_eq!(err.code(), "wrong-type");
        assert_eq!(
            Semaphore::open("Local\\api-none").unwrap_err().code(),
            "not-found"
        );
        let h: Handle = again.into();
        assert_eq!(h.kind(), ObjectKind::Event);
        assert_eq!(
            Mutex::try_from(h.duplicate(None).unwrap())
                .unwrap_err()
                .code(),
            "wrong-type"
        );
        assert!(Event::try_from(h).is_ok());

        // A semaphore needs its maximum, and says how to give it.
        let err = Semaphore::builder().initial(1).create().unwrap_err();
        assert_eq!(err.code(), "invalid-argument");
        assert!(err.to_string().contains(".max(n)"), "{err}");
        let err = Semaphore::builder().max(1).initial(2).create().unwrap_err(); // SM-01
        assert_eq!(err.code(), "invalid-argument");
    });
}

#[test]
fn typed_objects_mix_in_wait_any_and_wait_all() {
    in_fresh_root("typed_objects_mix_in_wait_any_and_wait_all", || {
        let stop = Event::builder().manual_reset().create().unwrap();
        let work = Semaphore::builder().max(4).create().unwrap();
        let m = Mutex::builder().create().unwrap();
        let t = Timer::builder().create().unwrap();
        assert_eq!(
            wait_any(&[&stop, &work, &m, &t], ZERO).unwrap(),
            WaitOutcome::Signaled(2)
        );
        m.unlock().unwrap();
        work.release(1).unwrap();
        assert_eq!(
            wait_any(&[&stop, &work], ZERO).unwrap(),
            WaitOutcome::Signaled(1)
        );
        assert_eq!(wait_all(&[&m, &work], ZERO).unwrap(), WaitOutcome::TimedOut); // WL-02
        work.release(1).unwrap();
        assert_eq!(
            wait_all(&[&m, &work], ZERO).unwrap(),
            WaitOutcome::Signaled(0)
        );
        assert_eq!(count(&work), 0);
        m.unlock().unwrap();
    });
}

#[test]
fn typed_timer_sets_cancels_and_calls_back() {
    in_fresh_root("typed_timer_sets_cancels_and_calls_back", || {
        let t = Timer::builder().manual_reset().create().unwrap();
        // Due in the past (absolute): signaled as soon as it is looked at.
        assert!(!t.set(SystemTime::UNIX_EPOCH, None).unwrap());
        assert_eq!(t.wait(None).unwrap(), WaitOutcome::Signaled(0));
        // Re-set resets the signaled state (TM-16); a cancel leaves it alone (TM-17).
        assert!(t.set(Duration::from_secs(3600), None).unwrap());
        assert_eq!(t.wait(ZERO).unwrap(), WaitOutcome::TimedOut);
        assert!(!t.cancel().unwrap());
        assert_eq!(
            t.query().unwrap(),
            ObjectState::Timer {
                manual: true,
                signaled: false,
                armed: false
            }
        );
        // Periods are whole milliseconds.
        let err = t
            .set(Duration::ZERO, Some(Duration::from_micros(10)))
            .unwrap_err();
        assert_eq!(err.code(), "invalid-argument");
        assert!(err.to_string().contains("at least 1 ms"), "{err}");

        // A periodic auto-reset timer: each expiration releases one wait; the callback
        // sees expirations too.
        let tick = Timer::builder().create().unwrap();
        let (tx, rx) = mpsc::channel();
        tick.set_with_callback(
            Duration::from_millis(1),
            Some(Duration::from_millis(2)),
            move || {
                let _ = tx.send(());
            },
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(tick.wait(None).unwrap(), WaitOutcome::Signaled(0));
        }
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the callback ran");
        tick.cancel().unwrap();
    });
}

// Checked when this file compiles: typed objects, handles, errors and permits may cross
// threads; a mutex guard may not (the `compile_fail` doctest of `MutexGuard`).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Event>();
    send_sync::<Mutex>();
    send_sync::<Semaphore>();
    send_sync::<Timer>();
    send_sync::<Handle>();
    send_sync::<Error>();
    send::<procsync::SemaphorePermit<'static>>();
};

#[test]
fn errors_convert_to_and_from_io_errors() {
    in_fresh_root("errors_convert_to_and_from_io_errors", || {
        use std::io::ErrorKind;
        let cases: Vec<(Error, ErrorKind)> = vec![
            (
                Event::open("Local\\api-missing").unwrap_err(),
                ErrorKind::NotFound,
            ),
            (Event::open("").unwrap_err(), ErrorKind::InvalidInput),
            (
                Semaphore::builder()
                    .max(1)
                    .initial(1)
                    .create()
                    .unwrap()
                    .release(1)
                    .unwrap_err(),
                ErrorKind::InvalidInput,
            ),
            (
                Mutex::builder().create().unwrap().unlock().unwrap_err(),
                ErrorKind::PermissionDenied,
            ),
        ];
        for (e, kind) in cases {
            let code = e.code();
            let text = e.to_string();
            assert_eq!(e.io_kind(), kind, "{code}");
            assert_eq!(e.raw_os_error(), None);
            let io: std::io::Error = e.into();
            assert_eq!(io.kind(), kind, "{code}");
            assert_eq!(io.to_string(), text, "the message survives");
            let back = Error::from(io);
            assert_eq!(back.code(), code, "the procsync error comes back out");
        }
        // A plain I/O error becomes Error::Os with its errno and kind.
        let e = Error::from(std::io::Error::from_raw_os_error(2));
        assert_eq!((e.code(), e.raw_os_error()), ("io", Some(2)));
        assert_eq!(e.io_kind(), ErrorKind::NotFound);
        // `?` turns a procsync error into an io::Error in an io::Result function.
        fn open_io() -> std::io::Result<Event> {
            Ok(Event::open("Local\\api-missing")?)
        }
        assert_eq!(open_io().unwrap_err().kind(), ErrorKind::NotFound);
    });
}

fn nofile() -> (u64, u64) {
    let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX))
}

fn set_nofile(soft: u64, hard: u64) {
    let l = rustix::process::Rlimit {
        current: Some(soft),
        maximum: Some(hard),
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, l).expect("setrlimit");
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A process may hold more objects than the default soft descriptor limit allows (one
/// descriptor each): the library raises the soft limit to the hard one the first time
/// it runs out, and every object works.
#[test]
fn objects_beyond_the_soft_descriptor_limit() {
    in_fresh_root("objects_beyond_the_soft_descriptor_limit", || {
        let (_, hard) = nofile();
        let n = 1000;
        assert!(
            hard > n + 64,
            "hard descriptor limit {hard} too low for this test"
        );
        set_nofile(256, hard);
        let make = |i: u64| {
            Event::builder()
                .name(&format!("Local\\api-fdlimit-{i}"))
                .manual_reset()
                .create()
                .unwrap_or_else(|e| panic!("object {i}: {e}"))
        };
        // The first object also opens its namespace's directory.
        let mut events = vec![make(0)];
        let before = open_descriptors();
        events.extend((1..n).map(make));
        assert_eq!(
            nofile(),
            (hard, hard),
            "the soft limit was raised to the hard one"
        );
        assert_eq!(
            open_descriptors() - before,
            (n - 1) as usize,
            "one descriptor per object"
        );
        for (i, e) in events.iter().enumerate().step_by(97) {
            let again = Event::open(&format!("Local\\api-fdlimit-{i}")).unwrap();
            assert_eq!(again.wait(ZERO).unwrap(), WaitOutcome::TimedOut);
            e.set().unwrap();
            assert_eq!(again.wait(ZERO).unwrap(), WaitOutcome::Signaled(0));
        }
    });
}

/// The scale target: 10 000 named objects held at once by one process, at one
/// descriptor each (a handle from `create` or `open` takes its object's share-locked
/// descriptor as its value; the machine this was written on has a hard limit of 20 000,
/// which two descriptors per object could not fit), a duplicate or a second open of a
/// held name one more; closing them all removes every name and file (LT-01).
#[test]
fn ten_thousand_named_objects_at_one_descriptor_each() {
    in_fresh_shm_root("ten_thousand_named_objects_at_one_descriptor_each", || {
        let n: usize = 10_000;
        let (_, hard) = nofile();
        assert!(
            hard >= n as u64 + 256,
            "hard descriptor limit {hard} too low for {n} objects (raise `ulimit -Hn`)"
        );
        let name = |i: usize| format!("Local\\api-scale-{i}");
        let make = |i: usize| {
            Semaphore::builder()
                .name(&name(i))
                .initial(0)
                .max(2)
                .create()
                .unwrap_or_else(|e| panic!("object {i}: {e}"))
        };
        // The first object also opens its namespace's directory.
        let mut held = vec![make(0)];
        let before = open_descriptors();
        held.extend((1..n).map(make));
        assert_eq!(
            open_descriptors() - before,
            n - 1,
            "one descriptor per object"
        );
        let mut values: Vec<u64> = held.iter().map(|s| s.value()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), n, "values are unique (HD-01)");

        // A duplicate and an open of a held name cost one descriptor each, and see the
        // same object.
        let dup = held[n / 2].duplicate(None).unwrap();
        let again = Semaphore::open(&name(n - 1)).unwrap();
        assert_eq!(open_descriptors() - before, n + 1);
        assert!(values.binary_search(&dup.value()).is_err());
        assert!(values.binary_search(&again.value()).is_err());
        held[n / 2].release(1).unwrap();
        assert_eq!(dup.wait(ZERO).unwrap(), WaitOutcome::Signaled(0));
        again.release(2).unwrap();
        assert_eq!(held[n - 1].release(1).unwrap_err().code(), "too-many-posts");
        // The first handle of an object closes before its duplicate: the object and its
        // name live on until the duplicate closes too.
        held.swap_remove(n / 2);
        assert_eq!(dup.wait(ZERO).unwrap(), WaitOutcome::TimedOut);
        Semaphore::open(&name(n / 2)).expect("the duplicate keeps the name");
        drop(dup);
        drop(again);
        drop(held);
        assert_eq!(
            open_descriptors(),
            before - 1,
            "every object's descriptor closed"
        );

        for i in 0..n {
            let e = Semaphore::open(&name(i)).map(drop).unwrap_err();
            assert_eq!(e.code(), "not-found", "object {i}: {e}");
        }
        let root = PathBuf::from(std::env::var_os("PROCSYNC_ROOT").unwrap());
        let mut left = Vec::new();
        files_below(&root, &mut left);
        assert_eq!(left, Vec::<PathBuf>::new(), "nothing left in the root");
    });
}

/// Past the hard limit, creating an object is a clear error that says what to do, the
/// objects already held keep working, and closing some makes room again.
#[test]
fn descriptor_exhaustion_is_a_clear_error() {
    in_fresh_root("descriptor_exhaustion_is_a_clear_error", || {
        set_nofile(200, 200);
        let mut held = Vec::new();
        let err = loop {
            match Semaphore::builder()
                .name(&format!("Local\\api-fdmax-{}", held.len()))
                .initial(1)
                .max(1)
                .create()
            {
                Ok(s) => held.push(s),
                Err(e) => break e,
            }
            assert!(held.len() < 200, "200 descriptors cannot hold 200 objects");
        };
        assert!(held.len() > 50, "only {} objects fit", held.len());
        assert!(matches!(err, Error::Exhausted { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("descriptors") && text.contains("ulimit -n"),
            "{text}"
        );
        assert_eq!(err.code(), "io");
        for s in held.iter().step_by(13) {
            assert_eq!(s.wait(ZERO).unwrap(), WaitOutcome::Signaled(0));
        }
        held.truncate(held.len() - 10);
        Semaphore::builder()
            .name("Local\\api-fdmax-again")
            .initial(0)
            .max(1)
            .create()
            .expect("room again after closing some");
    });
}
