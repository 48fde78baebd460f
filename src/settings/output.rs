//! How a run's progress is to be shown, as the command line asks for it. Whether stderr is a
//! terminal is not part of the settings: it is asked where the view is made, and the mode
//! decided from both ([`ProgressSettings::mode`]).

use std::time::Duration;

use crate::cli::{LogFormat, ProgressArg};

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The live view.
    Tty,
    /// A heartbeat line every so often.
    Plain { interval: Duration },
    /// Nothing but the result lines.
    None,
    /// Every event as one JSON object per line (`--log-format json`).
    Json,
}

/// What `--progress`, `--progress-interval`, `-v` and `--log-format` ask of the progress view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSettings {
    asked: ProgressArg,
    interval: Duration,
    verbose: bool,
    json: bool,
}

impl ProgressSettings {
    pub fn new(
        asked: ProgressArg,
        interval: Duration,
        verbosity: u8,
        log_format: LogFormat,
    ) -> ProgressSettings {
        ProgressSettings {
            asked,
            interval,
            verbose: verbosity > 0,
            json: log_format == LogFormat::Json,
        }
    }

    /// The view, given whether stderr is a terminal. Log collectors (`--log-format json`) get
    /// every event as a JSON line instead of a view; `auto` draws the live view on a terminal,
    /// unless `-v`'s log lines would draw over it, and the heartbeat elsewhere.
    pub fn mode(&self, stderr_is_terminal: bool) -> Mode {
        if self.json {
            return Mode::Json;
        }
        match self.asked {
            ProgressArg::Auto if stderr_is_terminal && !self.verbose => Mode::Tty,
            ProgressArg::Auto | ProgressArg::Plain => Mode::Plain {
                interval: self.interval,
            },
            ProgressArg::Tty => Mode::Tty,
            ProgressArg::None => Mode::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_view_is_for_a_terminal_without_log_lines_and_json_logs_win() {
        let interval = Duration::from_secs(30);
        let plain = Mode::Plain { interval };
        // (asked, -v, json, terminal, mode)
        let table = [
            (ProgressArg::Auto, 0, LogFormat::Text, true, Mode::Tty),
            (ProgressArg::Auto, 1, LogFormat::Text, true, plain),
            (ProgressArg::Auto, 0, LogFormat::Text, false, plain),
            (ProgressArg::Plain, 0, LogFormat::Text, true, plain),
            (ProgressArg::Tty, 1, LogFormat::Text, false, Mode::Tty),
            (ProgressArg::None, 0, LogFormat::Text, true, Mode::None),
            (ProgressArg::Tty, 0, LogFormat::Json, true, Mode::Json),
            (ProgressArg::Auto, 0, LogFormat::Json, false, Mode::Json),
        ];
        for (asked, verbosity, format, terminal, expected) in table {
            let settings = ProgressSettings::new(asked, interval, verbosity, format);
            assert_eq!(
                settings.mode(terminal),
                expected,
                "{asked:?} -v{verbosity} {format:?} {terminal}"
            );
        }
    }
}
