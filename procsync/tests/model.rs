//! Differential test of the object semantics (docs/SEMANTICS.md).
//!
//! [`Model`] is a small, single-threaded reference model of events, mutexes and semaphores as
//! docs/SEMANTICS.md describes them (item ids cited inline), for operations that never block: every
//! wait has timeout 0. [`differential_against_library`] generates thousands of random, seeded
//! operation sequences over 3–6 objects of mixed types (named and unnamed, several handles per
//! object, reduced access rights) and runs each sequence against the model and against real
//! objects. Every operation runs on the dedicated thread of one of 2–3 *actors*, strictly one at
//! a time, so mutex ownership is real thread ownership and the sequence is deterministic. Actors
//! also exit (their owned mutexes are abandoned, AB-01) and are replaced by fresh threads.
//!
//! After every step the test compares the operation's result (outcome, index, previous value,
//! error code) and the queried state of every live object. On a mismatch it shrinks the sequence
//! by replaying subsets against fresh objects and panics with the case seed, the step, the whole
//! sequence and the shrunk one.
//!
//! ## Blocking waiters
//!
//! [`differential_blocking_against_library`] runs the same kind of sequences with
//! [`Op::Block`]: an actor starts a `wait`, `wait_any` or `wait_all` with a long timeout. If
//! the model says it cannot complete at once, the test knows the library queued it when
//! `Handle::waiters()` of each of its objects has grown by one (polled with a deadline, no
//! sleep), and the actor's thread stays inside the call. Later signals from *other* actors
//! (set, pulse, semaphore or mutex release, signal-and-wait) hand objects over in the model
//! as NT does, inside the signal ([`Model::hand_off`]): first come, first served per object;
//! a wait-all completes inside the signal that makes its whole set available (WL-18), one
//! that cannot complete is skipped and reserves nothing (WL-03, WL-19); EV-08, SM-09, PU-01/02,
//! WL-12, WY-12/13, AB-06. After every step the test compares, in this order: every object's
//! state read straight after the step returned (so a wait-all completed by the step must
//! already show its objects taken), `waiters()` of every object, then the answer of each
//! waiter the model says the step completed (it must come within [`OP_DEADLINE`]) and the
//! silence of each waiter the model says is still blocked. Timeout-0 waits by other actors
//! meanwhile take objects from under blocked wait-alls (WL-19: they must succeed).
//!
//! Some actors are other *processes* ([`Op::SpawnProcess`]): this test binary re-run as an
//! actor server ([`actor_server`]: one command per stdin line, one answer per stdout line).
//! They open the named objects and set, reset, pulse, release, give back (TO-06a) and
//! try-wait them, so the signals that complete the test process's blocked waits —
//! wait-alls included, whose other objects the signalling process may not even map — come
//! from another process (WL-14, PU-07, WY-16); and they exit owning mutexes (AB-07, AB-08). A dead process signals
//! nothing, so after its exit the waiters' answers are awaited before the states are read.
//! Blocked waiters are started only by actors that own no mutex and on objects that keep a
//! handle with every right ([`Model::blocking_ok`]), so every sequence can end by releasing
//! them ([`Real::release_blocked`]).
//!
//! Knobs (environment):
//! - `PROCSYNC_MODEL_SEED=N` (decimal or `0x…`): the base seed; case 0 uses `N` itself and the
//!   others seeds derived from it, so a reported case seed reruns alone with
//!   `PROCSYNC_MODEL_SEED=<case seed> PROCSYNC_MODEL_CASES=1`. Default: [`DEFAULT_SEEDS`].
//! - `PROCSYNC_MODEL_CASES=N`: number of sequences (default [`DEFAULT_CASES`], or
//!   [`DEFAULT_BLOCKING_CASES`] for the blocking test, split over the default seeds).
//! - `PROCSYNC_MODEL_TRACE=1`: print each op before it runs (for a failure that kills the
//!   process, which cannot be shrunk).
//! - `PROCSYNC_MODEL_STEPS=N`: random steps per sequence after the setup (default
//!   [`DEFAULT_STEPS`], or [`DEFAULT_BLOCKING_STEPS`]).
//!
//! Objects live under a fresh `PROCSYNC_ROOT`: the test re-runs itself as a child process with
//! the variable set (so no code here has to change the environment of a running process), then
//! removes the directory and checks that no object file was left behind (LT-01).
//!
//! Where several errors apply to one call and docs/SEMANTICS.md does not say which one wins,
//! the model accepts any of them (and still requires that nothing changed).

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex as StdMutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procsync::{
    Access, CreateOptions, Created, Handle, ObjectKind, ObjectSpec, ObjectState, Owner,
    WaitOutcome, signal_and_wait, wait_all, wait_any,
};

/// Base seeds used when `PROCSYNC_MODEL_SEED` is not set.
const DEFAULT_SEEDS: [u64; 4] = [
    0x5EED_0000_0000_0001,
    0xC0FF_EE00_D15E_A5E5,
    0x0123_4567_89AB_CDEF,
    0x2024_1127_0003_0008,
];
/// Sequences per run when `PROCSYNC_MODEL_CASES` is not set.
const DEFAULT_CASES: usize = 1500;
/// Random steps per sequence (after the setup) when `PROCSYNC_MODEL_STEPS` is not set.
const DEFAULT_STEPS: usize = 60;
/// The same two for the blocking test (each blocking wait costs a few thread hand-offs).
const DEFAULT_BLOCKING_CASES: usize = 200;
const DEFAULT_BLOCKING_STEPS: usize = 40;
/// LIBRARY BUG, kept out of the random sequences while it stands: a thread that exits owning
/// a mutex with a queued waiter, after it handed some object to a blocked waiter, aborts the
/// process (test `thread_exit_abandonment_after_a_hand_off_does_not_abort`). While `true`,
/// the blocking generator never lets an actor exit owning a mutex that a waiter waits on
/// (AB-06 through a thread's exit is then checked by that test alone). It is `false` since the
/// fix (the wait-block code reaches its thread-locals with `try_with`); case seed
/// `0x659e27c2a1c5ffa8` used to abort at its
/// step #21 (`PROCSYNC_MODEL_TRACE=1 PROCSYNC_MODEL_SEED=0x659e27c2a1c5ffa8
/// PROCSYNC_MODEL_CASES=1`): t0 hands mutex h0 to t1's blocked wait (#13), t1 releases it and
/// blocks in `waitall h1 h3 h0` (#18, h1 owned by t2), t0 takes h0 with a wait(0) (#20,
/// WL-19) and exits owning it (#21).
const KNOWN_ABORT_ON_EXIT_HAND_OFF: bool = false;
/// The timeout of a blocking wait: far longer than any run, so it never expires (the test
/// releases every waiter before it ends).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(600);
/// Distinct object names a sequence draws from (small, so names collide: CO-02, NM-03).
const NAMES: u8 = 3;
/// Every operation must answer within this (all waits have timeout 0, nothing may block).
const OP_DEADLINE: Duration = Duration::from_secs(10);
/// Shrinking stops after this many replays or this long, whichever comes first.
const SHRINK_REPLAYS: usize = 600;
const SHRINK_TIME: Duration = Duration::from_secs(60);
/// Set, to the test's name, in the child process that runs a test (see the module doc).
const CHILD_VAR: &str = "PROCSYNC_MODEL_CHILD";

// ---------------------------------------------------------------------------------------------
// A tiny seeded PRNG (SplitMix64).

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

// ---------------------------------------------------------------------------------------------
// Operations.

type ActorId = u32;
type HandleId = u32;
type ObjId = u32;

/// A handle's rights, the two of docs/SEMANTICS.md "Decisions": `synchronize` and `modify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Acc {
    sync: bool,
    modify: bool,
}

const ALL: Acc = Acc {
    sync: true,
    modify: true,
};
const SYNC: Acc = Acc {
    sync: true,
    modify: false,
};
const MODIFY: Acc = Acc {
    sync: false,
    modify: true,
};
const NONE: Acc = Acc {
    sync: false,
    modify: false,
};

impl Acc {
    fn contains(self, o: Acc) -> bool {
        (self.sync || !o.sync) && (self.modify || !o.modify)
    }

    fn lib(self) -> Access {
        match (self.sync, self.modify) {
            (true, true) => Access::ALL,
            (true, false) => Access::SYNCHRONIZE,
            (false, true) => Access::MODIFY,
            (false, false) => Access::NONE,
        }
    }
}

impl fmt::Display for Acc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.sync, self.modify) {
            (true, true) => "all",
            (true, false) => "synchronize",
            (false, true) => "modify",
            (false, false) => "none",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Event,
    Mutex,
    Semaphore,
}

impl Kind {
    fn lib(self) -> ObjectKind {
        match self {
            Kind::Event => ObjectKind::Event,
            Kind::Mutex => ObjectKind::Mutex,
            Kind::Semaphore => ObjectKind::Semaphore,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Mutex => "mutex",
            Kind::Semaphore => "semaphore",
        }
    }
}

/// Creation parameters (`create …` in REPL terms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spec {
    Event { manual: bool, initial: bool },
    Mutex { owned: bool },
    Semaphore { initial: u32, max: u32 },
}

impl Spec {
    fn kind(self) -> Kind {
        match self {
            Spec::Event { .. } => Kind::Event,
            Spec::Mutex { .. } => Kind::Mutex,
            Spec::Semaphore { .. } => Kind::Semaphore,
        }
    }

    fn lib(self) -> ObjectSpec {
        match self {
            Spec::Event { manual, initial } => ObjectSpec::Event { manual, initial },
            Spec::Mutex { owned } => ObjectSpec::Mutex { owned },
            Spec::Semaphore { initial, max } => ObjectSpec::Semaphore { initial, max },
        }
    }

    /// SM-01, LM-02: `1 ≤ max ≤ 0x7FFF_FFFF`, `initial ≤ max`.
    fn valid(self) -> bool {
        match self {
            Spec::Semaphore { initial, max } => (1..=0x7FFF_FFFF).contains(&max) && initial <= max,
            _ => true,
        }
    }
}

/// One step of a sequence. Every operation except `Spawn` runs on actor `a`'s thread.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Spawn {
        a: ActorId,
    },
    /// A new actor that is a separate *process* (an actor server: see [`actor_server`]). It
    /// runs only `Open`, `Close`, `Set`, `Reset`, `Pulse`, `GiveBack`, `Release`, `Wait` (timeout 0) on
    /// its own handles, and `Exit` (the process exits without releasing: AB-07, AB-08).
    SpawnProcess {
        a: ActorId,
    },
    Exit {
        a: ActorId,
    },
    Create {
        a: ActorId,
        h: HandleId,
        spec: Spec,
        name: Option<u8>,
    },
    Open {
        a: ActorId,
        h: HandleId,
        kind: Kind,
        name: Option<u8>,
        acc: Acc,
    },
    Dup {
        a: ActorId,
        h: HandleId,
        src: HandleId,
        acc: Option<Acc>,
    },
    Close {
        a: ActorId,
        h: HandleId,
    },
    Set {
        a: ActorId,
        h: HandleId,
    },
    Reset {
        a: ActorId,
        h: HandleId,
    },
    Pulse {
        a: ActorId,
        h: HandleId,
    },
    /// `Handle::give_back` (TO-06a): one acquisition put back, whether or not this actor
    /// made one (the library cannot tell; the model need not either).
    GiveBack {
        a: ActorId,
        h: HandleId,
    },
    Release {
        a: ActorId,
        h: HandleId,
        n: u32,
    },
    Wait {
        a: ActorId,
        h: HandleId,
    },
    WaitAny {
        a: ActorId,
        hs: Vec<HandleId>,
    },
    WaitAll {
        a: ActorId,
        hs: Vec<HandleId>,
    },
    SignalAndWait {
        a: ActorId,
        s: HandleId,
        w: HandleId,
    },
    Query {
        a: ActorId,
        h: HandleId,
    },
    /// The same `Wait`, `WaitAny` or `WaitAll` with a long timeout ([`BLOCK_TIMEOUT`]): if
    /// it cannot complete at once, the actor's thread stays blocked in it and the waiter
    /// is queued (in the model and, checked through `Handle::waiters()`, in the library)
    /// until a signal from another actor completes it (blocking test only).
    Block(Box<Op>),
}

impl Op {
    fn actor(&self) -> ActorId {
        match *self {
            Op::Spawn { a }
            | Op::SpawnProcess { a }
            | Op::Exit { a }
            | Op::Create { a, .. }
            | Op::Open { a, .. }
            | Op::Dup { a, .. }
            | Op::Close { a, .. }
            | Op::Set { a, .. }
            | Op::Reset { a, .. }
            | Op::Pulse { a, .. }
            | Op::GiveBack { a, .. }
            | Op::Release { a, .. }
            | Op::Wait { a, .. }
            | Op::WaitAny { a, .. }
            | Op::WaitAll { a, .. }
            | Op::SignalAndWait { a, .. }
            | Op::Query { a, .. } => a,
            Op::Block(ref w) => w.actor(),
        }
    }

    /// Handles the operation uses (not the one it creates).
    fn uses(&self) -> Vec<HandleId> {
        match self {
            Op::Spawn { .. }
            | Op::SpawnProcess { .. }
            | Op::Exit { .. }
            | Op::Create { .. }
            | Op::Open { .. } => vec![],
            Op::Dup { src, .. } => vec![*src],
            Op::Close { h, .. }
            | Op::Set { h, .. }
            | Op::Reset { h, .. }
            | Op::Pulse { h, .. }
            | Op::GiveBack { h, .. }
            | Op::Release { h, .. }
            | Op::Wait { h, .. }
            | Op::Query { h, .. } => vec![*h],
            Op::WaitAny { hs, .. } | Op::WaitAll { hs, .. } => hs.clone(),
            Op::SignalAndWait { s, w, .. } => vec![*s, *w],
            Op::Block(w) => w.uses(),
        }
    }

    /// The operation's name, for the coverage table.
    fn word(&self) -> &'static str {
        match self {
            Op::Spawn { .. } => "spawn",
            Op::SpawnProcess { .. } => "spawn-process",
            Op::Exit { .. } => "exit-thread",
            Op::Create { .. } => "create",
            Op::Open { .. } => "open",
            Op::Dup { .. } => "dup",
            Op::Close { .. } => "close",
            Op::Set { .. } => "set",
            Op::Reset { .. } => "reset",
            Op::Pulse { .. } => "pulse",
            Op::GiveBack { .. } => "give-back",
            Op::Release { .. } => "release",
            Op::Wait { .. } => "wait",
            Op::WaitAny { .. } => "waitany",
            Op::WaitAll { .. } => "waitall",
            Op::SignalAndWait { .. } => "signalandwait",
            Op::Query { .. } => "query",
            Op::Block(w) => match **w {
                Op::Wait { .. } => "block-wait",
                Op::WaitAny { .. } => "block-waitany",
                _ => "block-waitall",
            },
        }
    }

    /// The handle the operation creates, if any.
    fn makes(&self) -> Option<HandleId> {
        match self {
            Op::Create { h, .. } | Op::Open { h, .. } | Op::Dup { h, .. } => Some(*h),
            _ => None,
        }
    }
}

fn name_word(name: Option<u8>) -> String {
    name.map_or_else(|| "\"\"".to_string(), |n| format!("n{n}"))
}

fn list(hs: &[HandleId]) -> String {
    if hs.len() > 8 {
        // Long lists (WY-02, WY-09): show them compactly but completely.
        let mut s = format!("[{} handles:", hs.len());
        for h in hs {
            let _ = write!(s, " h{h}");
        }
        s.push(']');
        return s;
    }
    hs.iter()
        .map(|h| format!("h{h}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Spawn { a } => write!(f, "spawn t{a}"),
            Op::SpawnProcess { a } => write!(f, "spawn t{a} (another process)"),
            Op::Exit { a } => write!(f, "t{a}: exit-thread"),
            Op::Create { a, h, spec, name } => {
                write!(f, "t{a}: create ")?;
                match spec {
                    Spec::Event { manual, initial } => write!(
                        f,
                        "event h{h}{}{}",
                        if *manual { " manual" } else { "" },
                        if *initial { " initial" } else { "" }
                    )?,
                    Spec::Mutex { owned } => {
                        write!(f, "mutex h{h}{}", if *owned { " owned" } else { "" })?
                    }
                    Spec::Semaphore { initial, max } => {
                        write!(f, "semaphore h{h} initial={initial} max={max}")?
                    }
                }
                write!(f, " name={}", name_word(*name))
            }
            Op::Open {
                a,
                h,
                kind,
                name,
                acc,
            } => {
                write!(
                    f,
                    "t{a}: open {} h{h} name={} access={acc}",
                    kind.word(),
                    name_word(*name)
                )
            }
            Op::Dup { a, h, src, acc } => match acc {
                Some(acc) => write!(f, "t{a}: dup h{src} h{h} access={acc}"),
                None => write!(f, "t{a}: dup h{src} h{h} (same access)"),
            },
            Op::Close { a, h } => write!(f, "t{a}: close h{h}"),
            Op::Set { a, h } => write!(f, "t{a}: set h{h}"),
            Op::Reset { a, h } => write!(f, "t{a}: reset h{h}"),
            Op::Pulse { a, h } => write!(f, "t{a}: pulse h{h}"),
            Op::GiveBack { a, h } => write!(f, "t{a}: give-back h{h}"),
            Op::Release { a, h, n } => write!(f, "t{a}: release h{h} count={n}"),
            Op::Wait { a, h } => write!(f, "t{a}: wait h{h} timeout=0"),
            Op::WaitAny { a, hs } => write!(f, "t{a}: waitany {} timeout=0", list(hs)),
            Op::WaitAll { a, hs } => write!(f, "t{a}: waitall {} timeout=0", list(hs)),
            Op::SignalAndWait { a, s, w } => write!(f, "t{a}: signalandwait h{s} h{w} timeout=0"),
            Op::Query { a, h } => write!(f, "t{a}: query h{h}"),
            Op::Block(w) => {
                let text = w.to_string().replace("timeout=0", "timeout=long");
                write!(f, "{text}")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Results.

/// What an operation returned.
#[derive(Clone, Debug)]
enum Res {
    Done,
    /// `create`: `true` = a new object (CO-01), `false` = opened an existing one (CO-02).
    Created(bool),
    /// `release`: previous count (SM-04) or previous recursion count (MX-09).
    Prev(u32),
    /// `set`/`reset`/`pulse`: previous signaled state (EV-03..05, PU-04).
    Was(bool),
    Wait(WaitOutcome),
    State(ObjectState),
    /// An error: its stable code (docs/REPL.md) and message.
    Err(&'static str, String),
    /// The operation panicked inside the library.
    Panic(String),
    /// The operation did not answer within [`OP_DEADLINE`].
    Stuck,
    /// A blocking wait that did not return and is queued (`Handle::waiters()` counts it on
    /// every object of its list).
    Blocked,
    /// A blocking wait that neither returned nor showed up in `Handle::waiters()` within
    /// [`OP_DEADLINE`].
    NotQueued,
}

impl fmt::Display for Res {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Res::Done => f.write_str("ok"),
            Res::Created(true) => f.write_str("ok created"),
            Res::Created(false) => f.write_str("ok existed"),
            Res::Prev(p) => write!(f, "ok {p}"),
            Res::Was(b) => write!(f, "ok (previously {})", if *b { "set" } else { "unset" }),
            Res::Wait(WaitOutcome::Signaled(i)) => write!(f, "signaled {i}"),
            Res::Wait(WaitOutcome::Abandoned(i)) => write!(f, "abandoned {i}"),
            Res::Wait(WaitOutcome::TimedOut) => f.write_str("timeout"),
            Res::State(s) => write!(f, "ok {}", state_text(s)),
            Res::Err(code, msg) => write!(f, "err {code} ({msg})"),
            Res::Panic(msg) => write!(f, "PANIC: {msg}"),
            Res::Stuck => write!(
                f,
                "NO ANSWER within {OP_DEADLINE:?} (a timeout-0 operation blocked)"
            ),
            Res::Blocked => f.write_str("(blocked, queued)"),
            Res::NotQueued => write!(
                f,
                "NEITHER ANSWERED NOR QUEUED within {OP_DEADLINE:?} (waiters() never counted it)"
            ),
        }
    }
}

fn state_text(s: &ObjectState) -> String {
    match *s {
        ObjectState::Event { manual, signaled } => {
            format!(
                "event {} {}",
                if manual { "manual" } else { "auto" },
                if signaled { "set" } else { "unset" }
            )
        }
        ObjectState::Mutex {
            owner,
            recursion,
            abandoned,
        } => {
            let o = match owner {
                Owner::None => "none",
                Owner::Current => "self",
                Owner::Other => "other",
            };
            format!(
                "mutex owner={o} recursion={recursion} abandoned={}",
                u8::from(abandoned)
            )
        }
        ObjectState::Semaphore { count, max } => format!("semaphore count={count} max={max}"),
        other => format!("{other:?}"),
    }
}

/// What the model says an operation must return.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    /// Exactly this.
    Ok(Outcome),
    /// An error with one of these codes, and no change at all.
    Errs(Vec<&'static str>),
}

/// The comparable part of a successful [`Res`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Created(bool),
    Prev(u32),
    Was(bool),
    Wait(WaitOutcome),
    State(ObjectState),
    /// A blocking wait that cannot complete yet: it is queued.
    Blocked,
}

impl Expect {
    fn matches(&self, got: &Res) -> bool {
        let got = match got {
            Res::Done => Outcome::Done,
            Res::Created(c) => Outcome::Created(*c),
            Res::Prev(p) => Outcome::Prev(*p),
            Res::Was(b) => Outcome::Was(*b),
            Res::Wait(w) => Outcome::Wait(*w),
            Res::State(s) => Outcome::State(*s),
            Res::Blocked => Outcome::Blocked,
            Res::Err(code, _) => return matches!(self, Expect::Errs(codes) if codes.contains(code)),
            Res::Panic(_) | Res::Stuck | Res::NotQueued => return false,
        };
        *self == Expect::Ok(got)
    }
}

impl Expect {
    /// A coarse class of the answer, for the coverage table.
    fn class(&self) -> &'static str {
        match self {
            Expect::Errs(codes) => codes[0],
            Expect::Ok(Outcome::Wait(WaitOutcome::Signaled(_))) => "signaled",
            Expect::Ok(Outcome::Wait(WaitOutcome::Abandoned(_))) => "abandoned",
            Expect::Ok(Outcome::Wait(WaitOutcome::TimedOut)) => "timeout",
            Expect::Ok(Outcome::Blocked) => "blocked",
            Expect::Ok(_) => "ok",
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Errs(codes) => write!(f, "err {}", codes.join(" | err ")),
            Expect::Ok(o) => {
                let r = match o {
                    Outcome::Done => Res::Done,
                    Outcome::Created(c) => Res::Created(*c),
                    Outcome::Prev(p) => Res::Prev(*p),
                    Outcome::Was(b) => Res::Was(*b),
                    Outcome::Wait(w) => Res::Wait(*w),
                    Outcome::State(s) => Res::State(*s),
                    Outcome::Blocked => Res::Blocked,
                };
                write!(f, "{r}")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model.

/// One object's state.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Obj {
    /// `banked`: signals given back while the event was set (TO-06a), each released by
    /// one more wait; 0 unless `signaled`.
    Event {
        manual: bool,
        signaled: bool,
        banked: u32,
    },
    /// `owner` is an actor; `recursion` is 0 when unowned; `abandoned` only while unowned
    /// (AB-02 clears it on the next acquisition).
    Mutex {
        owner: Option<ActorId>,
        recursion: u32,
        abandoned: bool,
    },
    Semaphore {
        count: u32,
        max: u32,
    },
}

impl Obj {
    fn new(spec: Spec, creator: ActorId) -> Obj {
        match spec {
            // CO-15, EV-01/02.
            Spec::Event { manual, initial } => Obj::Event {
                manual,
                signaled: initial,
                banked: 0,
            },
            // CO-15, MX-01/02.
            Spec::Mutex { owned } => Obj::Mutex {
                owner: owned.then_some(creator),
                recursion: u32::from(owned),
                abandoned: false,
            },
            Spec::Semaphore { initial, max } => Obj::Semaphore {
                count: initial,
                max,
            },
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Obj::Event { .. } => Kind::Event,
            Obj::Mutex { .. } => Kind::Mutex,
            Obj::Semaphore { .. } => Kind::Semaphore,
        }
    }

    /// Whether a wait by actor `a` is satisfied now: a set event, a semaphore with count > 0
    /// (SM-03), a free mutex or one `a` already owns (MX-03, WY-06, WY-07, WL-06).
    fn signaled_for(&self, a: ActorId) -> bool {
        match self {
            Obj::Event { signaled, .. } => *signaled,
            Obj::Mutex { owner, .. } => owner.is_none() || *owner == Some(a),
            Obj::Semaphore { count, .. } => *count > 0,
        }
    }

    /// Applies a satisfied wait's acquisition (W1-06); returns whether it acquired an abandoned
    /// mutex (AB-02).
    fn acquire(&mut self, a: ActorId) -> bool {
        match self {
            // EV-06: auto-reset is consumed, manual is not; TO-06a: a banked signal first.
            Obj::Event {
                manual,
                signaled,
                banked,
            } => {
                if *manual {
                } else if *banked > 0 {
                    *banked -= 1;
                } else {
                    *signaled = false;
                }
                false
            }
            // SM-03, SM-12.
            Obj::Semaphore { count, .. } => {
                *count -= 1;
                false
            }
            Obj::Mutex {
                owner,
                recursion,
                abandoned,
            } => {
                if *owner == Some(a) {
                    // MX-03: recursion +1.
                    *recursion += 1;
                    false
                } else {
                    // MX-01; AB-02: owned with recursion 1, abandonment reported once and cleared.
                    *owner = Some(a);
                    *recursion = 1;
                    std::mem::take(abandoned)
                }
            }
        }
    }

    /// The state as `viewer` queries it (EV-12, MX-10, SM-13, AB-04).
    fn view(&self, viewer: Option<ActorId>) -> ObjectState {
        match *self {
            Obj::Event {
                manual, signaled, ..
            } => ObjectState::Event { manual, signaled },
            Obj::Mutex {
                owner,
                recursion,
                abandoned,
            } => ObjectState::Mutex {
                owner: match owner {
                    None => Owner::None,
                    Some(o) if Some(o) == viewer => Owner::Current,
                    Some(_) => Owner::Other,
                },
                recursion,
                abandoned,
            },
            Obj::Semaphore { count, max } => ObjectState::Semaphore { count, max },
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct HandleM {
    obj: ObjId,
    acc: Acc,
    /// The process actor that holds it; `None`: the test's own process.
    proc: Option<ActorId>,
}

/// A blocked wait (an [`Op::Block`] that could not complete at once), queued on each of its
/// objects.
#[derive(Clone, Debug)]
struct Waiter {
    a: ActorId,
    /// A wait-all (else a single wait or a wait-any).
    all: bool,
    /// The objects of its list, in list order (a wait-any may name one twice, WY-08).
    objs: Vec<ObjId>,
    hs: Vec<HandleId>,
}

/// The whole model: live objects, names, handles and actors of one process.
#[derive(Clone, Debug, Default)]
struct Model {
    objs: BTreeMap<ObjId, Obj>,
    /// Name → object, for named objects that are alive (NM-16: names die with their object).
    names: BTreeMap<u8, ObjId>,
    handles: BTreeMap<HandleId, HandleM>,
    actors: BTreeSet<ActorId>,
    /// The actors that are processes ([`Op::SpawnProcess`]).
    procs: BTreeSet<ActorId>,
    next_obj: ObjId,
    /// Blocked waiters in arrival order (at most one per actor). Since each blocking wait is
    /// queued before the next step runs, arrival order is also each object's queue order.
    waiters: Vec<Waiter>,
    /// Waiters the last step completed: actor, whether a wait-all, outcome (taken by the
    /// runner).
    done: Vec<(ActorId, bool, WaitOutcome)>,
}

/// Collects the errors that apply to a call. Empty means the call succeeds.
#[derive(Default)]
struct Errs(Vec<&'static str>);

impl Errs {
    fn check(&mut self, bad: bool, code: &'static str) {
        if bad && !self.0.contains(&code) {
            self.0.push(code);
        }
    }

    fn into_expect(self) -> Option<Expect> {
        (!self.0.is_empty()).then_some(Expect::Errs(self.0))
    }
}

impl Model {
    /// Whether `op` can run in this state at all (shrinking may remove the op that made a
    /// handle or an actor).
    fn valid(&self, op: &Op) -> bool {
        let actor_ok = match op {
            Op::Spawn { a } | Op::SpawnProcess { a } => !self.actors.contains(a),
            // A blocked actor's thread is inside its wait: it runs nothing else.
            _ => self.actors.contains(&op.actor()) && !self.blocked(op.actor()),
        };
        actor_ok
            && op.uses().iter().all(|h| self.handles.contains_key(h))
            && op.makes().is_none_or(|h| !self.handles.contains_key(&h))
            && self.blocking_ok(op)
            && self.process_ok(op)
    }

    /// A process actor runs only what the actor server knows, on its own handles; the test's
    /// threads use only the test process's handles; every object keeps a handle in the test
    /// process (the driver queries states through it).
    fn process_ok(&self, op: &Op) -> bool {
        let a = op.actor();
        let mine = self.procs.contains(&a).then_some(a);
        let ops_ok = match op {
            Op::SpawnProcess { .. } | Op::Spawn { .. } => true,
            _ if mine.is_none() => true,
            Op::Open { .. }
            | Op::Close { .. }
            | Op::Set { .. }
            | Op::Reset { .. }
            | Op::Pulse { .. }
            | Op::GiveBack { .. }
            | Op::Release { .. }
            | Op::Wait { .. }
            | Op::Exit { .. } => true,
            _ => false,
        };
        let keeps_local = match op {
            Op::Close { h, .. } if self.h(*h).proc.is_none() => {
                let o = self.h(*h).obj;
                let other_local = self
                    .handles
                    .iter()
                    .any(|(k, x)| k != h && x.obj == o && x.proc.is_none());
                let remote = self
                    .handles
                    .values()
                    .any(|x| x.obj == o && x.proc.is_some());
                other_local || !remote
            }
            _ => true,
        };
        ops_ok && keeps_local && op.uses().iter().all(|h| self.h(*h).proc == mine)
    }

    /// Drops handle `h`; the last handle of an object destroys it (LT-01) and frees its name
    /// (NM-16).
    fn drop_handle(&mut self, h: HandleId) {
        let gone = self.handles.remove(&h).expect("valid").obj;
        if !self.handles.values().any(|x| x.obj == gone) {
            self.objs.remove(&gone);
            self.names.retain(|_, o| *o != gone);
        }
    }

    fn blocked(&self, a: ActorId) -> bool {
        self.waiters.iter().any(|w| w.a == a)
    }

    /// Mutexes owned by `a`.
    fn owned_by(&self, a: ActorId) -> Vec<ObjId> {
        self.objs
            .iter()
            .filter(|(_, o)| matches!(o, Obj::Mutex { owner: Some(x), .. } if *x == a))
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many blocked waiters are queued on object `o` (what `Handle::waiters()` counts:
    /// one per waiter, whatever the number of times its list names `o`).
    fn queued_on(&self, o: ObjId) -> usize {
        self.waiters.iter().filter(|w| w.objs.contains(&o)).count()
    }

    /// The restrictions that keep every blocked waiter releasable, so a sequence can always
    /// end by releasing them (see [`Real::release_blocked`]), and keep the expected outcome
    /// unique:
    /// - an actor that owns a mutex does not block (so no blocked actor owns one: no
    ///   deadlock cycle, and every mutex a waiter needs has a running owner that can release
    ///   it or exit);
    /// - an event or semaphore a waiter waits on keeps a handle with every right;
    /// - a handle a waiter uses is not closed;
    /// - an actor exits owning at most one mutex with waiters: the order in which one exit
    ///   abandons several mutexes is not specified, and it decides who gets what.
    fn blocking_ok(&self, op: &Op) -> bool {
        let has_full = |o: ObjId, except: Option<HandleId>| {
            self.handles
                .iter()
                .any(|(h, x)| x.obj == o && x.acc == ALL && x.proc.is_none() && Some(*h) != except)
        };
        match op {
            Op::Block(w) => {
                matches!(
                    **w,
                    Op::Wait { .. } | Op::WaitAny { .. } | Op::WaitAll { .. }
                ) && self.owned_by(w.actor()).is_empty()
                    && w.uses().iter().all(|&h| {
                        let o = self.h(h).obj;
                        self.objs[&o].kind() == Kind::Mutex || has_full(o, None)
                    })
            }
            Op::Close { h, .. } => {
                !self.waiters.iter().any(|w| w.hs.contains(h)) && {
                    let o = self.h(*h).obj;
                    self.queued_on(o) == 0 || has_full(o, Some(*h))
                }
            }
            Op::Exit { a } => {
                let handed = self
                    .owned_by(*a)
                    .into_iter()
                    .filter(|&o| self.queued_on(o) > 0)
                    .count();
                // A process's exit runs no thread-exit hook: the bug does not apply.
                handed <= usize::from(!KNOWN_ABORT_ON_EXIT_HAND_OFF || self.procs.contains(a))
            }
            _ => true,
        }
    }

    /// Object `o` was just signaled (set, pulse, release, abandonment): hands it to its queued
    /// waiters, oldest first (docs/ARCHITECTURE.md "Wake-up policy"; EV-11 says Windows does
    /// not promise an order, procsync documents first come, first served), as NT does inside
    /// the signalling call:
    /// - a single wait or wait-any takes `o` if it is available to it (EV-08: an auto event
    ///   goes to one waiter; SM-09: a release of n wakes min(n, k); WY-12, WY-13; AB-06 and
    ///   WY-14: an abandoned mutex is reported at the index where `o` first appears);
    /// - a wait-all completes *here* when every object of its set is available to it (WL-18):
    ///   all acquired at once on its behalf (WL-02, WL-08, WL-10); one that cannot complete
    ///   is skipped and holds nothing back (WL-03, WL-19), so a later waiter may take `o`.
    ///
    /// Completing a waiter only acquires, so it never makes another object available: no
    /// other queue needs a walk.
    fn hand_off(&mut self, o: ObjId) {
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            if !w.objs.contains(&o) {
                i += 1;
                continue;
            }
            let (a, all) = (w.a, w.all);
            let outcome = if w.all {
                if w.objs.iter().all(|x| self.objs[x].signaled_for(a)) {
                    let objs = w.objs.clone();
                    let mut abandoned = None;
                    for (k, x) in objs.iter().enumerate() {
                        if self.objs.get_mut(x).expect("live").acquire(a) && abandoned.is_none() {
                            abandoned = Some(k);
                        }
                    }
                    Some(abandoned.map_or(WaitOutcome::Signaled(0), WaitOutcome::Abandoned))
                } else {
                    None
                }
            } else if self.objs[&o].signaled_for(a) {
                let k = w.objs.iter().position(|x| *x == o).expect("queued on o");
                Some(if self.objs.get_mut(&o).expect("live").acquire(a) {
                    WaitOutcome::Abandoned(k)
                } else {
                    WaitOutcome::Signaled(k)
                })
            } else {
                None
            };
            match outcome {
                Some(out) => {
                    self.waiters.remove(i);
                    self.done.push((a, all, out));
                }
                None => i += 1,
            }
        }
    }

    fn h(&self, h: HandleId) -> HandleM {
        self.handles[&h]
    }

    fn obj(&self, h: HandleId) -> &Obj {
        &self.objs[&self.h(h).obj]
    }

    fn obj_mut(&mut self, h: HandleId) -> &mut Obj {
        let id = self.h(h).obj;
        self.objs.get_mut(&id).expect("handles name live objects")
    }

    fn kind(&self, h: HandleId) -> Kind {
        self.obj(h).kind()
    }

    /// A single wait by `a` on `h`, rights already checked: W1-01/02, W1-06, W1-08/AB-02.
    fn wait_one(&mut self, a: ActorId, h: HandleId) -> Outcome {
        let o = self.obj_mut(h);
        Outcome::Wait(if !o.signaled_for(a) {
            WaitOutcome::TimedOut
        } else if o.acquire(a) {
            WaitOutcome::Abandoned(0)
        } else {
            WaitOutcome::Signaled(0)
        })
    }

    /// Errors of a wait list (WY-01/02, WL-13, AM-02, WY-11).
    fn list_errs(&self, hs: &[HandleId]) -> Errs {
        let mut e = Errs::default();
        e.check(hs.is_empty() || hs.len() > 64, "invalid-argument");
        e.check(hs.iter().any(|&h| !self.h(h).acc.sync), "access-denied");
        e
    }

    /// Applies `op` and returns what it must answer. Errors change nothing.
    fn apply(&mut self, op: &Op) -> Expect {
        match self.apply_inner(op) {
            Ok(o) => Expect::Ok(o),
            Err(e) => e,
        }
    }

    fn apply_inner(&mut self, op: &Op) -> Result<Outcome, Expect> {
        let fail = |e: Errs| e.into_expect().map_or(Ok(()), Err);
        Ok(match *op {
            Op::Spawn { a } => {
                self.actors.insert(a);
                Outcome::Done
            }
            Op::SpawnProcess { a } => {
                self.actors.insert(a);
                self.procs.insert(a);
                Outcome::Done
            }
            Op::Exit { a } => {
                // AB-01, AB-05, AB-10: every mutex the thread still owns becomes free and
                // abandoned, whatever its recursion count; nothing else changes (AB-15).
                // AB-06: each is then handed to its queued waiters (inside the thread's exit).
                let owned = self.owned_by(a);
                for o in self.objs.values_mut() {
                    if let Obj::Mutex {
                        owner,
                        recursion,
                        abandoned,
                    } = o
                        && *owner == Some(a)
                    {
                        *owner = None;
                        *recursion = 0;
                        *abandoned = true;
                    }
                }
                for o in owned {
                    self.hand_off(o);
                }
                if self.procs.remove(&a) {
                    // The process's handles close with it (LT-01, LT-06: after abandonment
                    // changed ownership, closing changes nothing more).
                    let mine: Vec<HandleId> = self
                        .handles
                        .iter()
                        .filter(|(_, x)| x.proc == Some(a))
                        .map(|(h, _)| *h)
                        .collect();
                    for h in mine {
                        self.drop_handle(h);
                    }
                }
                self.actors.remove(&a);
                Outcome::Done
            }
            Op::Create { a, h, spec, name } => {
                let existing = name.and_then(|n| self.names.get(&n).copied());
                let mut e = Errs::default();
                // SM-01; CO-05: checked even when the name exists.
                e.check(!spec.valid(), "invalid-argument");
                // NM-03: the name belongs to another type; nothing changes.
                e.check(
                    existing.is_some_and(|o| self.objs[&o].kind() != spec.kind()),
                    "wrong-type",
                );
                fail(e)?;
                let (obj, new) = match existing {
                    // CO-02..05: the existing object, untouched (no ownership for `owned`).
                    Some(o) => (o, false),
                    // CO-01, CO-15; NM-11/12: "" always makes a new unnamed object.
                    None => {
                        let id = self.next_obj;
                        self.next_obj += 1;
                        self.objs.insert(id, Obj::new(spec, a));
                        if let Some(n) = name {
                            self.names.insert(n, id);
                        }
                        (id, true)
                    }
                };
                // AM-01: a created handle has every right.
                self.handles.insert(
                    h,
                    HandleM {
                        obj,
                        acc: ALL,
                        proc: None,
                    },
                );
                Outcome::Created(new)
            }
            Op::Open {
                a,
                h,
                kind,
                name,
                acc,
            } => {
                let existing = name.and_then(|n| self.names.get(&n).copied());
                let mut e = Errs::default();
                e.check(name.is_none(), "invalid-name"); // NM-12
                e.check(acc == NONE, "access-denied"); // CO-09
                e.check(name.is_some() && existing.is_none(), "not-found"); // CO-08, LT-01
                e.check(
                    existing.is_some_and(|o| self.objs[&o].kind() != kind),
                    "wrong-type",
                ); // NM-04
                fail(e)?;
                // CO-10, AM-12: the handle has exactly the rights asked for.
                self.handles.insert(
                    h,
                    HandleM {
                        obj: existing.expect("checked"),
                        acc,
                        proc: self.procs.contains(&a).then_some(a),
                    },
                );
                Outcome::Done
            }
            Op::Dup { h, src, acc, .. } => {
                let s = self.h(src);
                let mut e = Errs::default();
                // HD-04 (this library: never more rights than the source).
                e.check(acc.is_some_and(|a| !s.acc.contains(a)), "access-denied");
                fail(e)?;
                // HD-01, HD-02, HD-03.
                self.handles.insert(
                    h,
                    HandleM {
                        obj: s.obj,
                        acc: acc.unwrap_or(s.acc),
                        proc: None,
                    },
                );
                Outcome::Done
            }
            Op::Close { h, .. } => {
                // HC-01, HC-05; LT-06: closing never releases or abandons a mutex.
                self.drop_handle(h);
                Outcome::Done
            }
            Op::Set { h, .. } | Op::Reset { h, .. } | Op::Pulse { h, .. } => {
                let mut e = Errs::default();
                e.check(self.kind(h) != Kind::Event, "wrong-type"); // HC-07
                e.check(!self.h(h).acc.modify, "access-denied"); // AM-03
                fail(e)?;
                let o = self.h(h).obj;
                // A reset (or a pulse's end) clears the bank too; a set keeps a set event's
                // bank (TO-06a).
                let set = |m: &mut Model, on: bool| {
                    let Some(Obj::Event {
                        signaled, banked, ..
                    }) = m.objs.get_mut(&o)
                    else {
                        unreachable!()
                    };
                    if !on || !*signaled {
                        *banked = 0;
                    }
                    std::mem::replace(signaled, on)
                };
                // EV-03/04 (set), EV-05 (reset).
                let was = set(self, !matches!(op, Op::Reset { .. }));
                if !matches!(op, Op::Reset { .. }) {
                    // EV-08, PU-01/02, WL-12: set (or pulse) hands the event to the queued
                    // waiters: all of them for a manual event, one for an auto event; a
                    // wait-all completes only if its other objects are available now.
                    self.hand_off(o);
                }
                if matches!(op, Op::Pulse { .. }) {
                    // PU-03/04/05: then the event ends unset.
                    set(self, false);
                }
                Outcome::Was(was)
            }
            Op::GiveBack { h, .. } => {
                let mut e = Errs::default();
                e.check(self.kind(h) == Kind::Mutex, "wrong-type");
                e.check(!self.h(h).acc.modify, "access-denied");
                fail(e)?;
                // TO-06a: an auto-reset event set again, or one more signal banked when it
                // is set; a semaphore unit back, dropped at the maximum (SM-05); a
                // manual-reset event unchanged. Then the hand-off, as after a signal.
                match self.obj_mut(h) {
                    Obj::Event {
                        manual: false,
                        signaled,
                        banked,
                    } => {
                        if !*signaled {
                            *signaled = true;
                            *banked = 0;
                        } else if *banked < 0xFFFF {
                            *banked += 1;
                        }
                    }
                    Obj::Semaphore { count, max } if *count < *max => *count += 1,
                    _ => {}
                }
                self.hand_off(self.h(h).obj);
                Outcome::Done
            }
            Op::Release { a, h, n } => {
                let acc = self.h(h).acc;
                let mut e = Errs::default();
                match self.obj(h).clone() {
                    Obj::Event { .. } => {
                        e.check(true, "wrong-type"); // HC-07
                        e.check(!acc.modify, "access-denied");
                    }
                    Obj::Semaphore { count, max } => {
                        e.check(!acc.modify, "access-denied"); // AM-04
                        e.check(n == 0, "invalid-argument"); // SM-06
                        // A count above i32::MAX is a negative LONG on Win32 (SM-06) and
                        // passes any maximum (SM-07): either error is fine.
                        if n > 0x7FFF_FFFF {
                            e.check(true, "invalid-argument");
                        }
                        // SM-05, SM-07: past the maximum, computed without wrapping.
                        e.check(
                            n > 0 && u64::from(count) + u64::from(n) > u64::from(max),
                            "too-many-posts",
                        );
                    }
                    Obj::Mutex { owner, .. } => {
                        // The API releases one level per call (Handle::release docs).
                        e.check(n != 1, "invalid-argument");
                        // MX-04..06; AM-07: ownership, not rights.
                        e.check(owner != Some(a), "not-owner");
                    }
                }
                fail(e)?;
                let out = match self.obj_mut(h) {
                    Obj::Semaphore { count, .. } => {
                        let prev = *count;
                        *count += n; // SM-04
                        Outcome::Prev(prev)
                    }
                    Obj::Mutex {
                        owner, recursion, ..
                    } => {
                        let prev = *recursion; // MX-09
                        *recursion -= 1;
                        if *recursion == 0 {
                            *owner = None;
                        }
                        Outcome::Prev(prev)
                    }
                    Obj::Event { .. } => unreachable!(),
                };
                // SM-09, WY-12: the units go to the queued waiters; WY-13: the last release
                // of a mutex gives it to the oldest waiter that can take it.
                self.hand_off(self.h(h).obj);
                out
            }
            Op::Wait { a, h } => {
                let mut e = Errs::default();
                e.check(!self.h(h).acc.sync, "access-denied"); // W1-05, AM-02
                fail(e)?;
                self.wait_one(a, h)
            }
            Op::WaitAny { a, ref hs } => {
                fail(self.list_errs(hs))?;
                // WY-03/04/18: the lowest signaled index, only that object acquired; WY-08: a
                // duplicate is found at its lowest position first; WY-14/15: abandoned reports
                // its own index, an earlier signaled object wins over it.
                for (i, &h) in hs.iter().enumerate() {
                    let o = self.obj_mut(h);
                    if o.signaled_for(a) {
                        return Ok(Outcome::Wait(if o.acquire(a) {
                            WaitOutcome::Abandoned(i)
                        } else {
                            WaitOutcome::Signaled(i)
                        }));
                    }
                }
                Outcome::Wait(WaitOutcome::TimedOut)
            }
            Op::WaitAll { a, ref hs } => {
                let mut e = self.list_errs(hs);
                // WL-07, HD-13: the same object twice, by any two handles.
                let objs: Vec<ObjId> = hs.iter().map(|&h| self.h(h).obj).collect();
                let distinct: BTreeSet<ObjId> = objs.iter().copied().collect();
                e.check(distinct.len() != objs.len(), "duplicate-object");
                fail(e)?;
                // WL-02/04: all or nothing.
                if !objs.iter().all(|o| self.objs[o].signaled_for(a)) {
                    return Ok(Outcome::Wait(WaitOutcome::TimedOut));
                }
                // WL-06, WL-08; WL-10 + SEMANTICS "Decisions": abandoned reports the index of
                // an abandoned mutex; the library (docs/REPL.md `abandoned K`) gives the lowest.
                let mut abandoned = None;
                for (i, o) in objs.iter().enumerate() {
                    if self.objs.get_mut(o).expect("live").acquire(a) && abandoned.is_none() {
                        abandoned = Some(i);
                    }
                }
                Outcome::Wait(abandoned.map_or(WaitOutcome::Signaled(0), WaitOutcome::Abandoned))
            }
            Op::SignalAndWait { a, s, w } => {
                let mut e = Errs::default();
                // SW-02, AM-02: the wait side is checked before anything is signaled.
                e.check(!self.h(w).acc.sync, "access-denied");
                let sacc = self.h(s).acc;
                match self.obj(s).clone() {
                    // AM-08: event and semaphore need modify, a mutex synchronize.
                    Obj::Event { .. } => e.check(!sacc.modify, "access-denied"),
                    Obj::Semaphore { count, max } => {
                        e.check(!sacc.modify, "access-denied");
                        e.check(count >= max, "too-many-posts"); // SW-06
                    }
                    Obj::Mutex { owner, .. } => {
                        e.check(!sacc.sync, "access-denied");
                        e.check(owner != Some(a), "not-owner"); // SW-07
                    }
                }
                fail(e)?;
                match self.obj_mut(s) {
                    Obj::Event {
                        signaled, banked, ..
                    } => {
                        if !*signaled {
                            *signaled = true;
                            *banked = 0;
                        }
                    }
                    Obj::Semaphore { count, .. } => *count += 1,
                    Obj::Mutex {
                        owner, recursion, ..
                    } => {
                        *recursion -= 1;
                        if *recursion == 0 {
                            *owner = None;
                        }
                    }
                }
                // The signal hands off to queued waiters like any other (SW-11).
                self.hand_off(self.h(s).obj);
                // SW-03/04/05/10/12: then a single wait.
                self.wait_one(a, w)
            }
            Op::Query { a, h } => Outcome::State(self.obj(h).view(Some(a))),
            Op::Block(ref w) => {
                // The same checks and, if it can complete now, the same outcome as the
                // timeout-0 wait (W1-01, WY-03, WL-02); otherwise it changes nothing (WL-03,
                // WL-19) and is queued.
                let mut now = self.clone();
                let out = now.apply_inner(w)?;
                if out != Outcome::Wait(WaitOutcome::TimedOut) {
                    *self = now;
                    return Ok(out);
                }
                let hs = w.uses();
                self.waiters.push(Waiter {
                    a: w.actor(),
                    all: matches!(**w, Op::WaitAll { .. }),
                    objs: hs.iter().map(|&h| self.h(h).obj).collect(),
                    hs,
                });
                Outcome::Blocked
            }
        })
    }

    /// For the state check: each live object with the handle to query it through (the lowest
    /// id with every right, else the lowest id).
    fn query_plan(&self) -> Vec<(ObjId, HandleId)> {
        self.objs
            .keys()
            .map(|&o| {
                let mine = self
                    .handles
                    .iter()
                    .filter(|(_, x)| x.obj == o && x.proc.is_none());
                let best = mine
                    .clone()
                    .find(|(_, x)| x.acc == ALL)
                    .or_else(|| mine.clone().next());
                (o, *best.expect("live objects have a handle").0)
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The real side: actor threads running library calls.

type Reply = (Res, Option<Handle>);
type Job = Box<dyn FnOnce() -> Reply + Send>;

struct Actor {
    jobs: Option<Sender<Job>>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    /// An operation never answered: the thread is left behind rather than joined.
    stuck: bool,
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic)".into())
}

impl Actor {
    fn spawn(label: String) -> Actor {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (tx, replies) = mpsc::channel::<Reply>();
        let thread = thread::Builder::new()
            .name(label)
            .spawn(move || {
                for job in rx {
                    let reply = catch_unwind(AssertUnwindSafe(job))
                        .unwrap_or_else(|p| (Res::Panic(panic_text(&*p)), None));
                    if tx.send(reply).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn an actor thread");
        Actor {
            jobs: Some(jobs),
            replies,
            thread: Some(thread),
            stuck: false,
        }
    }

    /// Hands `job` to the thread without waiting for its answer (a blocking wait).
    fn start(&mut self, job: Job) {
        self.jobs
            .as_ref()
            .expect("live actor")
            .send(job)
            .expect("actor thread alive");
    }

    /// The answer of a started job, if it has come.
    fn try_collect(&mut self) -> Option<Res> {
        self.replies.try_recv().ok().map(|r| r.0)
    }

    /// The answer of a started job, waiting for it up to `deadline`.
    fn collect(&mut self, deadline: Duration) -> Option<Res> {
        self.replies.recv_timeout(deadline).ok().map(|r| r.0)
    }

    fn run(&mut self, job: Job) -> Reply {
        if self.stuck {
            return (Res::Stuck, None);
        }
        self.jobs
            .as_ref()
            .expect("live actor")
            .send(job)
            .expect("actor thread alive");
        match self.replies.recv_timeout(OP_DEADLINE) {
            Ok(r) => r,
            Err(_) => {
                self.stuck = true;
                (Res::Stuck, None)
            }
        }
    }
}

impl Drop for Actor {
    fn drop(&mut self) {
        // Ends the thread: its owned mutexes are abandoned by its thread-exit hook (AB-01).
        // `join` returns once the thread's destructors have run.
        drop(self.jobs.take());
        if let Some(t) = self.thread.take()
            && !self.stuck
        {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Process actors: this test binary, re-run as an actor server.

/// Set (to `1`) in an actor server's environment.
const SERVER_VAR: &str = "PROCSYNC_MODEL_ACTOR_SERVER";
/// Marks the server's answer lines (the test harness writes its own lines to stdout too).
const ANSWER: &str = "@@ ";

/// An actor that is another process: commands on its stdin, answers on its stdout.
struct ProcActor {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: Receiver<String>,
}

impl ProcActor {
    fn spawn() -> ProcActor {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([
                "differential_blocking_against_library",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER_VAR, "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start an actor server");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness may have started the line ("test … ... ").
                if let Some(at) = line.find(ANSWER)
                    && tx.send(line[at + ANSWER.len()..].to_string()).is_err()
                {
                    break;
                }
            }
        });
        ProcActor {
            child,
            stdin,
            lines,
        }
    }

    /// Sends one command and parses its answer.
    fn run(&mut self, cmd: &str) -> Res {
        use std::io::Write as _;
        if writeln!(self.stdin, "{cmd}").is_err() {
            return Res::Panic(format!("actor server gone before `{cmd}`"));
        }
        let Ok(line) = self.lines.recv_timeout(OP_DEADLINE) else {
            return Res::Stuck;
        };
        let w: Vec<&str> = line.splitn(3, ' ').collect();
        let num = |i: usize| {
            w.get(i)
                .and_then(|x| x.parse::<u32>().ok())
                .unwrap_or(u32::MAX)
        };
        match w[0] {
            "ok" => Res::Done,
            "was" => Res::Was(num(1) == 1),
            "prev" => Res::Prev(num(1)),
            "signaled" => Res::Wait(WaitOutcome::Signaled(num(1) as usize)),
            "abandoned" => Res::Wait(WaitOutcome::Abandoned(num(1) as usize)),
            "timeout" => Res::Wait(WaitOutcome::TimedOut),
            "err" => {
                let code = procsync_code(w.get(1).copied().unwrap_or(""));
                Res::Err(code, w.get(2).copied().unwrap_or("").to_string())
            }
            _ => Res::Panic(format!("actor server answered `{line}`")),
        }
    }

    /// Asks the process to exit (owning whatever it owns) and waits until it has.
    fn exit(mut self) -> Res {
        use std::io::Write as _;
        let _ = writeln!(self.stdin, "exit");
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return Res::Done,
                Ok(None) if start.elapsed() < OP_DEADLINE => thread::yield_now(),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Res::Stuck;
                }
            }
        }
    }
}

/// The library's stable error codes, as `&'static str` (the server sends them as text).
fn procsync_code(code: &str) -> &'static str {
    const CODES: [&str; 11] = [
        "invalid-argument",
        "access-denied",
        "wrong-type",
        "not-found",
        "invalid-name",
        "not-owner",
        "too-many-posts",
        "duplicate-object",
        "not-inheritable",
        "unsupported",
        "io",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("unknown-code")
}

/// The actor server's loop (a process actor): one command per stdin line, one answer line
/// per command, until `exit` (or end of input): then its handles are closed and the process
/// exits without releasing the mutexes its thread owns (AB-08: they are abandoned).
fn actor_server() -> ! {
    use std::io::{BufRead as _, Write as _};
    let mut handles: BTreeMap<u32, Handle> = BTreeMap::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let w: Vec<&str> = line.split(' ').collect();
        let h = || {
            w.get(1)
                .and_then(|x| x.parse::<u32>().ok())
                .expect("a handle id")
        };
        let zero = Some(Duration::ZERO);
        let answer = match w[0] {
            "open" => {
                let kind = match w[2] {
                    "event" => ObjectKind::Event,
                    "mutex" => ObjectKind::Mutex,
                    _ => ObjectKind::Semaphore,
                };
                let access = match w[4] {
                    "all" => Access::ALL,
                    "synchronize" => Access::SYNCHRONIZE,
                    "modify" => Access::MODIFY,
                    _ => Access::NONE,
                };
                let name = if w[3] == "-" { "" } else { w[3] };
                Handle::open(kind, name, access, false).map(|x| {
                    handles.insert(h(), x);
                    "ok".to_string()
                })
            }
            "close" => {
                handles.remove(&h());
                Ok("ok".to_string())
            }
            "set" => handles[&h()].set().map(|b| format!("was {}", u8::from(b))),
            "reset" => handles[&h()]
                .reset()
                .map(|b| format!("was {}", u8::from(b))),
            "pulse" => handles[&h()]
                .pulse()
                .map(|b| format!("was {}", u8::from(b))),
            "give-back" => handles[&h()].give_back().map(|()| "ok".to_string()),
            "release" => {
                let n = w[2].parse::<u32>().expect("a count");
                handles[&h()].release(n).map(|p| format!("prev {p}"))
            }
            "wait" => handles[&h()].wait(zero).map(|r| match r {
                WaitOutcome::Signaled(i) => format!("signaled {i}"),
                WaitOutcome::Abandoned(i) => format!("abandoned {i}"),
                _ => "timeout".to_string(),
            }),
            _ => break, // `exit`
        };
        let answer = answer.unwrap_or_else(|e| format!("err {} {e}", e.code()));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ANSWER}{answer}");
        let _ = out.flush();
    }
    // Closes every handle (the last one anywhere removes the object's file: LT-01), then
    // exits without unwinding: the main thread's mutexes stay owned by a dead thread.
    drop(handles);
    std::process::exit(0);
}

fn err(e: procsync::Error) -> Res {
    Res::Err(e.code(), e.to_string())
}

fn wait_res(r: procsync::Result<WaitOutcome>) -> Reply {
    (r.map_or_else(err, Res::Wait), None)
}

struct Real {
    actors: BTreeMap<ActorId, Actor>,
    /// Actors that are processes.
    procs: BTreeMap<ActorId, ProcActor>,
    /// Actors whose thread is inside a blocking wait, queued.
    blocked: BTreeSet<ActorId>,
    handles: BTreeMap<HandleId, Arc<Handle>>,
    /// Unique per run, so replays and parallel cases never share a name.
    prefix: String,
    /// A handle just made by `create`/`open`/`dup`, until [`Real::apply`] files it.
    pending: Option<Handle>,
}

impl Drop for Real {
    fn drop(&mut self) {
        self.release_blocked();
        self.handles.clear();
        self.actors.clear();
    }
}

static RUNS: AtomicU64 = AtomicU64::new(0);

impl Real {
    fn new() -> Real {
        let prefix = format!(
            "model-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        Real {
            actors: BTreeMap::new(),
            procs: BTreeMap::new(),
            blocked: BTreeSet::new(),
            handles: BTreeMap::new(),
            prefix,
            pending: None,
        }
    }

    fn name(&self, n: Option<u8>) -> String {
        n.map_or_else(String::new, |n| format!("{}-n{n}", self.prefix))
    }

    fn h(&self, h: HandleId) -> Arc<Handle> {
        Arc::clone(&self.handles[&h])
    }

    fn hs(&self, hs: &[HandleId]) -> Vec<Arc<Handle>> {
        hs.iter().map(|&h| self.h(h)).collect()
    }

    fn run(&mut self, a: ActorId, job: impl FnOnce() -> Reply + Send + 'static) -> Res {
        let (res, made) = self
            .actors
            .get_mut(&a)
            .expect("valid actor")
            .run(Box::new(job));
        if let Some(handle) = made {
            self.pending = Some(handle);
        }
        res
    }
}

impl Real {
    /// Starts a blocking wait on actor `a` and returns once it has either answered (it could
    /// complete at once, or failed) or is queued: `Handle::waiters()` of every object of its
    /// list has grown by one (polled, with a deadline: a handshake, not a sleep).
    fn start_blocking(&mut self, a: ActorId, w: &Op) -> Res {
        let hs = self.hs(&w.uses());
        let before: Vec<usize> = hs.iter().map(|h| h.waiters().unwrap_or(0)).collect();
        let timeout = Some(BLOCK_TIMEOUT);
        let job: Job = match w {
            Op::Wait { .. } => Box::new(move || wait_res(hs[0].wait(timeout))),
            Op::WaitAny { .. } | Op::WaitAll { .. } => {
                let all = matches!(w, Op::WaitAll { .. });
                Box::new(move || {
                    let refs: Vec<&Handle> = hs.iter().map(|h| &**h).collect();
                    wait_res(if all {
                        wait_all(&refs, timeout)
                    } else {
                        wait_any(&refs, timeout)
                    })
                })
            }
            other => unreachable!("not a wait: {other}"),
        };
        let probe = self.hs(&w.uses());
        let actor = self.actors.get_mut(&a).expect("valid actor");
        actor.start(job);
        let start = Instant::now();
        loop {
            if let Some(res) = actor.try_collect() {
                return res;
            }
            let queued = probe
                .iter()
                .zip(&before)
                .all(|(h, n)| h.waiters().is_ok_and(|m| m > *n));
            if queued {
                // It may have completed in between (a poll of its objects can still succeed
                // between arming and queueing): one more look at its answer.
                if let Some(res) = actor.try_collect() {
                    return res;
                }
                self.blocked.insert(a);
                return Res::Blocked;
            }
            if start.elapsed() > OP_DEADLINE {
                actor.stuck = true;
                self.blocked.insert(a);
                return Res::NotQueued;
            }
            thread::yield_now();
        }
    }

    /// Releases every blocked waiter before the handles and actors go, whatever the model
    /// says (a sequence may end, or fail, with waiters queued): every running actor releases
    /// the mutexes it owns (it does not exit owning them: see
    /// [`KNOWN_ABORT_ON_EXIT_HAND_OFF`]), the driver sets every event and releases every
    /// semaphore by one, until every blocked actor has answered. [`Model::blocking_ok`]
    /// makes this enough.
    fn release_blocked(&mut self) {
        // Process actors exit first: what they own is abandoned to the waiters (AB-07).
        for (_, p) in std::mem::take(&mut self.procs) {
            p.exit();
        }
        for _ in 0..1000 {
            let blocked: Vec<ActorId> = self.blocked.iter().copied().collect();
            for a in blocked {
                let actor = self.actors.get_mut(&a).expect("blocked actors are live");
                if actor.try_collect().is_some() {
                    self.blocked.remove(&a);
                }
            }
            if self.blocked.is_empty() {
                return;
            }
            let running: Vec<ActorId> = self
                .actors
                .keys()
                .copied()
                .filter(|a| !self.blocked.contains(a))
                .collect();
            for a in running {
                let hs: Vec<Arc<Handle>> = self.handles.values().cloned().collect();
                self.run(a, move || {
                    for h in &hs {
                        for _ in 0..100 {
                            let mine = matches!(
                                h.query(),
                                Ok(ObjectState::Mutex {
                                    owner: Owner::Current,
                                    ..
                                })
                            );
                            if !mine || h.release(1).is_err() {
                                break;
                            }
                        }
                    }
                    (Res::Done, None)
                });
            }
            for h in self.handles.values() {
                let _ = h.set();
                let _ = h.release(1);
            }
            let blocked: Vec<ActorId> = self.blocked.iter().copied().collect();
            for a in blocked {
                let actor = self.actors.get_mut(&a).expect("blocked actors are live");
                if actor.collect(Duration::from_millis(20)).is_some() {
                    self.blocked.remove(&a);
                }
            }
        }
        // Never released (the library lost a wake-up): leave those threads behind rather
        // than hang in `join`; the run has already failed or will (files left behind).
        for a in std::mem::take(&mut self.blocked) {
            if let Some(actor) = self.actors.get_mut(&a) {
                actor.stuck = true;
            }
        }
    }

    /// An op of a process actor, as an actor-server command.
    fn apply_remote(&mut self, op: &Op) -> Res {
        let a = op.actor();
        let cmd = match op {
            Op::Exit { .. } => {
                return self.procs.remove(&a).expect("live process actor").exit();
            }
            Op::Open {
                h, kind, name, acc, ..
            } => {
                let name = self.name(*name);
                let name = if name.is_empty() { "-".into() } else { name };
                format!("open {h} {} {name} {acc}", kind.word())
            }
            Op::Close { h, .. } => format!("close {h}"),
            Op::Set { h, .. } => format!("set {h}"),
            Op::Reset { h, .. } => format!("reset {h}"),
            Op::Pulse { h, .. } => format!("pulse {h}"),
            Op::GiveBack { h, .. } => format!("give-back {h}"),
            Op::Release { h, n, .. } => format!("release {h} {n}"),
            Op::Wait { h, .. } => format!("wait {h}"),
            other => unreachable!("not an actor-server op: {other}"),
        };
        self.procs
            .get_mut(&a)
            .expect("live process actor")
            .run(&cmd)
    }

    fn apply(&mut self, op: &Op) -> Res {
        if let Op::SpawnProcess { a } = op {
            self.procs.insert(*a, ProcActor::spawn());
            return Res::Done;
        }
        if self.procs.contains_key(&op.actor()) {
            return self.apply_remote(op);
        }
        let zero = Some(Duration::ZERO);
        let res = match op.clone() {
            Op::Spawn { a } => {
                self.actors.insert(a, Actor::spawn(format!("actor-t{a}")));
                Res::Done
            }
            Op::Exit { a } => {
                drop(self.actors.remove(&a));
                Res::Done
            }
            Op::Create { a, spec, name, .. } => {
                let name = self.name(name);
                self.run(a, move || {
                    match Handle::create(spec.lib(), &name, &CreateOptions::default()) {
                        Ok((h, c)) => (Res::Created(matches!(c, Created::New)), Some(h)),
                        Err(e) => (err(e), None),
                    }
                })
            }
            Op::Open {
                a, kind, name, acc, ..
            } => {
                let name = self.name(name);
                self.run(a, move || {
                    match Handle::open(kind.lib(), &name, acc.lib(), false) {
                        Ok(h) => (Res::Done, Some(h)),
                        Err(e) => (err(e), None),
                    }
                })
            }
            Op::Dup { a, src, acc, .. } => {
                let src = self.h(src);
                self.run(a, move || match src.duplicate(acc.map(Acc::lib)) {
                    Ok(h) => (Res::Done, Some(h)),
                    Err(e) => (err(e), None),
                })
            }
            Op::Close { a, h } => {
                let handle = self.handles.remove(&h).expect("valid handle");
                self.run(a, move || {
                    drop(handle);
                    (Res::Done, None)
                })
            }
            Op::Set { a, h } => {
                let h = self.h(h);
                self.run(a, move || (h.set().map_or_else(err, Res::Was), None))
            }
            Op::Reset { a, h } => {
                let h = self.h(h);
                self.run(a, move || (h.reset().map_or_else(err, Res::Was), None))
            }
            Op::Pulse { a, h } => {
                let h = self.h(h);
                self.run(a, move || (h.pulse().map_or_else(err, Res::Was), None))
            }
            Op::GiveBack { a, h } => {
                let h = self.h(h);
                self.run(a, move || {
                    (h.give_back().map_or_else(err, |()| Res::Done), None)
                })
            }
            Op::Release { a, h, n } => {
                let h = self.h(h);
                self.run(a, move || (h.release(n).map_or_else(err, Res::Prev), None))
            }
            Op::Wait { a, h } => {
                let h = self.h(h);
                self.run(a, move || wait_res(h.wait(zero)))
            }
            Op::WaitAny { a, hs } => {
                let hs = self.hs(&hs);
                self.run(a, move || {
                    let refs: Vec<&Handle> = hs.iter().map(|h| &**h).collect();
                    wait_res(wait_any(&refs, zero))
                })
            }
            Op::WaitAll { a, hs } => {
                let hs = self.hs(&hs);
                self.run(a, move || {
                    let refs: Vec<&Handle> = hs.iter().map(|h| &**h).collect();
                    wait_res(wait_all(&refs, zero))
                })
            }
            Op::SignalAndWait { a, s, w } => {
                let (s, w) = (self.h(s), self.h(w));
                self.run(a, move || wait_res(signal_and_wait(&s, &w, zero)))
            }
            Op::Query { a, h } => {
                let h = self.h(h);
                self.run(a, move || (h.query().map_or_else(err, Res::State), None))
            }
            Op::Block(w) => self.start_blocking(w.actor(), &w),
            Op::SpawnProcess { .. } => unreachable!("handled above"),
        };
        if let Some(made) = self.pending.take() {
            let id = op.makes().expect("only create/open/dup make handles");
            self.handles.insert(id, Arc::new(made));
        }
        res
    }
}

// ---------------------------------------------------------------------------------------------
// Running a sequence on both sides.

enum Step {
    Pass,
    /// The op refers to a handle or actor that does not exist (only while shrinking).
    Invalid,
    Mismatch(String),
}

struct Runner {
    model: Model,
    real: Real,
    /// Whether the sequence may block (then queued-waiter counts are compared too).
    blocking: bool,
    /// How often each (operation, answer class) occurred.
    coverage: BTreeMap<(&'static str, &'static str), usize>,
}

impl Runner {
    fn new(blocking: bool) -> Runner {
        Runner {
            model: Model::default(),
            real: Real::new(),
            blocking,
            coverage: BTreeMap::new(),
        }
    }

    fn step(&mut self, op: &Op) -> Step {
        if !self.model.valid(op) {
            return Step::Invalid;
        }
        let before = self.describe_model();
        let proc_exit = matches!(op, Op::Exit { a } if self.model.procs.contains(a));
        let want = self.model.apply(op);
        let word = if self.model.procs.contains(&op.actor()) || proc_exit {
            // Ops of a process actor, counted apart.
            match op {
                Op::SpawnProcess { .. } => "spawn-process",
                Op::Open { .. } => "proc-open",
                Op::Close { .. } => "proc-close",
                Op::Set { .. } => "proc-set",
                Op::Reset { .. } => "proc-reset",
                Op::Pulse { .. } => "proc-pulse",
                Op::GiveBack { .. } => "proc-give-back",
                Op::Release { .. } => "proc-release",
                Op::Wait { .. } => "proc-wait",
                _ => "proc-exit",
            }
        } else {
            op.word()
        };
        *self.coverage.entry((word, want.class())).or_default() += 1;
        if !self.model.done.is_empty() {
            *self.coverage.entry((word, "woke-a-waiter")).or_default() += self.model.done.len();
        }
        let got = self.real.apply(op);
        if !want.matches(&got) {
            return Step::Mismatch(format!(
                "`{op}`: the model says `{want}`, the library answered `{got}`\nmodel state before the step:\n{before}"
            ));
        }
        // Every live object's full state, queried from the driver thread (which never owns a
        // mutex: owner reads `none` or `other`) right after the step returned, before any
        // woken waiter is looked at: a wait-all the step completed must already show its
        // objects taken (WL-18), a skipped one must have taken nothing (WL-19).
        // The exception: when a process actor exits, nobody signals inside a call (a dead
        // process runs no code): the waiters' processes see the owner's death (AB-07) and
        // hand its mutexes over, so its waiters' answers are awaited first.
        let mut diffs = String::new();
        if proc_exit {
            self.check_completions(&mut diffs);
        }
        for (o, h) in self.model.query_plan() {
            let want = self.model.objs[&o].view(None);
            match self.real.handles[&h].query() {
                Ok(s) if s == want => {}
                other => {
                    let got = other
                        .map_or_else(|e| format!("err {} ({e})", e.code()), |s| state_text(&s));
                    let _ = writeln!(
                        diffs,
                        "  object o{o} (queried through h{h}): model `{}`, library `{got}`",
                        state_text(&want)
                    );
                }
            }
        }
        // Queued waiters per object (only where a blocking wait was ever started, so the
        // timeout-0 test reads no more than before).
        if self.blocking {
            for (o, h) in self.model.query_plan() {
                let want = self.model.queued_on(o);
                match self.real.handles[&h].waiters() {
                    Ok(n) if n == want => {}
                    other => {
                        let _ = writeln!(
                            diffs,
                            "  object o{o} (through h{h}): model has {want} queued waiter(s), \
                             library `waiters()` = {other:?}"
                        );
                    }
                }
            }
        }
        if !proc_exit {
            self.check_completions(&mut diffs);
        }
        if diffs.is_empty() {
            Step::Pass
        } else {
            Step::Mismatch(format!(
                "after `{op}` (answered `{got}`, as the model says), the library differs:\n{diffs}model state before the step:\n{before}"
            ))
        }
    }

    /// The waiters the step completed must answer promptly, with the model's outcome; the
    /// others must not have answered.
    fn check_completions(&mut self, diffs: &mut String) {
        for (a, all, out) in std::mem::take(&mut self.model.done) {
            let class = Expect::Ok(Outcome::Wait(out)).class();
            let word = if all {
                "woken-waitall"
            } else {
                "woken-wait(any)"
            };
            *self.coverage.entry((word, class)).or_default() += 1;
            self.real.blocked.remove(&a);
            let answer = self
                .real
                .actors
                .get_mut(&a)
                .expect("a blocked actor is live")
                .collect(OP_DEADLINE);
            match answer {
                Some(Res::Wait(w)) if w == out => {}
                other => {
                    let got = other.map_or_else(
                        || format!("no answer within {OP_DEADLINE:?}"),
                        |r| format!("`{r}`"),
                    );
                    let _ = writeln!(
                        diffs,
                        "  t{a}'s blocked wait: the model says this step completed it with `{}`, \
                     the library answered {got}",
                        Res::Wait(out)
                    );
                }
            }
        }
        for w in &self.model.waiters {
            let actor = self
                .real
                .actors
                .get_mut(&w.a)
                .expect("blocked actors are live");
            if let Some(r) = actor.try_collect() {
                self.real.blocked.remove(&w.a);
                let _ = writeln!(
                    diffs,
                    "  t{}'s blocked wait: the model says it is still queued, the library \
                 answered `{r}`",
                    w.a
                );
            }
        }
    }

    fn describe_model(&self) -> String {
        let m = &self.model;
        let mut s = String::new();
        for (o, obj) in &m.objs {
            let name = m
                .names
                .iter()
                .find(|(_, x)| *x == o)
                .map_or_else(|| "unnamed".to_string(), |(n, _)| format!("n{n}"));
            let hs: Vec<String> = m
                .handles
                .iter()
                .filter(|(_, x)| x.obj == *o)
                .map(|(h, x)| {
                    if x.acc == ALL {
                        format!("h{h}")
                    } else {
                        format!("h{h}({})", x.acc)
                    }
                })
                .collect();
            let st = match obj {
                Obj::Mutex {
                    owner: Some(a),
                    recursion,
                    ..
                } => format!("mutex owner=t{a} recursion={recursion}"),
                other => state_text(&other.view(None)),
            };
            let _ = writeln!(s, "  o{o} {name} [{}]: {st}", hs.join(" "));
        }
        let actors: Vec<String> = m.actors.iter().map(|a| format!("t{a}")).collect();
        let _ = writeln!(s, "  live actors: {}", actors.join(" "));
        for w in &m.waiters {
            let _ = writeln!(
                s,
                "  t{} blocked in wait-{} on {}",
                w.a,
                if w.all { "all" } else { "any" },
                list(&w.hs)
            );
        }
        s
    }
}

enum Replay {
    Pass,
    Invalid,
    Fail(usize, String),
}

fn replay(ops: &[Op]) -> Replay {
    let mut r = Runner::new(ops.iter().any(|op| matches!(op, Op::Block(_))));
    for (i, op) in ops.iter().enumerate() {
        match r.step(op) {
            Step::Pass => {}
            Step::Invalid => return Replay::Invalid,
            Step::Mismatch(m) => return Replay::Fail(i, m),
        }
    }
    Replay::Pass
}

/// Makes a failing sequence smaller: removes chunks of ops (halving the chunk size down to one
/// op) and entries of wait lists, keeping each change that still fails, until nothing more
/// can go or the budget is spent. Returns the shrunk sequence, its failure and the number of
/// replays, or `None` if the failure did not reproduce on a replay.
fn shrink(ops: &[Op]) -> Option<(Vec<Op>, String, usize)> {
    struct Shrinker {
        ops: Vec<Op>,
        msg: String,
        replays: usize,
        start: Instant,
    }
    impl Shrinker {
        fn out_of_budget(&self) -> bool {
            self.replays >= SHRINK_REPLAYS || self.start.elapsed() >= SHRINK_TIME
        }

        /// Keeps `cand` (cut after its failing step) if it still fails.
        fn attempt(&mut self, cand: Vec<Op>) -> bool {
            self.replays += 1;
            match replay(&cand) {
                Replay::Fail(j, m) => {
                    self.ops = cand[..=j].to_vec();
                    self.msg = m;
                    true
                }
                Replay::Pass | Replay::Invalid => false,
            }
        }

        fn remove_ops(&mut self) -> bool {
            let mut changed = false;
            let mut chunk = self.ops.len().div_ceil(2).max(1);
            loop {
                let mut i = 0;
                while i < self.ops.len() && !self.out_of_budget() {
                    let mut cand = self.ops.clone();
                    cand.drain(i..(i + chunk).min(cand.len()));
                    if self.attempt(cand) {
                        changed = true;
                    } else {
                        i += chunk;
                    }
                }
                if chunk == 1 || self.out_of_budget() {
                    return changed;
                }
                chunk = chunk.div_ceil(2);
            }
        }

        fn shorten_lists(&mut self) -> bool {
            let mut changed = false;
            let mut k = 0;
            while k < self.ops.len() {
                let mut e = 0;
                loop {
                    let len = match self.ops.get(k) {
                        Some(Op::WaitAny { hs, .. } | Op::WaitAll { hs, .. }) => hs.len(),
                        Some(Op::Block(w)) => match &**w {
                            Op::WaitAny { hs, .. } | Op::WaitAll { hs, .. } => hs.len(),
                            _ => 0,
                        },
                        _ => 0,
                    };
                    if e >= len || len <= 1 || self.out_of_budget() {
                        break;
                    }
                    let mut cand = self.ops.clone();
                    let target = match &mut cand[k] {
                        Op::Block(w) => &mut **w,
                        other => other,
                    };
                    if let Op::WaitAny { hs, .. } | Op::WaitAll { hs, .. } = target {
                        hs.remove(e);
                    }
                    if self.attempt(cand) {
                        changed = true;
                    } else {
                        e += 1;
                    }
                }
                k += 1;
            }
            changed
        }
    }

    let mut s = Shrinker {
        ops: Vec::new(),
        msg: String::new(),
        replays: 0,
        start: Instant::now(),
    };
    if !s.attempt(ops.to_vec()) {
        return None;
    }
    while (s.remove_ops() | s.shorten_lists()) && !s.out_of_budget() {}
    Some((s.ops, s.msg, s.replays))
}

// ---------------------------------------------------------------------------------------------
// Random sequences.

struct Gen {
    rng: Rng,
    next_actor: ActorId,
    next_handle: HandleId,
    /// Also generate blocking waits and the signals that release them.
    blocking: bool,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng(seed),
            next_actor: 0,
            next_handle: 0,
            blocking: false,
        }
    }

    /// The next op, valid in `m` (the timeout-0 generator only makes valid ops; the blocking
    /// one retries what [`Model::blocking_ok`] forbids).
    fn op(&mut self, m: &Model) -> Op {
        loop {
            let op = if self.blocking {
                self.op_blocking(m)
            } else {
                self.op_plain(m)
            };
            if m.valid(&op) {
                return op;
            }
        }
    }

    /// A handle of object `o`, preferring one with every right.
    fn handle_to(&mut self, m: &Model, o: ObjId) -> HandleId {
        let mine: Vec<HandleId> = m
            .handles
            .iter()
            .filter(|(_, x)| x.obj == o)
            .map(|(h, _)| *h)
            .collect();
        let full: Vec<HandleId> = mine
            .iter()
            .copied()
            .filter(|h| m.h(*h).acc == ALL)
            .collect();
        if !full.is_empty() && self.rng.chance(85) {
            self.rng.pick(&full)
        } else {
            self.rng.pick(&mine)
        }
    }

    /// An op of a process actor (signals from another process: WL-14, PU-07, AB-07), aimed
    /// mostly at the objects blocked waiters wait on.
    fn op_process(&mut self, m: &Model) -> Option<Op> {
        let procs: Vec<ActorId> = m.procs.iter().copied().collect();
        let p = self.rng.pick(&procs);
        let wanted: BTreeSet<ObjId> = m.waiters.iter().flat_map(|w| w.objs.clone()).collect();
        let mine: Vec<HandleId> = m
            .handles
            .iter()
            .filter(|(_, x)| x.proc == Some(p))
            .map(|(h, _)| *h)
            .collect();
        if mine.is_empty() || self.rng.chance(25) {
            let names: Vec<(u8, ObjId)> = m.names.iter().map(|(n, o)| (*n, *o)).collect();
            if names.is_empty() {
                return None;
            }
            let useful: Vec<(u8, ObjId)> = names
                .iter()
                .copied()
                .filter(|(_, o)| wanted.contains(o))
                .collect();
            let (n, o) = if !useful.is_empty() && self.rng.chance(70) {
                self.rng.pick(&useful)
            } else {
                self.rng.pick(&names)
            };
            let kind = if self.rng.chance(92) {
                m.objs[&o].kind()
            } else {
                self.rng.pick(&[Kind::Event, Kind::Mutex, Kind::Semaphore])
            };
            let acc = if self.rng.chance(85) {
                ALL
            } else {
                self.access()
            };
            let h = self.new_handle();
            return Some(Op::Open {
                a: p,
                h,
                kind,
                name: Some(n),
                acc,
            });
        }
        let useful: Vec<HandleId> = mine
            .iter()
            .copied()
            .filter(|h| wanted.contains(&m.h(*h).obj))
            .collect();
        let free_mutexes: Vec<HandleId> = mine
            .iter()
            .copied()
            .filter(|h| matches!(m.obj(*h), Obj::Mutex { owner: None, .. }))
            .collect();
        if !free_mutexes.is_empty() && self.rng.chance(30) {
            // Take a mutex, so that blocked waiters may queue on it (then AB-07 at exit).
            let h = self.rng.pick(&free_mutexes);
            return Some(Op::Wait { a: p, h });
        }
        let h = if !useful.is_empty() && self.rng.chance(75) {
            self.rng.pick(&useful)
        } else {
            self.rng.pick(&mine)
        };
        Some(match self.rng.below(100) {
            0..5 => Op::Close { a: p, h },
            5..8 => Op::Exit { a: p },
            _ => match m.obj(h) {
                Obj::Event { .. } => match self.rng.below(100) {
                    0..55 => Op::Set { a: p, h },
                    55..80 => Op::Pulse { a: p, h },
                    80..92 => Op::Reset { a: p, h },
                    _ => Op::GiveBack { a: p, h },
                },
                Obj::Semaphore { .. } => Op::Release {
                    a: p,
                    h,
                    n: if self.rng.chance(80) { 1 } else { 2 },
                },
                Obj::Mutex { owner: Some(x), .. } if *x == p => {
                    if self.rng.chance(60) {
                        Op::Release { a: p, h, n: 1 }
                    } else {
                        Op::Exit { a: p }
                    }
                }
                Obj::Mutex { .. } => Op::Wait { a: p, h },
            },
        })
    }

    /// Blocking mode: starts blocking waits (up to 3 at a time, by actors that own no mutex),
    /// and aims signals at the objects that blocked waiters wait on (from running actors: a
    /// mutex's owner releases it or exits), mixed with the timeout-0 ops (which take objects
    /// away from waiting wait-alls: WL-03, WL-19).
    fn op_blocking(&mut self, m: &Model) -> Op {
        let running: Vec<ActorId> = m
            .actors
            .iter()
            .copied()
            .filter(|&a| !m.blocked(a) && !m.procs.contains(&a))
            .collect();
        if running.len() < 2 {
            return self.spawn();
        }
        if m.procs.len() < 2 && self.rng.chance(3) {
            let a = self.next_actor;
            self.next_actor += 1;
            return Op::SpawnProcess { a };
        }
        if !m.procs.is_empty()
            && self.rng.chance(45)
            && let Some(op) = self.op_process(m)
        {
            return op;
        }
        let a = self.rng.pick(&running);
        let roll = self.rng.below(100);
        if roll < 22 && m.waiters.len() < 3 && !m.objs.is_empty() {
            let free: Vec<ActorId> = running
                .iter()
                .copied()
                .filter(|&x| m.owned_by(x).is_empty())
                .collect();
            if !free.is_empty() {
                let a = self.rng.pick(&free);
                // With process actors around, mostly named objects (the ones they can open).
                let named: Vec<ObjId> = m.names.values().copied().collect();
                let ids: Vec<ObjId> =
                    if !m.procs.is_empty() && named.len() >= 2 && self.rng.chance(70) {
                        named
                    } else {
                        m.objs.keys().copied().collect()
                    };
                let n = 1 + self.rng.below(3.min(ids.len()));
                let mut hs: Vec<HandleId> = self
                    .rng
                    .distinct(ids.len(), n)
                    .into_iter()
                    .map(|i| self.handle_to(m, ids[i]))
                    .collect();
                // Often a mutex another process owns (AB-07 when it exits, a cross-process
                // release otherwise).
                let proc_owned: Vec<ObjId> = m
                    .objs
                    .iter()
                    .filter(|(_, o)| {
                        matches!(o, Obj::Mutex { owner: Some(x), .. } if m.procs.contains(x))
                    })
                    .map(|(id, _)| *id)
                    .collect();
                if !proc_owned.is_empty() && self.rng.chance(50) {
                    let o = self.rng.pick(&proc_owned);
                    if !hs.iter().any(|h| m.h(*h).obj == o) {
                        let h = self.handle_to(m, o);
                        hs.insert(0, h);
                    }
                }
                let inner = match self.rng.below(3) {
                    0 => Op::Wait { a, h: hs[0] },
                    1 => {
                        if self.rng.chance(10) {
                            // WY-08: one object twice.
                            let twin = self.rng.pick(&hs);
                            hs.push(twin);
                        }
                        Op::WaitAny { a, hs }
                    }
                    _ => Op::WaitAll { a, hs },
                };
                return Op::Block(Box::new(inner));
            }
        }
        if (22..62).contains(&roll) && !m.waiters.is_empty() {
            let w = &m.waiters[self.rng.below(m.waiters.len())];
            let o = self.rng.pick(&w.objs);
            let h = self.handle_to(m, o);
            return match m.objs[&o] {
                Obj::Event { .. } => match self.rng.below(100) {
                    0..55 => Op::Set { a, h },
                    55..80 => Op::Pulse { a, h },
                    80..86 => Op::Reset { a, h },
                    86..90 => Op::GiveBack { a, h },
                    _ => Op::SignalAndWait {
                        a,
                        s: h,
                        w: self.any_handle(m),
                    },
                },
                Obj::Semaphore { count, max } => {
                    if count < max && self.rng.chance(15) {
                        Op::SignalAndWait {
                            a,
                            s: h,
                            w: self.any_handle(m),
                        }
                    } else if self.rng.chance(10) {
                        Op::GiveBack { a, h }
                    } else {
                        let n = if self.rng.chance(70) { 1 } else { 2 };
                        Op::Release { a, h, n }
                    }
                }
                Obj::Mutex { owner: Some(x), .. } => match self.rng.below(100) {
                    0..65 => Op::Release { a: x, h, n: 1 },
                    65..80 => Op::SignalAndWait {
                        a: x,
                        s: h,
                        w: self.any_handle(m),
                    },
                    _ => Op::Exit { a: x },
                },
                // A free mutex a waiter still waits for (its wait-all is missing something
                // else): somebody takes it (WL-03).
                Obj::Mutex { owner: None, .. } => Op::Wait { a, h },
            };
        }
        self.op_plain(m)
    }

    fn spawn(&mut self) -> Op {
        let a = self.next_actor;
        self.next_actor += 1;
        Op::Spawn { a }
    }

    fn new_handle(&mut self) -> HandleId {
        let h = self.next_handle;
        self.next_handle += 1;
        h
    }

    fn spec(&mut self, invalid_percent: u64) -> Spec {
        let r = &mut self.rng;
        match r.below(3) {
            0 => Spec::Event {
                manual: r.chance(50),
                initial: r.chance(50),
            },
            1 => Spec::Mutex {
                owned: r.chance(30),
            },
            _ => {
                if r.chance(invalid_percent) {
                    // SM-01, LM-02.
                    match r.below(3) {
                        0 => Spec::Semaphore { initial: 0, max: 0 },
                        1 => Spec::Semaphore { initial: 3, max: 2 },
                        _ => Spec::Semaphore {
                            initial: 0,
                            max: 0x8000_0000,
                        },
                    }
                } else {
                    let max = r.pick(&[1, 1, 2, 2, 3, 5, 0x7FFF_FFFF]);
                    let initial = if max > 5 {
                        r.pick(&[0, 1, max - 1, max])
                    } else {
                        r.below(max as usize + 1) as u32
                    };
                    Spec::Semaphore { initial, max }
                }
            }
        }
    }

    fn access(&mut self) -> Acc {
        self.rng
            .pick(&[ALL, ALL, ALL, ALL, SYNC, SYNC, MODIFY, NONE])
    }

    /// 2–3 actors, then 3–6 objects of random types, about half of them named (distinct names,
    /// so every create succeeds).
    fn setup(&mut self) -> Vec<Op> {
        let mut ops = Vec::new();
        let actors = 2 + self.rng.below(2) as u32;
        for _ in 0..actors {
            ops.push(self.spawn());
        }
        let mut names: Vec<u8> = (0..NAMES).collect();
        for _ in 0..3 + self.rng.below(4) {
            let name = if !names.is_empty() && self.rng.chance(55) {
                Some(names.remove(self.rng.below(names.len())))
            } else {
                None
            };
            let a = self.rng.below(actors as usize) as u32;
            let h = self.new_handle();
            let spec = self.spec(0);
            ops.push(Op::Create { a, h, spec, name });
        }
        ops
    }

    fn any_handle(&mut self, m: &Model) -> HandleId {
        let all: Vec<HandleId> = m.handles.keys().copied().collect();
        self.rng.pick(&all)
    }

    /// A handle of one of `kinds` with probability `percent` (if there is one), else any.
    fn handle_of(&mut self, m: &Model, kinds: &[Kind], percent: u64) -> HandleId {
        if self.rng.chance(percent) {
            let good: Vec<HandleId> = m
                .handles
                .keys()
                .copied()
                .filter(|&h| kinds.contains(&m.kind(h)))
                .collect();
            if !good.is_empty() {
                return self.rng.pick(&good);
            }
        }
        self.any_handle(m)
    }

    /// The owner of the mutex behind `h` with probability `percent`, else `a`.
    fn owner_or(&mut self, m: &Model, h: HandleId, a: ActorId, percent: u64) -> ActorId {
        match m.obj(h) {
            Obj::Mutex { owner: Some(o), .. } if self.rng.chance(percent) => *o,
            _ => a,
        }
    }

    fn wait_list_len(&mut self) -> usize {
        match self.rng.below(100) {
            0..2 => 0,  // WY-01, WL-13
            2..5 => 64, // WY-02, WY-09: exactly 64 works
            5..8 => 65, // WY-02: one too many
            8..12 => 6 + self.rng.below(5),
            _ => 1 + self.rng.below(5),
        }
    }

    fn op_plain(&mut self, m: &Model) -> Op {
        let actors: Vec<ActorId> = m.actors.iter().copied().collect();
        // Replacement actors: keep at least two alive.
        if actors.len() < 2 || (actors.len() < 4 && self.rng.chance(2)) {
            return self.spawn();
        }
        let a = self.rng.pick(&actors);
        if m.handles.is_empty() || (m.objs.len() < 3 && self.rng.chance(30)) {
            let (h, spec) = (self.new_handle(), self.spec(4));
            let name = self
                .rng
                .chance(60)
                .then(|| self.rng.below(NAMES as usize) as u8);
            return Op::Create { a, h, spec, name };
        }
        match self.rng.below(100) {
            0..12 => {
                let h = self.any_handle(m);
                let a = self.owner_or(m, h, a, 30);
                Op::Wait { a, h }
            }
            12..26 => {
                let n = self.wait_list_len();
                let hs = (0..n).map(|_| self.any_handle(m)).collect();
                Op::WaitAny { a, hs }
            }
            26..40 => {
                let n = self.wait_list_len();
                let hs = if n > 6 {
                    (0..n).map(|_| self.any_handle(m)).collect()
                } else {
                    // Mostly distinct objects, sometimes one twice (WL-07, HD-13).
                    let mut pool: Vec<HandleId> = m.handles.keys().copied().collect();
                    let mut hs: Vec<HandleId> = Vec::new();
                    while hs.len() < n && !pool.is_empty() {
                        let h = pool.remove(self.rng.below(pool.len()));
                        if !hs.iter().any(|&x| m.h(x).obj == m.h(h).obj) {
                            hs.push(h);
                        }
                    }
                    if !hs.is_empty() && self.rng.chance(12) {
                        let twin = self.rng.pick(&hs);
                        let same: Vec<HandleId> = m
                            .handles
                            .iter()
                            .filter(|(_, x)| x.obj == m.h(twin).obj)
                            .map(|(h, _)| *h)
                            .collect();
                        let at = self.rng.below(hs.len() + 1);
                        hs.insert(at, self.rng.pick(&same));
                    }
                    hs
                };
                Op::WaitAll { a, hs }
            }
            40..54 => {
                let h = self.handle_of(m, &[Kind::Mutex, Kind::Semaphore], 92);
                match m.obj(h).clone() {
                    Obj::Mutex { .. } => {
                        let a = self.owner_or(m, h, a, 75);
                        let n = if self.rng.chance(95) {
                            1
                        } else {
                            self.rng.pick(&[0, 2])
                        };
                        Op::Release { a, h, n }
                    }
                    Obj::Semaphore { count, max } => {
                        let n = match self.rng.below(100) {
                            0..4 => 0,
                            4..9 => (max - count).max(1),
                            9..12 => 0x7FFF_FFFF,
                            12..15 => u32::MAX,
                            15..25 => 2,
                            25..30 => 3,
                            _ => 1,
                        };
                        Op::Release { a, h, n }
                    }
                    Obj::Event { .. } => Op::Release { a, h, n: 1 },
                }
            }
            54..60 if self.rng.chance(25) => {
                // TO-06a on any kind: a mutex's is refused (wrong-type).
                let h = self.any_handle(m);
                Op::GiveBack { a, h }
            }
            54..60 => Op::Set {
                a,
                h: self.handle_of(m, &[Kind::Event], 92),
            },
            60..64 => Op::Reset {
                a,
                h: self.handle_of(m, &[Kind::Event], 92),
            },
            64..67 => Op::Pulse {
                a,
                h: self.handle_of(m, &[Kind::Event], 92),
            },
            67..74 => {
                let s = self.any_handle(m);
                let a = self.owner_or(m, s, a, 75);
                // SW-04, SW-12: sometimes the same object on both sides.
                let w = if self.rng.chance(15) {
                    s
                } else {
                    self.any_handle(m)
                };
                Op::SignalAndWait { a, s, w }
            }
            74..78 => Op::Query {
                a,
                h: self.any_handle(m),
            },
            78..82 => {
                let (h, src) = (self.new_handle(), self.any_handle(m));
                let acc = if self.rng.chance(50) {
                    None
                } else {
                    Some(self.access())
                };
                Op::Dup { a, h, src, acc }
            }
            82..86 => {
                let h = self.new_handle();
                let kind = self.rng.pick(&[Kind::Event, Kind::Mutex, Kind::Semaphore]);
                let name = (!self.rng.chance(8)).then(|| self.rng.below(NAMES as usize) as u8);
                let acc = self.access();
                Op::Open {
                    a,
                    h,
                    kind,
                    name,
                    acc,
                }
            }
            86..90 => {
                let (h, spec) = (self.new_handle(), self.spec(4));
                let name = self
                    .rng
                    .chance(60)
                    .then(|| self.rng.below(NAMES as usize) as u8);
                Op::Create { a, h, spec, name }
            }
            90..93 => Op::Close {
                a,
                h: self.any_handle(m),
            },
            93..97 => Op::Exit { a },
            _ => Op::Query {
                a,
                h: self.any_handle(m),
            },
        }
    }
}

struct Failure {
    seed: u64,
    step: usize,
    ops: Vec<Op>,
    msg: String,
}

type Coverage = BTreeMap<(&'static str, &'static str), usize>;

fn run_case(
    seed: u64,
    steps: usize,
    blocking: bool,
    coverage: &StdMutex<Coverage>,
) -> Result<usize, Failure> {
    let mut generator = Gen::new(seed);
    generator.blocking = blocking;
    let setup = generator.setup();
    let mut runner = Runner::new(blocking);
    let trace = std::env::var_os("PROCSYNC_MODEL_TRACE").is_some();
    let mut ops = Vec::with_capacity(setup.len() + steps);
    for i in 0..setup.len() + steps {
        let op = if i < setup.len() {
            setup[i].clone()
        } else {
            generator.op(&runner.model)
        };
        ops.push(op.clone());
        if trace {
            eprintln!("case {seed:#x} #{i} {op}");
        }
        match runner.step(&op) {
            Step::Pass => {}
            Step::Invalid => {
                panic!("test bug: seed {seed:#x} generated an invalid op at step {i}: `{op}`")
            }
            Step::Mismatch(msg) => {
                return Err(Failure {
                    seed,
                    step: i,
                    ops,
                    msg,
                });
            }
        }
    }
    let mut total = coverage.lock().unwrap_or_else(|p| p.into_inner());
    for (k, n) in std::mem::take(&mut runner.coverage) {
        *total.entry(k).or_default() += n;
    }
    Ok(ops.len())
}

fn render(ops: &[Op]) -> String {
    let mut s = String::new();
    for (i, op) in ops.iter().enumerate() {
        let _ = writeln!(s, "  #{i:<3} {op}");
    }
    s
}

fn env_num(var: &str) -> Option<u64> {
    let v = std::env::var(var).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => v.replace('_', "").parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{var}={v:?} is not a number: {e}")))
}

/// The seeds of a run: case 0 of base seed `b` uses `b` itself, case `k > 0` the SplitMix64
/// output for state `b + k·φ` (unrelated to the other cases' streams).
fn case_seeds(default_cases: usize) -> Vec<u64> {
    let bases: Vec<u64> =
        env_num("PROCSYNC_MODEL_SEED").map_or_else(|| DEFAULT_SEEDS.to_vec(), |s| vec![s]);
    let cases = env_num("PROCSYNC_MODEL_CASES").map_or(default_cases, |n| n as usize);
    (0..cases)
        .map(|i| {
            let (b, k) = (bases[i % bases.len()], (i / bases.len()) as u64);
            if k == 0 {
                b
            } else {
                Rng(b.wrapping_add((k - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))).next()
            }
        })
        .collect()
}

/// How one differential test runs.
struct Mode {
    /// The `#[test]` name (for the rerun hint).
    test: &'static str,
    blocking: bool,
    cases: usize,
    steps: usize,
}

/// The timeout-0 differential test.
fn differential_child() {
    differential_run(&Mode {
        test: "differential_against_library",
        blocking: false,
        cases: DEFAULT_CASES,
        steps: DEFAULT_STEPS,
    });
}

/// The blocking differential test.
fn blocking_child() {
    differential_run(&Mode {
        test: "differential_blocking_against_library",
        blocking: true,
        cases: DEFAULT_BLOCKING_CASES,
        steps: DEFAULT_BLOCKING_STEPS,
    });
}

/// The body, in the child process that has `PROCSYNC_ROOT` set.
fn differential_run(mode: &Mode) {
    let root = std::env::var_os("PROCSYNC_ROOT").expect("the parent sets PROCSYNC_ROOT");
    assert!(!root.is_empty(), "PROCSYNC_ROOT is empty");
    let seeds = case_seeds(mode.cases);
    let steps = env_num("PROCSYNC_MODEL_STEPS").map_or(mode.steps, |n| n as usize);
    // The blocking test spawns actor processes: it runs its cases one at a time. A process
    // spawned while another case's thread closes a handle holds the object's file
    // description between fork and exec, so that close is not seen as the last one and the
    // name outlives the object for a moment (seen as `open` → `wrong-type` / `create` →
    // `existed` a few steps later, where NT says the name is gone: LT-01, NM-16). That is
    // a property of descriptor-based lifetime (docs/ARCHITECTURE.md "Lifetime") in a process
    // that forks, not something this test is after.
    let workers = if mode.blocking {
        1
    } else {
        thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8)
    };
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let total_ops = AtomicUsize::new(0);
    let failure: StdMutex<Option<Failure>> = StdMutex::new(None);
    let coverage: StdMutex<Coverage> = StdMutex::new(BTreeMap::new());
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    match run_case(seed, steps, mode.blocking, &coverage) {
                        Ok(n) => {
                            total_ops.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(f) => {
                            failed.store(true, Ordering::Relaxed);
                            failure
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(f);
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    if let Some(f) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let shrunk = match shrink(&f.ops) {
            Some((ops, msg, replays)) => format!(
                "\nshrunk to {} ops ({replays} replays); it fails at its last op:\n{}{msg}\n",
                ops.len(),
                render(&ops)
            ),
            None => "\n(the failure did not reproduce on a replay: timing-dependent)\n".into(),
        };
        panic!(
            "model and library disagree: case seed {seed:#x}, step #{step}\n\
             rerun alone: PROCSYNC_MODEL_SEED={seed:#x} PROCSYNC_MODEL_CASES=1 PROCSYNC_MODEL_STEPS={steps} \
             cargo test --release -p procsync --test model {test}\n\n{msg}\n\nthe sequence up to the failing step:\n{ops}{shrunk}",
            seed = f.seed,
            step = f.step,
            test = mode.test,
            msg = f.msg,
            ops = render(&f.ops),
        );
    }
    let mut table = String::new();
    let coverage = coverage.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut last = "";
    for ((op, class), n) in &coverage {
        if *op != last {
            let _ = write!(table, "\n  {op:>13}:");
            last = op;
        }
        let _ = write!(table, " {class} {n}");
    }
    eprintln!(
        "{}: {} sequences, {} operations, {workers} workers, {:.2?}; each op's answer and every \
         object's state compared. Expected answers seen:{table}",
        mode.test,
        seeds.len(),
        total_ops.load(Ordering::Relaxed),
        elapsed
    );
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => files_below(&p, out),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// Runs `body` in a child process (this test binary, running only `test`) whose
/// `PROCSYNC_ROOT` is a fresh directory; afterwards removes the directory and checks that no
/// object file was left behind (LT-01). In the child, runs `body` itself.
fn in_fresh_root(test: &str, body: fn()) {
    if std::env::var_os(SERVER_VAR).is_some() {
        // A process actor of the blocking test (PROCSYNC_ROOT is inherited).
        actor_server();
    }
    if std::env::var(CHILD_VAR).is_ok_and(|v| v == test) {
        body();
        return;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let sandbox =
        std::env::temp_dir().join(format!("procsync-model-{}-{nanos}", std::process::id()));
    let root = sandbox.join("root");
    std::fs::create_dir_all(&root)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, test)
        .env("PROCSYNC_ROOT", &root)
        .output();
    let mut leftovers = Vec::new();
    files_below(&sandbox, &mut leftovers);
    let removed = std::fs::remove_dir_all(&sandbox);
    let out = out.expect("run the test binary as a child");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "`{test}` failed in its child process ({}):\n{stderr}\n{stdout}",
        out.status
    );
    eprint!("{stderr}");
    assert!(
        leftovers.is_empty(),
        "files left under the root after every handle was closed (LT-01): {leftovers:?}"
    );
    removed.unwrap_or_else(|e| panic!("cannot remove {}: {e}", sandbox.display()));
}

/// See the module doc.
#[test]
fn differential_against_library() {
    in_fresh_root("differential_against_library", differential_child);
}

/// See the module doc, "Blocking waiters".
#[test]
fn differential_blocking_against_library() {
    in_fresh_root("differential_blocking_against_library", blocking_child);
}

/// Found by the blocking differential test (AB-01, AB-06, WL-18): a thread owns a mutex,
/// hands an event to a blocked waiter (so it has attached that waiter's wait-block segment),
/// then exits while another thread is blocked on the mutex. The thread-exit abandonment must
/// hand the mutex over (`abandoned 0`); the library instead aborts the whole process:
/// `park::segment::attach` reads its per-thread segment cache (`RECENT`, commit aaa0e00)
/// from the exit guard's destructor, after that thread-local was already destroyed
/// ("cannot access a Thread Local Storage value during or after destruction", then "thread
/// local panicked on drop, aborting").
#[test]
fn thread_exit_abandonment_after_a_hand_off_does_not_abort() {
    in_fresh_root(
        "thread_exit_abandonment_after_a_hand_off_does_not_abort",
        || {
            let forever = Some(BLOCK_TIMEOUT);
            let opts = CreateOptions::default();
            let (m, _) = Handle::create(ObjectSpec::Mutex { owned: false }, "", &opts)
                .expect("create the mutex");
            let auto = ObjectSpec::Event {
                manual: false,
                initial: false,
            };
            let (e, _) = Handle::create(auto, "", &opts).expect("create the event");
            let (m, e) = (Arc::new(m), Arc::new(e));
            let (owner_go, owner_rx) = mpsc::channel::<()>();
            let (took_tx, took) = mpsc::channel::<()>();
            let owner = {
                let (m, e) = (Arc::clone(&m), Arc::clone(&e));
                thread::spawn(move || {
                    assert_eq!(
                        m.wait(Some(Duration::ZERO)).ok(),
                        Some(WaitOutcome::Signaled(0))
                    );
                    took_tx.send(()).expect("main thread");
                    owner_rx.recv().expect("main thread");
                    // EV-08: handed to the blocked waiter inside `set`.
                    assert_eq!(e.set().ok(), Some(false));
                    owner_rx.recv().expect("main thread");
                    // Exits owning `m`, with a waiter queued on it (AB-01, AB-06).
                })
            };
            took.recv().expect("the owner took the mutex");
            let queued = |h: &Handle, n: usize| {
                let start = Instant::now();
                while h.waiters().expect("waiters") < n {
                    assert!(start.elapsed() < OP_DEADLINE, "the waiter never queued");
                    thread::yield_now();
                }
            };
            let ew = {
                let e = Arc::clone(&e);
                thread::spawn(move || e.wait(forever))
            };
            queued(&e, 1);
            owner_go.send(()).expect("owner");
            assert_eq!(
                ew.join().expect("event waiter").ok(),
                Some(WaitOutcome::Signaled(0))
            );
            let mw = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    let r = m.wait(forever);
                    let _ = m.release(1);
                    r
                })
            };
            queued(&m, 1);
            owner_go.send(()).expect("owner");
            owner.join().expect("the owner thread");
            assert_eq!(
                mw.join().expect("mutex waiter").ok(),
                Some(WaitOutcome::Abandoned(0))
            );
        },
    );
}

/// Found by the differential test (AB-01, AB-09, AB-04, AB-02): a thread acquires a mutex
/// through one handle, closes that handle (another handle, opened separately, keeps the object
/// alive) and exits without releasing. Once the thread is joined, the mutex must read free and
/// abandoned, and a wait(0) must take it as `abandoned`. The race is narrow (the dead owner
/// must still look alive), so the scenario is repeated.
#[test]
fn issue_3_mutex_abandoned_when_owner_closed_its_handle_then_exited() {
    in_fresh_root(
        "issue_3_mutex_abandoned_when_owner_closed_its_handle_then_exited",
        || {
            let zero = Some(Duration::ZERO);
            let name = "ab09";
            let (b, _) = Handle::create(
                ObjectSpec::Mutex { owned: false },
                name,
                &CreateOptions::default(),
            )
            .expect("create the mutex");
            let iterations = env_num("PROCSYNC_AB09_ITERATIONS").map_or(4000, |n| n as usize);
            let mut failures = Vec::new();
            for i in 0..iterations {
                let a = Handle::open(ObjectKind::Mutex, name, Access::ALL, false).expect("open");
                thread::spawn(move || {
                    assert_eq!(a.wait(zero).expect("wait"), WaitOutcome::Signaled(0));
                    drop(a); // AB-09: closes its handle, then exits without releasing
                })
                .join()
                .expect("the owner thread");
                let state = b.query().expect("query");
                let outcome = b.wait(zero).expect("wait");
                let want = ObjectState::Mutex {
                    owner: Owner::None,
                    recursion: 0,
                    abandoned: true,
                };
                if state != want || outcome != WaitOutcome::Abandoned(0) {
                    failures.push(format!(
                        "iteration {i}: right after the owner thread was joined, query = {}, wait(0) = {}",
                        state_text(&state),
                        Res::Wait(outcome)
                    ));
                }
                if outcome == WaitOutcome::TimedOut {
                    // Let the lazy dead-owner detection catch up, so the next iteration starts clean.
                    while b.wait(Some(Duration::from_millis(50))).expect("wait")
                        == WaitOutcome::TimedOut
                    {}
                }
                b.release(1).expect("release");
            }
            assert!(
                failures.is_empty(),
                "{} of {iterations} iterations saw the exited owner as still owning the mutex \
                 (expected `mutex owner=none recursion=0 abandoned=1`, then `abandoned 0`):\n{}",
                failures.len(),
                failures.join("\n")
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The model itself, checked against the worked examples of docs/SEMANTICS.md.

/// Runs `ops` on a fresh model and returns each answer in REPL-like text.
fn model_answers(ops: &[Op]) -> Vec<String> {
    let mut m = Model::default();
    ops.iter()
        .map(|op| {
            assert!(m.valid(op), "invalid op in a model test: {op}");
            m.apply(op).to_string()
        })
        .collect()
}

fn check_model(script: &[(Op, &str)]) {
    let ops: Vec<Op> = script.iter().map(|(op, _)| op.clone()).collect();
    let got = model_answers(&ops);
    for (i, ((op, want), got)) in script.iter().zip(&got).enumerate() {
        assert_eq!(got, want, "step {i} `{op}`");
    }
}

fn mk(a: ActorId, h: HandleId, spec: Spec) -> Op {
    Op::Create {
        a,
        h,
        spec,
        name: None,
    }
}

/// WY-05 with WY-06/MX-03: [sem 2/3, free mutex] waited on by one owner.
#[test]
fn model_wy05_wait_any_semaphore_then_owned_mutex() {
    let wa = |hs: &[HandleId]| Op::WaitAny {
        a: 0,
        hs: hs.to_vec(),
    };
    check_model(&[
        (Op::Spawn { a: 0 }, "ok"),
        (
            mk(0, 0, Spec::Semaphore { initial: 2, max: 3 }),
            "ok created",
        ),
        (mk(0, 1, Spec::Mutex { owned: false }), "ok created"),
        (wa(&[0, 1]), "signaled 0"),
        (wa(&[0, 1]), "signaled 0"),
        (Op::Query { a: 0, h: 0 }, "ok semaphore count=0 max=3"),
        (wa(&[0, 1]), "signaled 1"),
        (Op::Release { a: 0, h: 0, n: 1 }, "ok 0"),
        (wa(&[0, 1]), "signaled 0"),
        (wa(&[0, 1]), "signaled 1"),
        (
            Op::Query { a: 0, h: 1 },
            "ok mutex owner=self recursion=2 abandoned=0",
        ),
        (Op::Release { a: 0, h: 1, n: 1 }, "ok 2"),
        (Op::Release { a: 0, h: 1, n: 1 }, "ok 1"),
        (Op::Release { a: 0, h: 1, n: 1 }, "err not-owner"), // MX-04
    ]);
}

/// WL-05 and WL-07: all-or-nothing, an owned mutex counts, a duplicate is refused.
#[test]
fn model_wl05_wait_all() {
    let wl = |a, hs: &[HandleId]| Op::WaitAll { a, hs: hs.to_vec() };
    check_model(&[
        (Op::Spawn { a: 0 }, "ok"),
        (Op::Spawn { a: 1 }, "ok"),
        (
            mk(0, 0, Spec::Semaphore { initial: 2, max: 3 }),
            "ok created",
        ),
        (mk(0, 1, Spec::Mutex { owned: false }), "ok created"),
        (wl(0, &[0, 1]), "signaled 0"),
        (wl(1, &[0, 1]), "timeout"),
        (Op::Query { a: 1, h: 0 }, "ok semaphore count=1 max=3"),
        (wl(0, &[0, 1]), "signaled 0"),
        (wl(0, &[0, 1]), "timeout"),
        (
            Op::Query { a: 0, h: 1 },
            "ok mutex owner=self recursion=2 abandoned=0",
        ),
        (
            Op::Dup {
                a: 0,
                h: 2,
                src: 1,
                acc: None,
            },
            "ok",
        ),
        (wl(0, &[1, 2]), "err duplicate-object"), // HD-13
    ]);
}

/// SW-03/05/06/07: signal-and-wait signals first, a failed signal means no wait.
#[test]
fn model_sw06_signal_and_wait() {
    let saw = |a, s, w| Op::SignalAndWait { a, s, w };
    check_model(&[
        (Op::Spawn { a: 0 }, "ok"),
        (
            mk(0, 0, Spec::Semaphore { initial: 0, max: 1 }),
            "ok created",
        ),
        (
            mk(0, 1, Spec::Semaphore { initial: 1, max: 1 }),
            "ok created",
        ),
        (saw(0, 0, 1), "signaled 0"),
        (saw(0, 0, 1), "err too-many-posts"),
        (Op::Query { a: 0, h: 1 }, "ok semaphore count=0 max=1"),
        (
            mk(
                0,
                2,
                Spec::Event {
                    manual: false,
                    initial: false,
                },
            ),
            "ok created",
        ),
        (saw(0, 2, 2), "signaled 0"), // SW-04
        (Op::Query { a: 0, h: 2 }, "ok event auto unset"),
        (mk(0, 3, Spec::Mutex { owned: false }), "ok created"),
        (saw(0, 3, 2), "err not-owner"), // SW-07
        (saw(0, 2, 1), "timeout"),       // SW-05: the event stays set
        (Op::Query { a: 0, h: 2 }, "ok event auto set"),
    ]);
}

/// AB-02/03/04, WY-14/15, WL-10: abandonment is visible in the state, reported once, by the
/// acquisition that takes the mutex.
#[test]
fn model_abandonment() {
    check_model(&[
        (Op::Spawn { a: 0 }, "ok"),
        (Op::Spawn { a: 1 }, "ok"),
        (mk(0, 0, Spec::Mutex { owned: true }), "ok created"),
        (mk(0, 1, Spec::Mutex { owned: false }), "ok created"),
        (
            mk(
                0,
                2,
                Spec::Event {
                    manual: true,
                    initial: true,
                },
            ),
            "ok created",
        ),
        (Op::Wait { a: 0, h: 0 }, "signaled 0"),
        (Op::Wait { a: 0, h: 1 }, "signaled 0"),
        (Op::Exit { a: 0 }, "ok"),
        (
            Op::Query { a: 1, h: 0 },
            "ok mutex owner=none recursion=0 abandoned=1",
        ), // AB-04, AB-05
        (
            Op::WaitAny {
                a: 1,
                hs: vec![2, 0],
            },
            "signaled 0",
        ), // WY-15
        (
            Op::WaitAny {
                a: 1,
                hs: vec![0, 2],
            },
            "abandoned 0",
        ), // WY-14
        (
            Op::WaitAll {
                a: 1,
                hs: vec![2, 0, 1],
            },
            "abandoned 2",
        ), // WL-10: mutex 0 is owned now
        (
            Op::Query { a: 1, h: 1 },
            "ok mutex owner=self recursion=1 abandoned=0",
        ),
        (Op::Release { a: 1, h: 1, n: 1 }, "ok 1"),
        (Op::Wait { a: 1, h: 1 }, "signaled 0"), // AB-03
    ]);
}

/// Runs `script` on a fresh model: each step's answer, and the blocked waiters it completed
/// (`(actor, outcome)`), must be as given.
/// One step of a [`check_model_waking`] script: the op, its answer, the waiters it wakes.
type WakeStep<'a> = (Op, &'a str, &'a [(ActorId, &'a str)]);

fn check_model_waking(script: &[WakeStep<'_>]) {
    let mut m = Model::default();
    for (i, (op, want, woken)) in script.iter().enumerate() {
        assert!(m.valid(op), "invalid op in a model test: {op}");
        assert_eq!(m.apply(op).to_string(), *want, "step {i} `{op}`");
        let got: Vec<(ActorId, String)> = std::mem::take(&mut m.done)
            .into_iter()
            .map(|(a, _, w)| (a, Res::Wait(w).to_string()))
            .collect();
        let want: Vec<(ActorId, String)> = woken.iter().map(|(a, w)| (*a, w.to_string())).collect();
        assert_eq!(got, want, "step {i} `{op}`: waiters woken");
    }
}

/// WL-09 (the ntsync `wake_all` sequence) with WL-18: the wait-all of t0 completes inside the
/// `set` of the auto event and nowhere before; WL-03/WL-19: meanwhile t2 takes the semaphore
/// unit the waiter cannot use.
#[test]
fn model_wl09_wake_all_completes_inside_the_signal() {
    let event = |manual| Spec::Event {
        manual,
        initial: true,
    };
    let none: &[(ActorId, &str)] = &[];
    check_model_waking(&[
        (Op::Spawn { a: 0 }, "ok", none),
        (Op::Spawn { a: 1 }, "ok", none),
        (Op::Spawn { a: 2 }, "ok", none),
        (
            mk(1, 0, Spec::Semaphore { initial: 0, max: 3 }),
            "ok created",
            none,
        ),
        (mk(1, 1, Spec::Mutex { owned: true }), "ok created", none),
        (mk(1, 2, event(true)), "ok created", none),
        (mk(1, 3, event(false)), "ok created", none),
        (
            Op::Block(Box::new(Op::WaitAll {
                a: 0,
                hs: vec![0, 1, 2, 3],
            })),
            "(blocked, queued)",
            none,
        ),
        (Op::Release { a: 1, h: 0, n: 1 }, "ok 0", none),
        (Op::Wait { a: 2, h: 0 }, "signaled 0", none), // WL-19
        (Op::Release { a: 1, h: 1, n: 1 }, "ok 1", none),
        (Op::Reset { a: 1, h: 2 }, "ok (previously set)", none),
        (Op::Release { a: 1, h: 0, n: 2 }, "ok 0", none),
        (Op::Reset { a: 1, h: 3 }, "ok (previously set)", none),
        (Op::Set { a: 1, h: 2 }, "ok (previously unset)", none),
        (
            Op::Set { a: 1, h: 3 },
            "ok (previously unset)",
            &[(0, "signaled 0")],
        ),
        (Op::Query { a: 1, h: 0 }, "ok semaphore count=1 max=3", none),
        (
            Op::Query { a: 0, h: 1 },
            "ok mutex owner=self recursion=1 abandoned=0",
            none,
        ),
        (Op::Query { a: 1, h: 2 }, "ok event manual set", none),
        (Op::Query { a: 1, h: 3 }, "ok event auto unset", none),
    ]);
}

/// EV-08, SM-09, PU-01/02 and the wake-up order (first come, first served per object): an
/// auto event set wakes the oldest waiter only; a pulse of a manual event wakes every queued
/// waiter and leaves it unset; a release of 2 with 3 queued waiters wakes the 2 oldest;
/// a wait-all that cannot complete is skipped and a later wait-any gets the unit.
#[test]
fn model_wake_order() {
    let none: &[(ActorId, &str)] = &[];
    let block = |w: Op| Op::Block(Box::new(w));
    let ev = |manual| Spec::Event {
        manual,
        initial: false,
    };
    check_model_waking(&[
        (Op::Spawn { a: 0 }, "ok", none),
        (Op::Spawn { a: 1 }, "ok", none),
        (Op::Spawn { a: 2 }, "ok", none),
        (Op::Spawn { a: 3 }, "ok", none),
        (mk(3, 0, ev(false)), "ok created", none),
        (mk(3, 1, ev(true)), "ok created", none),
        (
            mk(3, 2, Spec::Semaphore { initial: 0, max: 5 }),
            "ok created",
            none,
        ),
        (block(Op::Wait { a: 0, h: 0 }), "(blocked, queued)", none),
        (
            block(Op::WaitAny {
                a: 1,
                hs: vec![1, 0],
            }),
            "(blocked, queued)",
            none,
        ),
        (
            Op::Set { a: 3, h: 0 },
            "ok (previously unset)",
            &[(0, "signaled 0")],
        ), // EV-08
        (Op::Query { a: 3, h: 0 }, "ok event auto unset", none),
        (block(Op::Wait { a: 0, h: 1 }), "(blocked, queued)", none),
        (
            Op::Pulse { a: 3, h: 1 },
            "ok (previously unset)",
            &[(1, "signaled 0"), (0, "signaled 0")],
        ), // PU-01
        (Op::Query { a: 3, h: 1 }, "ok event manual unset", none),
        (
            block(Op::WaitAll {
                a: 0,
                hs: vec![2, 1],
            }),
            "(blocked, queued)",
            none,
        ),
        (block(Op::Wait { a: 1, h: 2 }), "(blocked, queued)", none),
        (
            block(Op::WaitAny {
                a: 2,
                hs: vec![0, 2],
            }),
            "(blocked, queued)",
            none,
        ),
        (
            Op::Release { a: 3, h: 2, n: 2 },
            "ok 0",
            &[(1, "signaled 0"), (2, "signaled 1")],
        ), // SM-09, WL-19: t0's wait-all is skipped
        (Op::Query { a: 3, h: 2 }, "ok semaphore count=0 max=5", none),
        (Op::Release { a: 3, h: 2, n: 1 }, "ok 0", none),
        (
            Op::Set { a: 3, h: 1 },
            "ok (previously unset)",
            &[(0, "signaled 0")],
        ), // WL-18
        (Op::Query { a: 3, h: 2 }, "ok semaphore count=0 max=5", none),
    ]);
}

/// The generator only makes valid ops, and the model never panics, over many seeds.
#[test]
fn model_generator_is_self_consistent() {
    for seed in 0..600 {
        let mut generator = Gen::new(seed);
        // Half the seeds with blocking waits (process actors included).
        generator.blocking = seed % 2 == 1;
        let mut m = Model::default();
        let setup = generator.setup();
        for i in 0..setup.len() + 200 {
            let op = if i < setup.len() {
                setup[i].clone()
            } else {
                generator.op(&m)
            };
            assert!(m.valid(&op), "seed {seed} step {i}: invalid op {op}");
            m.apply(&op);
        }
    }
}
