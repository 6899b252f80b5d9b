//! Cluster names on the command line: `run`, `wait`, `set`, `reset`, `pulse`,
//! `release` and `ls` given `Cluster\x` names act on objects kept in an etcd cluster
//! (procsync-etcd, docs/ETCD.md) instead of this machine's, when an endpoint is given
//! with `--etcd URLS` or `PROCSYNC_ETCD` (docs/CLI.md, "Cluster names").
//!
//! What it owns: telling cluster names from local ones, finding the endpoint (and the
//! error when there is none), one `procsync_etcd::Cluster` session per command, ending
//! that session when a wait is interrupted, and the wording of procsync-etcd's errors;
//! the subcommands' cluster sides are in `run.rs`, `oneshot.rs` and `list.rs`. What it
//! must not do: touch local objects (a command's names are all cluster or all local;
//! the caller routes), or keep a session beyond the command (the session's lease ends
//! with the process, and with it everything the process held).

mod list;
mod oneshot;
mod run;

use std::thread::{self, JoinHandle};

use procsync_etcd::{Cluster, Config};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::exit;
use super::shell::Failure;

pub use list::{Listed, list};
pub use oneshot::{WaitAsk, event, release, wait};
pub use run::{run_mutex, run_pool};

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

/// While it lives, SIGINT, SIGTERM and SIGHUP end the process (exit 128 + N) after
/// revoking its session, so that a wait interrupted in the shell leaves nothing queued
/// in etcd: otherwise its queued wait could be granted a mutex or a unit for up to the
/// TTL, and the mutex would then be reported abandoned. Dropped before `run` starts its
/// command, whose own signal forwarding then applies.
pub(super) struct Interrupt {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Interrupt {
    pub(super) fn arm(c: &Cluster) -> Option<Interrupt> {
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
