//! `procsync completions SHELL` and the hidden `procsync man`: shell completion scripts
//! and a man page, both generated from the clap definitions, so that they can never
//! disagree with `--help`. Nothing here parses or runs anything else.

use std::io;

use clap::CommandFactory;
use clap_complete::Shell;

use super::exit;
use super::shell::{Failure, Outcome};

/// `procsync completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  procsync completions bash > /etc/bash_completion.d/procsync
  procsync completions zsh > \"${fpath[1]}/_procsync\"
  procsync completions fish > ~/.config/fish/completions/procsync.fish")]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `args.shell` on standard output.
pub fn completions<C: CommandFactory>(args: &CompletionsArgs) -> Outcome {
    let mut cmd = C::command();
    clap_complete::generate(args.shell, &mut cmd, "procsync", &mut io::stdout());
    Ok(exit::OK)
}

/// Writes the man page (roff) on standard output: `procsync man > procsync.1`.
pub fn man<C: CommandFactory>() -> Outcome {
    let cmd = C::command();
    clap_mangen::Man::new(cmd)
        .render(&mut io::stdout())
        .map_err(|e| Failure::new(exit::ERROR, format!("writing the man page failed: {e}")))?;
    Ok(exit::OK)
}
