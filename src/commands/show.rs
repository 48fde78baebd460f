//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{read_and_map, read_inputs, say};
use crate::exit;
use crate::model::Destination;
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
    let Some((_, jobs, _)) = read_and_map(inputs, destination, None).await else {
        return exit::USAGE;
    };
    for job in &jobs {
        if !say(&job.target) {
            break;
        }
    }
    exit::SUCCESS
}
