//! The history checker. Every event carries an etcd revision, which orders events of
//! all clients in one line (etcd is linearizable), so the checks need no clocks.

/// One fenced mutex hold: token (acquisition revision), the revisions of its two fenced
/// writes, and of its release.
#[derive(Clone, Copy, Debug)]
pub struct Hold {
    pub pid: u32,
    pub token: u64,
    pub begin: u64,
    pub end: u64,
    pub release: u64,
}

/// Mutual exclusion of fenced holds: sorted by token, every hold acquires, writes and
/// releases before the next one acquires; tokens are unique.
pub fn check_mutual_exclusion(holds: &[Hold]) -> Result<(), String> {
    let mut h = holds.to_vec();
    h.sort_by_key(|x| x.token);
    for x in &h {
        if !(x.token < x.begin && x.begin < x.end && x.end < x.release) {
            return Err(format!("hold out of order: {x:?}"));
        }
    }
    for p in h.windows(2) {
        if p[0].token == p[1].token {
            return Err(format!(
                "two holds with token {}: {:?} {:?}",
                p[0].token, p[0], p[1]
            ));
        }
        if p[1].token < p[0].release {
            return Err(format!("overlapping holds: {:?} then {:?}", p[0], p[1]));
        }
    }
    Ok(())
}

/// Conservation of semaphore units: with acquisitions at `token` and releases at
/// `release` revisions, at no revision are more than `max` units out, and no unit is
/// released before it was taken.
pub fn check_units(units: &[(u64, u64)], max: usize) -> Result<(), String> {
    let mut ev: Vec<(u64, i64)> = Vec::new();
    for &(t, r) in units {
        if r <= t {
            return Err(format!("unit released at {r} before it was taken at {t}"));
        }
        ev.push((t, 1));
        ev.push((r, -1));
    }
    ev.sort();
    let mut out = 0i64;
    for (rev, d) in ev {
        out += d;
        if out > max as i64 {
            return Err(format!("{out} units out at revision {rev}, maximum {max}"));
        }
    }
    Ok(())
}
