//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{print_input_errors, read_entries};
use crate::exit;
use crate::input::InputSource;
use crate::mapping::{map_all, Destination};

pub fn show_raw_images(inputs: &[InputSource]) -> u8 {
    let Some(entries) = read_entries(inputs) else {
        return exit::USAGE;
    };
    for entry in &entries {
        println!("{}", entry.source);
    }
    exit::SUCCESS
}

pub fn show_images(inputs: &[InputSource], destination: &Destination) -> u8 {
    let Some(entries) = read_entries(inputs) else {
        return exit::USAGE;
    };
    match map_all(&entries, destination) {
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
