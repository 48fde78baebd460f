//! Readers for the image lists ferry takes as input. Every reader turns its file into
//! [`Entry`] values that remember where they came from, and reports *all* problems it finds
//! as `FILE:LINE: reason` rather than stopping at the first, so one run shows every typo.

mod list;

use std::fmt;
use std::path::PathBuf;

use crate::filter::FilterSpec;
use crate::reference::ImageRef;

pub use list::parse_list;

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    File(PathBuf),
    Stdin,
}

impl InputSource {
    /// `-` means standard input, anything else a file path.
    pub fn from_arg(arg: &str) -> InputSource {
        if arg == "-" {
            InputSource::Stdin
        } else {
            InputSource::File(PathBuf::from(arg))
        }
    }
}

impl fmt::Display for InputSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSource::File(path) => write!(f, "{}", path.display()),
            InputSource::Stdin => f.write_str("<stdin>"),
        }
    }
}

/// A position in an input file, shown as `FILE:LINE`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One requested image: a normalized source and, when the input named one, an explicit target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub origin: Origin,
    pub source: ImageRef,
    pub explicit_target: Option<ImageRef>,
    /// Tag filters of this entry (whole repositories only), on top of the command line's.
    pub filter: Option<FilterSpec>,
}

/// A problem with the input, always tied to the file (and line, where there is one).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {reason}")]
    Line { origin: Origin, reason: String },
}

impl InputError {
    pub fn line(origin: Origin, reason: impl Into<String>) -> InputError {
        InputError::Line {
            origin,
            reason: reason.into(),
        }
    }
}

/// Reads every input in order. Returns all entries, or every error found across all inputs.
pub fn read_all(inputs: &[InputSource]) -> Result<Vec<Entry>, Vec<InputError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        let name = input.to_string();
        let text = match input {
            InputSource::File(path) => std::fs::read_to_string(path),
            InputSource::Stdin => std::io::read_to_string(std::io::stdin()),
        };
        match text {
            Ok(text) => {
                let (mut found, mut bad) = parse_list(&name, &text);
                entries.append(&mut found);
                errors.append(&mut bad);
            }
            Err(source) => errors.push(InputError::Read { file: name, source }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}
