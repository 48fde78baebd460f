//! `show-raw-images` and `show-images`: offline listings that need neither skopeo nor a
//! network, so a list can be checked in CI before anything is copied.

use super::{read_and_map, read_inputs, say};
use crate::error::{Error, Outcome};
use crate::model::Destination;
use crate::settings::InputSettings;

pub async fn show_raw_images(inputs: &InputSettings) -> Result<Outcome, Error> {
    let inputs = read_inputs(inputs).await?;
    // A reader that stops early (`| head`) ends the listing, not as a failure.
    for entry in &inputs.entries {
        if !say(&entry.source) {
            break;
        }
    }
    Ok(Outcome::Done)
}

pub async fn show_images(
    inputs: &InputSettings,
    destination: &Destination,
) -> Result<Outcome, Error> {
    let (_, jobs, _) = read_and_map(inputs, destination, None).await?;
    for job in &jobs {
        if !say(&job.target) {
            break;
        }
    }
    Ok(Outcome::Done)
}
