//! The REPL commands that pass handles on: `dup`, `handle`, `dup-from`, `dup-to`,
//! `adopt`, `spawn`, and what a REPL does at startup so that they work in both
//! directions (start the duplication endpoint, drop aliases of handles another process
//! closed with close-source, adopt the handles a spawning REPL passed under their
//! aliases).
//!
//! `spawn` starts `procsync repl --input IN --output OUT --adopt VALUE=ALIAS…` (hidden
//! options): the child, not this process, opens the two paths, each on its own thread,
//! so that opening FIFOs can neither block this REPL nor deadlock on the order in which
//! the other side opens them.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Weak};
use std::thread;

use procsync::{CommandExt as _, Handle};

use super::{Answer, Failure, Repl, access_or_same, ok};
use crate::cli::command::Command;

/// Hidden options of `procsync repl`, which `spawn` gives the child it starts.
#[derive(Debug, Default, clap::Args)]
pub struct Options {
    /// Read commands from PATH (a file or FIFO) instead of standard input.
    #[arg(long, hide = true, value_name = "PATH")]
    pub input: Option<PathBuf>,
    /// Write answers to PATH (a file or FIFO) instead of standard output.
    #[arg(long, hide = true, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// At startup, give the inherited handle VALUE the alias ALIAS.
    #[arg(long = "adopt", hide = true, value_name = "VALUE=ALIAS")]
    pub adopt: Vec<String>,
}

/// Where commands come from and answers go.
pub(super) struct Io {
    pub input: Box<dyn BufRead + Send>,
    pub output: Option<Box<dyn Write + Send>>,
}

/// Opens `--input` and `--output` (at the same time: each open of a FIFO waits for the
/// other end), or falls back to standard input and output.
pub(super) fn open_io(opts: &Options) -> Result<Io, String> {
    let output = opts.output.clone().map(|path| {
        thread::spawn(move || {
            File::options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| format!("cannot open --output {}: {e}", path.display()))
        })
    });
    let input: Box<dyn BufRead + Send> = match &opts.input {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).map_err(|e| {
                format!("cannot open --input {}: {e}", path.display())
            })?))
        }
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let output = match output {
        Some(t) => {
            let file = t
                .join()
                .map_err(|_| "opening --output panicked".to_string())??;
            Some(Box::new(file) as Box<dyn Write + Send>)
        }
        None => None,
    };
    Ok(Io { input, output })
}

/// Startup: the endpoint, the close-source hook, the handles passed by `spawn`.
pub(super) fn start(repl: &Arc<Repl>, opts: &Options) {
    if let Err(e) = procsync::accept_duplicates() {
        eprintln!("procsync repl: other processes cannot duplicate handles into this one: {e}");
    }
    let weak: Weak<Repl> = Arc::downgrade(repl);
    procsync::on_remote_close(move |value| {
        if let Some(repl) = weak.upgrade() {
            repl.drop_closed(value);
        }
    });
    for entry in &opts.adopt {
        let Some((value, alias)) = entry
            .split_once('=')
            .and_then(|(v, a)| Some((v.parse::<u64>().ok()?, a)))
        else {
            eprintln!("procsync repl: ignoring --adopt `{entry}` (expected VALUE=ALIAS)");
            continue;
        };
        let adopted = procsync::adopt(value)
            .map_err(Failure::from)
            .and_then(|h| repl.insert(alias.to_owned(), h));
        if let Err(f) = adopted {
            eprintln!(
                "procsync repl: cannot adopt inherited handle {value} as `{alias}`: {}",
                f.message
            );
        }
    }
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure {
        code: "io",
        message: format!("{what}: {e}"),
    }
}

impl Repl {
    /// Drops every alias of the handle `value` that another process just closed with
    /// close-source (the handle already fails every call).
    fn drop_closed(&self, value: u64) {
        let gone: Vec<Arc<Handle>> = {
            let mut map = self.aliases();
            let names: Vec<String> = map
                .iter()
                .filter(|(_, h)| h.value() == value && h.is_closed())
                .map(|(a, _)| a.clone())
                .collect();
            names.iter().filter_map(|a| map.remove(a)).collect()
        };
        drop(gone);
    }

    /// `dup`, `handle`, `dup-from`, `dup-to`, `adopt`, `spawn`.
    pub(super) fn between_processes(&self, command: Command) -> Answer {
        match command {
            Command::Dup {
                source,
                target,
                access,
                close_source,
            } => {
                self.check_free(&target)?;
                let src = self.get(&source)?;
                // docs/REPL.md: `access=` defaults to the source's own access.
                let dup = src.duplicate(access_or_same(access));
                if close_source {
                    // HD-05: the source goes whatever happened.
                    drop(self.remove(&source));
                }
                self.insert(target, dup?)?;
                ok()
            }
            Command::HandleValue(alias) => Ok(format!("ok {}", self.get(&alias)?.value())),
            Command::DupFrom {
                pid,
                value,
                target,
                access,
                close_source,
            } => {
                self.check_free(&target)?;
                let h = procsync::duplicate_from(
                    pid,
                    value,
                    access_or_same(access),
                    false,
                    close_source,
                )?;
                self.insert(target, h)?;
                ok()
            }
            Command::DupTo {
                pid,
                alias,
                access,
                close_source,
            } => {
                let h = self.get(&alias)?;
                let r = h.duplicate_into(pid, access_or_same(access), false);
                if close_source {
                    drop(h);
                    drop(self.remove(&alias));
                }
                Ok(format!("ok {}", r?))
            }
            Command::Adopt { value, target } => {
                self.check_free(&target)?;
                self.insert(target, procsync::adopt(value)?)?;
                ok()
            }
            Command::Spawn { input, output } => self.spawn(input, output),
            _ => Err(procsync::Error::unsupported("not a handle-passing command").into()),
        }
    }

    /// `spawn in=PATH out=PATH`: a child REPL that inherits every inheritable handle
    /// under the same alias.
    fn spawn(&self, input: PathBuf, output: PathBuf) -> Answer {
        // The child opens the paths (a FIFO open would block here); a missing input is
        // still worth an answer rather than a child that dies at once.
        std::fs::metadata(&input)
            .map_err(|e| io_failure(&format!("spawn in={}", input.display()), e))?;
        let mut cmd = Process::new("/proc/self/exe");
        cmd.arg("repl")
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output);
        let mut passed: Vec<(String, u64)> = self
            .aliases()
            .iter()
            .filter(|(_, h)| h.is_inheritable() && !h.is_closed())
            .map(|(a, h)| (a.clone(), h.value()))
            .collect();
        passed.sort();
        for (alias, value) in passed {
            cmd.arg("--adopt").arg(format!("{value}={alias}"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .inherit_procsync_handles();
        let mut child = cmd
            .spawn()
            .map_err(|e| io_failure("starting a child `procsync repl`", e))?;
        let pid = child.id();
        // Reap it whenever it ends, so that it never lingers as a zombie.
        thread::spawn(move || {
            let _ = child.wait();
        });
        Ok(format!("ok {pid}"))
    }
}
