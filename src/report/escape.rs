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

/// A writer that passes JSON text on with DEL and the C1 controls escaped as [`json`] escapes
/// them, so that a large report goes to its file as it is serialized. In UTF-8, DEL is the byte
/// `7f` and U+0080..U+009F are `c2 80`..`c2 9f`; `c2` is never a continuation byte, so a chunk
/// ending in it is held back until the next one says what it starts.
pub struct JsonWriter<W: std::io::Write> {
    inner: W,
    held_c2: bool,
}

impl<W: std::io::Write> JsonWriter<W> {
    pub fn new(inner: W) -> JsonWriter<W> {
        JsonWriter {
            inner,
            held_c2: false,
        }
    }

    /// The writer underneath, once everything written is passed on.
    pub fn finish(mut self) -> std::io::Result<W> {
        std::io::Write::flush(&mut self)?;
        Ok(self.inner)
    }

    fn escaped(&mut self, code: u8) -> std::io::Result<()> {
        write!(self.inner, "\\u{code:04x}")
    }
}

impl<W: std::io::Write> std::io::Write for JsonWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let (mut start, mut i) = (0, 0);
        if std::mem::take(&mut self.held_c2) {
            match buf.first() {
                None => {
                    self.held_c2 = true;
                    return Ok(());
                }
                Some(&next) if (0x80..=0x9f).contains(&next) => {
                    self.escaped(next)?;
                    (start, i) = (1, 1);
                }
                Some(_) => self.inner.write_all(&[0xc2])?,
            }
        }
        while i < buf.len() {
            match buf[i] {
                0x7f => {
                    self.inner.write_all(&buf[start..i])?;
                    self.escaped(0x7f)?;
                    i += 1;
                    start = i;
                }
                0xc2 if i + 1 == buf.len() => {
                    self.inner.write_all(&buf[start..i])?;
                    self.held_c2 = true;
                    return Ok(());
                }
                0xc2 if (0x80..=0x9f).contains(&buf[i + 1]) => {
                    self.inner.write_all(&buf[start..i])?;
                    self.escaped(buf[i + 1])?;
                    i += 2;
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.inner.write_all(&buf[start..])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.held_c2) {
            self.inner.write_all(&[0xc2])?;
        }
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_writer_escapes_as_json_does_however_the_text_is_cut() {
        let text = "{\"m\": \"a\u{7f}b\u{85}c\u{9f}\u{a0}\u{e9}\u{2028}\u{1F600}\u{80}\"}\n";
        let expected = json(text.to_owned());
        assert!(expected.contains("\\u007f") && expected.contains("\\u0085"));
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let mut writer = JsonWriter::new(Vec::new());
                for chunk in [&bytes[..cut], &bytes[cut..second], &bytes[second..]] {
                    std::io::Write::write_all(&mut writer, chunk).unwrap();
                }
                let out = String::from_utf8(writer.finish().unwrap()).unwrap();
                assert_eq!(out, expected, "cut at {cut} and {second}");
            }
        }
    }

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
