//! `procsync ls`, `inspect` and `gc`: what lives under `PROCSYNC_ROOT`, one object in
//! detail, and the removal of orphans. Names come from [`super::scan`]; each object's
//! type, state and waiter count come from the library through a handle opened with
//! `synchronize` access only; holders come from `/proc/*/fd`; owner thread, timer due
//! time and layout version from a read-only look at the file header ([`super::peek`]).
//!
//! With an etcd endpoint (`--etcd`, `PROCSYNC_ETCD`), `ls` also lists the cluster's
//! objects ([`super::cluster::list`]).
//!
//! The JSON shapes printed here are a public contract, documented in docs/CLI.md:
//! add fields, never rename or remove them.

use clap::{Args, ValueEnum};
use procsync::{Access, ObjectKind, ObjectState, Owner};

use super::cluster::{self, Endpoint};
use super::exit;
use super::json::Json;
use super::peek;
use super::scan::{self, Entry, Namespace};
use super::shell::{Failure, Outcome, note, open_any};

/// The version of the JSON shapes below (bumped only by incompatible changes).
const JSON_VERSION: i64 = 1;

/// `procsync ls`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  procsync ls                       # every live object this user can see
  procsync ls --namespace global --json | jq '.objects[] | select(.type==\"mutex\")'
  procsync ls --etcd http://10.0.0.1:2379 --namespace cluster

Holders are found through /proc/*/fd: processes of other users are not seen unless run
as root. With --etcd (or PROCSYNC_ETCD) the etcd cluster's `Cluster\\x` objects are
listed too (HOLDERS: open handles in every client). The JSON shape is documented in
docs/CLI.md.")]
pub struct LsArgs {
    /// Only this namespace (default: local and global, and cluster when an etcd
    /// endpoint is given).
    #[arg(long, value_enum, value_name = "NS")]
    namespace: Option<LsNamespace>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The namespaces `ls --namespace` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsNamespace {
    /// `Local\x` and bare names of the calling user.
    Local,
    /// `Global\x` names of every user.
    Global,
    /// `Cluster\x` names in the etcd cluster (needs --etcd or PROCSYNC_ETCD).
    Cluster,
}

/// `procsync inspect`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  procsync inspect build-slots
  procsync inspect 'Global\\deploy' --json")]
pub struct InspectArgs {
    /// The object: `Local\x`, `Global\x` or a bare name.
    #[arg(value_name = "NAME")]
    name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `procsync gc`.
#[derive(Debug, Args)]
#[command(after_help = "\
Removes the files of objects that nobody holds any more (every holder was killed), and
wait tables nobody uses. procsync does this by itself, a few files at a time (an open
replaces the orphan it meets, and each process's first use of a namespace checks a
sample of its names); gc checks every file, for operators who want /dev/shm clean now.
Live objects are never touched.

Examples:
  procsync gc --dry-run     # list what would go
  procsync gc")]
pub struct GcArgs {
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
}

/// One object as `ls` and `inspect` see it.
struct Info {
    entry: Entry,
    kind: Option<ObjectKind>,
    state: Option<ObjectState>,
    waiters: Option<usize>,
    holders: Vec<u32>,
    header: Option<peek::Header>,
    error: Option<String>,
}

/// Describes `entry`; `None` when the object went away meanwhile (or was an orphan).
fn describe(entry: Entry) -> Option<Info> {
    let mut info = Info {
        kind: None,
        state: None,
        waiters: None,
        holders: Vec::new(),
        header: None,
        error: None,
        entry,
    };
    match info.entry.name.as_deref() {
        None => {
            // Not opened (its name is unknown), so no open replaces it if it is an
            // orphan: ask the file itself, as `gc` does, and remove it as an open would
            // (unlinked before the probe's lock goes, so that no opener waiting for that
            // lock can take the orphan for a live object).
            if scan::probe_orphan(&info.entry.path, true) == Some(true) {
                return None;
            }
            info.error = Some("the name is stored hashed (too long to decode)".to_owned());
        }
        Some(name) => match open_any(name, Access::SYNCHRONIZE) {
            Ok(h) => {
                info.kind = Some(h.kind());
                info.state = h.query().ok();
                info.waiters = h.waiters().ok();
            }
            Err(e) if e.code() == "not-found" => return None,
            Err(e) => info.error = Some(format!("{e} [{}]", e.code())),
        },
    }
    info.holders = scan::holders(&info.entry.path);
    info.header = peek::header(&info.entry.path);
    Some(info)
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Event => "event",
        ObjectKind::Mutex => "mutex",
        ObjectKind::Semaphore => "semaphore",
        ObjectKind::Timer => "timer",
    }
}

impl Info {
    fn owner(&self) -> (Option<u32>, Option<u32>) {
        let tid = self
            .header
            .as_ref()
            .map(|h| h.owner_tid)
            .filter(|&t| t != 0);
        (tid.and_then(peek::pid_of_thread), tid)
    }

    fn state_json(&self) -> Json {
        let Some(state) = self.state else {
            return Json::Null;
        };
        let h = self.header.clone().unwrap_or_default();
        Json::Object(match state {
            ObjectState::Event { manual, signaled } => {
                vec![("manual", manual.into()), ("signaled", signaled.into())]
            }
            ObjectState::Mutex {
                owner,
                recursion,
                abandoned,
            } => {
                let (pid, tid) = self.owner();
                let owned = owner != Owner::None;
                vec![
                    ("owned", owned.into()),
                    ("owner_pid", pid.filter(|_| owned).into()),
                    ("owner_tid", tid.filter(|_| owned).into()),
                    ("recursion", recursion.into()),
                    ("abandoned", abandoned.into()),
                ]
            }
            ObjectState::Semaphore { count, max } => {
                vec![("count", count.into()), ("max", max.into())]
            }
            ObjectState::Timer {
                manual,
                signaled,
                armed,
            } => vec![
                ("manual", manual.into()),
                ("signaled", signaled.into()),
                ("armed", armed.into()),
                (
                    "due_unix_ms",
                    h.due_unix_ms
                        .filter(|_| armed)
                        .map_or(Json::Null, Json::Int),
                ),
                (
                    "period_ms",
                    Json::Int(i64::try_from(h.period_ms).unwrap_or(i64::MAX)),
                ),
            ],
        })
    }

    fn json(&self) -> Json {
        let header = self.header.as_ref();
        Json::Object(vec![
            ("name", self.entry.name.clone().into()),
            ("namespace", self.entry.ns.word().into()),
            ("type", self.kind.map(kind_word).into()),
            ("state", self.state_json()),
            (
                "holders",
                Json::Array(self.holders.iter().map(|&p| p.into()).collect()),
            ),
            (
                "waiters",
                self.waiters
                    .map_or(Json::Null, |n| Json::Int(i64::try_from(n).unwrap_or(0))),
            ),
            ("file", self.entry.path.display().to_string().into()),
            ("layout_version", header.map(|h| h.version).into()),
            ("creator_uid", header.map(|h| h.creator_uid).into()),
            ("error", self.error.clone().into()),
        ])
    }

    fn state_text(&self) -> String {
        let Some(state) = self.state else {
            return self.error.clone().unwrap_or_else(|| "?".to_owned());
        };
        match state {
            ObjectState::Event { manual, signaled } => format!(
                "{} {}",
                if manual { "manual" } else { "auto" },
                if signaled { "set" } else { "unset" }
            ),
            ObjectState::Mutex {
                owner, abandoned, ..
            } => {
                let who = match (owner, self.owner()) {
                    (Owner::None, _) => "free".to_owned(),
                    (_, (Some(pid), Some(tid))) => format!("owner={pid}/{tid}"),
                    _ => "owned".to_owned(),
                };
                if abandoned {
                    format!("{who} abandoned")
                } else {
                    who
                }
            }
            ObjectState::Semaphore { count, max } => format!("count={count}/{max}"),
            ObjectState::Timer {
                manual,
                signaled,
                armed,
            } => {
                let mut s = format!(
                    "{} {}",
                    if manual { "manual" } else { "sync" },
                    if signaled { "signaled" } else { "unsignaled" }
                );
                if let Some(due) = self.header.as_ref().and_then(|h| h.due_unix_ms)
                    && armed
                {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                    s.push_str(&format!(" armed, due in {}ms", (due - now).max(0)));
                }
                s
            }
        }
    }

    fn name_text(&self) -> String {
        self.entry.name.clone().unwrap_or_else(|| {
            self.entry
                .path
                .file_name()
                .map(|f| format!("<{}>", f.to_string_lossy()))
                .unwrap_or_default()
        })
    }

    fn holders_text(&self) -> String {
        if self.holders.is_empty() {
            return "-".to_owned();
        }
        let pids: Vec<String> = self.holders.iter().map(u32::to_string).collect();
        pids.join(",")
    }
}

/// Runs `procsync ls`.
pub fn ls(args: &LsArgs, ep: &Endpoint) -> Outcome {
    let root = scan::root();
    let namespaces = match args.namespace {
        Some(LsNamespace::Local) => vec![Namespace::Local],
        Some(LsNamespace::Global) => vec![Namespace::Global],
        Some(LsNamespace::Cluster) => vec![],
        None => vec![Namespace::Local, Namespace::Global],
    };
    // Asked for by name, the cluster's failure is the command's; listed by default
    // (an endpoint in the environment), it does not hide the local objects: they are
    // printed, the failure is reported after them, and the exit status is its code.
    let (listed, failed) = match args.namespace {
        Some(LsNamespace::Cluster) => (Some(cluster::list(ep)?), None),
        None if ep.get().is_some() => match cluster::list(ep) {
            Ok(l) => (Some(l), None),
            Err(f) => (None, Some(f)),
        },
        _ => (None, None),
    };
    let infos: Vec<Info> = namespaces
        .into_iter()
        .flat_map(|ns| scan::entries(&root, ns))
        .filter_map(describe)
        .collect();
    if args.json {
        let mut fields = vec![
            ("version", Json::Int(JSON_VERSION)),
            ("root", root.display().to_string().into()),
            (
                "objects",
                Json::Array(infos.iter().map(Info::json).collect()),
            ),
        ];
        if let Some(listed) = &listed {
            fields.push((
                "cluster",
                Json::Object(vec![
                    ("endpoints", ep.get().unwrap_or_default().into()),
                    (
                        "objects",
                        Json::Array(listed.iter().map(cluster::Listed::json).collect()),
                    ),
                ]),
            ));
        }
        let doc = Json::Object(fields);
        println!("{}", doc.render());
        return failed.map_or(Ok(exit::OK), Err);
    }
    let rows: Vec<[String; 5]> = infos
        .iter()
        .map(|i| {
            [
                i.kind.map_or("?", kind_word).to_owned(),
                i.name_text(),
                i.state_text(),
                i.holders_text(),
                i.waiters.map_or("-".to_owned(), |n| n.to_string()),
            ]
        })
        .chain(listed.iter().flatten().map(cluster::Listed::row))
        .collect();
    let header = ["TYPE", "NAME", "STATE", "HOLDERS", "WAITERS"].map(str::to_owned);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    failed.map_or(Ok(exit::OK), Err)
}

/// Runs `procsync inspect NAME`.
pub fn inspect(args: &InspectArgs) -> Outcome {
    super::cluster::local_only(std::slice::from_ref(&args.name), "inspect")?;
    // Open first: a bad name or a missing object is the library's error, plainly.
    let handle = open_any(&args.name, Access::SYNCHRONIZE)?;
    let root = scan::root();
    let Some((ns, file)) = scan::file_of(&args.name) else {
        return Err(Failure::new(
            exit::ERROR,
            format!(
                "{}: the name is too long for procsync inspect to find its file",
                args.name
            ),
        ));
    };
    let entry = Entry {
        ns,
        name: Some(args.name.clone()),
        path: scan::dir(&root, ns).join(file),
    };
    let info = describe(entry)
        .ok_or_else(|| Failure::new(exit::ERROR, format!("{} went away meanwhile", args.name)))?;
    drop(handle);
    if args.json {
        println!("{}", info.json().render());
        return Ok(exit::OK);
    }
    let kind = info.kind.map_or("?", kind_word);
    println!("name:       {}", info.name_text());
    println!("namespace:  {}", info.entry.ns.word());
    println!("type:       {kind}");
    println!("state:      {}", info.state_text());
    println!("holders:    {}", info.holders_text());
    println!(
        "waiters:    {}",
        info.waiters.map_or("-".to_owned(), |n| n.to_string())
    );
    println!("file:       {}", info.entry.path.display());
    if let Some(h) = &info.header {
        println!("layout:     version {}", h.version);
        println!("creator:    uid {}", h.creator_uid);
    }
    Ok(exit::OK)
}

/// Runs `procsync gc`.
pub fn gc(args: &GcArgs, quiet: bool) -> Outcome {
    let root = scan::root();
    let mut found = 0;
    for ns in [Namespace::Local, Namespace::Global] {
        for path in scan::files(&root, ns) {
            if scan::probe_orphan(&path, !args.dry_run) == Some(true) {
                found += 1;
                let verb = if args.dry_run {
                    "would remove"
                } else {
                    "removed"
                };
                println!("{verb} {}", path.display());
            }
        }
    }
    let what = if args.dry_run {
        "would be removed"
    } else {
        "removed"
    };
    note(
        quiet,
        format!("{found} orphaned file(s) {what} under {}", root.display()),
    );
    Ok(exit::OK)
}
