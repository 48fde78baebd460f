//! ferry mirrors third-party container images into a private registry. It reads image lists,
//! normalizes every reference, maps it to a scoped target, and drives skopeo in parallel,
//! turning what skopeo prints into a per-image result.
//!
//! The flow is: `cli` (clap types) → `settings` (one validated value) → `commands` (one per
//! subcommand), which use `input`, `mapping`, `engine`, `scheduler` and `report`.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod exit;
pub mod filter;
pub mod input;
pub mod mapping;
pub mod plan;
pub mod process;
pub mod reference;
pub mod registry;
pub mod report;
pub mod retry;
pub mod scheduler;
pub mod scratch;
pub mod secret;
pub mod settings;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::Cli;
use crate::settings::Settings;

/// Runs ferry with these arguments and returns the process exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
        }
    };
    let settings = match Settings::from_cli(cli) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("ferry: error: {e}");
            return exit::USAGE;
        }
    };
    init_logging(settings.verbosity);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ferry: error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    runtime.block_on(commands::run(settings))
}

fn init_logging(verbosity: u8) {
    use std::io::IsTerminal as _;
    let ansi = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let level = match verbosity {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .without_time()
        .with_ansi(ansi)
        .try_init();
}

/// Colour codes only help a person at a terminal: in a file or a pipe they are noise. And
/// `NO_COLOR` set to anything non-empty turns them off (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && !no_color.is_some_and(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let table: [(bool, Option<&str>, bool); 6] = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for (terminal, no_color, expected) in table {
            let no_color = no_color.map(std::ffi::OsStr::new);
            assert_eq!(
                use_colour(terminal, no_color),
                expected,
                "{terminal} {no_color:?}"
            );
        }
    }
}
