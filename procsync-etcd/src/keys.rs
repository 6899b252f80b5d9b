//! Cluster names and the etcd key layout (docs/ETCD.md, "Key layout"). Owns the mapping
//! from names and ids to keys; must not read or write etcd.

use crate::error::{Error, Result};

/// The namespace prefix every cluster name carries.
pub const CLUSTER_PREFIX: &str = "Cluster\\";

/// Root of every key this crate writes.
pub(crate) const ROOT: &str = "procsync/v1/";

/// Longest name after `Cluster\`, in bytes.
pub const MAX_NAME: usize = 200;

/// Checks `Cluster\name` and gives back `name`.
pub(crate) fn parse_name(full: &str) -> Result<String> {
    let bad = |why| Error::InvalidName {
        name: full.chars().take(80).collect(),
        why,
    };
    let Some(rest) = full.strip_prefix(CLUSTER_PREFIX) else {
        return Err(bad(
            "cluster objects are named `Cluster\\NAME`; add the `Cluster\\` prefix",
        ));
    };
    if rest.is_empty() {
        return Err(bad("the part after `Cluster\\` is empty; give a name"));
    }
    if rest.len() > MAX_NAME {
        return Err(bad("longer than 200 bytes after `Cluster\\`; shorten it"));
    }
    if rest.contains(['\\', '/']) || rest.chars().any(char::is_control) {
        return Err(bad(
            "`\\`, `/` and control characters are not allowed after `Cluster\\`; use `-`, `_` or `.`",
        ));
    }
    Ok(rest.to_string())
}

/// Object key: kind, parameters and state (persistent; removed by the last close or a sweep).
pub(crate) fn object(n: &str) -> String {
    format!("{ROOT}o/{n}")
}
/// Prefix of every object key (sweeps).
pub(crate) fn objects() -> String {
    format!("{ROOT}o/")
}
/// Prefix of the handle keys of `n` (one per open handle, on the opener's lease).
pub(crate) fn handles(n: &str) -> String {
    format!("{ROOT}h/{n}/")
}
/// Mutex owner's liveness key (on the owner's lease).
pub(crate) fn owner(n: &str) -> String {
    format!("{ROOT}m/{n}")
}
/// Prefix of the leased-unit keys of semaphore `n`.
pub(crate) fn units(n: &str) -> String {
    format!("{ROOT}u/{n}/")
}
/// Prefix of the wait queue of `n`: one key per waiter, ordered by create revision.
pub(crate) fn queue(n: &str) -> String {
    format!("{ROOT}q/{n}/")
}
/// Wait record of wait `wid` (on the waiter's lease).
pub(crate) fn record(wid: &str) -> String {
    format!("{ROOT}r/{wid}")
}
/// Grant of wait `wid`, written by whoever hands an object to it.
pub(crate) fn grant(wid: &str) -> String {
    format!("{ROOT}g/{wid}")
}
/// Idempotence marker of one thread of one session.
pub(crate) fn marker(session_thread: &str) -> String {
    format!("{ROOT}x/{session_thread}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_the_prefix_and_no_separators() {
        assert_eq!(parse_name("Cluster\\builds").unwrap(), "builds");
        for bad in [
            "builds",
            "Local\\x",
            "Cluster\\",
            "Cluster\\a/b",
            "Cluster\\a\\b",
            "Cluster\\a\nb",
        ] {
            let e = parse_name(bad).unwrap_err();
            assert_eq!(e.code(), "invalid-name", "{bad}");
        }
        assert!(parse_name(&format!("Cluster\\{}", "x".repeat(201))).is_err());
    }

    #[test]
    fn per_object_prefixes_do_not_nest() {
        // `a`'s queue must not contain `ab`'s entries.
        assert!(!queue("ab").starts_with(&queue("a")));
        assert!(!handles("ab").starts_with(&handles("a")));
    }
}
