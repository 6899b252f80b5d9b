//! Baseline for the benchmark (hidden, not API): etcd's own lock recipe, as Go's
//! `concurrency.Mutex` does it, over this crate's transport and a `Cluster`'s lease.
//! Lock: put `prefix/<lease hex>` on the lease if absent and read the oldest key under
//! the prefix, in one transaction; the key with the lowest create revision holds the
//! lock; otherwise watch the next-older key until it is deleted, and look again.
//! Unlock: delete the key. Owns only that recipe; must not touch procsync's keys.

use std::time::Instant;

use serde_json::{Value, json};

use crate::client::{self, Kv};
use crate::error::{Error, Result};
use crate::session::Cluster;

/// One client's handle on a recipe lock (one per `Cluster`: the key is the lease).
pub struct LeaseLock {
    c: Cluster,
    prefix: String,
    key: String,
}

fn first_range(r: &Value, i: usize) -> Result<Option<Kv>> {
    Ok(client::kvs(&r["responses"][i]["response_range"])?
        .into_iter()
        .next())
}

impl LeaseLock {
    /// The lock `name` (keys under `recipe/<name>/`) as seen by `c`'s session.
    pub fn new(c: &Cluster, name: &str) -> LeaseLock {
        let prefix = format!("recipe/{name}/");
        LeaseLock {
            key: format!("{prefix}{:x}", c.s.lease),
            c: c.clone(),
            prefix,
        }
    }

    fn oldest(&self) -> Value {
        let mut r = client::range_prefix(&self.prefix);
        r["limit"] = json!("1");
        json!({ "request_range": r })
    }

    /// Blocks until this client holds the lock; gives back its key's create revision
    /// (the recipe's fencing token).
    pub fn lock(&self) -> Result<i64> {
        let s = &self.c.s;
        let until = Instant::now() + s.ttl;
        let (ok, r) = s.etcd.txn(
            vec![client::cmp_absent(&self.key)],
            vec![client::put(&self.key, &json!(""), s.lease), self.oldest()],
            vec![
                json!({ "request_range": client::range_key(&self.key) }),
                self.oldest(),
            ],
            until,
            &mut false,
        )?;
        let mine = if ok {
            client::header_rev(&r)
        } else {
            first_range(&r, 0)?
                .ok_or_else(|| Error::protocol("recipe key vanished"))?
                .create
        };
        let owner = first_range(&r, 1)?;
        if owner.is_some_and(|o| o.create == mine) {
            return Ok(mine);
        }
        // Wait for every older key to go, newest first (as `waitDeletes` does).
        loop {
            let mut q = client::range_prefix(&self.prefix);
            q["sort_order"] = json!("DESCEND");
            q["max_create_revision"] = json!((mine - 1).to_string());
            q["limit"] = json!("1");
            let resp = s.etcd.call("/v3/kv/range", &q, Instant::now() + s.ttl)?;
            let Some(older) = client::kvs(&resp)?.into_iter().next() else {
                return Ok(mine);
            };
            self.wait_delete(&older.key, client::header_rev(&resp) + 1)?;
        }
    }

    fn wait_delete(&self, key: &str, from: i64) -> Result<()> {
        let s = &self.c.s;
        let mut st = s
            .etcd
            .watch_key(key, from)
            .map_err(|e| Error::Unavailable {
                what: format!("recipe watch: {e}"),
            })?;
        loop {
            s.check_alive()?;
            let Some(msg) = st
                .next(std::time::Duration::from_millis(500))
                .map_err(|e| Error::Unavailable {
                    what: format!("recipe watch: {e}"),
                })?
            else {
                continue;
            };
            let v: Value = serde_json::from_slice(&msg)
                .map_err(|_| Error::protocol("recipe watch message is not JSON"))?;
            let r = v.get("result").unwrap_or(&v);
            let events = r.get("events").and_then(Value::as_array);
            if events.is_some_and(|e| e.iter().any(|e| e["type"] == "DELETE")) {
                return Ok(());
            }
        }
    }

    /// Releases the lock (deletes this client's key).
    pub fn unlock(&self) -> Result<()> {
        let s = &self.c.s;
        let body = json!({ "key": crate::b64::encode(self.key.as_bytes()) });
        s.etcd
            .call("/v3/kv/deleterange", &body, Instant::now() + s.ttl)?;
        Ok(())
    }

    /// Clients holding or waiting for the lock (keys under the prefix).
    pub fn contenders(&self) -> Result<usize> {
        let s = &self.c.s;
        let r = s.etcd.call(
            "/v3/kv/range",
            &client::count_prefix(&self.prefix),
            Instant::now() + s.ttl,
        )?;
        Ok(client::int(&r["count"]) as usize)
    }
}
