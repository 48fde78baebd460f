//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{print_input_errors, read_inputs};
use crate::exit;
use crate::mapping::{map_all, Destination};
use crate::settings::InputSettings;

pub async fn show_raw_images(inputs: &InputSettings) -> u8 {
    let Some(inputs) = read_inputs(inputs).await else {
        return exit::USAGE;
    };
    for entry in &inputs.entries {
        println!("{}", entry.source);
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
                println!("{}", job.target);
            }
            exit::SUCCESS
        }
        Err(errors) => {
            print_input_errors(&errors);
            exit::USAGE
        }
    }
}
