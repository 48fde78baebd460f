//! Text that came from elsewhere, made safe to print. A registry's error message (directly, or
//! carried in skopeo's or crane's output), a digest it sent, a report file read back: any of it
//! may hold control characters, and printed raw an ESC sequence clears or recolours the
//! terminal, a CR overwrites what the line said, and a newline forges a line of its own (a
//! result line, a list entry in a failed list). Every control character (C0, DEL and C1) is
//! shown as an escape instead, e.g. `\x1b[2J`; a line break only where the context has room for
//! several lines. JSON keeps the raw text, JSON-escaped (see [`json`]).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` on one line: every control character escaped, line breaks and tabs included.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` as lines: every control character but the line break escaped.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// JSON text with DEL and the C1 controls written as `\u` escapes too: serde_json escapes only
/// C0, and the others would reach a terminal that shows the JSON (`--report -`, JSON logs) as
/// they are. The value the JSON stands for is unchanged. (They can only stand inside strings,
/// so replacing them anywhere in the text is safe.)
pub fn json(text: String) -> String {
    let raw = |c: char| ('\u{7f}'..='\u{9f}').contains(&c);
    if !text.chars().any(raw) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if raw(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        let table = [
            ("plain text: ok", "plain text: ok", "plain text: ok"),
            (
                "\x1b[2J\x1b[31mred\x1b[0m",
                "\\x1b[2J\\x1b[31mred\\x1b[0m",
                "\\x1b[2J\\x1b[31mred\\x1b[0m",
            ),
            ("one\ntwo\r\n", "one\\ntwo\\r\\n", "one\ntwo\\r\n"),
            (
                "a\tb\x07\x00\x7f",
                "a\\tb\\x07\\x00\\x7f",
                "a\\tb\\x07\\x00\\x7f",
            ),
            // C1: CSI and NEL, as a terminal in 8-bit mode obeys them.
            ("\u{9b}2J\u{85}", "\\x9b2J\\x85", "\\x9b2J\\x85"),
            // Other Unicode is text.
            ("ünïcode … ✓", "ünïcode … ✓", "ünïcode … ✓"),
        ];
        for (raw, one, several) in table {
            assert_eq!(one_line(raw), one, "{raw:?}");
            assert_eq!(lines(raw), several, "{raw:?}");
            assert!(!one_line(raw).chars().any(char::is_control), "{raw:?}");
        }
        assert!(matches!(one_line("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_the_value_and_shows_no_control_character() {
        let raw = "\x1b[2J\u{9b}31m\x7f\nend";
        let text = json(serde_json::to_string(&serde_json::json!({ "message": raw })).unwrap());
        assert!(!text.chars().any(char::is_control), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["message"], raw);
    }
}
