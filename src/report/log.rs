//! Everything ferry writes to the terminal goes out here: its log lines (tracing), its own
//! messages on stderr (`ferry: warning: …`, `ferry: error: …`), the run events of
//! `--log-format json`, and the result lines on stdout. Two things follow from that one door:
//!
//! - While the live progress view is drawn ([`set_live`]), every line is written with the
//!   view out of its way (indicatif's `suspend`: the bars are cleared, the line written, the
//!   bars drawn again below it), so no stale frame of the view is left in the scrollback.
//! - With `--log-format json` ([`set_json`]) every line on stderr is one JSON object with one
//!   envelope: `timestamp` (RFC 3339, UTC), `level`, then `event` (a run event) or `message`,
//!   with the entry's `source` and `target` where there is one.
//!
//! Text that reaches a terminal has its control characters escaped (see [`super::escape`]);
//! JSON keeps the raw text, JSON-escaped.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::MultiProgress;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use super::escape;

/// Set for `--log-format json`.
static JSON: AtomicBool = AtomicBool::new(false);
/// The live view's bars while they are drawn.
static LIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Makes every line on stderr a JSON object from now on (`--log-format json`).
pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Registers the live view's bars (`None` once it is gone): lines are written out of its way
/// meanwhile.
pub fn set_live(bars: Option<MultiProgress>) {
    *LIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = bars;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Writes `text` whole to `stream`, with the live view out of its way; false when the stream
/// is gone (a closed pipe or terminal). The view's lock is not held while writing, so a line
/// written from inside a suspended view cannot deadlock.
fn write(stream: Stream, text: &str) -> bool {
    let live = LIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let put = || match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    };
    match live {
        Some(bars) => bars.suspend(put),
        None => put(),
    }
    .is_ok()
}

/// A line on stdout (a result line, a table row), control characters escaped; false when
/// stdout is gone.
pub fn stdout_line(line: &str) -> bool {
    let mut text = escape::lines(line).into_owned();
    text.push('\n');
    write(Stream::Stdout, &text)
}

/// Lines meant for people on stderr: ferry's own messages (`ferry: warning: …`, `ferry:
/// error: …`, an error report with its `FILE:LINE: reason` lines), a heartbeat, or the human
/// output when a report has stdout. With `--log-format json` each line becomes a JSON
/// message: its level is read from its `error:`/`warning:` mark (a line without one takes the
/// worst level of its text, INFO when none), and the mark and the `ferry: ` prefix are left
/// out of the message.
pub fn stderr_text(text: &str) {
    let text = text.trim_end_matches('\n');
    if !json() {
        let mut text = escape::lines(text).into_owned();
        text.push('\n');
        write(Stream::Stderr, &text);
        return;
    }
    let lines: Vec<(Option<Level>, &str)> = text.lines().map(classify).collect();
    let worst = lines
        .iter()
        .filter_map(|(level, _)| *level)
        .min() // tracing's levels: ERROR is the smallest
        .unwrap_or(Level::INFO);
    let mut out = String::new();
    for (level, message) in lines {
        let mut fields = Map::new();
        fields.insert("message".to_owned(), Value::from(message));
        out.push_str(&envelope(level.unwrap_or(worst), fields));
        out.push('\n');
    }
    write(Stream::Stderr, &out);
}

/// The level a line's mark says, and the line without `ferry: ` and the mark.
fn classify(line: &str) -> (Option<Level>, &str) {
    let rest = line.strip_prefix("ferry: ").unwrap_or(line);
    if let Some(message) = rest.strip_prefix("error: ") {
        (Some(Level::ERROR), message)
    } else if let Some(message) = rest.strip_prefix("warning: ") {
        (Some(Level::WARN), message)
    } else if rest.contains(": warning: ") {
        // `FILE:LINE: warning: reason`
        (Some(Level::WARN), rest)
    } else {
        (None, rest)
    }
}

/// A usage error as clap renders it (`error: …`, a tip, the usage), or the help it shows when
/// the command is missing, as one JSON object for `--log-format json`: its first line the
/// message, the rest `detail`.
pub fn usage_error_json(rendered: &str) {
    let rendered = rendered.trim();
    let (first, rest) = rendered.split_once('\n').unwrap_or((rendered, ""));
    let message = match first.strip_prefix("error: ") {
        Some(message) => message.to_owned(),
        None => "a command is required".to_owned(),
    };
    let detail = match first.starts_with("error: ") {
        true => rest.trim(),
        false => rendered,
    };
    let mut fields = Map::new();
    fields.insert("message".to_owned(), Value::from(message));
    fields.insert("detail".to_owned(), Value::from(detail));
    let mut line = envelope(Level::ERROR, fields);
    line.push('\n');
    write(Stream::Stderr, &line);
}

/// A run event as a JSON line (`--log-format json`): `fields` holds `event` and the event's
/// own fields.
pub fn event(level: Level, fields: Map<String, Value>) {
    let mut line = envelope(level, fields);
    line.push('\n');
    write(Stream::Stderr, &line);
}

/// The one JSON envelope: `timestamp` and `level` first, then `fields`; control characters
/// JSON-escaped, C1 ones too.
pub fn envelope(level: Level, fields: Map<String, Value>) -> String {
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    // serde_json's maps are sorted by key; written by hand, the envelope leads.
    let mut line = format!(
        "{{\"timestamp\":{},\"level\":{}",
        Value::from(timestamp),
        Value::from(level.as_str())
    );
    for (key, value) in &fields {
        if key == "timestamp" || key == "level" {
            continue;
        }
        let _ = write!(line, ",{}:{value}", Value::from(key.as_str()));
    }
    line.push('}');
    escape::json(line)
}

/// Sets up the log: `level` and up, on stderr through [`write`], each event formatted by
/// [`Lines`] (`ansi`: the level in colour, for a terminal).
pub fn init(level: Level, ansi: bool) {
    // A log line that cannot be written (stderr a closed pipe) is lost, not a panic: the
    // default reports it with `eprint!`, which panics, and would end `serve`'s endpoint.
    let _ = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_writer(Stderr)
        .with_max_level(level)
        .fmt_fields(JsonFields::new())
        .event_format(Lines { ansi })
        .try_init();
}

/// Where tracing writes: [`write`] to stderr, one whole event at a time.
struct Stderr;

/// One event's text, written when tracing is done with it.
struct EventText(Vec<u8>);

impl std::io::Write for EventText {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventText {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write(Stream::Stderr, &String::from_utf8_lossy(&self.0));
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = EventText;

    fn make_writer(&'a self) -> EventText {
        EventText(Vec::new())
    }
}

/// How a log event reads. Text: the level, then the message and any other field, control
/// characters escaped (`  WARN h/x:1: not found right after its copy`). JSON: the envelope
/// with `message`, the event's fields, and the fields of the spans it happened in (the run
/// puts each image's work in a span with its `source` and `target`). In text the entry's
/// `source` and `target` fields are left out: the message names the entry itself.
struct Lines {
    ansi: bool,
}

impl<S> FormatEvent<S, JsonFields> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        let mut fields = Fields::default();
        event.record(&mut fields);
        if json() {
            let mut all = Map::new();
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    let extensions = span.extensions();
                    let Some(formatted) = extensions.get::<FormattedFields<JsonFields>>() else {
                        continue;
                    };
                    if let Ok(Value::Object(span_fields)) = serde_json::from_str(&formatted.fields)
                    {
                        all.extend(span_fields);
                    }
                }
            }
            all.insert("message".to_owned(), Value::from(fields.message));
            all.extend(fields.others);
            return writeln!(writer, "{}", envelope(level, all));
        }
        let word = format!("{:>5}", level.as_str());
        match (self.ansi, level) {
            (true, Level::ERROR) => write!(writer, "\x1b[31m{word}\x1b[0m")?,
            (true, Level::WARN) => write!(writer, "\x1b[33m{word}\x1b[0m")?,
            (true, Level::INFO) => write!(writer, "\x1b[32m{word}\x1b[0m")?,
            (true, _) => write!(writer, "\x1b[34m{word}\x1b[0m")?,
            (false, _) => write!(writer, "{word}")?,
        }
        write!(writer, " {}", escape::one_line(&fields.message))?;
        for (name, value) in &fields.others {
            if name == "source" || name == "target" {
                continue;
            }
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            write!(writer, " {name}={}", escape::one_line(&value))?;
        }
        writeln!(writer)
    }
}

/// An event's fields: the message, and the others by name.
#[derive(Default)]
struct Fields {
    message: String,
    others: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("message", Value::String(text)) => self.message = text,
            ("message", other) => self.message = other.to_string(),
            (name, value) => {
                self.others.insert(name.to_owned(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_leads_and_keeps_the_raw_text() {
        let mut fields = Map::new();
        fields.insert("event".to_owned(), Value::from("finished"));
        fields.insert(
            "message".to_owned(),
            Value::from("\x1b[2Jdenied\nfake\u{9b}"),
        );
        fields.insert("level".to_owned(), Value::from("ignored"));
        let line = envelope(Level::WARN, fields);
        assert!(line.starts_with("{\"timestamp\":\""), "{line}");
        assert!(!line.chars().any(char::is_control), "{line}");
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["event"], "finished");
        assert_eq!(value["message"], "\x1b[2Jdenied\nfake\u{9b}");
        let timestamp = value["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    #[test]
    fn a_line_says_its_level_with_its_mark() {
        let table = [
            ("ferry: error: 2 problems", Some(Level::ERROR), "2 problems"),
            (
                "ferry: warning: x: no images",
                Some(Level::WARN),
                "x: no images",
            ),
            (
                "list:3: warning: duplicate",
                Some(Level::WARN),
                "list:3: warning: duplicate",
            ),
            ("ferry: syncing every 1h", None, "syncing every 1h"),
            (
                "list:7: invalid reference",
                None,
                "list:7: invalid reference",
            ),
        ];
        for (line, level, message) in table {
            assert_eq!(classify(line), (level, message), "{line}");
        }
    }

    /// A buffer tracing writes to, for the tests.
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_log_lines_show_a_registrys_control_characters_escaped() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(Lines { ansi: false })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::warn_span!("image", source = "nginx:1", target = "h/nginx:1");
            let _entered = span.enter();
            let message = "denied: \x1b[2J\x1b[31mred\r\nWARN forged";
            tracing::warn!(kind = "other", "h/nginx:1: {message}");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            " WARN h/nginx:1: denied: \\x1b[2J\\x1b[31mred\\r\\nWARN forged kind=other\n"
        );
    }
}
