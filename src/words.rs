//! How the lines people read write numbers and other programs' words: counted nouns (`1 blob`,
//! `2 blobs`, `1 entry`, `0 entries`, so that no message says `1 blobs`), durations as the flags
//! take them (`2s`, `500ms`, `30m`), and the reason line of a multi-line message.

use std::fmt::Display;
use std::time::Duration;

/// `n` and its noun in the right number: `one` for exactly 1, else `many` (`0 blobs`).
pub fn count(n: impl Display, one: &str, many: &str) -> String {
    let n = n.to_string();
    let noun = if n == "1" { one } else { many };
    format!("{n} {noun}")
}

/// A duration as the flags take it, for messages: `2s`, `1.5s`, `500ms`, `30m` (whole
/// minutes and hours in their unit).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() == 0 && secs >= 3600 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if duration.subsec_nanos() == 0 && secs >= 60 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else if duration.subsec_millis() == 0 {
        format!("{secs}s")
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The regex crate's messages draw the pattern with a caret over several lines; the last line
/// (`error: unclosed group`) is the reason, and fits on one line.
pub fn last_line(message: &str) -> String {
    let last = message.lines().last().unwrap_or(message).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        let table: [(u64, &str); 4] = [
            (0, "0 entries"),
            (1, "1 entry"),
            (2, "2 entries"),
            (11, "11 entries"),
        ];
        for (n, expected) in table {
            assert_eq!(count(n, "entry", "entries"), expected);
        }
        assert_eq!(count(1usize, "blob", "blobs"), "1 blob");
        assert_eq!(count(21u32, "blob", "blobs"), "21 blobs");
    }

    #[test]
    fn durations_read_back_as_they_were_written() {
        for text in ["500ms", "2s", "1.5s", "90s", "5m", "1h", "61m"] {
            assert_eq!(
                format_duration(crate::cli::parse_duration(text).unwrap()),
                text
            );
        }
    }
}
