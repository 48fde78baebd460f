//! Where each source goes. Pure: given the entries and the destination, computes every
//! target and rejects what cannot work (a scoped name skopeo could not create, two lines
//! writing the same target) before anything is copied.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::filter::FilterSpec;
use crate::input::{Entry, InputError, Origin};
use crate::reference::{ImageRef, ReferenceError, RepoPrefix};

/// Where images are mirrored to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A registry, with images scoped under this prefix.
    Registry(RepoPrefix),
    /// A local directory holding one OCI image layout per repository, scoped the same way.
    OciDir(PathBuf),
}

/// The place one job writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Registry(ImageRef),
    /// An OCI layout directory and the name (tag) the image gets inside it.
    Oci {
        layout: PathBuf,
        name: Option<String>,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Registry(reference) => write!(f, "{reference}"),
            Target::Oci { layout, name } => {
                write!(f, "oci:{}", layout.display())?;
                match name {
                    Some(name) => write!(f, ":{name}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A source and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    pub source: ImageRef,
    pub target: Target,
    /// True when the input named the target (second column) instead of the scoped mapping.
    pub explicit: bool,
    /// Tag filters of this entry, for whole repositories.
    pub filter: Option<FilterSpec>,
}

impl Job {
    /// The job as a line of the list format, so failed jobs can be fed straight back.
    pub fn as_list_line(&self) -> String {
        match (&self.target, self.explicit) {
            (Target::Registry(target), true) => format!("{} {target}", self.source),
            _ => self.source.to_string(),
        }
    }

    /// The same job narrowed to one tag of a whole-repository source.
    pub fn for_tag(&self, tag: &str) -> Result<Job, crate::reference::ReferenceError> {
        let target = match &self.target {
            Target::Registry(target) => Target::Registry(target.with_tag(tag)?),
            Target::Oci { layout, .. } => Target::Oci {
                layout: layout.clone(),
                name: Some(tag.to_owned()),
            },
        };
        Ok(Job {
            origin: self.origin.clone(),
            source: self.source.with_tag(tag)?,
            target,
            explicit: self.explicit,
            filter: None,
        })
    }
}

/// The OCI layout directory for a source under `root`: `root/<domain>/<path>`. A port's `:`
/// becomes `_` (`localhost_5000`): skopeo splits `oci:PATH:NAME` at the first colon.
pub fn oci_layout_for(root: &Path, source: &ImageRef) -> PathBuf {
    let mut layout = root.join(source.domain().replace(':', "_"));
    for component in source.path().split('/') {
        layout.push(component);
    }
    layout
}

/// The target for one entry.
pub fn target_for(entry: &Entry, destination: &Destination) -> Result<Target, String> {
    if let Some(explicit) = &entry.explicit_target {
        return explicit_target(&entry.source, explicit).map(Target::Registry);
    }
    match destination {
        Destination::Registry(prefix) => prefix
            .scoped(&entry.source)
            .map(Target::Registry)
            .map_err(|e| {
                let instead = match (&e, entry.can_name_target) {
                    (ReferenceError::ScopedDomainNotPathComponent { .. }, true) => {
                        "; give this image an explicit target (a second column: SOURCE TARGET)"
                    }
                    (ReferenceError::ScopedDomainNotPathComponent { .. }, false) => {
                        "; this file's format cannot name a target: list such images in a list \
                         file with an explicit target column (SOURCE TARGET)"
                    }
                    _ => "",
                };
                format!(
                    "cannot map \"{}\" under \"{prefix}\": {e}{instead}",
                    entry.source
                )
            }),
        Destination::OciDir(root) => Ok(Target::Oci {
            layout: oci_layout_for(root, &entry.source),
            name: entry.source.tag().map(str::to_owned),
        }),
    }
}

/// An explicit target without a tag takes the source's tag, as a mirror of `nginx:1.25` to
/// `harbor.example/base/nginx` is meant to be `…/nginx:1.25`, not `:latest`.
fn explicit_target(source: &ImageRef, target: &ImageRef) -> Result<ImageRef, String> {
    if source.is_whole_repository() {
        if !target.is_whole_repository() {
            return Err(format!(
                "the source \"{source}\" is a whole repository, so its target \"{target}\" must not have a tag or digest"
            ));
        }
        return Ok(target.clone());
    }
    if target.tag().is_some() || target.digest().is_some() {
        return Ok(target.clone());
    }
    match (source.tag(), source.digest()) {
        (Some(tag), _) => target.with_tag(tag).map_err(|e| e.to_string()),
        (None, Some(digest)) => target.with_digest(digest).map_err(|e| e.to_string()),
        (None, None) => Ok(target.clone()),
    }
}

/// Maps every entry, collecting all errors: unmappable entries and duplicate targets (naming
/// both lines).
pub fn map_all(entries: &[Entry], destination: &Destination) -> Result<Vec<Job>, Vec<InputError>> {
    let mut jobs = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    let mut seen: HashMap<Target, Origin> = HashMap::new();
    for entry in entries {
        let target = match target_for(entry, destination) {
            Ok(target) => target,
            Err(reason) => {
                errors.push(InputError::line(entry.origin.clone(), reason));
                continue;
            }
        };
        if let Some(first) = seen.get(&target) {
            errors.push(InputError::line(
                entry.origin.clone(),
                format!("target \"{target}\" is also the target of {first}"),
            ));
            continue;
        }
        seen.insert(target.clone(), entry.origin.clone());
        jobs.push(Job {
            origin: entry.origin.clone(),
            source: entry.source.clone(),
            target,
            explicit: entry.explicit_target.is_some(),
            filter: entry.filter.clone(),
        });
    }
    if errors.is_empty() {
        Ok(jobs)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_list;

    fn registry(prefix: &str) -> Destination {
        Destination::Registry(RepoPrefix::parse(prefix).unwrap())
    }

    fn targets(list: &str, destination: &Destination) -> Result<Vec<String>, Vec<String>> {
        let (entries, errors) = parse_list("list.txt", list);
        assert!(errors.is_empty(), "{errors:?}");
        map_all(&entries, destination)
            .map(|jobs| jobs.iter().map(|j| j.target.to_string()).collect())
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn scoped_targets_keep_tags_and_digests() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let list =
            format!("nginx:1.25.3\nk8s.gcr.io/pause:3.6\nredis@{digest}\nquay.io/coreos/etcd\n");
        let got = targets(&list, &registry("harbor.local/third")).unwrap();
        assert_eq!(
            got,
            [
                "harbor.local/third/docker.io/library/nginx:1.25.3".to_owned(),
                "harbor.local/third/k8s.gcr.io/pause:3.6".to_owned(),
                format!("harbor.local/third/docker.io/library/redis@{digest}"),
                "harbor.local/third/quay.io/coreos/etcd".to_owned(),
            ]
        );
    }

    #[test]
    fn explicit_targets_win_and_inherit_the_tag() {
        let list =
            "nginx:1.25.3 harbor.example/base/nginx:stable\nredis:7 harbor.example/base/redis\n";
        let got = targets(list, &registry("harbor.local/third")).unwrap();
        assert_eq!(
            got,
            [
                "harbor.example/base/nginx:stable",
                "harbor.example/base/redis:7"
            ]
        );
    }

    #[test]
    fn oci_directory_targets_mirror_the_scoped_layout() {
        let got = targets(
            "nginx:1.25\nquay.io/a/b\nlocalhost:5000/c:1\n",
            &Destination::OciDir("mirror".into()),
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "oci:mirror/docker.io/library/nginx:1.25",
                "oci:mirror/quay.io/a/b",
                "oci:mirror/localhost_5000/c:1"
            ]
        );
    }

    #[test]
    fn duplicate_targets_name_both_lines() {
        let list = "nginx:1.25\n# same image, other spelling\ndocker.io/library/nginx:1.25\n";
        let errors = targets(list, &registry("harbor.local/third")).unwrap_err();
        assert_eq!(
            errors,
            ["list.txt:3: target \"harbor.local/third/docker.io/library/nginx:1.25\" is also the target of list.txt:1"]
        );
    }

    #[test]
    fn whole_repository_sources_need_whole_repository_targets() {
        let errors = targets(
            "nginx harbor.example/base/nginx:1\n",
            &registry("h.example/x"),
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with(
                "list.txt:1: the source \"docker.io/library/nginx\" is a whole repository"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn scoped_names_skopeo_cannot_create_are_rejected_up_front() {
        let errors =
            targets("localhost:5000/foo:1\n", &registry("harbor.local/third")).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("list.txt:1: cannot map \"localhost:5000/foo:1\"")
                && errors[0].ends_with(
                    "; give this image an explicit target (a second column: SOURCE TARGET)"
                ),
            "{errors:?}"
        );
    }

    #[test]
    fn a_yaml_entry_that_cannot_be_scoped_is_told_what_works() {
        let yaml = "localhost:5000:\n  images:\n    foo: [\"1\"]\n";
        let (entries, _, errors) = crate::input::parse_skopeo_yaml("s.yaml", yaml);
        assert!(errors.is_empty(), "{errors:?}");
        let errors = map_all(&entries, &registry("harbor.local/third")).unwrap_err();
        let message = errors[0].to_string();
        assert!(
            message.starts_with("s.yaml:3: cannot map \"localhost:5000/foo:1\"")
                && message.contains("list such images in a list file")
                && !message.contains("give this image an explicit target"),
            "{message}"
        );
    }

    #[test]
    fn failed_jobs_round_trip_as_list_lines() {
        let (entries, _) = parse_list("l", "nginx:1.25 harbor.example/base/nginx\nredis:7\n");
        let jobs = map_all(&entries, &registry("h.example/x")).unwrap();
        assert_eq!(
            jobs[0].as_list_line(),
            "docker.io/library/nginx:1.25 harbor.example/base/nginx:1.25"
        );
        assert_eq!(jobs[1].as_list_line(), "docker.io/library/redis:7");
    }
}
