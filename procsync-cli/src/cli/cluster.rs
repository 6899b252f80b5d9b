//! Cluster names on the command line: `run`, `wait`, `set`, `reset`, `pulse`,
//! `release` and `ls` given `Cluster\x` names act on objects kept in an etcd cluster
//! (procsync-etcd, docs/ETCD.md) instead of this machine's, when an endpoint is given
//! with `--etcd URLS` or `PROCSYNC_ETCD`.
//!
//! What it owns: telling cluster names from local ones, finding the endpoint (and the
//! error when there is none), one `procsync_etcd::Cluster` session per command, the
//! cluster side of each subcommand, and the wording of procsync-etcd's errors. What it
//! must not do: touch local objects (a command's names are all cluster or all local;
//! the caller routes), or keep a session beyond the command (the session's lease ends
//! with the process, and with it everything the process held).
//!
//! `run --semaphore` uses a *leased-units* semaphore: each unit taken is an etcd key on
//! the runner's lease, so a runner killed with its job (`kill -9`, a host that dies)
//! gives its unit back when its lease ends, within the session TTL (10 s). `run` passes
//! the acquisition's fencing token to the command as `PROCSYNC_FENCE`.

use std::ffi::OsString;
use std::thread::{self, JoinHandle};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use procsync::{ObjectKind, WaitOutcome};
use procsync_etcd::{Cluster, Config, Handle, ObjectInfo, Units};

use super::exit;
use super::json::Json;
use super::oneshot::{CreateType, EventOp};
use super::run::child;
use super::shell::{Failure, Outcome, Timeout, note};

/// The environment variable that holds a command's fencing token under `run`.
pub const FENCE_VAR: &str = "PROCSYNC_FENCE";

/// The environment variable that sets the session lease TTL, in whole seconds: how long
/// after a client dies or is cut off its holds end (its mutexes become abandoned, its
/// units of a `run` pool come back). Default 10.
pub const TTL_VAR: &str = "PROCSYNC_ETCD_TTL";

/// Whether `name` is a cluster name (`Cluster\x`).
pub fn is_cluster(name: &str) -> bool {
    name.starts_with(procsync_etcd::CLUSTER_PREFIX)
}

/// The etcd endpoint of this command: `--etcd`, else `PROCSYNC_ETCD`, else none.
#[derive(Debug, Clone, Default)]
pub struct Endpoint(Option<String>);

impl Endpoint {
    /// `flag` (the `--etcd` value) or the environment.
    pub fn resolve(flag: Option<String>) -> Endpoint {
        Endpoint(flag.or_else(|| Config::from_env().map(|c| c.endpoints)))
    }

    /// The endpoints, if any.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Opens this command's session for the cluster name `name`; without an endpoint, a
    /// usage error that says how to give one.
    pub fn connect(&self, name: &str) -> Result<Cluster, Failure> {
        self.connect_for(&format!("`{name}` is a cluster name, kept in etcd"))
    }

    /// [`Endpoint::connect`], `why` saying what needs the cluster.
    pub fn connect_for(&self, why: &str) -> Result<Cluster, Failure> {
        let Some(eps) = self.get() else {
            return Err(Failure::usage(format!(
                "{why}: pass the cluster's endpoint with --etcd \
                 http://HOST:PORT[,http://HOST:PORT…] or set {}",
                procsync_etcd::ENV_ENDPOINTS
            )));
        };
        let mut cfg = Config::new(eps);
        if let Ok(v) = std::env::var(TTL_VAR) {
            let secs = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s));
            let Some(secs) = secs else {
                return Err(Failure::usage(format!(
                    "{TTL_VAR}={v:?}: give the session lease TTL in whole seconds, 1 to 3600"
                )));
            };
            cfg = cfg.ttl(std::time::Duration::from_secs(secs));
        }
        Ok(Cluster::connect_with(&cfg)?)
    }
}

/// Whether `names` are cluster names (`true`) or local ones (`false`); a mix is a usage
/// error, since one wait cannot span this machine and a cluster.
pub fn all_cluster(names: &[String]) -> Result<bool, Failure> {
    let cluster = names.iter().filter(|n| is_cluster(n)).count();
    match cluster {
        0 => Ok(false),
        c if c == names.len() => Ok(true),
        _ => Err(Failure::usage(format!(
            "{} mixes cluster names (`Cluster\\x`, in etcd) with local ones; one command \
             waits on one or the other, so split it",
            names.join(", ")
        ))),
    }
}

impl From<procsync_etcd::Error> for Failure {
    fn from(e: procsync_etcd::Error) -> Failure {
        let code = e.code();
        let hint = match code {
            "not-found" => {
                "; a cluster object lives while some client holds a handle on it \
                 (`procsync run`, `procsync wait NAME --create TYPE`, or a program)"
            }
            _ => "",
        };
        let exit = match code {
            "unavailable" | "session-lost" => exit::CLUSTER_UNAVAILABLE,
            _ => exit::ERROR,
        };
        Failure::new(exit, format!("{e} [{code}]{hint}"))
    }
}

/// What happened to the object after the command ran: its give-back's error, if any,
/// reported after the command's own failure (which wins).
fn finish(code: Outcome, back: procsync_etcd::Result<()>, what: &str) -> Outcome {
    match back {
        Ok(()) => code,
        Err(procsync_etcd::Error::SessionLost) => {
            code?;
            Err(Failure::new(
                exit::CLUSTER_UNAVAILABLE,
                format!(
                    "this runner's etcd session ended while the command ran (paused or cut \
                     off past its lease TTL): {what} had already been given back, so another \
                     job may have run alongside it; a resource that checks {FENCE_VAR} \
                     refuses this one's stale token"
                ),
            ))
        }
        Err(e) => {
            code?;
            Err(e.into())
        }
    }
}

/// While it lives, SIGINT, SIGTERM and SIGHUP end the process (exit 128 + N) after
/// revoking its session, so that a wait interrupted in the shell leaves nothing queued
/// in etcd: otherwise its queued wait could be granted a mutex or a unit for up to the
/// TTL, and the mutex would then be reported abandoned. Dropped before `run` starts its
/// command, whose own signal forwarding then applies.
struct Interrupt {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupt {
    fn arm(c: &Cluster) -> Option<Interrupt> {
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).ok()?;
        let handle = signals.handle();
        let c = c.clone();
        let thread = thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = c.revoke();
                std::process::exit(128 + sig);
            }
        });
        Some(Interrupt {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `run --semaphore Cluster\x --max N -- CMD`.
pub fn run_pool(
    ep: &Endpoint,
    name: &str,
    max: u32,
    timeout: Timeout,
    quiet: bool,
    command: &[OsString],
) -> Outcome {
    let c = ep.connect(name)?;
    let (sem, _) = c.create_semaphore(name, max, max, Units::Leased)?;
    let info = sem.query()?;
    if info.max != max {
        note(
            quiet,
            format!(
                "pool {name} already exists with {} units; using {}",
                info.max, info.max
            ),
        );
    }
    let interrupt = Interrupt::arm(&c);
    let got = sem.wait(timeout.0)?;
    drop(interrupt);
    if got.outcome == WaitOutcome::TimedOut {
        note(
            quiet,
            format!(
                "timed out after {timeout} waiting for a unit of pool {name} (all {} busy; \
                 see `procsync ls`)",
                info.max
            ),
        );
        return Ok(exit::TIMEOUT);
    }
    let code = child(command, &[(FENCE_VAR, got.token.to_string())]);
    let back = sem.release(1).map(drop);
    finish(code, back, &format!("its unit of pool {name}"))
}

/// `run --mutex Cluster\x -- CMD`.
pub fn run_mutex(
    ep: &Endpoint,
    name: &str,
    strict: bool,
    timeout: Timeout,
    quiet: bool,
    command: &[OsString],
) -> Outcome {
    let c = ep.connect(name)?;
    let (m, _) = c.create_mutex(name, false)?;
    let interrupt = Interrupt::arm(&c);
    let got = m.wait(timeout.0)?;
    drop(interrupt);
    match got.outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {timeout} waiting for mutex {name}; another client \
                     holds it (see `procsync ls`)"
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Abandoned(_) if strict => {
            m.release_mutex()?;
            eprintln!(
                "procsync: mutex {name} was abandoned: its previous holder's session ended \
                 (process or host died, or was cut off) while holding it; not running the \
                 command (--strict). Check what it protects, then run again"
            );
            return Ok(exit::ABANDONED);
        }
        WaitOutcome::Abandoned(_) => note(
            quiet,
            format!(
                "mutex {name} was abandoned: its previous holder's session ended while \
                 holding it; running the command anyway (--strict refuses)"
            ),
        ),
        WaitOutcome::Signaled(_) => {}
    }
    let code = child(command, &[(FENCE_VAR, got.token.to_string())]);
    let back = m.release_mutex().map(drop);
    finish(code, back, &format!("mutex {name}"))
}

/// What `wait` was asked.
pub struct WaitAsk<'a> {
    /// The names, all cluster names.
    pub names: &'a [String],
    /// `--any` (or one name without `--all`).
    pub any: bool,
    /// `--any` given: print the index.
    pub print_index: bool,
    /// `--timeout`.
    pub timeout: Timeout,
    /// `--create TYPE`.
    pub create: Option<CreateType>,
    /// `--max` of `--create semaphore`.
    pub max: u32,
}

fn open_or_create(c: &Cluster, name: &str, ask: &WaitAsk<'_>) -> Result<Handle, Failure> {
    let made = match ask.create {
        None => return Ok(c.open(name)?),
        Some(CreateType::Event) => c.create_event(name, true, false),
        Some(CreateType::AutoEvent) => c.create_event(name, false, false),
        Some(CreateType::Mutex) => c.create_mutex(name, false),
        Some(CreateType::Semaphore) => c.create_semaphore(name, 0, ask.max, Units::Win32),
    };
    Ok(made?.0)
}

/// `wait Cluster\x…`.
pub fn wait(ep: &Endpoint, ask: &WaitAsk<'_>, quiet: bool) -> Outcome {
    let c = ep.connect(&ask.names[0])?;
    let handles = ask
        .names
        .iter()
        .map(|n| open_or_create(&c, n, ask))
        .collect::<Result<Vec<Handle>, Failure>>()?;
    let refs: Vec<&Handle> = handles.iter().collect();
    let interrupt = Interrupt::arm(&c);
    let got = if ask.any {
        procsync_etcd::wait_any(&refs, ask.timeout.0)?
    } else {
        procsync_etcd::wait_all(&refs, ask.timeout.0)?
    };
    drop(interrupt);
    let (index, abandoned) = match got.outcome {
        WaitOutcome::TimedOut => {
            note(
                quiet,
                format!(
                    "timed out after {} waiting for {}",
                    ask.timeout,
                    ask.names.join(", ")
                ),
            );
            return Ok(exit::TIMEOUT);
        }
        WaitOutcome::Signaled(k) => (k, false),
        WaitOutcome::Abandoned(k) => (k, true),
    };
    let acquired: Vec<&Handle> = if ask.any { vec![refs[index]] } else { refs };
    for h in acquired {
        if h.kind() == ObjectKind::Mutex {
            h.release_mutex()?;
        }
    }
    if ask.print_index {
        println!("{index}");
    }
    if abandoned {
        note(
            quiet,
            format!(
                "mutex {} was abandoned: its previous owner's session ended while holding \
                 it; check what it protects",
                ask.names[index]
            ),
        );
        return Ok(exit::ABANDONED);
    }
    Ok(exit::OK)
}

/// `set|reset|pulse Cluster\x`.
pub fn event(ep: &Endpoint, op: EventOp, name: &str) -> Outcome {
    let c = ep.connect(name)?;
    let h = c.open(name)?;
    match op {
        EventOp::Set => h.set()?,
        EventOp::Reset => h.reset()?,
        EventOp::Pulse => h.pulse()?,
    };
    Ok(exit::OK)
}

/// `release Cluster\x [--count N]`: prints the count before.
pub fn release(ep: &Endpoint, name: &str, count: u32) -> Outcome {
    let c = ep.connect(name)?;
    let h = c.open(name)?;
    if h.kind() == ObjectKind::Mutex {
        return Err(Failure::new(
            exit::ERROR,
            format!(
                "{name} is a mutex, which only the thread that acquired it can release; \
                 run the command under it with `procsync run --mutex {name} -- CMD`"
            ),
        ));
    }
    println!("{}", h.release(count)?);
    Ok(exit::OK)
}

/// One cluster object as `ls` shows it.
pub struct Listed {
    /// `Cluster\x`.
    pub name: String,
    /// Its state.
    pub info: ObjectInfo,
    /// Open handles in every client.
    pub handles: usize,
    /// Queued waits.
    pub waiters: usize,
}

/// Every object of the cluster at `ep` (for `ls`).
pub fn list(ep: &Endpoint) -> Result<Vec<Listed>, Failure> {
    let c = ep.connect_for("`ls --namespace cluster` lists the objects kept in etcd")?;
    let mut out = Vec::new();
    for (name, info) in c.list()? {
        let (handles, waiters) = c.counts(&name)?;
        out.push(Listed {
            name,
            info,
            handles,
            waiters,
        });
    }
    Ok(out)
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Event => "event",
        ObjectKind::Mutex => "mutex",
        ObjectKind::Semaphore => "semaphore",
        ObjectKind::Timer => "timer",
    }
}

impl Listed {
    /// The `ls` table row: TYPE, NAME, STATE, HOLDERS, WAITERS.
    pub fn row(&self) -> [String; 5] {
        let i = &self.info;
        let state = match i.kind {
            ObjectKind::Event => format!(
                "{} {}",
                if i.manual { "manual" } else { "auto" },
                if i.signaled { "set" } else { "unset" }
            ),
            ObjectKind::Mutex if i.abandoned => "free abandoned".to_owned(),
            ObjectKind::Mutex => i
                .owner
                .as_ref()
                .map_or("free".to_owned(), |o| format!("owner={o}")),
            _ => format!(
                "count={}/{}{}",
                i.count,
                i.max,
                if i.leased { " leased" } else { "" }
            ),
        };
        [
            kind_word(i.kind).to_owned(),
            self.name.clone(),
            state,
            format!("{} handles", self.handles),
            self.waiters.to_string(),
        ]
    }

    /// The `ls --json` object (docs/CLI.md, "JSON").
    pub fn json(&self) -> Json {
        let i = &self.info;
        let state = match i.kind {
            ObjectKind::Event => vec![("manual", i.manual.into()), ("signaled", i.signaled.into())],
            ObjectKind::Mutex => vec![
                ("owned", i.owner.is_some().into()),
                ("owner", i.owner.clone().into()),
                ("recursion", i.recursion.into()),
                ("abandoned", i.abandoned.into()),
            ],
            _ => vec![
                ("count", i.count.into()),
                ("max", i.max.into()),
                ("leased", i.leased.into()),
            ],
        };
        let n = |v: usize| Json::Int(i64::try_from(v).unwrap_or(i64::MAX));
        Json::Object(vec![
            ("name", self.name.clone().into()),
            ("type", kind_word(i.kind).into()),
            ("state", Json::Object(state)),
            ("handles", n(self.handles)),
            ("waiters", n(self.waiters)),
        ])
    }
}

/// For the subcommands that take local names only (`hold`, `inspect`): a clear error for
/// a cluster name, naming what to use instead.
pub fn local_only(names: &[String], command: &str) -> Result<(), Failure> {
    match names.iter().find(|n| is_cluster(n)) {
        None => Ok(()),
        Some(n) => Err(Failure::usage(format!(
            "`procsync {command}` takes local names only, and `{n}` is a cluster name; \
             `procsync ls --etcd URLS` lists cluster objects, and `procsync wait {n} \
             --create TYPE --etcd URLS` keeps one alive while it waits"
        ))),
    }
}
