//! etcd v3 over its JSON gateway: endpoints, retry across members, and the request and
//! answer shapes (ranges, transactions, leases, watches). Owns transport and retry
//! policy; knows nothing of objects or semantics.
//!
//! Every call has a deadline. A call that fails for a reason that may pass (connection
//! refused or cut, leader change, no leader, request timed out) is retried on the next
//! endpoint until that deadline; then it fails with [`Error::Unavailable`]. A transaction
//! whose answer was lost may have been applied: callers learn so through
//! [`Etcd::txn`]'s `ambiguous` flag and resolve it with their marker key (see `tx.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::b64;
use crate::error::{Error, Result};
use crate::http;

/// One key as etcd returns it.
#[derive(Clone, Debug)]
pub(crate) struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create: i64,
    pub modr: i64,
}

impl Kv {
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.value)
            .map_err(|e| Error::protocol(format!("value of `{}` is not JSON: {e}", self.key)))
    }
}

/// The endpoints of one cluster.
pub(crate) struct Etcd {
    endpoints: Vec<String>,
    cur: AtomicUsize,
    /// Longest wait for one HTTP exchange.
    pub rpc_timeout: Duration,
}

enum Fail {
    /// May pass: try the next endpoint.
    Retry(String),
    /// Will not pass.
    Fatal(Error),
}

/// Parses `http://host:port[,http://host:port…]`.
pub(crate) fn parse_endpoints(urls: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for u in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let Some(rest) = u.strip_prefix("http://") else {
            return Err(Error::invalid(format!(
                "endpoint `{u}` must start with http:// (TLS is not supported by this backend); give e.g. http://127.0.0.1:2379"
            )));
        };
        let hostport = rest.trim_end_matches('/');
        if hostport.is_empty() || hostport.contains('/') || !hostport.contains(':') {
            return Err(Error::invalid(format!(
                "endpoint `{u}` must be http://HOST:PORT with no path, e.g. http://127.0.0.1:2379"
            )));
        }
        out.push(hostport.to_string());
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "no etcd endpoint given; pass a comma-separated list such as http://127.0.0.1:2379",
        ));
    }
    Ok(out)
}

/// The smallest key after every key that starts with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut b = prefix.as_bytes().to_vec();
    while let Some(last) = b.pop() {
        if last < 0xff {
            b.push(last + 1);
            return b;
        }
    }
    vec![0]
}

/// A JSON int64 (the gateway writes them as strings).
pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// Range request for one key.
pub(crate) fn range_key(key: &str) -> Value {
    json!({ "key": b64::encode(key.as_bytes()) })
}

/// Range request for every key under `prefix`, oldest creation first.
pub(crate) fn range_prefix(prefix: &str) -> Value {
    json!({
        "key": b64::encode(prefix.as_bytes()),
        "range_end": b64::encode(&prefix_end(prefix)),
        "sort_order": "ASCEND",
        "sort_target": "CREATE",
    })
}

/// Count-only range over `prefix`.
pub(crate) fn count_prefix(prefix: &str) -> Value {
    json!({
        "key": b64::encode(prefix.as_bytes()),
        "range_end": b64::encode(&prefix_end(prefix)),
        "count_only": true,
    })
}

/// Put operation for a transaction.
pub(crate) fn put(key: &str, value: &Value, lease: i64) -> Value {
    let mut p = json!({
        "key": b64::encode(key.as_bytes()),
        "value": b64::encode(value.to_string().as_bytes()),
    });
    if lease != 0 {
        p["lease"] = json!(lease.to_string());
    }
    json!({ "request_put": p })
}

/// Delete operation for a transaction (`prefix`: every key under it).
pub(crate) fn delete(key: &str, prefix: bool) -> Value {
    let mut d = json!({ "key": b64::encode(key.as_bytes()) });
    if prefix {
        d["range_end"] = json!(b64::encode(&prefix_end(key)));
    }
    json!({ "request_delete_range": d })
}

/// Compare: `key`'s mod revision equals `rev` (0: the key does not exist).
pub(crate) fn cmp_mod(key: &str, rev: i64) -> Value {
    if rev == 0 {
        return cmp_absent(key);
    }
    json!({ "key": b64::encode(key.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string() })
}

/// Compare: `key` does not exist.
pub(crate) fn cmp_absent(key: &str) -> Value {
    json!({ "key": b64::encode(key.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": "0" })
}

/// Compare: no key exists under `prefix` (etcd compares every key of a range; an
/// empty range satisfies a create-revision-is-0 compare).
pub(crate) fn cmp_none_under(prefix: &str) -> Value {
    json!({
        "key": b64::encode(prefix.as_bytes()),
        "range_end": b64::encode(&prefix_end(prefix)),
        "target": "CREATE", "result": "EQUAL", "create_revision": "0",
    })
}

/// The keys of a range answer.
pub(crate) fn kvs(resp: &Value) -> Result<Vec<Kv>> {
    let Some(arr) = resp.get("kvs").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    arr.iter().map(kv).collect()
}

pub(crate) fn kv(v: &Value) -> Result<Kv> {
    let dec = |f: &str| -> Result<Vec<u8>> {
        match v.get(f).and_then(Value::as_str) {
            None => Ok(Vec::new()),
            Some(s) => {
                b64::decode(s).ok_or_else(|| Error::protocol(format!("bad base64 in `{f}`")))
            }
        }
    };
    Ok(Kv {
        key: String::from_utf8(dec("key")?).map_err(|_| Error::protocol("key is not UTF-8"))?,
        value: dec("value")?,
        create: int(v.get("create_revision").unwrap_or(&Value::Null)),
        modr: int(v.get("mod_revision").unwrap_or(&Value::Null)),
    })
}

/// Revision in an answer's header.
pub(crate) fn header_rev(resp: &Value) -> i64 {
    int(&resp["header"]["revision"])
}

impl Etcd {
    pub(crate) fn new(urls: &str, rpc_timeout: Duration) -> Result<Etcd> {
        Ok(Etcd {
            endpoints: parse_endpoints(urls)?,
            cur: AtomicUsize::new(0),
            rpc_timeout,
        })
    }

    /// The endpoint in use (the one that answered last).
    pub(crate) fn endpoint(&self) -> String {
        let i = self.cur.load(Ordering::Relaxed) % self.endpoints.len();
        self.endpoints[i].clone()
    }

    fn rotate(&self, from: &str) {
        let i = self.cur.load(Ordering::Relaxed) % self.endpoints.len();
        if self.endpoints[i] == from {
            self.cur.store(i + 1, Ordering::Relaxed);
        }
    }

    fn once(&self, ep: &str, path: &str, body: &[u8], until: Instant) -> Result<Value, Fail> {
        let left = until.saturating_duration_since(Instant::now());
        let t = self.rpc_timeout.min(left).max(Duration::from_millis(50));
        let (status, out) =
            http::post(ep, path, body, t).map_err(|e| Fail::Retry(format!("{ep}: {e}")))?;
        let v: Value = serde_json::from_slice(&out).map_err(|_| {
            Fail::Retry(format!("{ep}: HTTP {status} with a body that is not JSON"))
        })?;
        if status == 200 && v.get("error").is_none() {
            return Ok(v);
        }
        let msg = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let code = v.get("code").map(int).unwrap_or(0);
        if msg.contains("lease not found") {
            return Err(Fail::Fatal(Error::SessionLost));
        }
        // gRPC codes: 1 cancelled, 4 deadline exceeded, 8 exhausted, 14 unavailable.
        let transient = matches!(code, 1 | 4 | 8 | 14)
            || status >= 500
            || [
                "leader",
                "timed out",
                "timeout",
                "too many requests",
                "not capable",
            ]
            .iter()
            .any(|w| msg.contains(w));
        if transient {
            Err(Fail::Retry(format!("{ep}: {msg}")))
        } else {
            Err(Fail::Fatal(Error::protocol(format!(
                "{path}: {msg} (code {code}, HTTP {status})"
            ))))
        }
    }

    /// Calls `path` with `body`, retrying transient failures across endpoints until
    /// `until`. `ambiguous` is set when an attempt failed after it may have been sent.
    pub(crate) fn call_tracked(
        &self,
        path: &str,
        body: &Value,
        until: Instant,
        ambiguous: &mut bool,
    ) -> Result<Value> {
        let bytes = body.to_string().into_bytes();
        let mut last;
        let mut pause = Duration::from_millis(20);
        loop {
            let ep = self.endpoint();
            match self.once(&ep, path, &bytes, until) {
                Ok(v) => return Ok(v),
                Err(Fail::Fatal(e)) => return Err(e),
                Err(Fail::Retry(m)) => {
                    *ambiguous = true;
                    last = m;
                    self.rotate(&ep);
                }
            }
            if Instant::now() + pause >= until {
                return Err(Error::Unavailable {
                    what: format!("{path}: {last}"),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// [`Etcd::call_tracked`] for calls that are safe to repeat (reads, keep-alives).
    pub(crate) fn call(&self, path: &str, body: &Value, until: Instant) -> Result<Value> {
        self.call_tracked(path, body, until, &mut false)
    }

    /// Reads one key.
    pub(crate) fn get(&self, key: &str, until: Instant) -> Result<Option<Kv>> {
        let r = self.call("/v3/kv/range", &range_key(key), until)?;
        Ok(kvs(&r)?.into_iter().next())
    }

    /// Runs a transaction: (succeeded, answer). `ambiguous` as in [`Etcd::call_tracked`].
    pub(crate) fn txn(
        &self,
        compare: Vec<Value>,
        success: Vec<Value>,
        failure: Vec<Value>,
        until: Instant,
        ambiguous: &mut bool,
    ) -> Result<(bool, Value)> {
        let body = json!({ "compare": compare, "success": success, "failure": failure });
        let r = self.call_tracked("/v3/kv/txn", &body, until, ambiguous)?;
        Ok((
            r.get("succeeded").and_then(Value::as_bool).unwrap_or(false),
            r,
        ))
    }

    /// Several reads at one revision (a transaction with no compares).
    pub(crate) fn read_many(
        &self,
        ranges: Vec<Value>,
        until: Instant,
    ) -> Result<(i64, Vec<Value>)> {
        let ops = ranges
            .into_iter()
            .map(|r| json!({ "request_range": r }))
            .collect();
        let (_, r) = self.txn(Vec::new(), ops, Vec::new(), until, &mut false)?;
        let resps = r
            .get("responses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|x| x.get("response_range").cloned().unwrap_or(Value::Null))
            .collect();
        Ok((header_rev(&r), resps))
    }

    /// Opens a watch on every key under `prefix` from revision `from`.
    pub(crate) fn watch(&self, prefix: &str, from: i64) -> std::io::Result<http::Stream> {
        self.watch_body(json!({ "create_request": {
            "key": b64::encode(prefix.as_bytes()),
            "range_end": b64::encode(&prefix_end(prefix)),
            "start_revision": from.to_string(),
        }}))
    }

    /// Opens a watch on the one key `key` from revision `from`.
    pub(crate) fn watch_key(&self, key: &str, from: i64) -> std::io::Result<http::Stream> {
        self.watch_body(json!({ "create_request": {
            "key": b64::encode(key.as_bytes()),
            "start_revision": from.to_string(),
        }}))
    }

    fn watch_body(&self, body: Value) -> std::io::Result<http::Stream> {
        let ep = self.endpoint();
        let s = http::Stream::open(
            &ep,
            "/v3/watch",
            body.to_string().as_bytes(),
            self.rpc_timeout,
        );
        if s.is_err() {
            self.rotate(&ep);
        }
        s
    }
}
