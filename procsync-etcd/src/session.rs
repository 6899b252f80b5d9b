//! A client's session: one etcd lease kept alive by a background thread, the identity
//! of the calling thread (`<lease hex>.<thread>`), and the sweep of objects whose last
//! holder is gone. Everything this client holds lives on that lease, so a client that
//! dies or is cut off past the TTL loses it all at once, as Win32 loses a dead
//! process's handles. Owns the lease and liveness; must not know object semantics.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{self, Etcd};
use crate::error::{Error, Result};
use crate::keys;
use crate::state::Who;

/// How to reach the cluster and how long a session outlives silence.
#[derive(Clone, Debug)]
pub struct Config {
    /// Comma-separated client URLs, e.g. `http://10.0.0.1:2379,http://10.0.0.2:2379`.
    pub endpoints: String,
    /// Session lease TTL: a client silent (dead, paused, cut off) for this long loses
    /// its holds; its mutexes become abandoned. Also the grace after which a wait
    /// without a deadline reports [`Error::Unavailable`] when no member answers.
    /// Whole seconds, at least 1 (etcd may raise it to its minimum).
    pub ttl: Duration,
    /// Longest wait for one request to one member before trying the next.
    pub rpc_timeout: Duration,
}

/// Environment variable naming the endpoints (`procsync` CLI's `--etcd` default).
pub const ENV_ENDPOINTS: &str = "PROCSYNC_ETCD";

impl Config {
    /// Defaults: TTL 10 s, 2 s per request.
    pub fn new(endpoints: &str) -> Config {
        Config {
            endpoints: endpoints.to_string(),
            ttl: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(2),
        }
    }

    /// The endpoints from `PROCSYNC_ETCD`, or `None` when it is unset or empty.
    pub fn from_env() -> Option<Config> {
        std::env::var(ENV_ENDPOINTS)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Config::new(&v))
    }

    /// Sets the session TTL.
    pub fn ttl(mut self, ttl: Duration) -> Config {
        self.ttl = ttl;
        self
    }
}

pub(crate) struct Session {
    pub etcd: Etcd,
    pub lease: i64,
    pub ttl: Duration,
    lost: AtomicBool,
    next: AtomicU64,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

fn thread_no() -> u64 {
    THREAD.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

impl Session {
    pub(crate) fn lease_hex(&self) -> String {
        format!("{:x}", self.lease)
    }

    /// The calling thread as an owner.
    pub(crate) fn me(&self) -> Who {
        Who {
            owner: format!("{:x}.{}", self.lease, thread_no()),
            lease: self.lease,
        }
    }

    /// Name of the calling thread's marker key.
    pub(crate) fn thread_marker(&self) -> String {
        format!("{:x}.{}", self.lease, thread_no())
    }

    /// A number unique within this session.
    pub(crate) fn next_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Deadline for one operation that is not a wait.
    pub(crate) fn op_deadline(&self) -> Instant {
        Instant::now() + self.ttl
    }

    pub(crate) fn check_alive(&self) -> Result<()> {
        if self.lost.load(Ordering::Acquire) {
            return Err(Error::SessionLost);
        }
        Ok(())
    }

    /// Gives the session up: called when this client cannot tell whether a change it
    /// asked for was applied (no member answered for a whole TTL). Keep-alives stop, so
    /// the lease expires and every hold of this client ends as if it had died: nothing
    /// it may hold unknowingly outlives the TTL.
    pub(crate) fn give_up(&self, e: Error) -> Error {
        self.mark_lost();
        match e {
            Error::Unavailable { what } => Error::Unavailable {
                what: format!(
                    "{what}; this client gave up its session (its holds end within the TTL), connect a new Cluster"
                ),
            },
            e => e,
        }
    }

    pub(crate) fn mark_lost(&self) {
        self.lost.store(true, Ordering::Release);
    }

    /// Deletes object `n` if no handle and no waiter refers to it any more.
    pub(crate) fn collect(&self, n: &str, until: Instant) -> Result<bool> {
        let (ok, _) = self.etcd.txn(
            vec![
                client::cmp_none_under(&keys::handles(n)),
                client::cmp_none_under(&keys::queue(n)),
            ],
            vec![
                client::delete(&keys::object(n), false),
                client::delete(&keys::owner(n), false),
                client::delete(&keys::units(n), true),
            ],
            Vec::new(),
            until,
            &mut false,
        )?;
        Ok(ok)
    }

    /// Collects every object whose last handle is gone (run at connect).
    fn sweep(&self) -> Result<usize> {
        let until = self.op_deadline();
        let mut r = client::range_prefix(&keys::objects());
        r["keys_only"] = json!(true);
        let resp = self.etcd.call("/v3/kv/range", &r, until)?;
        let pre = keys::objects();
        let mut n = 0;
        for kv in client::kvs(&resp)? {
            if let Some(name) = kv.key.strip_prefix(&pre)
                && self.collect(name, until)?
            {
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (m, c) = &*self.stop;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
        if !self.lost.load(Ordering::Acquire) {
            // Revoking ends every hold now rather than at the TTL (a held mutex becomes
            // abandoned, as when a Win32 process exits holding one).
            let until = Instant::now() + Duration::from_secs(1);
            let _ = self.etcd.call(
                "/v3/lease/revoke",
                &json!({ "ID": self.lease.to_string() }),
                until,
            );
        }
    }
}

fn keepalive(weak: Weak<Session>, stop: Arc<(Mutex<bool>, Condvar)>, ttl: Duration) {
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut last_ok = Instant::now();
    loop {
        {
            let (m, c) = &*stop;
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let (g, _) = c
                .wait_timeout_while(g, every, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            if *g {
                return;
            }
        }
        let Some(s) = weak.upgrade() else { return };
        if s.check_alive().is_err() {
            return;
        }
        let until = Instant::now() + every;
        match s.etcd.call(
            "/v3/lease/keepalive",
            &json!({ "ID": s.lease.to_string() }),
            until,
        ) {
            Ok(v) => {
                let res = v.get("result").unwrap_or(&v);
                if client::int(res.get("TTL").unwrap_or(&Value::Null)) > 0 {
                    last_ok = Instant::now();
                } else {
                    s.mark_lost();
                    return;
                }
            }
            Err(Error::SessionLost) => {
                s.mark_lost();
                return;
            }
            Err(_) if last_ok.elapsed() >= ttl => {
                // Silent past the TTL: etcd has (or soon will have) expired the lease.
                s.mark_lost();
                return;
            }
            Err(_) => {}
        }
    }
}

/// A connection to an etcd cluster and this client's session on it. Clones share the
/// session; dropping the last one revokes the lease.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) s: Arc<Session>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cluster(lease {:x})", self.s.lease)
    }
}

impl Cluster {
    /// Connects with default settings (see [`Config::new`]).
    pub fn connect(endpoints: &str) -> Result<Cluster> {
        Cluster::connect_with(&Config::new(endpoints))
    }

    /// Connects, grants the session lease, starts its keep-alive thread, and deletes
    /// objects left behind by clients whose leases have ended.
    pub fn connect_with(cfg: &Config) -> Result<Cluster> {
        let secs = cfg.ttl.as_secs();
        if secs == 0 || cfg.ttl.subsec_nanos() != 0 {
            return Err(Error::invalid(format!(
                "session TTL {:?} must be a whole number of seconds, at least 1",
                cfg.ttl
            )));
        }
        let etcd = Etcd::new(&cfg.endpoints, cfg.rpc_timeout)?;
        let until = Instant::now() + cfg.ttl.max(cfg.rpc_timeout);
        let r = etcd.call(
            "/v3/lease/grant",
            &json!({ "TTL": secs.to_string() }),
            until,
        )?;
        let lease = client::int(&r["ID"]);
        if lease == 0 {
            return Err(Error::protocol(format!("lease grant answered `{r}`")));
        }
        let granted = Duration::from_secs(client::int(&r["TTL"]).max(1) as u64);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = Arc::new(Session {
            etcd,
            lease,
            ttl: granted,
            lost: AtomicBool::new(false),
            next: AtomicU64::new(1),
            stop: stop.clone(),
        });
        let weak = Arc::downgrade(&s);
        std::thread::Builder::new()
            .name("procsync-etcd-keepalive".into())
            .spawn(move || keepalive(weak, stop, granted))
            .map_err(|e| Error::invalid(format!("cannot start the keep-alive thread: {e}")))?;
        s.sweep()?;
        Ok(Cluster { s })
    }

    /// The session lease id (every key this client writes is attached to it).
    pub fn lease(&self) -> i64 {
        self.s.lease
    }

    /// The lease TTL etcd granted.
    pub fn ttl(&self) -> Duration {
        self.s.ttl
    }

    /// Whether the session lease is known to be gone; then every call fails with
    /// [`Error::SessionLost`].
    pub fn is_lost(&self) -> bool {
        self.s.check_alive().is_err()
    }

    /// Ends this client's session now, for every clone: revokes the lease, so that every
    /// key on it goes at once (handles, queued waits, held mutexes — which become
    /// abandoned — and leased units), stops the keep-alive, and marks the session lost
    /// (later calls fail with [`Error::SessionLost`]). For a process about to exit
    /// without its destructors running (a signal handler's thread); dropping the last
    /// clone does the same.
    pub fn revoke(&self) -> Result<()> {
        self.s.mark_lost();
        let (m, c) = &*self.s.stop;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        c.notify_all();
        self.s.etcd.call(
            "/v3/lease/revoke",
            &json!({ "ID": self.s.lease.to_string() }),
            Instant::now() + Duration::from_secs(1),
        )?;
        Ok(())
    }

    /// Checks that the session lease is still alive at the server (one round trip);
    /// marks the session lost when it is not.
    pub fn check_session(&self) -> Result<()> {
        self.s.check_alive()?;
        let r = self.s.etcd.call(
            "/v3/lease/timetolive",
            &json!({ "ID": self.s.lease.to_string() }),
            self.s.op_deadline(),
        )?;
        if client::int(&r["TTL"]) <= 0 {
            self.s.mark_lost();
            return Err(Error::SessionLost);
        }
        Ok(())
    }
}
