//! Namespace lines: `registry.k8s.io/*` stands for every repository directly under
//! `registry.k8s.io`, `gcr.io/google-containers/**` for every repository at any depth under
//! `gcr.io/google-containers`. Which repositories those are is found out when the list is
//! planned (see `plan::namespace`); here the pattern is read and checked as a reference's
//! registry and path are, and a name a registry lists under it is checked before it is used.

use std::fmt;

use super::{Entry, TargetSpec};
use crate::docker_hub;
use crate::filter::FilterSpec;
use crate::model::Origin;
use crate::reference::{ImageRef, ReferenceError};

/// How deep under the namespace repositories are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Depth {
    /// `/*`: the repositories directly under it.
    Direct,
    /// `/**`: the repositories at every depth under it.
    All,
}

/// A namespace: a registry and a path (empty for the whole registry), and a depth.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    domain: String,
    path: String,
    pub depth: Depth,
}

impl Namespace {
    /// `text` read as a namespace pattern: `Ok(None)` when it is none (no trailing `/*` or
    /// `/**`), an error when it is one that cannot be. The part before the stars is read as
    /// a reference's name is (`bitnami/*` is on Docker Hub, `index.docker.io` is `docker.io`).
    pub fn parse(text: &str) -> Result<Option<Namespace>, String> {
        let (prefix, depth) = if let Some(prefix) = text.strip_suffix("/**") {
            (prefix, Depth::All)
        } else if let Some(prefix) = text.strip_suffix("/*") {
            (prefix, Depth::Direct)
        } else if text == "*" || text == "**" {
            return Err(
                "a namespace is REGISTRY/* or REGISTRY/PATH/** (e.g. registry.k8s.io/*)".to_owned(),
            );
        } else if text.contains('*') {
            return Err(
                "'*' only ends a namespace line: REGISTRY[/PATH]/* for the repositories \
                 directly under it, /** for every depth"
                    .to_owned(),
            );
        } else {
            return Ok(None);
        };
        if prefix.contains('*') {
            return Err(
                "'*' only ends a namespace line: REGISTRY[/PATH]/* for the repositories \
                 directly under it, /** for every depth"
                    .to_owned(),
            );
        }
        if prefix.is_empty() {
            return Err("a namespace needs a registry (e.g. registry.k8s.io/*)".to_owned());
        }
        // Two path components below it, so that Docker Hub's `library/` is never added: the
        // namespace is what comes before them.
        let probe = ImageRef::parse(&format!("{prefix}/x/y")).map_err(|e| e.to_string())?;
        let path = probe
            .path()
            .strip_suffix("x/y")
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let domain = probe.domain().to_owned();
        if domain == docker_hub::DOMAIN && path.is_empty() {
            return Err(
                "Docker Hub as a whole cannot be listed: name a namespace of it (e.g. \
                 docker.io/bitnami/*)"
                    .to_owned(),
            );
        }
        Ok(Some(Namespace {
            domain,
            path,
            depth,
        }))
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path under the registry; empty for the whole registry.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain` or `domain/path`, as image names write it.
    pub fn name(&self) -> String {
        match self.path.is_empty() {
            true => self.domain.clone(),
            false => format!("{}/{}", self.domain, self.path),
        }
    }

    /// Whether a repository at `relative` (its path under the namespace) is one the depth
    /// takes.
    pub fn takes(&self, relative: &str) -> bool {
        !relative.is_empty() && (self.depth == Depth::All || !relative.contains('/'))
    }

    /// The repository at `relative` under the namespace: checked as any reference (a name a
    /// registry lists may be anything); never a tag or a digest.
    pub fn repository(&self, relative: &str) -> Result<ImageRef, ReferenceError> {
        let name = format!("{}/{relative}", self.name());
        let repository = ImageRef::parse(&name)?;
        if !repository.is_whole_repository() || repository.repository() != name {
            return Err(ReferenceError::InvalidPathComponent {
                component: relative.to_owned(),
                reason: "is no repository name",
            });
        }
        Ok(repository)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stars = match self.depth {
            Depth::Direct => "*",
            Depth::All => "**",
        };
        write!(f, "{}/{stars}", self.name())
    }
}

/// A namespace line: where it comes from, its namespace, its target (a repository prefix the
/// repositories go under, when the input names one) and its tag filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEntry {
    pub origin: Origin,
    pub namespace: Namespace,
    /// A whole repository the namespace's repositories go under (`harbor.example/k8s` takes
    /// `registry.k8s.io/pause` to `harbor.example/k8s/pause`); scoped under `--dest` when none.
    pub explicit_target: Option<TargetSpec>,
    pub filter: Option<FilterSpec>,
    pub can_name_target: bool,
    /// The line's `signatures:` key (see [`Entry::signatures`]), for each of its repositories.
    pub signatures: Option<bool>,
}

impl NamespaceEntry {
    /// The entry for the repository at `relative` under the namespace, as if the input had
    /// named it: its target goes under the line's own.
    pub fn entry_for(&self, relative: &str) -> Result<Entry, ReferenceError> {
        let source = self.namespace.repository(relative)?;
        let explicit_target = match &self.explicit_target {
            None => None,
            Some(TargetSpec::Full(prefix)) => Some(TargetSpec::Full(ImageRef::parse(&format!(
                "{}/{relative}",
                prefix.repository()
            ))?)),
            Some(TargetSpec::UnderDest(path)) => {
                Some(TargetSpec::UnderDest(format!("{path}/{relative}")))
            }
        };
        Ok(Entry {
            origin: self.origin.clone(),
            source,
            explicit_target,
            filter: self.filter.clone(),
            can_name_target: self.can_name_target,
            signatures: self.signatures,
        })
    }

    /// The line as a list writes it: the pattern and the target, when there is one.
    pub fn as_list_line(&self) -> String {
        match &self.explicit_target {
            Some(target) => format!("{} {target}", self.namespace),
            None => self.namespace.to_string(),
        }
    }
}

/// Whether `source` (a list line's first word) is a namespace pattern, as a failed list
/// writes it.
pub fn is_pattern(source: &str) -> bool {
    source.ends_with("/*") || source.ends_with("/**")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_a_registry_and_a_depth() {
        type Parsed<'a> = Result<Option<(&'a str, Depth)>, &'a str>;
        let table: [(&str, Parsed); 14] = [
            ("registry.k8s.io/*", Ok(Some(("registry.k8s.io", Depth::Direct)))),
            (
                "gcr.io/google-containers/**",
                Ok(Some(("gcr.io/google-containers", Depth::All))),
            ),
            ("bitnami/*", Ok(Some(("docker.io/bitnami", Depth::Direct)))),
            (
                "index.docker.io/library/*",
                Ok(Some(("docker.io/library", Depth::Direct))),
            ),
            ("localhost:5000/ns/**", Ok(Some(("localhost:5000/ns", Depth::All)))),
            ("quay.io/coreos/etcd", Ok(None)),
            ("nginx:1.25", Ok(None)),
            ("*", Err("a namespace is REGISTRY/* or REGISTRY/PATH/** (e.g. registry.k8s.io/*)")),
            ("/*", Err("a namespace needs a registry (e.g. registry.k8s.io/*)")),
            ("quay.io/ns*/x", Err("'*' only ends a namespace line: REGISTRY[/PATH]/* for the repositories directly under it, /** for every depth")),
            ("quay.io/*/x/*", Err("'*' only ends a namespace line: REGISTRY[/PATH]/* for the repositories directly under it, /** for every depth")),
            ("docker.io/*", Err("Docker Hub as a whole cannot be listed: name a namespace of it (e.g. docker.io/bitnami/*)")),
            ("Quay.io/NS/*", Err("repository name must be lowercase")),
            (
                "quay.io/ns:1/*",
                Err("invalid repository path component \"ns:1\": only a-z, 0-9, '.', '_' and '-' are allowed"),
            ),
        ];
        for (text, expected) in table {
            let got = Namespace::parse(text).map(|ns| ns.map(|ns| (ns.name(), ns.depth)));
            let expected = expected
                .map(|ns| ns.map(|(name, depth)| (name.to_owned(), depth)))
                .map_err(str::to_owned);
            assert_eq!(got, expected, "{text}");
        }
        let ns = Namespace::parse("index.docker.io/library/**")
            .unwrap()
            .unwrap();
        assert_eq!(ns.to_string(), "docker.io/library/**");
    }

    #[test]
    fn listed_names_are_checked_and_taken_by_depth() {
        let direct = Namespace::parse("quay.io/ns/*").unwrap().unwrap();
        let all = Namespace::parse("quay.io/ns/**").unwrap().unwrap();
        assert!(direct.takes("a") && !direct.takes("a/b") && !direct.takes(""));
        assert!(all.takes("a") && all.takes("a/b/c"));
        assert_eq!(
            direct.repository("a/b").unwrap().to_string(),
            "quay.io/ns/a/b"
        );
        for bad in ["../x", "A", "a:1", "a@sha256:x", "a//b", "-a", "a b"] {
            assert!(direct.repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repository_goes_under_the_lines_target() {
        let entry = |target: Option<&str>| NamespaceEntry {
            origin: Origin {
                file: "l".into(),
                line: 3,
            },
            namespace: Namespace::parse("registry.k8s.io/**").unwrap().unwrap(),
            explicit_target: target.map(|t| TargetSpec::parse(t).unwrap()),
            filter: None,
            can_name_target: true,
            signatures: None,
        };
        let scoped = entry(None).entry_for("sig-storage/csi").unwrap();
        assert_eq!(scoped.source.to_string(), "registry.k8s.io/sig-storage/csi");
        assert_eq!(scoped.explicit_target, None);
        let full = entry(Some("harbor.example/k8s"))
            .entry_for("pause")
            .unwrap();
        assert_eq!(
            full.explicit_target.unwrap().to_string(),
            "harbor.example/k8s/pause"
        );
        let under = entry(Some("k8s")).entry_for("pause").unwrap();
        assert_eq!(under.explicit_target.unwrap().to_string(), "k8s/pause");
        assert_eq!(
            entry(Some("harbor.example/k8s")).as_list_line(),
            "registry.k8s.io/** harbor.example/k8s"
        );
        assert!(is_pattern("registry.k8s.io/**") && !is_pattern("nginx"));
    }
}
