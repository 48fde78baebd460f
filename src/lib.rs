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
pub mod layout;
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
        .try_init();
}
