//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{print_input_errors, read_inputs, say};
use crate::exit;
use crate::mapping::{map_all, Destination};
use crate::settings::InputSettings;

pub async fn show_raw_images(inputs: &InputSettings) -> u8 {
    let Some(inputs) = read_inputs(inputs).await else {
        return exit::USAGE;
    };
    // A reader that stops early (`| head`) ends the listing, not as a failure.
    for entry in &inputs.entries {
        if !say(&entry.source) {
            break;
        }
    }
    exit::SUCCESS
}

pub async fn show_images(inputs: &InputSettings, destination: &Destination) -> u8 {
    let Some(inputs) = read_inputs(inputs).await else {
        return exit::USAGE;
    };
    match map_all(&inputs.entries, destination) {
        Ok(jobs) => {
            for job in &jobs {
                if !say(&job.target) {
                    break;
                }
            }
            exit::SUCCESS
        }
        Err(errors) => {
            print_input_errors(&errors);
            exit::USAGE
        }
    }
}
