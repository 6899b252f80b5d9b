//! `procsync` one-shot processes started by a test: what one returned (`Done`), and one
//! running in the background (`Bg`), killed and reaped if the test fails. Shared by the
//! shell-subcommand tests and the cluster (etcd) tests.
#![allow(dead_code)] // not every test binary uses every helper

use std::borrow::BorrowMut;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one `procsync` invocation may take before the test calls it hung.
pub const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// What a finished `procsync` invocation returned.
#[derive(Debug)]
pub struct Done {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

/// A `procsync` process running in the background, killed if the test fails.
pub struct Bg {
    child: Option<Child>,
    what: String,
}

impl Bg {
    /// Starts `cmd` with its output piped and no input.
    pub fn start(mut cmd: impl BorrowMut<Command>, what: &str) -> Bg {
        let child = cmd
            .borrow_mut()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Bg {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn stdout(&mut self) -> ChildStdout {
        self.child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout is piped")
    }

    /// Waits for the end (within [`RUN_DEADLINE`]) and returns what it printed.
    pub fn finish(mut self) -> Done {
        let mut child = self.child.take().expect("not finished yet");
        let deadline = Instant::now() + RUN_DEADLINE;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{} did not finish within {RUN_DEADLINE:?}; stderr: {}",
                    self.what,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
        let out = child.wait_with_output().expect("collect output");
        Done {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
