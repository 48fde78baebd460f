//! The `ferry` binary: everything lives in the library; this only turns its result into the
//! process exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(ferry::run(std::env::args_os()))
}
