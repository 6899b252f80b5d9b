//! A fenced resource kept in etcd: the pattern every resource protected by a cluster
//! mutex must follow. It remembers the highest fencing token it has accepted and
//! refuses writes that carry a lower one, so a holder that was paused or cut off past
//! its lease (and has been replaced) cannot write after its successor. Owns only that
//! check; a resource outside etcd (a database row, a file server) does the same with
//! its own compare-and-set.

use std::time::Instant;

use serde_json::{Value, json};

use crate::client;
use crate::error::{Error, Result};
use crate::keys;
use crate::session::Cluster;

/// A value in etcd that only accepts writes with a current fencing token.
#[derive(Clone, Debug)]
pub struct FencedKey {
    c: Cluster,
    key: String,
}

/// A write refused because a newer holder has written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The token the write carried.
    pub token: u64,
    /// The highest token the resource has accepted.
    pub highest: u64,
}

impl Cluster {
    /// The fenced resource `name` (created on its first write; persistent until
    /// [`FencedKey::remove`]).
    pub fn fenced(&self, name: &str) -> Result<FencedKey> {
        if name.is_empty() || name.contains('/') {
            return Err(Error::invalid(format!(
                "fenced resource name `{name}` must be non-empty without `/`"
            )));
        }
        Ok(FencedKey {
            c: self.clone(),
            key: format!("{}f/{name}", keys::ROOT),
        })
    }
}

impl FencedKey {
    /// Writes `data` with `token`: accepted (giving back the write's revision) when the
    /// token is at least the highest accepted so far, refused otherwise.
    pub fn write(&self, token: u64, data: &str) -> Result<std::result::Result<i64, Refused>> {
        let s = &self.c.s;
        let until = Instant::now() + s.ttl;
        loop {
            let cur = s.etcd.get(&self.key, until)?;
            let (highest, rev) = match &cur {
                Some(kv) => (kv.json()?["token"].as_u64().unwrap_or(0), kv.modr),
                None => (0, 0),
            };
            if token < highest {
                return Ok(Err(Refused { token, highest }));
            }
            let v = json!({ "token": token, "data": data });
            let (ok, r) = s.etcd.txn(
                vec![client::cmp_mod(&self.key, rev)],
                vec![client::put(&self.key, &v, 0)],
                Vec::new(),
                until,
                &mut false,
            )?;
            if ok {
                return Ok(Ok(client::header_rev(&r)));
            }
        }
    }

    /// The last accepted (token, data).
    pub fn read(&self) -> Result<Option<(u64, String)>> {
        let s = &self.c.s;
        Ok(match s.etcd.get(&self.key, Instant::now() + s.ttl)? {
            Some(kv) => {
                let v = kv.json()?;
                Some((
                    v["token"].as_u64().unwrap_or(0),
                    v["data"].as_str().map(str::to_string).unwrap_or_default(),
                ))
            }
            None => None,
        })
    }

    /// Deletes the resource.
    pub fn remove(&self) -> Result<()> {
        let s = &self.c.s;
        let body: Value = json!({ "key": crate::b64::encode(self.key.as_bytes()) });
        s.etcd
            .call("/v3/kv/deleterange", &body, Instant::now() + s.ttl)?;
        Ok(())
    }
}
