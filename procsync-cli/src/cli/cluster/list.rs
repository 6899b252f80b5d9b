//! `procsync ls` of a cluster: every `Cluster\x` object with its state, open handles
//! and queued waits, as table rows and as the `cluster` part of `ls --json`
//! (docs/CLI.md, "JSON").
//!
//! What it owns: that listing's shapes. What it must not do: open handles (the counts
//! come from `Cluster::counts`, a read).

use procsync::ObjectKind;
use procsync_etcd::ObjectInfo;

use super::Endpoint;
use crate::cli::json::Json;
use crate::cli::shell::Failure;

/// One cluster object as `ls` shows it.
pub struct Listed {
    /// `Cluster\x`.
    pub name: String,
    /// Its state.
    pub info: ObjectInfo,
    /// Open handles in every client.
    pub handles: usize,
    /// Queued waits.
    pub waiters: usize,
}

/// Every object of the cluster at `ep` (for `ls`).
pub fn list(ep: &Endpoint) -> Result<Vec<Listed>, Failure> {
    let c = ep.connect_for("`ls --namespace cluster` lists the objects kept in etcd")?;
    let mut out = Vec::new();
    for (name, info) in c.list()? {
        let (handles, waiters) = c.counts(&name)?;
        out.push(Listed {
            name,
            info,
            handles,
            waiters,
        });
    }
    Ok(out)
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Event => "event",
        ObjectKind::Mutex => "mutex",
        ObjectKind::Semaphore => "semaphore",
        ObjectKind::Timer => "timer",
    }
}

impl Listed {
    /// The `ls` table row: TYPE, NAME, STATE, HOLDERS, WAITERS.
    pub fn row(&self) -> [String; 5] {
        let i = &self.info;
        let state = match i.kind {
            ObjectKind::Event => format!(
                "{} {}",
                if i.manual { "manual" } else { "auto" },
                if i.signaled { "set" } else { "unset" }
            ),
            ObjectKind::Mutex if i.abandoned => "free abandoned".to_owned(),
            ObjectKind::Mutex => i
                .owner
                .as_ref()
                .map_or("free".to_owned(), |o| format!("owner={o}")),
            _ => format!(
                "count={}/{}{}",
                i.count,
                i.max,
                if i.leased { " leased" } else { "" }
            ),
        };
        [
            kind_word(i.kind).to_owned(),
            self.name.clone(),
            state,
            format!("{} handles", self.handles),
            self.waiters.to_string(),
        ]
    }

    /// The `ls --json` object (docs/CLI.md, "JSON").
    pub fn json(&self) -> Json {
        let i = &self.info;
        let state = match i.kind {
            ObjectKind::Event => vec![("manual", i.manual.into()), ("signaled", i.signaled.into())],
            ObjectKind::Mutex => vec![
                ("owned", i.owner.is_some().into()),
                ("owner", i.owner.clone().into()),
                ("recursion", i.recursion.into()),
                ("abandoned", i.abandoned.into()),
            ],
            _ => vec![
                ("count", i.count.into()),
                ("max", i.max.into()),
                ("leased", i.leased.into()),
            ],
        };
        let n = |v: usize| Json::Int(i64::try_from(v).unwrap_or(i64::MAX));
        Json::Object(vec![
            ("name", self.name.clone().into()),
            ("type", kind_word(i.kind).into()),
            ("state", Json::Object(state)),
            ("handles", n(self.handles)),
            ("waiters", n(self.waiters)),
        ])
    }
}
