//! Object state as stored in an object key, and the Win32 transitions on it: what is
//! available to whom, what taking it does. Pure: no I/O (the world and the commit are in
//! `tx.rs`, the hand-off in `settle.rs`).

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Largest recursion count of a cluster mutex (Win32's `MINLONG` limit, as in procsync).
pub(crate) const MAX_RECURSION: u32 = 0x7fff_ffff;

/// The stored state of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Event {
        manual: bool,
        signaled: bool,
    },
    Mutex {
        /// `<session lease hex>.<thread>` of the owner.
        owner: Option<String>,
        /// The owner's session lease.
        lease: i64,
        recursion: u32,
    },
    Semaphore {
        max: u32,
        count: u32,
        /// Leased-units mode: each unit taken is a key on the taker's lease, and comes
        /// back when that lease ends.
        leased: bool,
        /// Units out, by unit id (leased mode only).
        held: Vec<String>,
    },
}

/// Who is taking: a thread of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Who {
    pub owner: String,
    pub lease: i64,
}

impl State {
    pub(crate) fn kind(&self) -> procsync::ObjectKind {
        match self {
            State::Event { .. } => procsync::ObjectKind::Event,
            State::Mutex { .. } => procsync::ObjectKind::Mutex,
            State::Semaphore { .. } => procsync::ObjectKind::Semaphore,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        match self {
            State::Event { manual, signaled } => {
                json!({"k": "event", "manual": manual, "sig": signaled})
            }
            State::Mutex {
                owner,
                lease,
                recursion,
            } => {
                json!({"k": "mutex", "owner": owner, "lease": lease.to_string(), "rec": recursion})
            }
            State::Semaphore {
                max,
                count,
                leased,
                held,
            } => json!({"k": "sem", "max": max, "count": count, "leased": leased, "held": held}),
        }
    }

    pub(crate) fn from_json(v: &Value) -> Result<State> {
        let b = |f: &str| v.get(f).and_then(Value::as_bool).unwrap_or(false);
        let u = |f: &str| v.get(f).and_then(Value::as_u64).unwrap_or(0) as u32;
        match v.get("k").and_then(Value::as_str) {
            Some("event") => Ok(State::Event {
                manual: b("manual"),
                signaled: b("sig"),
            }),
            Some("mutex") => Ok(State::Mutex {
                owner: v.get("owner").and_then(Value::as_str).map(str::to_string),
                lease: crate::client::int(v.get("lease").unwrap_or(&Value::Null)),
                recursion: u("rec"),
            }),
            Some("sem") => Ok(State::Semaphore {
                max: u("max"),
                count: u("count"),
                leased: b("leased"),
                held: v
                    .get("held")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            _ => Err(Error::protocol(format!(
                "object state `{v}` has no known kind"
            ))),
        }
    }
}

/// One loaded object: its state plus the liveness facts read with it.
#[derive(Clone, Debug)]
pub(crate) struct Obj {
    pub name: String,
    /// Mod revision of the object key when read (compared at commit).
    pub rev: i64,
    pub st: State,
    pub orig: State,
    /// Mutex: the owner's liveness key exists.
    pub owner_alive: bool,
    /// Leased semaphore: unit ids whose keys exist.
    pub live_units: Vec<String>,
    /// Leased semaphore: units created by this transaction (id, holder lease).
    pub new_units: Vec<(String, i64)>,
    /// Leased semaphore: unit keys this transaction deletes.
    pub dead_units: Vec<String>,
    /// Mutex: liveness key to write (`Some(lease)`) or delete (`None`).
    pub owner_key: Option<Option<i64>>,
    /// Rewrite the object key even if its state is unchanged, so that its mod revision
    /// moves and a concurrent transaction guarded on the old one starts over (a wait
    /// registering on it; see `tx.rs`).
    pub touch: bool,
}

impl Obj {
    pub(crate) fn new(
        name: String,
        rev: i64,
        st: State,
        owner_alive: bool,
        live_units: Vec<String>,
    ) -> Obj {
        let mut o = Obj {
            name,
            rev,
            orig: st.clone(),
            st,
            owner_alive,
            live_units,
            new_units: Vec::new(),
            dead_units: Vec::new(),
            owner_key: None,
            touch: false,
        };
        o.reconcile_units();
        o
    }

    /// Leased mode: units whose holder's lease ended come back.
    fn reconcile_units(&mut self) {
        if let State::Semaphore {
            count,
            leased: true,
            held,
            ..
        } = &mut self.st
        {
            let before = held.len();
            held.retain(|id| self.live_units.contains(id));
            *count += (before - held.len()) as u32;
        }
    }

    /// A mutex whose owner's lease has ended while it held it.
    pub(crate) fn abandoned(&self) -> bool {
        matches!(&self.st, State::Mutex { owner: Some(_), .. }) && !self.owner_alive
    }

    /// Whether a wait by `who` on this object would be satisfied now.
    pub(crate) fn available(&self, who: &Who) -> bool {
        match &self.st {
            State::Event { signaled, .. } => *signaled,
            State::Mutex { owner, .. } => match owner {
                None => true,
                Some(o) => *o == who.owner || !self.owner_alive,
            },
            State::Semaphore { count, .. } => *count > 0,
        }
    }

    /// Takes the object for `who` (it must be available); returns whether it was an
    /// abandoned mutex, which the taker is told once.
    pub(crate) fn take(&mut self, who: &Who, unit_id: impl FnOnce() -> String) -> Result<bool> {
        let abandoned = self.abandoned();
        match &mut self.st {
            State::Event { manual, signaled } => {
                if !*manual {
                    *signaled = false;
                }
                Ok(false)
            }
            State::Mutex {
                owner,
                lease,
                recursion,
            } => {
                if owner.as_deref() == Some(who.owner.as_str()) && !abandoned {
                    if *recursion >= MAX_RECURSION {
                        return Err(Error::invalid(format!(
                            "the mutex is already held {recursion} times by this thread; release it before acquiring again"
                        )));
                    }
                    *recursion += 1;
                    return Ok(false);
                }
                *owner = Some(who.owner.clone());
                *lease = who.lease;
                *recursion = 1;
                self.owner_alive = true;
                self.owner_key = Some(Some(who.lease));
                Ok(abandoned)
            }
            State::Semaphore {
                count,
                leased,
                held,
                ..
            } => {
                *count -= 1;
                if *leased {
                    let id = unit_id();
                    held.push(id.clone());
                    self.live_units.push(id.clone());
                    self.new_units.push((id, who.lease));
                }
                Ok(false)
            }
        }
    }

    /// Mutex release by `who`: Ok(true) when the mutex became free.
    pub(crate) fn release_mutex(&mut self, who: &Who) -> Result<bool> {
        let alive = self.owner_alive;
        let State::Mutex {
            owner,
            recursion,
            lease,
        } = &mut self.st
        else {
            return Err(wrong(&self.name, "release-mutex on a non-mutex"));
        };
        if owner.as_deref() != Some(who.owner.as_str()) || !alive {
            return Err(Error::NotOwner);
        }
        *recursion -= 1;
        if *recursion > 0 {
            return Ok(false);
        }
        *owner = None;
        *lease = 0;
        self.owner_key = Some(None);
        Ok(true)
    }

    /// Semaphore release of `n` units; gives back the previous count. In leased mode
    /// the units given back must be held by `session` (lease hex prefix of unit ids).
    pub(crate) fn release_semaphore(&mut self, n: u32, session: &str) -> Result<u32> {
        let State::Semaphore {
            max,
            count,
            leased,
            held,
        } = &mut self.st
        else {
            return Err(wrong(&self.name, "release on a non-semaphore"));
        };
        if n == 0 {
            return Err(Error::invalid(
                "a semaphore release count must be at least 1",
            ));
        }
        let prev = *count;
        if u64::from(*count) + u64::from(n) > u64::from(*max) {
            return Err(Error::TooManyPosts {
                count: n,
                max: *max,
                current: *count,
            });
        }
        if *leased {
            let mine: Vec<String> = held
                .iter()
                .filter(|id| id.starts_with(&format!("{session}.")))
                .take(n as usize)
                .cloned()
                .collect();
            if mine.len() < n as usize {
                return Err(Error::invalid(format!(
                    "this session holds {} unit(s) of the leased semaphore, fewer than the {n} released; in leased mode only a holder gives units back",
                    mine.len()
                )));
            }
            held.retain(|id| !mine.contains(id));
            self.live_units.retain(|id| !mine.contains(id));
            self.dead_units.extend(mine);
        }
        *count += n;
        Ok(prev)
    }
}

pub(crate) fn wrong(name: &str, what: &str) -> Error {
    Error::WrongType {
        what: format!("{what} (`Cluster\\{name}`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(o: &str) -> Who {
        Who {
            owner: o.into(),
            lease: 7,
        }
    }

    #[test]
    fn state_round_trips_through_json() {
        for st in [
            State::Event {
                manual: true,
                signaled: false,
            },
            State::Mutex {
                owner: Some("a.1".into()),
                lease: 42,
                recursion: 3,
            },
            State::Semaphore {
                max: 4,
                count: 2,
                leased: true,
                held: vec!["a.9".into()],
            },
        ] {
            assert_eq!(State::from_json(&st.to_json()).unwrap(), st);
        }
    }

    #[test]
    fn mutex_is_recursive_and_abandonment_is_reported_once() {
        let st = State::Mutex {
            owner: Some("dead.1".into()),
            lease: 3,
            recursion: 2,
        };
        let mut o = Obj::new("m".into(), 1, st, false, vec![]);
        assert!(o.available(&who("a.1")));
        assert!(o.take(&who("a.1"), || unreachable!()).unwrap(), "abandoned");
        assert!(
            !o.take(&who("a.1"), || unreachable!()).unwrap(),
            "recursion is not abandoned"
        );
        assert!(!o.available(&who("b.1")));
        assert_eq!(o.release_mutex(&who("b.1")).unwrap_err(), Error::NotOwner);
        assert!(!o.release_mutex(&who("a.1")).unwrap());
        assert!(o.release_mutex(&who("a.1")).unwrap());
        assert_eq!(o.owner_key, Some(None));
    }

    #[test]
    fn leased_units_of_dead_holders_come_back_and_win32_units_do_not() {
        let leased = State::Semaphore {
            max: 3,
            count: 0,
            leased: true,
            held: vec!["a.1".into(), "b.1".into(), "b.2".into()],
        };
        let o = Obj::new("s".into(), 1, leased, false, vec!["b.1".into()]);
        assert!(matches!(o.st, State::Semaphore { count: 2, .. }));
        let win32 = State::Semaphore {
            max: 3,
            count: 0,
            leased: false,
            held: vec![],
        };
        let o = Obj::new("s".into(), 1, win32, false, vec![]);
        assert!(matches!(o.st, State::Semaphore { count: 0, .. }));
    }

    #[test]
    fn semaphore_release_past_max_changes_nothing() {
        let st = State::Semaphore {
            max: 2,
            count: 1,
            leased: false,
            held: vec![],
        };
        let mut o = Obj::new("s".into(), 1, st.clone(), false, vec![]);
        assert_eq!(
            o.release_semaphore(2, "a").unwrap_err().code(),
            "too-many-posts"
        );
        assert_eq!(o.st, st);
        assert_eq!(o.release_semaphore(1, "a").unwrap(), 1);
    }
}
