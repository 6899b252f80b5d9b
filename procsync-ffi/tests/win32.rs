//! The Win32 C test programs (`tests/win32/*.c`), compiled with `cc` against the
//! library this build produced and run natively; each transcript must equal the one
//! checked in under `tests/win32/expected/`, which Wine produced from the same sources
//! (`tests/win32/regen-wine.sh`). So every line is a Win32 behaviour compared with
//! Windows' (Wine's) own: return values and `GetLastError()` after each call.
//!
//! The library: Cargo builds the crate's `cdylib` next to this test's executable
//! (`target/<profile>/deps/libprocsync_ffi.so`); each program links it as
//! `-lprocsync` through a `libprocsync.so` symlink in its scratch directory, exactly
//! as an installed copy is linked (see docs/PORTING.md). The example program links the
//! static library instead.
//!
//! Without a C compiler the tests are skipped with a message on stderr, unless
//! `PROCSYNC_REQUIRE_CC=1`, which turns that into a failure. Each program runs in a
//! fresh scratch directory with its own `PROCSYNC_ROOT`, and must leave no object file
//! behind. `PROCSYNC_WINE=1` also runs the Wine side (`regen-wine.sh --check`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A guard against a hung program, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(180);

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `libprocsync_ffi.so` and `.a` of this build.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("the test's directory").to_path_buf();
    for dir in [deps.clone(), deps.parent().unwrap_or(&deps).to_path_buf()] {
        if dir.join("libprocsync_ffi.so").exists() {
            return dir;
        }
    }
    panic!(
        "libprocsync_ffi.so is not next to the test executable ({}); build with `cargo test -p procsync-ffi`",
        deps.display()
    );
}

/// Whether a C compiler can be used; `false` means "skip" (after saying so).
fn have_cc() -> bool {
    let ok = Command::new("cc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg = "no C compiler (`cc`) found: the Win32 C tests were NOT run; install gcc, or set PROCSYNC_REQUIRE_CC=1 to make this a failure";
    assert!(
        std::env::var("PROCSYNC_REQUIRE_CC").as_deref() != Ok("1"),
        "{msg}"
    );
    eprintln!("SKIPPED: {msg}");
    false
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "procsync-win32-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("root")).expect("creating a scratch directory");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_below(p: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                files_below(&path, out);
            } else {
                out.push(path);
            }
        }
    }
}

/// How a program links the library.
enum Link {
    /// `-lprocsync` through a `libprocsync.so` symlink (rpath to it).
    Shared,
    /// `libprocsync_ffi.a` and the system libraries Rust's std needs.
    Static,
}

fn compile(src: &Path, out: &Path, scratch: &Path, link: Link) {
    let lib = lib_dir();
    let mut cc = Command::new("cc");
    cc.args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror"])
        .args([
            "-Wno-unused-function",
            "-Wno-unused-parameter",
            "-fshort-wchar",
        ])
        .arg("-I")
        .arg(manifest().join("include"))
        .arg("-I")
        .arg(manifest().join("tests/win32"))
        .arg(src)
        .arg("-o")
        .arg(out);
    match link {
        Link::Shared => {
            let libdir = scratch.join("lib");
            std::fs::create_dir_all(&libdir).expect("creating the link directory");
            std::os::unix::fs::symlink(
                lib.join("libprocsync_ffi.so"),
                libdir.join("libprocsync.so"),
            )
            .expect("linking libprocsync.so");
            cc.arg("-L").arg(&libdir).arg("-lprocsync");
            cc.arg(format!("-Wl,-rpath,{}", libdir.display()));
        }
        Link::Static => {
            cc.arg(lib.join("libprocsync_ffi.a"));
        }
    }
    cc.args(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s", "-lc"]);
    let o = cc.output().expect("running cc");
    assert!(
        o.status.success(),
        "cc failed for {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `exe` in `scratch` and returns its standard output.
fn run(exe: &Path, scratch: &Path) -> String {
    let mut child = Command::new(exe)
        .current_dir(scratch)
        .env("PROCSYNC_ROOT", scratch.join("root"))
        .env_remove("PROCSYNC_INHERITED")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting a test program");
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for a test program") {
            break s;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} hung (killed after {HANG_GUARD:?})", exe.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader
        .join()
        .expect("the reader thread")
        .expect("reading the transcript");
    assert!(
        status.success(),
        "{} failed ({status}); transcript so far:\n{out}",
        exe.display()
    );
    out
}

/// Compiles `tests/win32/<name>.c`, runs it and compares with `expected/<name>.txt`.
fn check(name: &str) {
    check_linked(name, Link::Shared);
}

fn check_linked(name: &str, link: Link) {
    if !have_cc() {
        return;
    }
    let scratch = Scratch::new(name);
    let src = manifest().join(format!("tests/win32/{name}.c"));
    let exe = scratch.0.join(name);
    compile(&src, &exe, &scratch.0, link);
    let got = run(&exe, &scratch.0);
    let want_path = manifest().join(format!("tests/win32/expected/{name}.txt"));
    let want = std::fs::read_to_string(&want_path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", want_path.display()));
    if got != want {
        let mut diff = String::new();
        let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
        for i in 0..g.len().max(w.len()) {
            let (a, b) = (w.get(i).copied(), g.get(i).copied());
            if a != b {
                diff.push_str(&format!(
                    "line {}:\n  Windows (Wine): {}\n  procsync:       {}\n",
                    i + 1,
                    a.unwrap_or("<none>"),
                    b.unwrap_or("<none>")
                ));
            }
        }
        panic!(
            "{name}: the transcript differs from {}:\n{diff}\nfull transcript:\n{got}",
            want_path.display()
        );
    }
    let mut left = Vec::new();
    files_below(&scratch.0.join("root"), &mut left);
    left.retain(|p| {
        p.file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with('o') || f.starts_with('h'))
    });
    assert!(left.is_empty(), "{name} left object files behind: {left:?}");
}

#[test]
fn events_names_and_rights() {
    check("events");
}

#[test]
fn mutexes_ownership_and_abandonment() {
    check("mutexes");
}

#[test]
fn semaphores() {
    check("semaphores");
}

#[test]
fn timers_and_apcs() {
    check("timers");
}

#[test]
fn waits_signal_and_wait_and_bad_handles() {
    check("waits");
}

#[test]
fn inheritance_into_children() {
    check("inherit");
}

#[test]
fn duplication_between_processes() {
    check("duplicate");
}

/// Where Wine is not Windows, or Windows would fault: the reference is written from
/// SEMANTICS.md, not produced by Wine.
#[test]
fn errors_and_pointers_per_semantics() {
    check("spec_errors");
}

#[test]
fn bad_handle_fuzzing() {
    check("spec_fuzz");
}

/// The example program of docs/PORTING.md, linked with the static library.
#[test]
fn example_program_static() {
    check_linked("example", Link::Static);
}

/// Opt-in (`PROCSYNC_WINE=1`, needs `gcc-mingw-w64-x86-64` and `wine64`): the checked-in
/// references still are what Wine produces from the current sources.
#[test]
fn wine_references_are_current() {
    if std::env::var("PROCSYNC_WINE").as_deref() != Ok("1") {
        eprintln!("not run: set PROCSYNC_WINE=1 to compare the references with Wine");
        return;
    }
    let script = manifest().join("tests/win32/regen-wine.sh");
    let o = Command::new(&script)
        .arg("--check")
        .output()
        .expect("running regen-wine.sh");
    assert!(
        o.status.success(),
        "Wine disagrees with the checked-in references:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `install.sh` into a scratch prefix, then the example built the documented way:
/// `cc example.c $(pkg-config --cflags --libs procsync)`, against `libprocsync.so`.
#[test]
fn install_and_pkg_config() {
    if !have_cc() {
        return;
    }
    let pc_ok = Command::new("pkg-config")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !pc_ok {
        eprintln!("SKIPPED: pkg-config not found; install_and_pkg_config was NOT run");
        return;
    }
    let scratch = Scratch::new("install");
    let prefix = scratch.0.join("prefix");
    let o = Command::new(manifest().join("install.sh"))
        .arg(&prefix)
        .env("PROCSYNC_LIB_DIR", lib_dir())
        .output()
        .expect("running install.sh");
    assert!(
        o.status.success(),
        "install.sh failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "lib/libprocsync.so",
        "lib/libprocsync.a",
        "include/procsync/win32.h",
        "lib/pkgconfig/procsync.pc",
    ] {
        assert!(prefix.join(f).exists(), "install.sh did not install {f}");
    }
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "procsync"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("running pkg-config");
    assert!(flags.status.success(), "pkg-config does not know procsync");
    let flags = String::from_utf8_lossy(&flags.stdout).into_owned();
    let exe = scratch.0.join("example");
    let o = Command::new("cc")
        .arg(manifest().join("tests/win32/example.c"))
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
        .output()
        .expect("running cc");
    assert!(
        o.status.success(),
        "cc with pkg-config flags `{flags}` failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = run(&exe, &scratch.0);
    let want = std::fs::read_to_string(manifest().join("tests/win32/expected/example.txt"))
        .expect("reading expected/example.txt");
    assert_eq!(got, want, "the installed example's transcript");
}

#[test]
fn inheritance_through_fork_and_exec() {
    check("spec_fork");
}

#[test]
fn named_objects_across_processes() {
    check("processes");
}
