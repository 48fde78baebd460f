//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{read_and_map, read_inputs, say};
use std::io::Write as _;

use clap::CommandFactory as _;

use crate::cli::{Cli, ShellArg};
use crate::error::{Error, Outcome};
use crate::model::Destination;
use crate::settings::InputSettings;

/// The sources, as read; with `--shard`, those of the shard's entries (which needs their
/// targets, so the list is mapped as `show-images` maps it).
pub async fn show_raw_images(
    inputs: &InputSettings,
    destinations: &[Destination],
) -> Result<Outcome, Error> {
    let sources: Vec<String> = match inputs.shard {
        None => read_inputs(inputs)
            .await?
            .entries
            .iter()
            .map(|e| e.source.to_string())
            .collect(),
        // An entry's shard is its target's under the first destination.
        Some(_) => read_and_map(inputs, &destinations[..1], None, &[])
            .await?
            .jobs
            .iter()
            .map(|job| job.source.to_string())
            .collect(),
    };
    // A reader that stops early (`| head`) ends the listing, not as a failure.
    for source in &sources {
        if !say(source) {
            break;
        }
    }
    Ok(Outcome::Done)
}

pub async fn show_images(
    inputs: &InputSettings,
    destinations: &[Destination],
) -> Result<Outcome, Error> {
    let jobs = read_and_map(inputs, destinations, None, &[]).await?.jobs;
    for job in &jobs {
        if !say(&job.target) {
            break;
        }
    }
    Ok(Outcome::Done)
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
