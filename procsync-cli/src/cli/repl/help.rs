//! `help [COMMAND]` of `procsync repl`: one answer line with the command names, or with
//! one command's syntax, as docs/REPL.md writes it. The table below is the only copy of
//! the syntax inside the binary; it must agree with docs/REPL.md and with `parse.rs`, which stays
//! the authority on what a line means (a unit test checks every name parses).

use super::{Answer, Failure};

/// Every command and its syntax, in docs/REPL.md's order.
pub(super) const SYNTAX: &[(&str, &str)] = &[
    (
        "create",
        "create event A [name=N] [manual] [initial] [inherit] [mode=OCTAL] | \
         create mutex A [name=N] [owned] [inherit] [mode=OCTAL] | \
         create semaphore A initial=I max=M [name=N] [inherit] [mode=OCTAL] | \
         create timer A [name=N] [manual] [inherit] [mode=OCTAL]",
    ),
    (
        "open",
        "open event|mutex|semaphore|timer A name=N [access=LIST] [inherit]",
    ),
    ("set", "set A"),
    ("reset", "reset A"),
    ("pulse", "pulse A"),
    ("release", "release A [count=C]"),
    ("settimer", "settimer A due=MS|at=UNIX_MS [period=MS]"),
    ("cancel", "cancel A"),
    ("wait", "wait A [timeout=MS|inf]"),
    ("waitany", "waitany A1 A2 … [timeout=MS|inf]"),
    ("waitall", "waitall A1 A2 … [timeout=MS|inf]"),
    ("signalandwait", "signalandwait S W [timeout=MS|inf]"),
    ("query", "query A"),
    ("waiters", "waiters A"),
    ("dup", "dup A B [access=LIST] [close-source]"),
    ("inheritable", "inheritable A on|off"),
    ("handle", "handle A"),
    ("pid", "pid"),
    ("dup-from", "dup-from PID V B [access=LIST] [close-source]"),
    ("dup-to", "dup-to PID A [access=LIST] [close-source]"),
    ("adopt", "adopt V B"),
    ("spawn", "spawn in=PATH out=PATH"),
    ("close", "close A"),
    ("sleep", "sleep MS"),
    ("help", "help [COMMAND]"),
    ("exit-thread", "@T exit-thread"),
    ("exit", "exit"),
];

/// The answer to `help` (`ok` and every command name) or `help COMMAND` (`ok` and its
/// syntax); an unknown command is `invalid-argument`.
pub(super) fn answer(topic: Option<&str>) -> Answer {
    let Some(topic) = topic else {
        let names: Vec<&str> = SYNTAX.iter().map(|(name, _)| *name).collect();
        return Ok(format!("ok {}", names.join(" ")));
    };
    SYNTAX
        .iter()
        .find(|(name, _)| *name == topic)
        .map(|(_, syntax)| format!("ok {syntax}"))
        .ok_or_else(|| Failure {
            code: "invalid-argument",
            message: format!("`help` knows no command `{topic}`; `help` alone lists them"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse::parse_command;

    #[test]
    fn every_listed_command_is_one_the_parser_knows() {
        for (name, _) in SYNTAX {
            if let Err(e) = parse_command(&[name]) {
                assert!(
                    !e.message.starts_with("unknown command"),
                    "`{name}` is listed by help but the parser does not know it: {e}"
                );
            }
        }
    }

    #[test]
    fn answers_are_one_line_and_start_with_ok() {
        let all = answer(None).unwrap_or_else(|_| panic!("help alone answers"));
        assert!(all.starts_with("ok create open set "), "{all}");
        assert!(all.ends_with(" exit"), "{all}");
        for (name, _) in SYNTAX {
            let one = answer(Some(name)).unwrap_or_else(|_| panic!("help {name}"));
            assert!(one.starts_with("ok ") && !one.contains('\n'), "{one}");
        }
        assert_eq!(
            answer(Some("wait")).ok().as_deref(),
            Some("ok wait A [timeout=MS|inf]")
        );
        assert!(answer(Some("frobnicate")).is_err());
    }
}
