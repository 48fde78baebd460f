//! The seed list format (`source-images.list`): one image reference per line, an optional
//! second column naming an explicit target, `#` comments (whole line or after whitespace),
//! blank lines and surrounding whitespace ignored.

use super::namespace::{Namespace, NamespaceEntry};
use super::{Entry, InputError, TargetSpec};
use crate::model::Origin;
use crate::reference::ImageRef;

/// Parses one list file's text: the entries naming images and repositories, and one error per
/// bad line. A namespace line is an error here: for readers that take single repositories (a
/// failed list's lines, which never hold one); [`read_list`] reads them too.
#[cfg(test)]
pub fn parse_list(file: &str, text: &str) -> (Vec<Entry>, Vec<InputError>) {
    let (entries, namespaces, mut errors) = read_list(file, text);
    for namespace in namespaces {
        errors.push(InputError::line(
            namespace.origin,
            "a namespace line is not taken here",
        ));
    }
    (entries, errors)
}

/// Parses one list file's text: the good entries, the namespace lines (`registry.k8s.io/*`,
/// `gcr.io/google-containers/** TARGET`), and one error per bad line.
pub fn read_list(file: &str, text: &str) -> (Vec<Entry>, Vec<NamespaceEntry>, Vec<InputError>) {
    let mut entries = Vec::new();
    let mut namespaces = Vec::new();
    let mut errors = Vec::new();
    // One name shared by every line's origin.
    let file: std::sync::Arc<str> = file.into();
    for (index, raw) in text.lines().enumerate() {
        let origin = Origin {
            file: std::sync::Arc::clone(&file),
            line: index + 1,
        };
        let content = strip_comment(raw);
        let columns: Vec<&str> = content.split_whitespace().collect();
        match namespace_columns(&columns) {
            Ok(Some((namespace, explicit_target))) => {
                namespaces.push(NamespaceEntry {
                    origin,
                    namespace,
                    explicit_target,
                    filter: None,
                    can_name_target: true,
                    signatures: None,
                });
                continue;
            }
            Ok(None) => {}
            Err(reason) => {
                errors.push(InputError::line(origin, reason));
                continue;
            }
        }
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
    (entries, namespaces, errors)
}

/// A namespace line's columns: the pattern and an optional target, a whole repository the
/// namespace's repositories go under. `None` when the first column is no pattern.
fn namespace_columns(columns: &[&str]) -> Result<Option<(Namespace, Option<TargetSpec>)>, String> {
    let Some(first) = columns.first() else {
        return Ok(None);
    };
    let namespace = match Namespace::parse(first) {
        Ok(Some(namespace)) => namespace,
        Ok(None) => return Ok(None),
        Err(reason) => return Err(format!("invalid namespace \"{first}\": {reason}")),
    };
    match columns {
        [_] => Ok(Some((namespace, None))),
        [_, target] => {
            let spec = TargetSpec::parse(target)
                .map_err(|e| format!("invalid target reference \"{target}\": {e}"))?;
            let whole = match &spec {
                TargetSpec::Full(reference) => reference.is_whole_repository(),
                TargetSpec::UnderDest(path) => !path.contains([':', '@']),
            };
            if !whole {
                return Err(format!(
                    "the target \"{target}\" of namespace {namespace} must be a repository \
                     without a tag or digest: its repositories go under it"
                ));
            }
            Ok(Some((namespace, Some(spec))))
        }
        [_, _, third, ..] => Err(format!(
            "unexpected third column \"{third}\" (a line is: SOURCE [TARGET])"
        )),
        [] => Ok(None),
    }
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
    fn namespace_lines_are_read_with_their_target() {
        let text = "registry.k8s.io/*\nquay.io/ns/** harbor.example/ns\nnginx:1\n\
                    quay.io/x/* h.example/y:1\nquay.io/a*/b\n";
        let (entries, namespaces, errors) = read_list("l", text);
        assert_eq!(entries.len(), 1);
        let lines: Vec<String> = namespaces
            .iter()
            .map(NamespaceEntry::as_list_line)
            .collect();
        assert_eq!(
            lines,
            ["registry.k8s.io/*", "quay.io/ns/** harbor.example/ns"]
        );
        assert_eq!(namespaces[1].origin.line, 2);
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "l:4: the target \"h.example/y:1\" of namespace quay.io/x/* must be a \
                 repository without a tag or digest: its repositories go under it",
                "l:5: invalid namespace \"quay.io/a*/b\": '*' only ends a namespace line: \
                 REGISTRY[/PATH]/* for the repositories directly under it, /** for every depth",
            ]
        );
        // Where only single repositories are taken, a namespace line is refused.
        let (_, errors) = parse_list("l", "registry.k8s.io/*\n");
        assert_eq!(
            errors[0].to_string(),
            "l:1: a namespace line is not taken here"
        );
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
