//! The seed list format (`source-images.list`): one image reference per line, an optional
//! second column naming an explicit target, `#` comments (whole line or after whitespace),
//! blank lines and surrounding whitespace ignored.

use super::{Entry, InputError, TargetSpec};
use crate::model::Origin;
use crate::reference::ImageRef;

/// Parses one list file's text. Returns the good entries and one error per bad line.
pub fn parse_list(file: &str, text: &str) -> (Vec<Entry>, Vec<InputError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            line: index + 1,
        };
        let content = strip_comment(raw);
        let columns: Vec<&str> = content.split_whitespace().collect();
        match parse_columns(&columns) {
            Ok(Some((source, explicit_target))) => entries.push(Entry {
                origin,
                source,
                explicit_target,
                filter: None,
                can_name_target: true,
                signatures: None,
            }),
            Ok(None) => {}
            Err(reason) => errors.push(InputError::line(origin, reason)),
        }
    }
    (entries, errors)
}

/// `#` starts a comment at the start of a line or after whitespace; elsewhere it is part of
/// the word (and the reference parser will reject it with a precise reason).
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, ch) in line.char_indices() {
        if ch == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = ch.is_whitespace();
    }
    line
}

type Columns = Option<(ImageRef, Option<TargetSpec>)>;

fn parse_columns(columns: &[&str]) -> Result<Columns, String> {
    match columns {
        [] => Ok(None),
        [source] => Ok(Some((parse_source(source)?, None))),
        [source, target] => {
            let source = parse_source(source)?;
            let target = TargetSpec::parse(target)
                .map_err(|e| format!("invalid target reference \"{target}\": {e}"))?;
            Ok(Some((source, Some(target))))
        }
        [_, _, third, ..] => Err(format!(
            "unexpected third column \"{third}\" (a line is: SOURCE [TARGET])"
        )),
    }
}

fn parse_source(text: &str) -> Result<ImageRef, String> {
    ImageRef::parse(text).map_err(|e| format!("invalid image reference \"{text}\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        parse_list("list.txt", text)
            .1
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn comments_blanks_and_whitespace_are_ignored() {
        let text = "# header\n\n   nginx:1.25   # the web server\n\tquay.io/a/b:1\t\n#nginx:1.24\n";
        let (entries, errors) = parse_list("list.txt", text);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<String> = entries.iter().map(|e| e.source.to_string()).collect();
        assert_eq!(got, ["docker.io/library/nginx:1.25", "quay.io/a/b:1"]);
        assert_eq!(entries[0].origin.line, 3);
        assert_eq!(entries[1].origin.line, 4);
    }

    #[test]
    fn second_column_is_an_explicit_target() {
        let (entries, errors) = parse_list("l", "nginx:1.25.3 harbor.example/base/nginx:1.25.3\n");
        assert!(errors.is_empty());
        assert_eq!(
            entries[0].explicit_target.as_ref().unwrap().to_string(),
            "harbor.example/base/nginx:1.25.3"
        );
    }

    #[test]
    fn every_bad_line_is_reported_with_file_and_line() {
        let text = "nginx:1.25\nNginx:1\nnginx:1.25 a/b:1 extra\n\nredis:bad tag!\nalpine#3\n";
        let errors = errors_of(text);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(errors[0].starts_with("list.txt:2: invalid image reference \"Nginx:1\""));
        assert!(errors[1].starts_with("list.txt:3: unexpected third column \"extra\""));
        // "redis:bad tag!" is two columns: the second is not a valid target.
        assert!(errors[2].starts_with("list.txt:5: invalid target reference \"tag!\""));
        assert!(errors[3].starts_with("list.txt:6: invalid image reference \"alpine#3\""));
    }
}
