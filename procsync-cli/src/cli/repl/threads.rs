//! The threads of `procsync repl`: one writer for standard output, one queue and one
//! OS thread per REPL thread, and the progress [`Tracker`] that lets `exit` and a
//! restarted thread wait for answers. Nothing here looks at what a command means,
//! beyond asking whether it may wait forever.

use std::io::{self, Write};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::Repl;
use crate::cli::command::{Command, SyntaxError};

/// How long `exit` lets threads blocked in a wait without timeout stay still before it
/// stops waiting for them.
const EXIT_GRACE: Duration = Duration::from_millis(100);

/// The one writer of answers (standard output, or `--output`): a whole line per
/// answer, flushed at once.
#[derive(Default)]
pub(super) struct Output {
    lock: Mutex<()>,
    /// `--output`, when given; standard output otherwise.
    file: std::sync::OnceLock<Mutex<Box<dyn Write + Send>>>,
}

impl Output {
    pub(super) fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends every answer to `sink` instead of standard output (set once, at startup).
    pub(super) fn redirect(&self, sink: Box<dyn Write + Send>) {
        let _ = self.file.set(Mutex::new(sink));
    }

    /// Writes `[@T ]text` as one line and flushes it.
    pub(super) fn answer(&self, prefix: Option<&str>, text: &str) {
        let line = match prefix {
            Some(thread) => format!("@{thread} {text}\n"),
            None => format!("{text}\n"),
        };
        let _guard = self.lock();
        let written = match self.file.get() {
            Some(file) => {
                let mut out = file.lock().unwrap_or_else(PoisonError::into_inner);
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            None => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
        };
        if let Err(e) = written {
            eprintln!("procsync repl: writing an answer failed: {e}");
        }
    }
}

/// The progress of every REPL thread, under one lock: what `exit` and a restarted
/// thread wait on.
#[derive(Default)]
pub(super) struct Tracker {
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    /// Indexed by thread id (start order); ended threads keep their entry.
    threads: Vec<ThreadProgress>,
    /// Bumped on every change, so that `exit` can tell a quiet process from a busy one.
    changes: u64,
}

#[derive(Default)]
struct ThreadProgress {
    /// Commands sent and not yet answered (an `exit-thread` counts until answered).
    pending: usize,
    /// Running a command that may block (REPL.md: `exit` does not wait for it).
    waiting_forever: bool,
}

impl Progress {
    /// Some thread has work that will finish on its own.
    fn busy(&self) -> bool {
        self.threads
            .iter()
            .any(|t| t.pending > 0 && !t.waiting_forever)
    }

    fn idle(&self) -> bool {
        self.threads.iter().all(|t| t.pending == 0)
    }
}

impl Tracker {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new thread's id.
    fn register(&self) -> usize {
        let mut progress = self.lock();
        progress.threads.push(ThreadProgress::default());
        progress.threads.len() - 1
    }

    fn update(&self, id: usize, change: impl FnOnce(&mut ThreadProgress)) {
        let mut progress = self.lock();
        change(&mut progress.threads[id]);
        progress.changes += 1;
        drop(progress);
        self.changed.notify_all();
    }

    fn sent(&self, id: usize) {
        self.update(id, |t| t.pending += 1);
    }

    fn waiting_forever(&self, id: usize) {
        self.update(id, |t| t.waiting_forever = true);
    }

    /// One command of thread `id` answered.
    fn answered(&self, id: usize) {
        self.update(id, |t| {
            t.pending = t.pending.saturating_sub(1);
            t.waiting_forever = false;
        });
    }

    /// Blocks until thread `id` has answered everything sent to it.
    fn wait_answered(&self, id: usize) {
        let progress = self.lock();
        let _answered = self
            .changed
            .wait_while(progress, |p| p.threads[id].pending > 0)
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Blocks until every thread has answered all it was sent, however long that takes
    /// (end of input).
    pub(super) fn wait_idle(&self) {
        let progress = self.lock();
        let _idle = self
            .changed
            .wait_while(progress, |p| !p.idle())
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// Blocks until every thread has answered all it was sent, except threads in a
    /// blocking command (a wait that may block, a `sleep`) that stay blocked for [`EXIT_GRACE`] with nothing else changing
    /// (a command just run may have released them; their answers are then awaited).
    pub(super) fn wait_quiet(&self) {
        let mut progress = self.lock();
        loop {
            progress = self
                .changed
                .wait_while(progress, |p| p.busy())
                .unwrap_or_else(PoisonError::into_inner);
            if progress.idle() {
                return;
            }
            let seen = progress.changes;
            let (guard, timeout) = self
                .changed
                .wait_timeout_while(progress, EXIT_GRACE, |p| p.changes == seen)
                .unwrap_or_else(PoisonError::into_inner);
            if timeout.timed_out() {
                return;
            }
            progress = guard;
        }
    }
}

/// One queued command and the prefix its answer carries.
pub(super) struct Job {
    pub(super) prefix: Option<String>,
    pub(super) command: Result<Command, SyntaxError>,
}

/// A message to a REPL thread.
enum Message {
    Run(Job),
    /// `exit-thread`: return, so that the thread really ends.
    Exit,
}

/// A running REPL thread, as the reader holds it.
pub(super) struct ReplThread {
    pub(super) id: usize,
    queue: Sender<Message>,
    join: JoinHandle<()>,
}

impl ReplThread {
    /// Starts thread `name`; it runs nothing before `previous` (an ended thread of the
    /// same name) has answered everything, its `exit-thread` included.
    pub(super) fn start(name: &str, repl: &Arc<Repl>, previous: Option<usize>) -> ReplThread {
        let (queue, inbox) = mpsc::channel::<Message>();
        let id = repl.tracker.register();
        let repl = Arc::clone(repl);
        let join = thread::Builder::new()
            .name(format!("repl-{name}"))
            .spawn(move || {
                if let Some(previous) = previous {
                    repl.tracker.wait_answered(previous);
                }
                while let Ok(Message::Run(job)) = inbox.recv() {
                    let forever = job.command.as_ref().is_ok_and(Command::waits_forever);
                    if forever {
                        repl.tracker.waiting_forever(id);
                    }
                    let answer = repl.answer_to(job.command);
                    repl.out.answer(job.prefix.as_deref(), &answer);
                    repl.tracker.answered(id);
                }
            })
            // Like `thread::spawn`: running out of threads is not an answerable error.
            .expect("procsync repl: cannot start a thread");
        ReplThread { id, queue, join }
    }

    pub(super) fn send(&self, repl: &Repl, job: Job) {
        repl.tracker.sent(self.id);
        // The thread only returns after `Message::Exit`, so the queue is open.
        let _ = self.queue.send(Message::Run(job));
    }

    /// Ends the thread after its queued commands, then answers `ok` once it has exited
    /// (so that whatever it owned is already abandoned when the answer is read).
    pub(super) fn exit(self, repl: &Arc<Repl>, prefix: Option<String>) {
        repl.tracker.sent(self.id);
        let _ = self.queue.send(Message::Exit);
        let repl = Arc::clone(repl);
        thread::spawn(move || {
            if self.join.join().is_err() {
                eprintln!("procsync repl: a thread ended by panicking");
            }
            repl.out.answer(prefix.as_deref(), "ok");
            repl.tracker.answered(self.id);
        });
    }
}
