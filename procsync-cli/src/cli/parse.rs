//! The syntax of `procsync repl` (see `docs/REPL.md`): one input line becomes an optional
//! thread prefix and a [`Command`], or a [`SyntaxError`] that the REPL answers as
//! `err invalid-argument <text>`.
//!
//! Pure syntax: no handles, no aliases looked up, no library calls, so every rule is
//! checked by the table tests at the bottom. It must not take decisions the library
//! owns (whether a name is valid, whether `count=0` or `initial > max` is allowed); it
//! only enforces what the protocol itself defines: words, options, numbers, and the
//! 1..=64 objects of a wait list.

use std::time::Duration;

use super::command::{AccessSpec, Command, Due, Kind, Line, MAX_WAIT_OBJECTS, Spec, SyntaxError};

/// Largest permission value `mode=` accepts (`0o7777`: permission, sticky, set-id bits).
const MODE_MAX: u32 = 0o7777;

/// Splits one input line into its thread prefix and command. `None` for a blank line or
/// a comment (first non-blank character `#`), which get no answer.
pub fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(thread) = words[0].strip_prefix('@') else {
        return Some(Line {
            thread: None,
            command: parse_command(&words),
        });
    };
    if thread.is_empty() {
        let err = SyntaxError::new("`@` must be followed by a thread name, as in `@T wait e`");
        return Some(Line {
            thread: None,
            command: Err(err),
        });
    }
    let command = if words.len() == 1 {
        Err(SyntaxError::new(format!(
            "missing command after `@{thread}`"
        )))
    } else {
        parse_command(&words[1..])
    };
    Some(Line {
        thread: Some(thread.to_owned()),
        command,
    })
}

/// [`parse_line`] for the raw bytes of a line. A line that is not UTF-8 is refused whole,
/// never decoded lossily (that would make names of different bytes one name): with
/// `invalid-name` when the first bad byte is in a `name=` word, else `invalid-argument`.
pub fn parse_bytes(raw: &[u8]) -> Option<Line> {
    let bad = match std::str::from_utf8(raw) {
        Ok(text) => return parse_line(text),
        Err(e) => e.valid_up_to(),
    };
    // Blank, comment, thread prefix: as the line reads with the bad bytes replaced.
    let mut line = parse_line(&String::from_utf8_lossy(raw))?;
    let start = raw[..bad]
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .map_or(0, |i| i + 1);
    let in_name = raw[start..].starts_with(b"name=");
    line.command = Err(SyntaxError {
        code: if in_name {
            "invalid-name"
        } else {
            "invalid-argument"
        },
        message: format!(
            "byte 0x{:02x} at offset {bad} of the line is not UTF-8; {}",
            raw[bad],
            if in_name {
                "a name is Unicode text: write it in UTF-8"
            } else {
                "commands are UTF-8 text"
            }
        ),
    });
    Some(line)
}

/// Parses the words of a command (without thread prefix); `words` is not empty.
pub fn parse_command(words: &[&str]) -> Result<Command, SyntaxError> {
    let (&verb, rest) = words
        .split_first()
        .ok_or_else(|| SyntaxError::new("empty command"))?;
    let mut a = Args::new(verb, rest);
    let command = match verb {
        "create" => parse_create(&mut a)?,
        "open" => {
            let kind = a.kind()?;
            let alias = a.alias()?;
            let name = a
                .value("name")
                .ok_or_else(|| a.error("needs name=N"))?
                .to_owned();
            let access = a.access()?.unwrap_or(AccessSpec::All);
            let inherit = a.flag("inherit");
            Command::Open {
                kind,
                alias,
                name,
                access,
                inherit,
            }
        }
        "set" => Command::Set(a.alias()?),
        "reset" => Command::Reset(a.alias()?),
        "pulse" => Command::Pulse(a.alias()?),
        "cancel" => Command::Cancel(a.alias()?),
        "query" => Command::Query(a.alias()?),
        "waiters" => Command::Waiters(a.alias()?),
        "close" => Command::Close(a.alias()?),
        "handle" => Command::HandleValue(a.alias()?),
        "release" => {
            let alias = a.alias()?;
            let count = a.number::<u32>("count")?.unwrap_or(1);
            Command::Release { alias, count }
        }
        "settimer" => {
            let alias = a.alias()?;
            let due = match (a.number::<u64>("due")?, a.number::<u64>("at")?) {
                (Some(ms), None) => Due::Relative(Duration::from_millis(ms)),
                (None, Some(ms)) => Due::AtUnixMs(ms),
                _ => return Err(a.error("needs exactly one of due=MS and at=UNIX_MS")),
            };
            let period_ms = a.number::<u32>("period")?.unwrap_or(0);
            Command::SetTimer {
                alias,
                due,
                period_ms,
            }
        }
        "wait" => {
            let alias = a.alias()?;
            Command::Wait {
                alias,
                timeout: a.timeout()?,
            }
        }
        "waitany" | "waitall" => {
            let aliases = a.wait_list()?;
            let timeout = a.timeout()?;
            if verb == "waitany" {
                Command::WaitAny { aliases, timeout }
            } else {
                Command::WaitAll { aliases, timeout }
            }
        }
        "signalandwait" => {
            let signal = a.alias()?;
            let wait = a.alias()?;
            Command::SignalAndWait {
                signal,
                wait,
                timeout: a.timeout()?,
            }
        }
        "dup" => {
            let source = a.alias()?;
            let target = a.alias()?;
            let access = a.access()?;
            Command::Dup {
                source,
                target,
                access,
                close_source: a.flag("close-source"),
            }
        }
        "inheritable" => {
            let alias = a.alias()?;
            let on = match a.positional("on|off")? {
                "on" => true,
                "off" => false,
                other => return Err(a.error(&format!("takes `on` or `off`, not `{other}`"))),
            };
            Command::Inheritable { alias, on }
        }
        "pid" => Command::Pid,
        "dup-from" => {
            let pid = a.positional_number("PID")?;
            let value = a.positional_number("handle value V")?;
            let target = a.alias()?;
            let access = a.access()?;
            Command::DupFrom {
                pid,
                value,
                target,
                access,
                close_source: a.flag("close-source"),
            }
        }
        "dup-to" => {
            let pid = a.positional_number("PID")?;
            let alias = a.alias()?;
            let access = a.access()?;
            Command::DupTo {
                pid,
                alias,
                access,
                close_source: a.flag("close-source"),
            }
        }
        "adopt" => {
            let value = a.positional_number("handle value V")?;
            Command::Adopt {
                value,
                target: a.alias()?,
            }
        }
        "spawn" => {
            let input = a.value("in").ok_or_else(|| a.error("needs in=PATH"))?;
            let output = a.value("out").ok_or_else(|| a.error("needs out=PATH"))?;
            Command::Spawn {
                input: input.into(),
                output: output.into(),
            }
        }
        "sleep" => Command::Sleep(Duration::from_millis(a.positional_number("MS")?)),
        "help" => Command::Help(a.optional_positional().map(str::to_owned)),
        "exit" => Command::Exit,
        "exit-thread" => Command::ExitThread,
        _ => {
            return Err(SyntaxError::new(format!(
                "unknown command `{verb}`; `help` lists the commands (see docs/REPL.md)"
            )));
        }
    };
    a.finish()?;
    Ok(command)
}

fn parse_create(a: &mut Args<'_>) -> Result<Command, SyntaxError> {
    let kind = a.kind()?;
    let alias = a.alias()?;
    let spec = match kind {
        Kind::Event => Spec::Event {
            manual: a.flag("manual"),
            initial: a.flag("initial"),
        },
        Kind::Mutex => Spec::Mutex {
            owned: a.flag("owned"),
        },
        Kind::Semaphore => {
            let initial = a
                .number("initial")?
                .ok_or_else(|| a.error("needs initial=I"))?;
            let max = a.number("max")?.ok_or_else(|| a.error("needs max=M"))?;
            Spec::Semaphore { initial, max }
        }
        Kind::Timer => Spec::Timer {
            manual: a.flag("manual"),
        },
    };
    let name = a.value("name").unwrap_or_default().to_owned();
    let mode = a.value("mode").map(|m| parse_mode(a, m)).transpose()?;
    let inherit = a.flag("inherit");
    Ok(Command::Create {
        alias,
        spec,
        name,
        mode,
        inherit,
    })
}

fn parse_mode(a: &Args<'_>, text: &str) -> Result<u32, SyntaxError> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= MODE_MAX && !text.starts_with('+') => Ok(mode),
        _ => Err(a.error(&format!(
            "mode=`{text}` is not an octal mode from 0 to 7777"
        ))),
    }
}

/// The words after the verb. Positionals are taken from the front, in order; options
/// (`key=value`) and flags (bare words) are taken from anywhere after them, each at most
/// once, and [`Args::finish`] rejects whatever is left: unknown or repeated options.
struct Args<'a> {
    verb: &'a str,
    words: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn new(verb: &'a str, words: &[&'a str]) -> Self {
        Args {
            verb,
            words: words.to_vec(),
        }
    }

    fn error(&self, what: &str) -> SyntaxError {
        SyntaxError::new(format!("`{}` {what}", self.verb))
    }

    /// The next positional word, which must not look like an option.
    fn positional(&mut self, what: &str) -> Result<&'a str, SyntaxError> {
        match self.words.first() {
            Some(word) if !word.contains('=') => Ok(self.words.remove(0)),
            _ => Err(self.error(&format!("is missing its {what}"))),
        }
    }

    /// The next word if it is positional (no `=`), else nothing.
    fn optional_positional(&mut self) -> Option<&'a str> {
        match self.words.first() {
            Some(word) if !word.contains('=') => Some(self.words.remove(0)),
            _ => None,
        }
    }

    fn positional_number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, SyntaxError> {
        let word = self.positional(what)?;
        parse_number(word)
            .ok_or_else(|| self.error(&format!("needs a number for {what}, not `{word}`")))
    }

    fn alias(&mut self) -> Result<String, SyntaxError> {
        self.positional("alias").map(str::to_owned)
    }

    fn kind(&mut self) -> Result<Kind, SyntaxError> {
        match self.positional("type (event, mutex, semaphore or timer)")? {
            "event" => Ok(Kind::Event),
            "mutex" => Ok(Kind::Mutex),
            "semaphore" => Ok(Kind::Semaphore),
            "timer" => Ok(Kind::Timer),
            other => Err(self.error(&format!(
                "needs a type (event, mutex, semaphore or timer), not `{other}`"
            ))),
        }
    }

    /// All remaining words without `=`: the objects of `waitany` / `waitall`.
    fn wait_list(&mut self) -> Result<Vec<String>, SyntaxError> {
        let (aliases, options): (Vec<&str>, Vec<&str>) =
            self.words.iter().partition(|word| !word.contains('='));
        self.words = options;
        match aliases.len() {
            0 => Err(self.error("needs at least one object to wait on")),
            n if n > MAX_WAIT_OBJECTS => Err(self.error(&format!(
                "can wait on at most {MAX_WAIT_OBJECTS} objects, not {n}"
            ))),
            _ => Ok(aliases.into_iter().map(str::to_owned).collect()),
        }
    }

    /// Removes the bare word `name` if present.
    fn flag(&mut self, name: &str) -> bool {
        let found = self.words.iter().position(|word| *word == name);
        found.map(|i| self.words.remove(i)).is_some()
    }

    /// Removes `key=value` if present and returns `value` (possibly empty).
    fn value(&mut self, key: &str) -> Option<&'a str> {
        let i = self
            .words
            .iter()
            .position(|word| word.split_once('=').is_some_and(|(k, _)| k == key))?;
        let word = self.words.remove(i);
        word.split_once('=').map(|(_, value)| value)
    }

    fn number<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, SyntaxError> {
        let Some(text) = self.value(key) else {
            return Ok(None);
        };
        parse_number(text)
            .map(Some)
            .ok_or_else(|| self.error(&format!("{key}=`{text}` is not a valid number")))
    }

    /// `timeout=MS|inf`; `None` (the default) means infinite.
    fn timeout(&mut self) -> Result<Option<Duration>, SyntaxError> {
        match self.value("timeout") {
            None | Some("inf") => Ok(None),
            Some(text) => parse_number(text)
                .map(|ms| Some(Duration::from_millis(ms)))
                .ok_or_else(|| {
                    self.error(&format!(
                        "timeout=`{text}` is neither milliseconds nor `inf`"
                    ))
                }),
        }
    }

    /// `access=LIST`, `None` when absent.
    fn access(&mut self) -> Result<Option<AccessSpec>, SyntaxError> {
        let Some(list) = self.value("access") else {
            return Ok(None);
        };
        let (mut all, mut synchronize, mut modify) = (false, false, false);
        for right in list.split(',') {
            match right {
                "all" => all = true,
                "synchronize" => synchronize = true,
                "modify" => modify = true,
                other => {
                    return Err(self.error(&format!(
                        "access=`{list}`: `{other}` is not one of synchronize, modify, all"
                    )));
                }
            }
        }
        Ok(Some(if all {
            AccessSpec::All
        } else {
            AccessSpec::Rights {
                synchronize,
                modify,
            }
        }))
    }

    /// Rejects leftover words: unknown, repeated or misplaced options.
    fn finish(self) -> Result<(), SyntaxError> {
        match self.words.as_slice() {
            [] => Ok(()),
            [word, ..] => Err(self.error(&format!("does not take `{word}` (unknown or repeated)"))),
        }
    }
}

/// Decimal digits only: no sign, no spaces, no empty string.
fn parse_number<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_refused_not_decoded_lossily() {
        // Two names that differ only in their bad bytes must not become one name.
        let line = parse_bytes(b"@T open event e name=Local\\a\xff\n").unwrap();
        assert_eq!(line.thread.as_deref(), Some("T"));
        let err = line.command.unwrap_err();
        assert_eq!(err.code, "invalid-name");
        assert!(err.message.contains("0xff"), "{}", err.message);
        let err = parse_bytes(b"wait e timeout=1\xc3")
            .unwrap()
            .command
            .unwrap_err();
        assert_eq!(err.code, "invalid-argument");
        // A comment or blank line stays unanswered, whatever its bytes.
        assert_eq!(parse_bytes(b"# caf\xe9\n"), None);
        assert_eq!(parse_bytes(b"  \n"), None);
        // Valid UTF-8 is parsed as text, non-ASCII names included.
        assert!(
            parse_bytes("open event e name=Local\\caf\u{e9}".as_bytes())
                .unwrap()
                .command
                .is_ok()
        );
    }

    fn ms(ms: u64) -> Option<Duration> {
        Some(Duration::from_millis(ms))
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn words(text: &str) -> Vec<&str> {
        text.split(' ').collect()
    }

    fn create(alias: &str, spec: Spec, name: &str) -> Command {
        Command::Create {
            alias: s(alias),
            spec,
            name: s(name),
            mode: None,
            inherit: false,
        }
    }

    fn open(kind: Kind, name: &str, access: AccessSpec, inherit: bool) -> Command {
        Command::Open {
            kind,
            alias: s("a"),
            name: s(name),
            access,
            inherit,
        }
    }

    const fn rights(synchronize: bool, modify: bool) -> AccessSpec {
        AccessSpec::Rights {
            synchronize,
            modify,
        }
    }

    const fn event(manual: bool, initial: bool) -> Spec {
        Spec::Event { manual, initial }
    }

    #[test]
    #[rustfmt::skip]
    fn valid_commands() {
        use Command as C;
        let table: Vec<(&str, Command)> = vec![
            ("create event e", create("e", event(false, false), "")),
            ("create event e name=x manual", create("e", event(true, false), "x")),
            ("create event e initial manual name=Local\\x", create("e", event(true, true), "Local\\x")),
            ("create event e name=", create("e", event(false, false), "")),
            ("create mutex m owned", create("m", Spec::Mutex { owned: true }, "")),
            ("create mutex m", create("m", Spec::Mutex { owned: false }, "")),
            ("create semaphore s initial=1 max=2 name=n", create("s", Spec::Semaphore { initial: 1, max: 2 }, "n")),
            ("create semaphore s max=4294967295 initial=0", create("s", Spec::Semaphore { initial: 0, max: u32::MAX }, "")),
            ("create timer t manual", create("t", Spec::Timer { manual: true }, "")),
            ("create event e inherit mode=0644 name=g",
                C::Create { alias: s("e"), spec: event(false, false), name: s("g"), mode: Some(0o644), inherit: true }),
            ("open mutex a name=x", open(Kind::Mutex, "x", AccessSpec::All, false)),
            ("open semaphore a name= access=synchronize inherit", open(Kind::Semaphore, "", rights(true, false), true)),
            ("open event a name=x access=modify,synchronize", open(Kind::Event, "x", rights(true, true), false)),
            ("open timer a name=x access=synchronize,all", open(Kind::Timer, "x", AccessSpec::All, false)),
            ("set e", C::Set(s("e"))),
            ("help", C::Help(None)),
            ("help wait", C::Help(Some(s("wait")))),
            ("reset e", C::Reset(s("e"))),
            ("pulse e", C::Pulse(s("e"))),
            ("cancel t", C::Cancel(s("t"))),
            ("query e", C::Query(s("e"))),
            ("waiters e", C::Waiters(s("e"))),
            ("close e", C::Close(s("e"))),
            ("handle e", C::HandleValue(s("e"))),
            ("release s", C::Release { alias: s("s"), count: 1 }),
            ("release s count=3", C::Release { alias: s("s"), count: 3 }),
            ("release s count=0", C::Release { alias: s("s"), count: 0 }),
            ("settimer t due=100",
                C::SetTimer { alias: s("t"), due: Due::Relative(Duration::from_millis(100)), period_ms: 0 }),
            ("settimer t at=1700000000000 period=50",
                C::SetTimer { alias: s("t"), due: Due::AtUnixMs(1_700_000_000_000), period_ms: 50 }),
            ("wait e", C::Wait { alias: s("e"), timeout: None }),
            ("wait e timeout=inf", C::Wait { alias: s("e"), timeout: None }),
            ("wait e timeout=0", C::Wait { alias: s("e"), timeout: ms(0) }),
            ("wait e timeout=18446744073709551615", C::Wait { alias: s("e"), timeout: ms(u64::MAX) }),
            ("waitany a b timeout=10", C::WaitAny { aliases: vec![s("a"), s("b")], timeout: ms(10) }),
            ("waitany timeout=10 a", C::WaitAny { aliases: vec![s("a")], timeout: ms(10) }),
            ("waitall a b c", C::WaitAll { aliases: vec![s("a"), s("b"), s("c")], timeout: None }),
            ("signalandwait s w timeout=5", C::SignalAndWait { signal: s("s"), wait: s("w"), timeout: ms(5) }),
            ("dup a b", C::Dup { source: s("a"), target: s("b"), access: None, close_source: false }),
            ("dup a b access=synchronize close-source",
                C::Dup { source: s("a"), target: s("b"), access: Some(rights(true, false)), close_source: true }),
            ("inheritable a on", C::Inheritable { alias: s("a"), on: true }),
            ("inheritable a off", C::Inheritable { alias: s("a"), on: false }),
            ("pid", C::Pid),
            ("dup-from 42 7 b close-source",
                C::DupFrom { pid: 42, value: 7, target: s("b"), access: None, close_source: true }),
            ("dup-to 42 a access=all",
                C::DupTo { pid: 42, alias: s("a"), access: Some(AccessSpec::All), close_source: false }),
            ("adopt 7 b", C::Adopt { value: 7, target: s("b") }),
            ("spawn in=/tmp/i out=/tmp/o", C::Spawn { input: "/tmp/i".into(), output: "/tmp/o".into() }),
            ("sleep 25", C::Sleep(Duration::from_millis(25))),
            ("exit", C::Exit),
            ("exit-thread", C::ExitThread),
        ];
        for (text, expected) in table {
            assert_eq!(parse_command(&words(text)), Ok(expected), "{text}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn invalid_commands() {
        // (line, a fragment the message must contain)
        let table = [
            ("frobnicate e", "unknown command `frobnicate`"),
            ("help wait set", "does not take `set`"),
            ("create", "missing its type"),
            ("create gizmo g", "not `gizmo`"),
            ("create event", "missing its alias"),
            ("create event name=x", "missing its alias"),
            ("create event e initial=1", "does not take `initial=1`"),
            ("create event e owned", "does not take `owned`"),
            ("create event e manual manual", "does not take `manual`"),
            ("create event e name=a name=b", "does not take `name=b`"),
            ("create mutex m initial", "does not take `initial`"),
            ("create semaphore s max=2", "needs initial=I"),
            ("create semaphore s initial=1", "needs max=M"),
            ("create semaphore s initial max=2", "needs initial=I"),
            ("create semaphore s initial=-1 max=2", "initial=`-1`"),
            ("create semaphore s initial=1 max=4294967296", "max=`4294967296`"),
            ("create semaphore s initial= max=2", "initial=``"),
            ("create event e mode=0800", "mode=`0800`"),
            ("create event e mode=17777", "mode=`17777`"),
            ("create event e mode=+7", "mode=`+7`"),
            ("create event e mode=", "mode=``"),
            ("open event e", "needs name=N"),
            ("open event e name=x access=write", "`write` is not one of"),
            ("open event e name=x access=", "`` is not one of"),
            ("open event e name=x manual", "does not take `manual`"),
            ("set", "missing its alias"),
            ("set a b", "does not take `b`"),
            ("release s count=x", "count=`x`"),
            ("release s count=+1", "count=`+1`"),
            ("settimer t", "exactly one of"),
            ("settimer t due=1 at=2", "exactly one of"),
            ("settimer t due=1 period=-1", "period=`-1`"),
            ("wait e timeout=forever", "timeout=`forever`"),
            ("wait e timeout=-1", "timeout=`-1`"),
            ("wait e timeout=18446744073709551616", "timeout=`18446744073709551616`"),
            ("wait e timeout=1 timeout=2", "does not take `timeout=2`"),
            ("waitany", "at least one object"),
            ("waitany timeout=5", "at least one object"),
            ("waitall timeout=inf", "at least one object"),
            ("signalandwait s", "missing its alias"),
            ("dup a", "missing its alias"),
            ("inheritable a", "missing its on|off"),
            ("inheritable a yes", "not `yes`"),
            ("dup-from x 1 b", "number for PID"),
            ("dup-from 1 -2 b", "number for handle value V"),
            ("adopt 1", "missing its alias"),
            ("spawn in=/a", "needs out=PATH"),
            ("sleep", "missing its MS"),
            ("sleep 1.5", "not `1.5`"),
            ("pid now", "does not take `now`"),
            ("exit now", "does not take `now`"),
        ];
        for (text, fragment) in table {
            match parse_command(&words(text)) {
                Err(SyntaxError { message, .. }) => assert!(message.contains(fragment), "{text}: {message}"),
                Ok(command) => panic!("{text}: parsed as {command:?}"),
            }
        }
    }

    #[test]
    fn wait_list_bounds() {
        let names: Vec<String> = (0..=MAX_WAIT_OBJECTS).map(|i| format!("a{i}")).collect();
        for (n, ok) in [
            (1, true),
            (MAX_WAIT_OBJECTS, true),
            (MAX_WAIT_OBJECTS + 1, false),
        ] {
            for verb in ["waitany", "waitall"] {
                let line = std::iter::once(verb).chain(names[..n].iter().map(String::as_str));
                let result = parse_command(&line.collect::<Vec<_>>());
                assert_eq!(result.is_ok(), ok, "{verb} with {n} objects: {result:?}");
            }
        }
    }

    #[test]
    #[rustfmt::skip]
    fn lines_and_prefixes() {
        let line = |thread: Option<&str>, command| Some(Line { thread: thread.map(s), command });
        let table: Vec<(&str, Option<Line>)> = vec![
            ("", None),
            ("   \t ", None),
            ("# a comment", None),
            ("   # indented comment", None),
            ("pid", line(None, Ok(Command::Pid))),
            ("  pid  \r\n", line(None, Ok(Command::Pid))),
            ("@t1 pid", line(Some("t1"), Ok(Command::Pid))),
            ("@main   set   e", line(Some("main"), Ok(Command::Set(s("e"))))),
            ("@t exit-thread", line(Some("t"), Ok(Command::ExitThread))),
            ("@t", line(Some("t"), Err(SyntaxError::new(s("missing command after `@t`"))))),
        ];
        for (text, expected) in table {
            assert_eq!(parse_line(text), expected, "{text:?}");
        }
        let bare = parse_line("@ pid").expect("an answered line");
        assert_eq!(bare.thread, None);
        assert!(bare.command.is_err());
    }

    #[test]
    #[rustfmt::skip]
    fn waits_that_may_block_and_sleeps_do_not_hold_up_exit() {
        // REPL.md, Framing: `exit` exits at once; commands still blocked get no answer.
        let table = [
            ("wait e", true),
            ("wait e timeout=inf", true),
            ("wait e timeout=0", false),
            ("waitany a b", true),
            ("waitall a b timeout=1", true),
            ("signalandwait a b", true),
            ("sleep 100000", true),
            ("set e", false),
        ];
        for (text, expected) in table {
            let command = parse_command(&words(text)).expect(text);
            assert_eq!(command.waits_forever(), expected, "{text}");
        }
    }
}
