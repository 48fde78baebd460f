//! One function per subcommand. This is the layer that talks to the terminal: it prints
//! results to stdout, problems to stderr, and returns the exit code.

mod plan;
mod show;
mod sync;

use crate::input::{self, Entry, InputError, InputSource};
use crate::mapping::{map_all, Destination, Job};
use crate::settings::{CommandSettings, Settings};

pub async fn run(settings: Settings) -> u8 {
    match settings.command {
        CommandSettings::ShowRawImages { inputs } => show::show_raw_images(&inputs),
        CommandSettings::ShowImages {
            inputs,
            destination,
        } => show::show_images(&inputs, &destination),
        CommandSettings::Plan(plan) => plan::plan(&plan).await,
        CommandSettings::Verify(plan) => plan::verify(&plan).await,
        CommandSettings::Sync(sync) => sync::sync(*sync).await,
    }
}

/// Prints every input error, one `FILE:LINE: reason` per line, on stderr.
fn print_input_errors(errors: &[InputError]) {
    for error in errors {
        eprintln!("{error}");
    }
    eprintln!(
        "ferry: {} problem{} in the input; nothing was copied",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
}

/// Reads all inputs, printing every error on failure.
fn read_entries(inputs: &[InputSource]) -> Option<Vec<Entry>> {
    input::read_all(inputs)
        .map_err(|errors| print_input_errors(&errors))
        .ok()
}

/// Reads and maps all inputs, printing every error on failure.
fn load_jobs(inputs: &[InputSource], destination: &Destination) -> Option<Vec<Job>> {
    let entries = read_entries(inputs)?;
    map_all(&entries, destination)
        .map_err(|errors| print_input_errors(&errors))
        .ok()
}
