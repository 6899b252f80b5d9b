//! The wait functions: one object, any, all (atomically, in one transaction), and
//! signal-and-wait (the signal and the enqueueing in one transaction). A wait first
//! tries to take what it waits for; otherwise it writes a wait record and one queue
//! entry per object (all on its session lease) and watches for its grant, which
//! whoever makes the object available writes in that same transaction. Timeouts are
//! local deadlines: at the deadline the wait cancels itself in a transaction that
//! either removes its record or finds the grant that won the race. Owns blocking and
//! cancellation; the hand-off rules are in `settle.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use procsync::{MAX_WAIT_OBJECTS, WaitOutcome};
use serde_json::{Value, json};

use crate::client;
use crate::error::{Error, Result};
use crate::keys;
use crate::objects::{Handle, signal};
use crate::session::Session;
use crate::settle::{satisfiable, settle, take};
use crate::tx::{record_value, transact};

/// What a wait ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// Signaled, abandoned or timed out, with the index as in procsync.
    pub outcome: WaitOutcome,
    /// The fencing token: the etcd revision of the transaction that gave this wait
    /// what it acquired (0 when it timed out). Tokens of successive holds of one object
    /// strictly increase; a resource that remembers the highest token it has accepted
    /// and refuses lower ones cannot be written by a holder whose lease has expired
    /// after a newer holder has written (see docs/ETCD.md, "Fencing").
    pub token: u64,
}

enum Step {
    Took(WaitOutcome),
    Registered,
    Poll,
}

fn session_of<'a>(handles: &[&'a Handle]) -> Result<&'a Session> {
    let Some(first) = handles.first() else {
        return Err(Error::invalid("a wait needs at least one handle"));
    };
    if handles.len() > MAX_WAIT_OBJECTS {
        return Err(Error::invalid(format!(
            "{} handles given; a wait takes at most {MAX_WAIT_OBJECTS}",
            handles.len()
        )));
    }
    if handles
        .iter()
        .any(|h| !std::sync::Arc::ptr_eq(&h.c.s, &first.c.s))
    {
        return Err(Error::invalid(
            "handles of one wait must come from the same Cluster connection",
        ));
    }
    Ok(&first.c.s)
}

/// Waits until any of `handles` is available and takes the lowest-indexed one.
pub fn wait_any(handles: &[&Handle], timeout: Option<Duration>) -> Result<Acquired> {
    let s = session_of(handles)?;
    let names = handles.iter().map(|h| h.name.clone()).collect();
    wait(s, names, false, None, timeout)
}

/// Waits until all of `handles` are available at once and takes them all in one
/// transaction (nothing is taken while any is unavailable).
pub fn wait_all(handles: &[&Handle], timeout: Option<Duration>) -> Result<Acquired> {
    let s = session_of(handles)?;
    let names: Vec<String> = handles.iter().map(|h| h.name.clone()).collect();
    for (j, n) in names.iter().enumerate() {
        if let Some(i) = names[..j].iter().position(|m| m == n) {
            return Err(Error::DuplicateObject {
                first: i,
                second: j,
            });
        }
    }
    wait(s, names, true, None, timeout)
}

/// Signals `signal` (set an event, release a mutex once, release one semaphore unit)
/// and starts waiting on `wait`, in one transaction.
pub fn signal_and_wait(
    signal: &Handle,
    wait_on: &Handle,
    timeout: Option<Duration>,
) -> Result<Acquired> {
    let s = session_of(&[signal, wait_on])?;
    wait(
        s,
        vec![wait_on.name.clone()],
        false,
        Some(signal.name.clone()),
        timeout,
    )
}

impl Handle {
    /// Waits for this object alone.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Acquired> {
        wait(&self.c.s, vec![self.name.clone()], false, None, timeout)
    }
}

fn outcome_of(v: &Value) -> WaitOutcome {
    let i = v["i"].as_u64().unwrap_or(0) as usize;
    if v["ab"].as_bool().unwrap_or(false) {
        WaitOutcome::Abandoned(i)
    } else {
        WaitOutcome::Signaled(i)
    }
}

fn wait(
    s: &Session,
    objs: Vec<String>,
    all: bool,
    pre: Option<String>,
    timeout: Option<Duration>,
) -> Result<Acquired> {
    let start = Instant::now();
    let deadline = timeout.map(|t| start + t);
    let who = s.me();
    let wid = format!("{}.{}", s.lease_hex(), s.next_id());
    let mut names = objs.clone();
    if let Some(p) = &pre {
        names.insert(0, p.clone());
    }
    let mut uniq: Vec<String> = Vec::new();
    for n in &objs {
        if !uniq.contains(n) {
            uniq.push(n.clone());
        }
    }
    let poll = timeout == Some(Duration::ZERO);
    let hex = s.lease_hex();
    let done = transact(s, &names, start + s.ttl, |w| {
        if let Some(p) = &pre {
            signal(w, p, &who, &hex)?;
            settle(w, std::slice::from_ref(p))?;
        }
        // Older waiters first: anything available now goes to them before to us.
        settle(w, &uniq)?;
        if let Some(i) = satisfiable(w, &objs, all, &who) {
            return Ok(Step::Took(take(w, &objs, all, i, &who)?));
        }
        if poll {
            return Ok(Step::Poll);
        }
        w.extra_ops.push(client::put(
            &keys::record(&wid),
            &record_value(&who, all, &objs),
            s.lease,
        ));
        for n in &uniq {
            w.extra_ops.push(client::put(
                &format!("{}{wid}", keys::queue(n)),
                &json!(wid),
                s.lease,
            ));
            // A signal that read the queue before this entry existed must not commit
            // after it (lost wake-up): moving the object key's revision fails its guard.
            w.obj(n).touch = true;
        }
        Ok(Step::Registered)
    })?;
    match done.value {
        Step::Took(outcome) => Ok(Acquired {
            outcome,
            token: done.rev as u64,
        }),
        Step::Poll => Ok(Acquired {
            outcome: WaitOutcome::TimedOut,
            token: 0,
        }),
        Step::Registered => block(s, &wid, &uniq, done.rev, deadline),
    }
}

/// Reads the grant and deletes it.
fn finish(s: &Session, wid: &str, kv: &client::Kv) -> Result<Acquired> {
    let out = outcome_of(&kv.json()?);
    let until = Instant::now() + s.ttl;
    let _ = s.etcd.call(
        "/v3/kv/deleterange",
        &json!({ "key": crate::b64::encode(keys::grant(wid).as_bytes()) }),
        until,
    );
    Ok(Acquired {
        outcome: out,
        token: kv.modr as u64,
    })
}

/// Waits for the grant of `wid`, registered at `rec_rev`.
///
/// The watch starts at the CURRENT revision: etcd serves a watch that starts in the
/// past from a catch-up loop that runs every 100 ms, which would add up to 100 ms to
/// every hand-off. What happened before the watch began is caught up by hand, once the
/// watch is established (and again after every reconnect): read the grant, and run the
/// hand-off for our objects — a holder's lease that ended between our read and now
/// changed no object key, so no guard caught it, and no one may have handed it on.
fn block(
    s: &Session,
    wid: &str,
    objs: &[String],
    rec_rev: i64,
    deadline: Option<Instant>,
) -> Result<Acquired> {
    let gkey = keys::grant(wid);
    let mut stream = None;
    loop {
        s.check_alive()?;
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return cancel(s, wid, objs, rec_rev);
        }
        let slice = deadline.map_or(Duration::from_millis(500), |d| {
            (d - now).min(Duration::from_millis(500))
        });
        let st = match &mut stream {
            Some(st) => st,
            None => match watch_now(s) {
                Some(st) => {
                    match s.etcd.get(&gkey, Instant::now() + s.ttl) {
                        Ok(Some(kv)) => return finish(s, wid, &kv),
                        Ok(None) => {}
                        Err(e) => {
                            keep_waiting(s, e)?;
                            continue;
                        }
                    }
                    if let Err(e) = resettle(s, objs) {
                        keep_waiting(s, e)?;
                        continue;
                    }
                    stream.insert(st)
                }
                None => {
                    std::thread::sleep(slice.min(Duration::from_millis(100)));
                    continue;
                }
            },
        };
        let msg = match st.next(slice) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(_) => {
                stream = None;
                continue;
            }
        };
        let Ok(v) = serde_json::from_slice::<Value>(&msg) else {
            stream = None;
            continue;
        };
        let r = v.get("result").unwrap_or(&v);
        if r.get("canceled").and_then(Value::as_bool).unwrap_or(false) {
            stream = None;
            continue;
        }
        let mut expired = BTreeSet::new();
        for ev in r
            .get("events")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let kv = client::kv(&ev["kv"])?;
            let deleted = ev.get("type").and_then(Value::as_str) == Some("DELETE");
            if kv.key == gkey && !deleted {
                return finish(s, wid, &kv);
            }
            if deleted {
                for n in objs {
                    if kv.key == keys::owner(n) || kv.key.starts_with(&keys::units(n)) {
                        expired.insert(n.clone());
                    }
                }
            }
        }
        // A holder's lease may have ended (no transaction signalled): whoever watches
        // hands the object on. Any client may settle for another; the guards make it
        // idempotent.
        if !expired.is_empty()
            && let Err(e) = resettle(s, &expired.into_iter().collect::<Vec<_>>())
        {
            keep_waiting(s, e)?;
            stream = None;
        }
    }
}

/// An error while a registered wait blocks. The wait's record may still be granted,
/// so it must not simply return: a transient failure (`unavailable`) keeps it waiting
/// (its deadline, then `cancel`, or the loss of the session ends it); any other error
/// ends it after giving up the session, so that a grant that may still come cannot be
/// held without this client knowing it.
fn keep_waiting(s: &Session, e: Error) -> Result<()> {
    match e {
        Error::Unavailable { .. } => {
            std::thread::sleep(Duration::from_millis(100));
            Ok(())
        }
        Error::SessionLost => Err(e),
        e => Err(s.give_up(e)),
    }
}

/// Opens a watch on every procsync key from the current revision and waits until etcd
/// confirms it (after that, no change is missed); `None` when no member would.
fn watch_now(s: &Session) -> Option<crate::http::Stream> {
    let mut st = s.etcd.watch(keys::ROOT, 0).ok()?;
    let until = Instant::now() + s.etcd.rpc_timeout;
    while Instant::now() < until {
        let msg = st.next(until - Instant::now()).ok()??;
        let v: Value = serde_json::from_slice(&msg).ok()?;
        let r = v.get("result").unwrap_or(&v);
        if r.get("created").and_then(Value::as_bool).unwrap_or(false) {
            return Some(st);
        }
    }
    None
}

/// Runs the hand-off on `names` (nothing is written when nothing is available).
fn resettle(s: &Session, names: &[String]) -> Result<()> {
    match transact(s, names, Instant::now() + s.ttl, |w| settle(w, names)) {
        Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// At the deadline: removes the wait's record and queue entries unless a grant won the
/// race, in which case the wait succeeded.
fn cancel(s: &Session, wid: &str, objs: &[String], rec_rev: i64) -> Result<Acquired> {
    let mut ops = vec![client::delete(&keys::record(wid), false)];
    for n in objs {
        ops.push(client::delete(&format!("{}{wid}", keys::queue(n)), false));
    }
    let marker = client::put(&keys::marker(&s.thread_marker()), &json!("cancel"), s.lease);
    ops.push(marker.clone());
    let failure = vec![
        json!({ "request_range": client::range_key(&keys::grant(wid)) }),
        marker,
    ];
    let mut ambiguous = false;
    let until = Instant::now() + s.ttl;
    match s.etcd.txn(
        vec![client::cmp_mod(&keys::record(wid), rec_rev)],
        ops,
        failure,
        until,
        &mut ambiguous,
    ) {
        Ok((true, _)) => Ok(Acquired {
            outcome: WaitOutcome::TimedOut,
            token: 0,
        }),
        Ok((false, r)) => {
            let g = client::kvs(&r["responses"][0]["response_range"])?;
            match g.first() {
                Some(kv) => finish(s, wid, kv),
                // Only an earlier attempt of this cancel removes the record without a grant.
                None if ambiguous => Ok(Acquired {
                    outcome: WaitOutcome::TimedOut,
                    token: 0,
                }),
                None => Err(Error::protocol(format!(
                    "wait record of {wid} vanished without a grant"
                ))),
            }
        }
        Err(e @ Error::Unavailable { .. }) => Err(s.give_up(e)),
        Err(e) => Err(e),
    }
}
