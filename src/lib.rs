//! ferry mirrors third-party container images into a private registry or local OCI layouts. It
//! reads image lists, normalizes every reference, maps it to a scoped target, plans each image
//! from the digests on both sides, and copies what needs a copy in parallel with one of its
//! engines (skopeo, crane, or its own registry client), each image ending in one result.
//!
//! The flow is: `cli` (clap types) → `settings` (one validated, immutable value, which builds
//! the narrow options and the workers of a run) → `commands` (one per subcommand), which read
//! `input` and `mapping`, hand the jobs to `plan` or to the run core (`run`, over an `engine`
//! and the `registry` client), and give its events to `report` (and, in `serve`, its metrics).
//! The imports point down that list: the shared vocabulary is in `model`, below them all
//! (`scripts/layers.py` checks the order).

pub(crate) mod access;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod docker_hub;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod filter;
pub(crate) mod input;
pub(crate) mod layout;
pub(crate) mod mapping;
pub(crate) mod memory;
pub(crate) mod model;
pub(crate) mod plan;
pub(crate) mod queue;
pub(crate) mod reference;
pub(crate) mod registry;
pub(crate) mod report;

pub(crate) mod run;
pub(crate) mod scratch;
pub(crate) mod secret;
pub(crate) mod serve;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod signals;
pub(crate) mod tls;
pub(crate) mod words;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, LogFormat};
use crate::error::Error;
use crate::settings::Settings;

/// Runs ferry with these arguments and returns the process exit code.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // Known before clap has parsed anything, so that a usage error is JSON too.
    report::log::set_json(asks_for_json_logs(&args));
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let cli = match parsed {
        Ok((mut cli, matches)) => {
            // Only the commands with destination flags may be asked about `dest`.
            if let (Some(dest), Some((_, sub))) = (cli.command.dest_mut(), matches.subcommand()) {
                dest.dest_from_env =
                    sub.value_source("dest") == Some(clap::parser::ValueSource::EnvVariable);
            }
            cli
        }
        // --help and --version go to stdout as clap prints them; usage errors to stderr,
        // marked as ferry's like every other error.
        Err(e) if e.use_stderr() => {
            let rendered = e.render().to_string();
            match report::log::json() {
                true => report::log::usage_error_json(&rendered),
                false => report::log::stderr_text(&as_ferry_error(&rendered)),
            }
            return error::USAGE;
        }
        Err(e) => {
            let _ = e.print();
            return error::SUCCESS;
        }
    };
    report::log::set_json(cli.log_format == LogFormat::Json);
    let settings = match Settings::from_cli(cli) {
        Ok(settings) => settings,
        Err(e) => return fail(&Error::from(e)),
    };
    init_logging(settings.verbosity, settings.log_format);
    memory::map_large_blocks_apart();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return fail(&Error::Internal(format!(
                "cannot start the async runtime: {e}"
            )))
        }
    };
    match runtime.block_on(commands::run(settings)) {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => fail(&error),
    }
}

/// Prints `error` once, on stderr, and gives its exit code.
fn fail(error: &Error) -> u8 {
    report::log::stderr_text(&error.report());
    error.exit_code()
}

/// Whether the command line asks for `--log-format json` (as `--log-format json` or
/// `--log-format=json`), read before clap parses it.
fn asks_for_json_logs(args: &[OsString]) -> bool {
    let args: Vec<&str> = args
        .iter()
        .map(|arg| arg.to_str().unwrap_or_default())
        .take_while(|arg| *arg != "--")
        .collect();
    args.windows(2).any(|pair| pair == ["--log-format", "json"])
        || args.contains(&"--log-format=json")
}

/// clap's usage error (`error: unexpected argument …`) as ferry's: every error ferry prints
/// starts with `ferry: error:`, so scripts and people can tell it from other output. Text that
/// is no error message (the help clap shows when the subcommand is missing) is left alone.
fn as_ferry_error(rendered: &str) -> String {
    if rendered.starts_with("error:") {
        format!("ferry: {rendered}")
    } else {
        rendered.to_owned()
    }
}

/// The log on stderr (see [`report::log`]): warnings, `-v` adds what each step does, `-vv`
/// debug detail.
fn init_logging(verbosity: u8, format: LogFormat) {
    use std::io::IsTerminal as _;
    report::log::set_json(format == LogFormat::Json);
    let ansi = !report::log::json()
        && use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
    let level = match verbosity {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    report::log::init(level, ansi);
}

/// Colour codes only help a person at a terminal: in a file or a pipe they are noise. And
/// `NO_COLOR` set to anything non-empty turns them off (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::with_causes;
    use clap::Parser as _;

    #[test]
    fn errors_show_their_causes_once_on_one_line() {
        use crate::filter::{FilterSpec, TagFilter};
        let filter = |spec: FilterSpec| with_causes(&TagFilter::new(&spec).unwrap_err());
        let semver = filter(FilterSpec {
            semver: Some("banana".into()),
            ..FilterSpec::default()
        });
        assert_eq!(
            semver,
            "invalid --semver range \"banana\": unexpected character 'b' while parsing major version number"
        );
        let regex = filter(FilterSpec {
            include: Some("(".into()),
            ..FilterSpec::default()
        });
        assert_eq!(regex, "invalid --tags regex \"(\": unclosed group");
        // The destination's message already quotes its cause.
        let cli = Cli::try_parse_from(["ferry", "show-images", "--dest", "third"]).unwrap();
        let destination = with_causes(&Settings::from_cli(cli).unwrap_err());
        assert_eq!(
            destination,
            "invalid destination \"third\": destination prefix must start with a registry host (e.g. harbor.example/mirror)"
        );
    }

    #[test]
    fn usage_errors_are_marked_as_ferry_errors() {
        let rendered = |args: &[&str]| Cli::try_parse_from(args).unwrap_err().render().to_string();
        let unknown = as_ferry_error(&rendered(&["ferry", "synk"]));
        assert!(
            unknown.starts_with("ferry: error: unrecognized subcommand 'synk'"),
            "{unknown}"
        );
        let missing = rendered(&["ferry"]);
        assert_eq!(as_ferry_error(&missing), missing);
    }

    #[test]
    fn json_logs_are_known_before_clap_parses() {
        let asks = |args: &[&str]| {
            let args: Vec<OsString> = args.iter().map(OsString::from).collect();
            asks_for_json_logs(&args)
        };
        assert!(asks(&["ferry", "sync", "--log-format", "json", "--bogus"]));
        assert!(asks(&["ferry", "--log-format=json"]));
        assert!(!asks(&["ferry", "sync", "--log-format", "text"]));
        assert!(!asks(&["ferry", "sync", "--", "--log-format=json"]));
        assert!(!asks(&["ferry", "sync", "--log-format"]));
    }

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
