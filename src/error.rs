//! How ferry ends, decided in one place: [`Error`] for what stops a command before or outside
//! its work, [`Outcome`] for a command that did its work, and the exit code of each. Scripts
//! and CI can tell "some images failed" from "nothing ran because the input was bad".

use std::fmt::Write as _;

use crate::access::credentials::CredentialsError;
use crate::input::InputError;
use crate::settings::SettingsError;

/// Everything that was asked for is in place (synced or already current).
pub const SUCCESS: u8 = 0;
/// At least one image failed; every other image was still processed.
pub const IMAGES_FAILED: u8 = 1;
/// Bad usage, input or configuration: nothing was copied.
pub const USAGE: u8 = 2;
/// Hung up on (SIGHUP: the terminal or SSH session closed): 128 + 1.
pub const HUNG_UP: u8 = 129;
/// Interrupted by SIGINT (Ctrl-C): 128 + 2.
pub const INTERRUPTED: u8 = 130;
/// Terminated by SIGTERM: 128 + 15.
pub const TERMINATED: u8 = 143;

/// What stops a command. Printed once, by `main`'s caller, as `ferry: error: …`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or the configuration is wrong: nothing ran.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The inputs have problems, every one of them listed: nothing ran.
    #[error("{} problem{} in the input; nothing was copied", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Input(Vec<InputError>),
    /// A command's own arguments are wrong (a report to merge that cannot be read): nothing
    /// was done.
    #[error("{0}")]
    Usage(String),
    /// A credentials file (an auth file, Docker's `config.json`) cannot be read or is not
    /// what it should be: nothing was copied.
    #[error("{0}; nothing was copied: fix the file, or name another with --authfile")]
    Credentials(CredentialsError),
    /// ferry could not do its work (no private directory, no runtime): not the user's input.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Settings(_) | Error::Input(_) | Error::Usage(_) | Error::Credentials(_) => USAGE,
            Error::Internal(_) => IMAGES_FAILED,
        }
    }

    /// The error as printed: input problems one per line (`FILE:LINE: reason`), then one
    /// `ferry: error:` line with the causes of the error on it.
    pub fn report(&self) -> String {
        let mut text = String::new();
        if let Error::Input(errors) = self {
            for error in errors {
                let _ = writeln!(text, "{error}");
            }
        }
        let _ = writeln!(text, "ferry: error: {}", with_causes(self));
        text
    }
}

/// The error and every cause below it, `error: cause: cause`, on one line: the top message
/// alone often says only what was refused (`invalid --semver range "banana"`), the cause why.
/// A cause the message already quotes is not repeated.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let reason = crate::words::last_line(&error.to_string());
        if !text.contains(&reason) {
            text.push_str(": ");
            text.push_str(&reason);
        }
        cause = error.source();
    }
    text
}

/// How a command that did its work ended. Ordered by how bad it is, so the worst of two wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Everything asked for is in place.
    Done,
    /// Some images failed (or a report could not be written); the others were processed.
    ImagesFailed,
    /// Stopped by a signal; `code` is 128 + its number.
    Stopped { code: u8 },
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => SUCCESS,
            Outcome::ImagesFailed => IMAGES_FAILED,
            Outcome::Stopped { code } => code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Origin;

    #[test]
    fn every_ending_has_one_exit_code() {
        let input = Error::Input(vec![InputError::line(
            Origin {
                file: "list.txt".into(),
                line: 7,
            },
            "invalid image reference \"Nginx:1\"",
        )]);
        assert_eq!(input.exit_code(), USAGE);
        assert_eq!(
            input.report(),
            "list.txt:7: invalid image reference \"Nginx:1\"\n\
             ferry: error: 1 problem in the input; nothing was copied\n"
        );
        let settings = Error::Settings(SettingsError::NoJobs);
        assert_eq!(settings.exit_code(), USAGE);
        // A malformed credentials file is the user's configuration too.
        let credentials = Error::Credentials(CredentialsError::Parse {
            path: "/home/me/.docker/config.json".into(),
            line: 3,
            column: 7,
        });
        assert_eq!(credentials.exit_code(), USAGE);
        assert_eq!(
            credentials.report(),
            "ferry: error: invalid auth file /home/me/.docker/config.json: not the expected JSON \
             at line 3, column 7; nothing was copied: fix the file, or name another with \
             --authfile\n"
        );
        // ferry failing at its own work is not the user's bad input.
        let internal = Error::Internal("cannot create a private temporary directory".into());
        assert_eq!(internal.exit_code(), IMAGES_FAILED);
        assert_eq!(Outcome::Done.exit_code(), SUCCESS);
        assert_eq!(Outcome::ImagesFailed.exit_code(), IMAGES_FAILED);
        assert_eq!(Outcome::Stopped { code: TERMINATED }.exit_code(), 143);
        assert_eq!(
            Outcome::Done.max(Outcome::ImagesFailed),
            Outcome::ImagesFailed
        );
        assert_eq!(
            Outcome::ImagesFailed.max(Outcome::Stopped { code: 130 }),
            Outcome::Stopped { code: 130 }
        );
    }
}
