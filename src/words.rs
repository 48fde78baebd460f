//! Counted nouns for the lines people read: `1 blob`, `2 blobs`, `1 entry`, `0 entries`. One
//! helper, so that no message says `1 blobs` or `1 entries`.

use std::fmt::Display;

/// `n` and its noun in the right number: `one` for exactly 1, else `many` (`0 blobs`).
pub fn count(n: impl Display, one: &str, many: &str) -> String {
    let n = n.to_string();
    let noun = if n == "1" { one } else { many };
    format!("{n} {noun}")
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
}
