//! Exit codes, named once. Every way ferry can end maps to exactly one of these, so scripts
//! and CI can tell "some images failed" from "nothing ran because the input was bad".

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
