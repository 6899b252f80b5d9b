//! Cross-process integration tests: real `procsync repl` processes side by side on a fresh
//! `PROCSYNC_ROOT`, driven through the line protocol of docs/REPL.md.
//!
//! Every test starts its own [`harness::Root`], gives its objects unique names, reads every
//! answer with a deadline, gives every wait a timeout, and synchronises through answers and the
//! `waiters` handshake (the only sleeps are the grace periods of a few "must not wake" checks). Test comments cite the
//! behaviour items of docs/SEMANTICS.md (EV-08, MX-06, …).

mod bg;
mod harness;

mod chaos;
mod demo;
mod event;
mod exact;
mod handles;
mod lifetime;
mod mutex;
mod names;
mod repl_io;
mod semaphore;
mod shell;
mod stress;
mod timers;
mod waits;
