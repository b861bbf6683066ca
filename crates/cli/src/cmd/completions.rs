//! `wbauth completions SHELL` and `wbauth man`: made from the CLI's own definition, so they
//! never fall behind it.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _};

use super::Context;
use crate::error::CliError;

/// Prints the completion script for a shell. Install for bash:
/// `wbauth completions bash > /etc/bash_completion.d/wbauth` (or `~/.local/share/bash-completion/completions/wbauth`);
/// zsh: into a directory of `$fpath` as `_wbauth`; fish: `~/.config/fish/completions/wbauth.fish`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// Runs `completions`.
pub(crate) async fn run(args: &CompletionsArgs, _ctx: &Context) -> Result<(), CliError> {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "wbauth", &mut script);
    print_all(&script)
}

/// Writes `bytes` to standard output; a reader that stopped early (`| head`) is no error.
fn print_all(bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            path: "standard output".to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes the manual pages: `wbauth.1` on standard output, or with --out one page per command
/// (`wbauth.1`, `wbauth-serve.1`, `wbauth-keys-create.1`, …) into a directory. Install:
/// `wbauth man --out /usr/local/share/man/man1`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write every page into this directory (created when missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs `man`.
pub(crate) async fn run_man(args: &ManArgs, _ctx: &Context) -> Result<(), CliError> {
    let command = crate::Cli::command();
    match &args.out {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|source| CliError::Io {
                    path: "wbauth.1".to_owned(),
                    source,
                })?;
            print_all(&page)
        }
        Some(dir) => {
            let failed = |source| CliError::Io {
                path: dir.display().to_string(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(failed)?;
            clap_mangen::generate_to(command, dir).map_err(failed)?;
            println!("written={}", dir.display());
            Ok(())
        }
    }
}
