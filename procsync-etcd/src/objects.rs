//! Cluster handles: create, open, close (and the collection of an object when its last
//! handle goes), and the signalling calls (set, reset, pulse, release) with their
//! hand-off. Owns handle lifetime and the public object API; waits are in `wait.rs`.

use std::time::{Duration, Instant};

use procsync::{Created, ObjectKind};
use serde_json::{Value, json};

use crate::client;
use crate::error::{Error, Result};
use crate::keys;
use crate::session::{Cluster, Session};
use crate::settle::settle;
use crate::state::{Obj, State, Who, wrong};
use crate::tx::{World, transact};

/// What happens to a semaphore unit whose holder's session ends while holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// Win32: units are counts, not owned; a dead holder's unit is not returned.
    Win32,
    /// Each unit taken is a key on the taker's lease and comes back when that lease
    /// ends; only a holder may release (at most the units its session holds).
    Leased,
}

/// A snapshot of an object's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Event, mutex or semaphore.
    pub kind: ObjectKind,
    /// Event: signaled. Mutex: free (or abandoned). Semaphore: count above zero.
    pub signaled: bool,
    /// Event: whether it is manual-reset.
    pub manual: bool,
    /// Semaphore: current count and maximum.
    pub count: u32,
    /// Semaphore maximum.
    pub max: u32,
    /// Semaphore in [`Units::Leased`] mode.
    pub leased: bool,
    /// Mutex: owner as `<session lease hex>.<thread>`, while its lease lives.
    pub owner: Option<String>,
    /// Mutex recursion count.
    pub recursion: u32,
    /// Mutex whose owner's lease ended while holding it (the next owner is told).
    pub abandoned: bool,
}

impl ObjectInfo {
    pub(crate) fn of(o: &Obj) -> ObjectInfo {
        let mut i = ObjectInfo {
            kind: o.st.kind(),
            signaled: false,
            manual: false,
            count: 0,
            max: 0,
            leased: false,
            owner: None,
            recursion: 0,
            abandoned: o.abandoned(),
        };
        match &o.st {
            State::Event { manual, signaled } => {
                i.signaled = *signaled;
                i.manual = *manual;
            }
            State::Mutex {
                owner, recursion, ..
            } => {
                i.signaled = owner.is_none() || i.abandoned;
                if !i.abandoned {
                    i.owner.clone_from(owner);
                    i.recursion = *recursion;
                }
            }
            State::Semaphore {
                max, count, leased, ..
            } => {
                i.signaled = *count > 0;
                i.count = *count;
                i.max = *max;
                i.leased = *leased;
            }
        }
        i
    }
}

/// An open handle to a cluster object. Dropping it closes it; the object is deleted
/// when its last handle (in any client) is closed or its session lease ends.
pub struct Handle {
    pub(crate) c: Cluster,
    pub(crate) name: String,
    kind: ObjectKind,
    hkey: String,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handle({:?} Cluster\\{})", self.kind, self.name)
    }
}

impl Cluster {
    fn handle(&self, name: String, kind: ObjectKind) -> Handle {
        let hkey = format!(
            "{}{}.{}",
            keys::handles(&name),
            self.s.lease_hex(),
            self.s.next_id()
        );
        Handle {
            c: self.clone(),
            name,
            kind,
            hkey,
        }
    }

    fn create(&self, full: &str, st: State, owned: bool) -> Result<(Handle, Created)> {
        let n = keys::parse_name(full)?;
        let s = &self.s;
        let until = s.op_deadline();
        loop {
            s.check_alive()?;
            if Instant::now() >= until {
                return Err(Error::Unavailable {
                    what: format!(
                        "creating `{full}` kept racing other clients' creates and deletes for {:?}",
                        s.ttl
                    ),
                });
            }
            let h = self.handle(n.clone(), st.kind());
            let mut first = st.clone();
            let mut ops = vec![client::put(&h.hkey, &json!(1), s.lease)];
            if owned {
                let me = s.me();
                first = State::Mutex {
                    owner: Some(me.owner.clone()),
                    lease: me.lease,
                    recursion: 1,
                };
                ops.push(client::put(&keys::owner(&n), &json!(me.owner), me.lease));
            }
            ops.push(client::put(&keys::object(&n), &first.to_json(), 0));
            let (ok, r) = s.etcd.txn(
                vec![client::cmp_absent(&keys::object(&n))],
                ops,
                vec![
                    json!({ "request_range": client::range_key(&keys::object(&n)) }),
                    json!({ "request_range": client::count_prefix(&keys::handles(&n)) }),
                ],
                until,
                &mut false,
            )?;
            if ok {
                return Ok((h, Created::New));
            }
            let resp = |i: usize| r["responses"][i]["response_range"].clone();
            let Some(kv) = client::kvs(&resp(0))?.into_iter().next() else {
                continue; // deleted meanwhile: try again
            };
            if client::int(&resp(1)["count"]) == 0 {
                // Left behind by clients whose leases ended: collect it and create anew.
                s.collect(&n, until)?;
                continue;
            }
            let have = State::from_json(&kv.json()?)?.kind();
            if have != st.kind() {
                return Err(Error::WrongType {
                    what: format!("`{full}` exists as a {have:?}, not a {:?}", st.kind()),
                });
            }
            if self.attach(&h, kv.create, until)? {
                return Ok((h, Created::Existing));
            }
        }
    }

    /// Writes `h`'s handle key if the object is still the one created at `create`.
    fn attach(&self, h: &Handle, create: i64, until: Instant) -> Result<bool> {
        let k = keys::object(&h.name);
        let cmp = json!({ "key": crate::b64::encode(k.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": create.to_string() });
        let (ok, _) = self.s.etcd.txn(
            vec![cmp],
            vec![client::put(&h.hkey, &json!(1), self.s.lease)],
            Vec::new(),
            until,
            &mut false,
        )?;
        Ok(ok)
    }

    /// Creates (or opens, `Created::Existing`) a manual- or auto-reset event.
    pub fn create_event(
        &self,
        name: &str,
        manual: bool,
        initial: bool,
    ) -> Result<(Handle, Created)> {
        self.create(
            name,
            State::Event {
                manual,
                signaled: initial,
            },
            false,
        )
    }

    /// Creates (or opens) a mutex; `owned` makes the calling thread its owner when this
    /// call creates it (its fencing token is then [`Handle::fence_token`]).
    pub fn create_mutex(&self, name: &str, owned: bool) -> Result<(Handle, Created)> {
        self.create(
            name,
            State::Mutex {
                owner: None,
                lease: 0,
                recursion: 0,
            },
            owned,
        )
    }

    /// Creates (or opens) a semaphore with `initial` of `max` units.
    pub fn create_semaphore(
        &self,
        name: &str,
        initial: u32,
        max: u32,
        units: Units,
    ) -> Result<(Handle, Created)> {
        if max == 0 || initial > max || max > i32::MAX as u32 {
            return Err(Error::invalid(format!(
                "semaphore initial {initial} / maximum {max}: the maximum must be 1..=2147483647 and the initial count at most the maximum"
            )));
        }
        if units == Units::Leased && initial != max {
            return Err(Error::invalid(format!(
                "a leased-units semaphore starts with every unit free (initial {initial} must equal maximum {max})"
            )));
        }
        let st = State::Semaphore {
            max,
            count: initial,
            leased: units == Units::Leased,
            held: Vec::new(),
        };
        self.create(name, st, false)
    }

    /// Opens an existing object of any kind.
    pub fn open(&self, name: &str) -> Result<Handle> {
        let n = keys::parse_name(name)?;
        let s = &self.s;
        let until = s.op_deadline();
        loop {
            s.check_alive()?;
            let (_, rs) = s.etcd.read_many(
                vec![
                    client::range_key(&keys::object(&n)),
                    client::count_prefix(&keys::handles(&n)),
                ],
                until,
            )?;
            let kv = client::kvs(&rs[0])?.into_iter().next();
            let Some(kv) = kv.filter(|_| client::int(&rs[1]["count"]) > 0) else {
                return Err(Error::NotFound {
                    name: name.to_string(),
                });
            };
            let h = self.handle(n.clone(), State::from_json(&kv.json()?)?.kind());
            if self.attach(&h, kv.create, until)? {
                return Ok(h);
            }
        }
    }

    /// Every object in the cluster with its state (for `procsync ls`).
    pub fn list(&self) -> Result<Vec<(String, ObjectInfo)>> {
        let s = &self.s;
        let until = s.op_deadline();
        let resp = s.etcd.call(
            "/v3/kv/range",
            &client::range_prefix(&keys::objects()),
            until,
        )?;
        let pre = keys::objects();
        let mut out = Vec::new();
        for kv in client::kvs(&resp)? {
            let Some(n) = kv.key.strip_prefix(&pre) else {
                continue;
            };
            let w = World::load(s, &[n.to_string()], until);
            if let Ok(mut w) = w {
                out.push((
                    format!("{}{n}", keys::CLUSTER_PREFIX),
                    ObjectInfo::of(w.obj(n)),
                ));
            }
        }
        Ok(out)
    }

    /// How many handles are open on the object `name` (`Cluster\x`), in every client,
    /// and how many waits are queued on it (for `procsync ls`). Both 0 when it does not
    /// exist.
    pub fn counts(&self, name: &str) -> Result<(usize, usize)> {
        let n = keys::parse_name(name)?;
        let s = &self.s;
        s.check_alive()?;
        let (_, rs) = s.etcd.read_many(
            vec![
                client::count_prefix(&keys::handles(&n)),
                client::count_prefix(&keys::queue(&n)),
            ],
            s.op_deadline(),
        )?;
        let count = |v: &Value| usize::try_from(client::int(&v["count"])).unwrap_or(0);
        Ok((count(&rs[0]), count(&rs[1])))
    }
}

/// The signal of `signal_and_wait` and of the calls below: set an event, release a
/// mutex once, release one semaphore unit.
pub(crate) fn signal(w: &mut World, n: &str, who: &Who, lease_hex: &str) -> Result<()> {
    let o = w.obj(n);
    match &mut o.st {
        State::Event { signaled, .. } => *signaled = true,
        State::Mutex { .. } => {
            o.release_mutex(who)?;
        }
        State::Semaphore { .. } => {
            o.release_semaphore(1, lease_hex)?;
        }
    }
    Ok(())
}

impl Handle {
    /// The full name, `Cluster\name`.
    pub fn name(&self) -> String {
        format!("{}{}", keys::CLUSTER_PREFIX, self.name)
    }

    /// The object's type.
    pub fn kind(&self) -> ObjectKind {
        self.kind
    }

    /// The cluster session this handle belongs to.
    pub fn cluster(&self) -> &Cluster {
        &self.c
    }

    fn s(&self) -> &Session {
        &self.c.s
    }

    fn event_op(&self, what: &str, f: impl Fn(&mut bool, bool) -> bool) -> Result<bool> {
        let n = self.name.clone();
        let names = [n.clone()];
        let done = transact(self.s(), &names, self.s().op_deadline(), |w| {
            let o = w.obj(&n);
            let State::Event { signaled, manual } = &mut o.st else {
                return Err(wrong(&n, &format!("{what} on a non-event")));
            };
            let m = *manual;
            let prev = f(signaled, m);
            settle(w, &names)?;
            if what == "pulse"
                && let State::Event { signaled, .. } = &mut w.obj(&n).st
            {
                *signaled = false;
            }
            Ok(prev)
        })?;
        Ok(done.value)
    }

    /// Sets an event; queued waiters are handed it in the same transaction (all of them
    /// for a manual-reset event, the oldest for an auto-reset one). Gives back whether
    /// it was signaled before.
    pub fn set(&self) -> Result<bool> {
        self.event_op("set", |sig, _| std::mem::replace(sig, true))
    }

    /// Resets an event. Gives back whether it was signaled before.
    pub fn reset(&self) -> Result<bool> {
        self.event_op("reset", |sig, _| std::mem::replace(sig, false))
    }

    /// Pulses an event: the waiters queued now are released (all, or the oldest for an
    /// auto-reset event) and it is left non-signaled. Gives back whether it was
    /// signaled before.
    pub fn pulse(&self) -> Result<bool> {
        self.event_op("pulse", |sig, _| std::mem::replace(sig, true))
    }

    /// Releases a mutex once (the calling thread must own it); on the last release it
    /// is handed to the oldest waiter in the same transaction. Gives back the revision
    /// of the release, which orders it against fencing tokens.
    pub fn release_mutex(&self) -> Result<u64> {
        let n = self.name.clone();
        let names = [n.clone()];
        let me = self.s().me();
        let done = transact(self.s(), &names, self.s().op_deadline(), |w| {
            if !matches!(w.obj(&n).st, State::Mutex { .. }) {
                return Err(wrong(&n, "release-mutex on a non-mutex"));
            }
            if w.obj(&n).release_mutex(&me)? {
                settle(w, &names)?;
            }
            Ok(())
        })?;
        Ok(done.rev as u64)
    }

    /// Releases `count` semaphore units (handed to the oldest waiters in the same
    /// transaction). Gives back the previous count.
    pub fn release(&self, count: u32) -> Result<u32> {
        self.release_rev(count).map(|(prev, _)| prev)
    }

    /// [`Handle::release`], also giving back the revision of the release.
    pub fn release_rev(&self, count: u32) -> Result<(u32, u64)> {
        let n = self.name.clone();
        let names = [n.clone()];
        let hex = self.s().lease_hex();
        let done = transact(self.s(), &names, self.s().op_deadline(), |w| {
            let prev = w.obj(&n).release_semaphore(count, &hex)?;
            settle(w, &names)?;
            Ok(prev)
        })?;
        Ok((done.value, done.rev as u64))
    }

    /// The object's state now.
    pub fn query(&self) -> Result<ObjectInfo> {
        self.s().check_alive()?;
        let mut w = World::load(
            self.s(),
            std::slice::from_ref(&self.name),
            self.s().op_deadline(),
        )?;
        Ok(ObjectInfo::of(w.obj(&self.name)))
    }

    /// How many waits are queued on the object (a test's handshake: a waiter is queued).
    pub fn waiters(&self) -> Result<usize> {
        self.s().check_alive()?;
        let r = self.s().etcd.call(
            "/v3/kv/range",
            &client::count_prefix(&keys::queue(&self.name)),
            self.s().op_deadline(),
        )?;
        Ok(client::int(&r["count"]) as usize)
    }

    /// Mutex: the fencing token of the calling thread's current hold (the revision that
    /// gave it ownership), or [`Error::NotOwner`].
    pub fn fence_token(&self) -> Result<u64> {
        self.s().check_alive()?;
        let me = self.s().me();
        let kv = self
            .s()
            .etcd
            .get(&keys::owner(&self.name), self.s().op_deadline())?;
        match kv {
            Some(kv) if kv.json()? == Value::String(me.owner) => Ok(kv.modr as u64),
            _ => Err(Error::NotOwner),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.s().check_alive().is_err() {
            return;
        }
        let until = Instant::now() + Duration::from_secs(1).min(self.s().ttl);
        let del = client::delete(&self.hkey, false);
        let body = json!({ "compare": [], "success": [del], "failure": [] });
        if self.s().etcd.call("/v3/kv/txn", &body, until).is_ok() {
            let _ = self.s().collect(&self.name, until);
        }
    }
}
