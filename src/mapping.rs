//! Where each source goes. Pure: given the entries and the destination, computes every
//! target and rejects what cannot work (a scoped name skopeo could not create, two lines
//! writing the same target) before anything is copied.

use std::path::{Path, PathBuf};

use crate::input::{Entry, InputError, TargetSpec};
use crate::model::{Destination, Job, Target};
use crate::reference::{ImageRef, ReferenceError};

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
        let named = match (explicit, destination) {
            (TargetSpec::Full(target), _) => target.clone(),
            (TargetSpec::UnderDest(path), Destination::Registry(prefix)) => {
                ImageRef::parse(&format!("{prefix}/{path}")).map_err(|e| {
                    format!("cannot place target \"{path}\" under \"{prefix}\": {e}")
                })?
            }
            (TargetSpec::UnderDest(path), Destination::OciDir(_)) => {
                return Err(format!(
                    "target \"{path}\" names no registry host: write it with one \
                     (e.g. harbor.example/{path}), or give --dest PREFIX to place it under"
                ))
            }
        };
        let target = explicit_target(&entry.source, &named)?;
        if target == entry.source {
            return Err(format!(
                "target \"{explicit}\" is the source itself; a mirror needs another place"
            ));
        }
        return Ok(Target::Registry(target));
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
            digest: entry.source.digest().map(str::to_owned),
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

/// Every entry mapped: the jobs, the entries that cannot be mapped (and two sources written to
/// one target, naming both lines), and warnings (an entry repeated with the same source and
/// target, as two overlapping lists do, is copied once).
#[derive(Debug, Default)]
pub struct Mapped {
    pub jobs: Vec<Job>,
    pub errors: Vec<InputError>,
    pub warnings: Vec<InputError>,
}

/// Maps every entry to one destination, collecting every problem.
#[cfg(test)]
pub fn map_all(entries: &[Entry], destination: &Destination) -> Mapped {
    map_each(entries, std::slice::from_ref(destination))
}

/// Maps every entry to each of `destinations`: one job per entry and destination, entry by
/// entry, an entry's jobs in the order of the destinations. An entry that cannot be mapped is
/// one error, however many destinations. With several destinations, a target that names its
/// own registry is an error: it is one place, and cannot be each destination's.
pub fn map_each(entries: &[Entry], destinations: &[Destination]) -> Mapped {
    let mut errors = Vec::new();
    let mut jobs = Vec::with_capacity(entries.len() * destinations.len());
    for entry in entries {
        if let (Some(TargetSpec::Full(target)), true) =
            (&entry.explicit_target, destinations.len() > 1)
        {
            let reason = format!(
                "target \"{target}\" names its registry, so it cannot go to each of the {} \
                 destinations: write it without the registry host (it is then placed under each \
                 --dest), or mirror it in a run of its own",
                destinations.len()
            );
            errors.push(InputError::line(entry.origin.clone(), reason));
            continue;
        }
        for destination in destinations {
            match target_for(entry, destination) {
                Ok(target) => jobs.push(Job {
                    origin: entry.origin.clone(),
                    source: entry.source.clone(),
                    target,
                    explicit: entry.explicit_target.is_some(),
                    filter: entry.filter.clone().map(Box::new),
                    signatures: entry.signatures,
                }),
                Err(reason) => {
                    errors.push(InputError::line(entry.origin.clone(), reason));
                    break;
                }
            }
        }
    }
    let mut mapped = one_per_target(jobs);
    errors.append(&mut mapped.errors);
    mapped.errors = errors;
    mapped
}

/// Keeps the first job for each target, in order: a later one with the same source is a
/// repeat (a warning: it is copied once), with another source an error naming both lines.
/// Run on the mapped entries, and again once whole repositories are expanded to their tags, so
/// that `nginx:1.25.3` in one list and `nginx` in another make one copy and one entry.
pub fn one_per_target(mut jobs: Vec<Job>) -> Mapped {
    use std::hash::BuildHasher;
    // Targets found twice by sorting their hashes, not by a map holding a copy of every
    // target: a long list is not held twice.
    let hasher = std::hash::RandomState::new();
    let mut keyed: Vec<(u64, usize)> = jobs
        .iter()
        .enumerate()
        .map(|(index, job)| (hasher.hash_one(&job.target), index))
        .collect();
    keyed.sort_unstable();
    // Each later job with the target of an earlier one, and the first job with it.
    let mut later: Vec<(usize, usize)> = Vec::new();
    for same_hash in keyed.chunk_by(|a, b| a.0 == b.0) {
        for (at, &(_, index)) in same_hash.iter().enumerate().skip(1) {
            if let Some(&(_, first)) = same_hash[..at]
                .iter()
                .find(|(_, earlier)| jobs[*earlier].target == jobs[index].target)
            {
                later.push((index, first));
            }
        }
    }
    drop(keyed);
    later.sort_unstable();
    let mut mapped = Mapped::default();
    let mut dropped = vec![false; jobs.len()];
    for (index, first) in later {
        let (job, first) = (&jobs[index], &jobs[first]);
        let (target, source) = (&job.target, &first.source);
        let (list, reason) = if *source == job.source {
            (
                &mut mapped.warnings,
                format!(
                    "\"{source}\" to \"{target}\" is also at {}; copied once",
                    first.origin
                ),
            )
        } else {
            (
                &mut mapped.errors,
                format!("target \"{target}\" is also the target of {}", first.origin),
            )
        };
        list.push(InputError::line(job.origin.clone(), reason));
        dropped[index] = true;
    }
    let mut index = 0;
    jobs.retain(|_| {
        index += 1;
        !dropped[index - 1]
    });
    mapped.jobs = jobs;
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse_list;
    use crate::reference::RepoPrefix;

    fn registry(prefix: &str) -> Destination {
        Destination::Registry(RepoPrefix::parse(prefix).unwrap())
    }

    fn targets(list: &str, destination: &Destination) -> Result<Vec<String>, Vec<String>> {
        let (entries, errors) = parse_list("list.txt", list);
        assert!(errors.is_empty(), "{errors:?}");
        let mapped = map_all(&entries, destination);
        if mapped.errors.is_empty() {
            Ok(mapped.jobs.iter().map(|j| j.target.to_string()).collect())
        } else {
            Err(mapped.errors.iter().map(ToString::to_string).collect())
        }
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
    fn two_sources_for_one_target_name_both_lines_and_a_repeat_is_a_warning() {
        let list = "nginx:1.25\n# same image, other spelling\ndocker.io/library/nginx:1.25\n\
                    quay.io/a/nginx:1 harbor.local/third/docker.io/library/nginx:1.25\n";
        let (entries, _) = parse_list("list.txt", list);
        let mapped = map_all(&entries, &registry("harbor.local/third"));
        let shown = |e: &[InputError]| e.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(mapped.jobs.len(), 1);
        let warnings: Vec<String> = mapped.warnings.iter().map(InputError::as_warning).collect();
        assert_eq!(
            warnings,
            ["list.txt:3: warning: \"docker.io/library/nginx:1.25\" to \
              \"harbor.local/third/docker.io/library/nginx:1.25\" is also at list.txt:1; copied once"]
        );
        // In a log line (`WARN …`) it is not called a warning a second time.
        assert_eq!(
            shown(&mapped.warnings),
            ["list.txt:3: \"docker.io/library/nginx:1.25\" to \
              \"harbor.local/third/docker.io/library/nginx:1.25\" is also at list.txt:1; copied once"]
        );
        assert_eq!(
            shown(&mapped.errors),
            ["list.txt:4: target \"harbor.local/third/docker.io/library/nginx:1.25\" is also the target of list.txt:1"]
        );
    }

    #[test]
    fn a_target_without_a_registry_goes_under_the_destination_never_to_docker_hub() {
        let list = "redis:7.2.4 mynginx\nnginx:1.25 team/web:stable\nquay.io/a/b:1 h.example/a/b\n";
        assert_eq!(
            targets(list, &registry("reg.example/third")).unwrap(),
            [
                "reg.example/third/mynginx:7.2.4",
                "reg.example/third/team/web:stable",
                "h.example/a/b:1"
            ]
        );
        assert_eq!(
            targets("redis:7.2.4 mynginx\n", &registry("reg.example")).unwrap(),
            ["reg.example/mynginx:7.2.4"]
        );
        // Without --dest there is nothing to put it under.
        let errors = targets(
            "redis:7.2.4 mynginx\n",
            &Destination::OciDir("mirror".into()),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            [
                "list.txt:1: target \"mynginx\" names no registry host: write it with one \
              (e.g. harbor.example/mynginx), or give --dest PREFIX to place it under"
            ]
        );
    }

    #[test]
    fn a_target_equal_to_its_source_is_an_error() {
        for list in [
            "quay.io/a/b:1 quay.io/a/b\n",
            "quay.io/a/b:1 quay.io/a/b:1\n",
            "quay.io/a/b quay.io/a/b\n",
            "nginx:1 docker.io/library/nginx\n",
        ] {
            let errors = targets(list, &registry("reg.example/third")).unwrap_err();
            assert_eq!(errors.len(), 1, "{list}");
            assert!(
                errors[0].contains("is the source itself"),
                "{list}: {errors:?}"
            );
        }
    }

    #[test]
    fn digest_pins_of_one_repository_share_its_oci_layout() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let list = format!("nginx@sha256:{a}\nnginx@sha256:{b}\nnginx:1.25\n");
        assert_eq!(
            targets(&list, &Destination::OciDir("mirror".into())).unwrap(),
            [
                format!("oci:mirror/docker.io/library/nginx@sha256:{a}"),
                format!("oci:mirror/docker.io/library/nginx@sha256:{b}"),
                "oci:mirror/docker.io/library/nginx:1.25".to_owned(),
            ]
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
        let errors = map_all(&entries, &registry("harbor.local/third")).errors;
        let message = errors[0].to_string();
        assert!(
            message.starts_with("s.yaml:3: cannot map \"localhost:5000/foo:1\"")
                && message.contains("list such images in a list file")
                && !message.contains("give this image an explicit target"),
            "{message}"
        );
    }

    #[test]
    fn several_destinations_each_receive_every_entry_in_turn() {
        let destinations = [registry("a.example/m"), registry("b.example:5000")];
        let list =
            "nginx:1.25\nredis:7 cache/redis\nlocalhost:5000/foo:1\nquay.io/x/y:1 h.example/x/y\n";
        let (entries, errors) = parse_list("list.txt", list);
        assert!(errors.is_empty(), "{errors:?}");
        let mapped = map_each(&entries, &destinations);
        let targets: Vec<String> = mapped.jobs.iter().map(|j| j.target.to_string()).collect();
        assert_eq!(
            targets,
            [
                "a.example/m/docker.io/library/nginx:1.25",
                "b.example:5000/docker.io/library/nginx:1.25",
                "a.example/m/cache/redis:7",
                "b.example:5000/cache/redis:7",
            ]
        );
        let errors: Vec<String> = mapped.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "list.txt:3: cannot map \"localhost:5000/foo:1\" under \"a.example/m\""
            ),
            "one error for the entry, not one per destination: {errors:?}"
        );
        assert_eq!(
            errors[1],
            "list.txt:4: target \"h.example/x/y\" names its registry, so it cannot go to \
             each of the 2 destinations: write it without the registry host (it is then placed \
             under each --dest), or mirror it in a run of its own"
        );
        // One destination: a target with its own registry is that entry's place.
        let one = map_each(&entries[3..], &destinations[..1]);
        assert!(one.errors.is_empty(), "{:?}", one.errors);
        assert_eq!(one.jobs[0].target.to_string(), "h.example/x/y:1");
    }

    #[test]
    fn failed_jobs_round_trip_as_list_lines() {
        let (entries, _) = parse_list("l", "nginx:1.25 harbor.example/base/nginx\nredis:7\n");
        let jobs = map_all(&entries, &registry("h.example/x")).jobs;
        assert_eq!(
            jobs[0].as_list_line(),
            "docker.io/library/nginx:1.25 harbor.example/base/nginx:1.25"
        );
        assert_eq!(
            jobs[1].as_list_line(),
            "docker.io/library/redis:7 h.example/x/docker.io/library/redis:7"
        );
        let oci = map_all(&entries[1..], &Destination::OciDir("m".into())).jobs;
        assert_eq!(oci[0].as_list_line(), "docker.io/library/redis:7");
        // A result keeps its line as little as it can, and gives back the job's own.
        for job in jobs.iter().chain(&oci) {
            let error = crate::model::ImageError::new(crate::model::FailureKind::Other, "x");
            let result = crate::model::ImageResult::failed(job, error, 1, Default::default());
            assert_eq!(result.list_line(), job.as_list_line());
        }
    }
}
