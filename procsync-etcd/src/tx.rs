//! The world one transaction sees, and the commit. `World::load` reads the objects named
//! (object key, mutex owner's liveness key, leased units, wait queue) and the waiters
//! queued on them, plus the other objects those waiters wait on; an operation and the
//! hand-off then change it in memory; `transact` writes it back in ONE etcd transaction
//! guarded by the mod revision of every object key read (and of every wait record
//! granted), and starts over when a guard fails. Owns optimistic concurrency and the
//! idempotence marker; must not decide semantics (that is `state.rs` and `settle.rs`).
//!
//! Why reads need no guard beyond the object keys: an owner's liveness key is only
//! created by a transaction that also changes the object key; a unit id is never reused
//! (a dead unit stays dead); and a queue entry that appears after the read is younger
//! than every entry read, so ignoring it keeps the oldest-first order. Two things make
//! that last point safe against lost wake-ups:
//! - a wait that registers rewrites ("touches") the key of every object it queues on,
//!   so a signal that read the queue before the registration fails its guard and
//!   starts over (then it sees the new waiter), or commits first (then the registering
//!   transaction fails its guard and finds the object available);
//! - a liveness key that expires (a lease ended) changes no object key, so a waiter,
//!   once its watch is established, runs the hand-off for its objects itself, and
//!   again whenever it sees such a deletion (`wait.rs`).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{self, Kv};
use crate::error::{Error, Result};
use crate::keys;
use crate::session::Session;
use crate::state::{Obj, State, Who};

/// A queued wait as its record describes it.
#[derive(Clone, Debug)]
pub(crate) struct Waiter {
    /// Mod revision of the record (guarded when granted).
    pub rev: i64,
    pub who: Who,
    pub all: bool,
    pub objs: Vec<String>,
}

/// Grant handed to a waiter by this transaction.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub wid: String,
    pub index: usize,
    pub abandoned: bool,
}

/// Everything one transaction reads and will write.
pub(crate) struct World {
    pub objs: BTreeMap<String, Obj>,
    /// Queue of each primary object: wait ids, oldest first.
    pub queues: BTreeMap<String, Vec<String>>,
    pub waiters: BTreeMap<String, Waiter>,
    pub grants: Vec<Grant>,
    /// Operations and guards added by the caller (registration of a wait, handle keys).
    pub extra_ops: Vec<Value>,
    pub extra_cmps: Vec<Value>,
    /// Revision the primary objects were read at.
    pub read_rev: i64,
    /// Session lease of the caller (unit ids carry it).
    pub lease: i64,
    next_unit: u64,
}

fn obj_reads(n: &str) -> [Value; 3] {
    [
        client::range_key(&keys::object(n)),
        client::range_key(&keys::owner(n)),
        client::range_prefix(&keys::units(n)),
    ]
}

fn build_obj(n: &str, r: &[Value]) -> Result<Option<Obj>> {
    let Some(o) = client::kvs(&r[0])?.into_iter().next() else {
        return Ok(None);
    };
    let st = State::from_json(&o.json()?)?;
    let owner_alive = !client::kvs(&r[1])?.is_empty();
    let upre = keys::units(n);
    let live = client::kvs(&r[2])?
        .into_iter()
        .filter_map(|k| k.key.strip_prefix(&upre).map(str::to_string))
        .collect();
    Ok(Some(Obj::new(n.to_string(), o.modr, st, owner_alive, live)))
}

fn parse_waiter(kv: &Kv) -> Result<Waiter> {
    let v = kv.json()?;
    Ok(Waiter {
        rev: kv.modr,
        who: Who {
            owner: v["owner"].as_str().unwrap_or("").to_string(),
            lease: client::int(&v["lease"]),
        },
        all: v["all"].as_bool().unwrap_or(false),
        objs: v["objs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The value of a wait record.
pub(crate) fn record_value(who: &Who, all: bool, objs: &[String]) -> Value {
    json!({ "owner": who.owner, "lease": who.lease.to_string(), "all": all, "objs": objs })
}

impl World {
    /// Reads `names` (each must exist), their queues and waiters.
    pub(crate) fn load(s: &Session, names: &[String], until: Instant) -> Result<World> {
        let mut prim: Vec<String> = Vec::new();
        for n in names {
            if !prim.contains(n) {
                prim.push(n.clone());
            }
        }
        let mut reads = Vec::new();
        for n in &prim {
            reads.extend(obj_reads(n));
            reads.push(client::range_prefix(&keys::queue(n)));
        }
        let (read_rev, rs) = s.etcd.read_many(reads, until)?;
        let mut w = World {
            objs: BTreeMap::new(),
            queues: BTreeMap::new(),
            waiters: BTreeMap::new(),
            grants: Vec::new(),
            extra_ops: Vec::new(),
            extra_cmps: Vec::new(),
            read_rev,
            lease: s.lease,
            next_unit: s.next_id(),
        };
        let mut wids = Vec::new();
        for (i, n) in prim.iter().enumerate() {
            let r = &rs[i * 4..i * 4 + 4];
            let Some(o) = build_obj(n, r)? else {
                return Err(Error::NotFound {
                    name: format!("{}{n}", keys::CLUSTER_PREFIX),
                });
            };
            w.objs.insert(n.clone(), o);
            let qpre = keys::queue(n);
            let q: Vec<String> = client::kvs(&r[3])?
                .into_iter()
                .filter_map(|k| k.key.strip_prefix(&qpre).map(str::to_string))
                .collect();
            wids.extend(q.iter().cloned());
            w.queues.insert(n.clone(), q);
        }
        wids.sort();
        wids.dedup();
        if !wids.is_empty() {
            let reads = wids
                .iter()
                .map(|id| client::range_key(&keys::record(id)))
                .collect();
            let (_, rs) = s.etcd.read_many(reads, until)?;
            for (id, r) in wids.iter().zip(&rs) {
                if let Some(kv) = client::kvs(r)?.into_iter().next() {
                    w.waiters.insert(id.clone(), parse_waiter(&kv)?);
                }
            }
        }
        let mut more: Vec<String> = Vec::new();
        for wt in w.waiters.values() {
            for n in &wt.objs {
                if !w.objs.contains_key(n) && !more.contains(n) {
                    more.push(n.clone());
                }
            }
        }
        if !more.is_empty() {
            let reads = more.iter().flat_map(|n| obj_reads(n)).collect();
            let (_, rs) = s.etcd.read_many(reads, until)?;
            for (i, n) in more.iter().enumerate() {
                if let Some(o) = build_obj(n, &rs[i * 3..i * 3 + 3])? {
                    w.objs.insert(n.clone(), o);
                }
            }
        }
        Ok(w)
    }

    /// A fresh unit id for a unit held by `holder` (unique across sessions).
    pub(crate) fn unit_id(&mut self, holder: i64) -> String {
        self.next_unit += 1;
        format!("{holder:x}.{:x}-{}", self.lease, self.next_unit)
    }

    pub(crate) fn obj(&mut self, n: &str) -> &mut Obj {
        self.objs.get_mut(n).expect("primary objects are loaded")
    }

    fn changed(&self) -> bool {
        !self.grants.is_empty()
            || !self.extra_ops.is_empty()
            || self.objs.values().any(|o| {
                o.st != o.orig
                    || o.touch
                    || o.owner_key.is_some()
                    || !o.new_units.is_empty()
                    || !o.dead_units.is_empty()
            })
    }

    fn commit_ops(&self) -> (Vec<Value>, Vec<Value>) {
        let mut cmps = self.extra_cmps.clone();
        let mut ops = self.extra_ops.clone();
        for o in self.objs.values() {
            cmps.push(client::cmp_mod(&keys::object(&o.name), o.rev));
            if o.st != o.orig || o.touch {
                ops.push(client::put(&keys::object(&o.name), &o.st.to_json(), 0));
            }
            match (&o.owner_key, &o.st) {
                (Some(Some(l)), State::Mutex { owner, .. }) => {
                    ops.push(client::put(&keys::owner(&o.name), &json!(owner), *l));
                }
                (Some(None), _) => ops.push(client::delete(&keys::owner(&o.name), false)),
                _ => {}
            }
            for (id, l) in &o.new_units {
                ops.push(client::put(
                    &format!("{}{id}", keys::units(&o.name)),
                    &json!(1),
                    *l,
                ));
            }
            for id in &o.dead_units {
                ops.push(client::delete(
                    &format!("{}{id}", keys::units(&o.name)),
                    false,
                ));
            }
        }
        for g in &self.grants {
            let wt = &self.waiters[&g.wid];
            cmps.push(client::cmp_mod(&keys::record(&g.wid), wt.rev));
            ops.push(client::delete(&keys::record(&g.wid), false));
            let mut done: Vec<&String> = Vec::new();
            for n in &wt.objs {
                if !done.contains(&n) {
                    ops.push(client::delete(
                        &format!("{}{}", keys::queue(n), g.wid),
                        false,
                    ));
                    done.push(n);
                }
            }
            let v = json!({ "i": g.index, "ab": g.abandoned });
            ops.push(client::put(&keys::grant(&g.wid), &v, wt.who.lease));
        }
        (cmps, ops)
    }
}

/// What a committed transaction gives back.
pub(crate) struct Done<T> {
    pub value: T,
    /// Revision of the commit (or of the read when nothing was written): the fencing
    /// token of whatever it acquired.
    pub rev: i64,
}

/// Loads `names`, runs `f` on the world, and commits what it changed in one
/// transaction, starting over when another client changed an object meanwhile.
pub(crate) fn transact<T>(
    s: &Session,
    names: &[String],
    until: Instant,
    mut f: impl FnMut(&mut World) -> Result<T>,
) -> Result<Done<T>> {
    loop {
        s.check_alive()?;
        let mut w = World::load(s, names, until)?;
        let value = f(&mut w)?;
        if !w.changed() {
            return Ok(Done {
                value,
                rev: w.read_rev,
            });
        }
        let (cmps, mut ops) = w.commit_ops();
        let op_id = s.next_id().to_string();
        let marker = keys::marker(&s.thread_marker());
        ops.push(client::put(&marker, &json!(op_id), s.lease));
        let mut ambiguous = false;
        match s.etcd.txn(cmps, ops, Vec::new(), until, &mut ambiguous) {
            Ok((true, r)) => {
                return Ok(Done {
                    value,
                    rev: client::header_rev(&r),
                });
            }
            Ok((false, _)) if ambiguous => {
                // An earlier attempt may have been applied: the marker says.
                if let Some(m) = s.etcd.get(&marker, until)?
                    && m.json().ok() == Some(json!(op_id))
                {
                    return Ok(Done { value, rev: m.modr });
                }
            }
            Ok((false, _)) => {}
            Err(e @ Error::Unavailable { .. }) if ambiguous => return Err(s.give_up(e)),
            Err(e) => return Err(e),
        }
    }
}
