//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{read_and_map, read_inputs, say, say_err};
use std::io::Write as _;

use clap::CommandFactory as _;

use crate::cli::{Cli, ShellArg};
use crate::error::{Error, Outcome};
use crate::input::NamespaceEntry;
use crate::model::{Destination, Origin};
use crate::settings::InputSettings;

/// The sources, as read; with `--shard`, those of the shard's entries (which needs their
/// targets, so the list is mapped as `show-images` maps it). A namespace line is shown as
/// written: which repositories it holds is only known once it is listed (see
/// [`say_namespaces`]).
pub async fn show_raw_images(
    inputs: &InputSettings,
    destinations: &[Destination],
) -> Result<Outcome, Error> {
    let (mut lines, namespaces): (Vec<(Origin, String)>, Vec<NamespaceEntry>) = match inputs.shard {
        None => {
            let read = read_inputs(inputs).await?;
            let lines = read
                .entries
                .iter()
                .map(|e| (e.origin.clone(), e.source.to_string()))
                .collect();
            (lines, read.namespaces)
        }
        // An entry's shard is its target's under the first destination.
        Some(_) => {
            let read = read_and_map(inputs, &destinations[..1], None, &[]).await?;
            let lines = read
                .jobs
                .iter()
                .map(|job| (job.origin.clone(), job.source.to_string()))
                .collect();
            (lines, read.namespaces)
        }
    };
    lines.extend(
        namespaces
            .iter()
            .map(|ns| (ns.origin.clone(), ns.namespace.to_string())),
    );
    say_namespaces(&namespaces);
    print_in_list_order(inputs, lines, !namespaces.is_empty());
    Ok(Outcome::Done)
}

pub async fn show_images(
    inputs: &InputSettings,
    destinations: &[Destination],
) -> Result<Outcome, Error> {
    let read = read_and_map(inputs, destinations, None, &[]).await?;
    let mut lines: Vec<(Origin, String)> = read
        .jobs
        .iter()
        .map(|job| (job.origin.clone(), job.target.to_string()))
        .collect();
    lines.extend(read.namespaces.iter().flat_map(|ns| {
        destinations.iter().map(|destination| {
            let target = crate::plan::namespace::target_pattern(ns, destination);
            (ns.origin.clone(), target)
        })
    }));
    say_namespaces(&read.namespaces);
    print_in_list_order(inputs, lines, !read.namespaces.is_empty());
    Ok(Outcome::Done)
}

/// The listings stay offline: a namespace line is shown as its pattern, and said so on stderr
/// (its repositories are listed by `plan` and `sync`, `plan -v` names them).
fn say_namespaces(namespaces: &[NamespaceEntry]) {
    for namespace in namespaces {
        say_err(format!(
            "ferry: note: {}: {} is a namespace: its repositories are listed by plan and sync \
             (plan -v names them), not offline",
            namespace.origin, namespace.namespace
        ));
    }
}

/// `lines` in the readers' order, until the reader stops; with namespace lines among them,
/// in list order (inputs as given, then lines; stable).
fn print_in_list_order(inputs: &InputSettings, mut lines: Vec<(Origin, String)>, merge: bool) {
    let names: Vec<String> = inputs.sources.iter().map(ToString::to_string).collect();
    lines.sort_by_key(|(origin, _)| {
        if !merge {
            return (None, 0);
        }
        (
            names.iter().position(|name| **name == *origin.file),
            origin.line,
        )
    });
    // A reader that stops early (`| head`) ends the listing, not as a failure.
    for (_, line) in &lines {
        if !say(line) {
            break;
        }
    }
}

/// A completion script for `shell`, on stdout.
pub fn completions(shell: ShellArg) -> Result<Outcome, Error> {
    let shell = match shell {
        ShellArg::Bash => clap_complete::Shell::Bash,
        ShellArg::Zsh => clap_complete::Shell::Zsh,
        ShellArg::Fish => clap_complete::Shell::Fish,
    };
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "ferry", &mut script);
    print_bytes(&script)
}

fn print_bytes(bytes: &[u8]) -> Result<Outcome, Error> {
    // A closed pipe (`| head`) is the reader's choice, not a failure.
    let _ = std::io::stdout().write_all(bytes);
    Ok(Outcome::Done)
}
