//! Namespace lines turned into whole repositories: `registry.k8s.io/*` lists the repositories
//! directly under `registry.k8s.io`, `gcr.io/google-containers/**` those at every depth, each
//! then planned like a whole-repository line (its tags listed, filtered, looked up).
//!
//! How a namespace is listed is chosen per registry: Docker Hub's through its Hub API (it has
//! no catalog); any other registry first by Google's `child` field (one request for the
//! namespace: gcr.io, registry.k8s.io's backends, Artifact Registry), else by its catalog
//! (registry:2, Harbor, JFrog, Nexus: every repository of the registry, filtered to the
//! namespace, read once per registry however many lines name it); a registry with neither is
//! an error naming the ways tried. Every name a registry lists is checked as a repository name
//! before it is used; `--exclude-repos` drops names under the namespace it matches; a listing
//! past `--max-repos` (`--max-catalog` for a catalog) fails its line.
//!
//! A repository that a namespace no longer lists but the destination still holds is said
//! ([`gone`]), never deleted.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;
use tokio::task::JoinSet;
use tracing::info;

use crate::docker_hub;
use crate::input::namespace::{Depth, Namespace};
use crate::input::NamespaceEntry;
use crate::mapping::target_for;
use crate::model::{
    Counts, Destination, FailureKind, ImageError, ImageResult, Job, RetryPolicy, Side, Status,
    Target,
};
use crate::registry::listing::{Catalog, Children, Listing};
use crate::registry::{RegistryClient, RegistryError};
use crate::shard::Shard;

/// How deep `**` goes below its namespace, at most, in Google's listings.
pub const MAX_DEPTH: usize = 8;

/// What planning a namespace needs from the configuration.
#[derive(Debug, Clone)]
pub struct NamespaceOptions {
    /// `--exclude-repos`: names under the namespace to drop (the whole name must match).
    pub exclude: Option<Regex>,
    /// Repositories one namespace may list (`--max-repos`).
    pub max_repos: usize,
    /// Entries of a registry's catalog read at most (`--max-catalog`).
    pub max_catalog: usize,
}

impl Default for NamespaceOptions {
    fn default() -> NamespaceOptions {
        NamespaceOptions {
            exclude: None,
            max_repos: NamespaceOptions::DEFAULT_MAX_REPOS,
            max_catalog: NamespaceOptions::DEFAULT_MAX_CATALOG,
        }
    }
}

impl NamespaceOptions {
    pub const DEFAULT_MAX_REPOS: usize = 10_000;
    pub const DEFAULT_MAX_CATALOG: usize = 100_000;

    /// `--exclude-repos REGEX`, anchored.
    pub fn exclude(pattern: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$"))
    }
}

/// How a namespace's repositories were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// Docker Hub's Hub API.
    HubApi,
    /// Google's `child` field, with this many listings.
    Children { listings: usize },
    /// The registry's catalog, in this many pages.
    Catalog { pages: usize },
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::HubApi => f.write_str("the Hub API's namespace listing"),
            Method::Children { listings } => write!(
                f,
                "Google's child field of GET /v2/…/tags/list ({})",
                crate::words::count(listings, "listing", "listings")
            ),
            Method::Catalog { pages } => write!(
                f,
                "GET /v2/_catalog ({})",
                crate::words::count(pages, "page", "pages")
            ),
        }
    }
}

/// One namespace line, listed.
#[derive(Debug, Clone)]
pub struct Expanded {
    pub entry: NamespaceEntry,
    pub method: Method,
    /// The repositories taken, by their path under the namespace, sorted.
    pub repositories: Vec<String>,
    /// Those `--exclude-repos` dropped.
    pub excluded: Vec<String>,
    /// Names listed that are no repository names (as listed: escape them to print).
    pub refused: Vec<String>,
}

/// Every namespace line, listed or failed.
#[derive(Debug, Default)]
pub struct Discovery {
    pub expanded: Vec<Expanded>,
    pub failed: Vec<(NamespaceEntry, ImageError)>,
}

/// Lists every namespace line's repositories (transient failures retried under `retry`, as a
/// tag listing is).
pub async fn discover(
    client: &Arc<RegistryClient>,
    options: &NamespaceOptions,
    retry: &RetryPolicy,
    entries: &[NamespaceEntry],
) -> Discovery {
    let mut discovery = Discovery::default();
    let mut catalogs: HashMap<String, Result<Arc<Catalog>, ImageError>> = HashMap::new();
    for entry in entries {
        let listed = list(client, options, retry, &entry.namespace, &mut catalogs).await;
        match listed {
            Ok((method, names)) => {
                let expanded = keep(entry, options, method, names);
                info!(
                    "{}: {}: {} by {}{}",
                    entry.origin,
                    entry.namespace,
                    crate::words::count(expanded.repositories.len(), "repository", "repositories"),
                    expanded.method,
                    match expanded.excluded.len() {
                        0 => String::new(),
                        n => format!(", {n} dropped by --exclude-repos"),
                    }
                );
                discovery.expanded.push(expanded);
            }
            Err(error) => discovery.failed.push((entry.clone(), error)),
        }
    }
    discovery
}

/// The names listed under `entry`'s namespace split into those taken, those `--exclude-repos`
/// drops and those that are no repository names.
fn keep(
    entry: &NamespaceEntry,
    options: &NamespaceOptions,
    method: Method,
    names: BTreeSet<String>,
) -> Expanded {
    let mut expanded = Expanded {
        entry: entry.clone(),
        method,
        repositories: Vec::new(),
        excluded: Vec::new(),
        refused: Vec::new(),
    };
    for name in names {
        if entry.namespace.repository(&name).is_err() {
            expanded.refused.push(name);
        } else if options
            .exclude
            .as_ref()
            .is_some_and(|re| re.is_match(&name))
        {
            expanded.excluded.push(name);
        } else {
            expanded.repositories.push(name);
        }
    }
    expanded
}

/// The whole-repository jobs of the namespaces listed, mapped to each of `destinations`, in
/// line order: one group per repository, its jobs in the order of the destinations (a shard
/// takes a group whole, as it takes an entry's). What cannot be mapped (a name too long for a
/// destination) is said and left out.
pub fn jobs(expanded: &[Expanded], destinations: &[Destination]) -> (Vec<Vec<Job>>, Vec<String>) {
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for namespace in expanded {
        for relative in &namespace.repositories {
            let mapped = namespace
                .entry
                .entry_for(relative)
                .map_err(|e| e.to_string())
                .and_then(|entry| {
                    destinations
                        .iter()
                        .map(|destination| {
                            Ok(Job {
                                origin: entry.origin.clone(),
                                source: entry.source.clone(),
                                target: target_for(&entry, destination)?,
                                explicit: entry.explicit_target.is_some(),
                                filter: entry.filter.clone().map(Box::new),
                                signatures: entry.signatures,
                            })
                        })
                        .collect::<Result<Vec<Job>, String>>()
                });
            match mapped {
                Ok(group) => groups.push(group),
                Err(reason) => problems.push(format!(
                    "{}: {}: {relative}: {reason}; left out",
                    namespace.entry.origin, namespace.entry.namespace
                )),
            }
        }
    }
    (groups, problems)
}

/// What a namespace line's repositories map to, checked before anything is listed: a problem
/// (a source that cannot be scoped, a target that is no prefix) is the line's input error.
pub fn check_target(entry: &NamespaceEntry, destination: &Destination) -> Result<(), String> {
    let example = entry.entry_for("x").map_err(|e| e.to_string())?;
    target_for(&example, destination)
        .map(drop)
        .map_err(|reason| reason.replace(&example.source.to_string(), &entry.namespace.to_string()))
}

/// The prefix a namespace line's repositories land under (a repository name, or an OCI
/// layout directory): the target of its repository `x` without the `x`.
fn target_prefix(entry: &NamespaceEntry, destination: &Destination) -> Option<String> {
    let example = entry.entry_for("x").ok()?;
    match target_for(&example, destination).ok()? {
        Target::Registry(target) => Some(target.repository().strip_suffix("/x")?.to_owned()),
        Target::Oci { layout, .. } => Some(layout.parent()?.display().to_string()),
    }
}

/// Where a namespace line's repositories go, as a pattern: `harbor.example/third/quay.io/ns/*`,
/// `oci:mirror/registry.k8s.io/**`.
pub fn target_pattern(entry: &NamespaceEntry, destination: &Destination) -> String {
    let stars = match entry.namespace.depth {
        Depth::Direct => "*",
        Depth::All => "**",
    };
    let prefix = target_prefix(entry, destination).unwrap_or_default();
    match destination {
        Destination::Registry(_) => format!("{prefix}/{stars}"),
        Destination::OciDir(_) => format!("oci:{prefix}/{stars}"),
    }
}

/// The result of a namespace line that could not be listed: failed with `error`, as a list
/// line that feeds it back (its target written out for a registry, as a failed list's lines
/// are).
pub fn failed_result(
    entry: &NamespaceEntry,
    error: ImageError,
    destination: &Destination,
) -> ImageResult {
    let prefix = target_prefix(entry, destination).unwrap_or_default();
    let target = target_pattern(entry, destination);
    let list_line = match destination {
        Destination::Registry(_) => format!("{} {prefix}", entry.namespace),
        Destination::OciDir(_) => entry.as_list_line(),
    };
    ImageResult {
        origin: entry.origin.clone(),
        source: entry.namespace.to_string(),
        target,
        line: crate::model::ListLine::Written(list_line),
        status: Status::Failed,
        digest: None,
        counts: Counts::default(),
        attempts: 0,
        duration: std::time::Duration::ZERO,
        error: Some(Box::new(error)),
        platform: None,
        artifacts: None,
    }
}

/// Lists `namespace`: its relative names and how they were found.
async fn list(
    client: &Arc<RegistryClient>,
    options: &NamespaceOptions,
    retry: &RetryPolicy,
    namespace: &Namespace,
    catalogs: &mut HashMap<String, Result<Arc<Catalog>, ImageError>>,
) -> Result<(Method, BTreeSet<String>), ImageError> {
    let name = namespace.name();
    let failed = |error: ImageError, attempts: u32| {
        let message = format!(
            "could not list the repositories of {namespace} ({}), so nothing was copied for \
             it: {}",
            crate::words::count(attempts, "attempt", "attempts"),
            error.message
        );
        error.reworded(message)
    };
    if namespace.domain() == docker_hub::DOMAIN {
        if namespace.path().contains('/') {
            return Err(ImageError::new(
                FailureKind::Other,
                format!(
                    "{namespace}: Docker Hub's namespaces are one level deep (docker.io/NAME/*)"
                ),
            ));
        }
        let names = retrying(retry, &name, || {
            client.hub_repositories(namespace.path(), options.max_repos)
        })
        .await
        .map_err(|(e, n)| failed(e, n))?;
        let names = names.into_iter().collect();
        return Ok((Method::HubApi, names));
    }
    let children = retrying(retry, &name, || client.children(Side::Source, &name))
        .await
        .map_err(|(e, n)| failed(e, n))?;
    let not_google = match children {
        Listing::Found(root) => {
            return walk(client, options, retry, namespace, root)
                .await
                .map_err(|(e, n)| failed(e, n));
        }
        Listing::Unsupported(why) => why,
    };
    let host = client
        .endpoint_host(Side::Source, &name)
        .unwrap_or_default();
    if !catalogs.contains_key(&host) {
        let read = retrying(retry, &name, || {
            client.catalog(Side::Source, &name, options.max_catalog)
        })
        .await
        .map_err(|(e, n)| failed(e, n))
        .and_then(|listing| match listing {
            Listing::Found(catalog) => Ok(Arc::new(catalog)),
            Listing::Unsupported(why) => {
                let path = client
                    .registry_of(Side::Source, &name)
                    .map(|(_, repository)| repository)
                    .unwrap_or_default();
                let listed = match path.as_str() {
                    "" => "GET /v2/tags/list".to_owned(),
                    path => format!("GET /v2/{path}/tags/list"),
                };
                Err(ImageError::new(
                    FailureKind::Other,
                    format!(
                        "{host} offers no way to list the repositories of {namespace}: \
                         {listed} answered {not_google} (no Google registry's child field), \
                         GET /v2/_catalog answered {why} (no catalog), and it is not Docker \
                         Hub (the Hub API); list its repositories one per line instead"
                    ),
                ))
            }
        });
        catalogs.insert(host.clone(), read);
    }
    let catalog = catalogs[&host].clone()?;
    // The catalog names repositories on the host ferry talks to: under a registries.conf
    // redirect, the namespace's path there.
    let (_, under) = client
        .registry_of(Side::Source, &format!("{name}/x"))
        .map_err(|e| e.image_error(Side::Source))?;
    let under = under.strip_suffix('x').unwrap_or_default().to_owned();
    let names: BTreeSet<String> = catalog
        .repositories
        .iter()
        .filter_map(|listed| listed.strip_prefix(&under))
        .filter(|relative| namespace.takes(relative))
        .map(str::to_owned)
        .collect();
    if names.len() > options.max_repos {
        return Err(ImageError::new(
            FailureKind::Other,
            format!(
                "{namespace} lists more than --max-repos {} repositories; raise --max-repos, \
                 or name a narrower namespace",
                options.max_repos
            ),
        ));
    }
    Ok((
        Method::Catalog {
            pages: catalog.pages,
        },
        names,
    ))
}

/// Google's listings below `namespace`, from its own (`root`): with `*` each name one level
/// below that has tags, with `**` every name at any depth (to [`MAX_DEPTH`]) that has. The
/// tags read are kept for the repositories' own tag listing, which then asks nothing.
async fn walk(
    client: &Arc<RegistryClient>,
    options: &NamespaceOptions,
    retry: &RetryPolicy,
    namespace: &Namespace,
    root: Children,
) -> Result<(Method, BTreeSet<String>), (ImageError, u32)> {
    let mut names = BTreeSet::new();
    let mut listings = 1;
    let mut level: Vec<String> = root.children;
    let mut depth = 1;
    while !level.is_empty() {
        let mut next = Vec::new();
        let mut lookups = JoinSet::new();
        for relative in level {
            // A name that is no repository name is never asked about (nor put in a URL):
            // it is kept to be said.
            if namespace.repository(&relative).is_err() {
                names.insert(relative);
                continue;
            }
            listings += 1;
            if listings > options.max_repos + 1 {
                let error = ImageError::new(
                    FailureKind::Other,
                    format!(
                        "{namespace} takes more than --max-repos {} listings of Google's \
                         child field; raise --max-repos, or name a narrower namespace",
                        options.max_repos
                    ),
                );
                return Err((error, 1));
            }
            let client = Arc::clone(client);
            let name = format!("{}/{relative}", namespace.name());
            let retry = *retry;
            lookups.spawn(async move {
                let listed = retrying(&retry, &name, || client.children(Side::Source, &name)).await;
                (relative, name, listed)
            });
        }
        while let Some(joined) = lookups.join_next().await {
            let (relative, name, listed) = joined.expect("a listing task panicked");
            let Listing::Found(children) = listed? else {
                continue;
            };
            if !children.tags.is_empty() {
                client.remember_tags(&name, children.tags);
                names.insert(relative.clone());
            }
            if namespace.depth == Depth::All && depth < MAX_DEPTH {
                next.extend(
                    children
                        .children
                        .into_iter()
                        .map(|child| format!("{relative}/{child}")),
                );
            }
        }
        if names.len() > options.max_repos {
            let error = ImageError::new(
                FailureKind::Other,
                format!(
                    "{namespace} lists more than --max-repos {} repositories; raise \
                     --max-repos, or name a narrower namespace",
                    options.max_repos
                ),
            );
            return Err((error, 1));
        }
        level = next;
        depth += 1;
    }
    Ok((Method::Children { listings }, names))
}

/// `call`, tried again after a transient failure under `retry`; the error, and the attempts it
/// took.
async fn retrying<T, F, Fut>(
    retry: &RetryPolicy,
    name: &str,
    call: F,
) -> Result<T, (ImageError, u32)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match call().await {
            Ok(found) => return Ok(found),
            Err(e) => e.image_error(Side::Source),
        };
        if !error.retryable || attempt > retry.retries {
            return Err((error, attempt));
        }
        let delay = retry.backoff(attempt, error.kind, crate::model::jitter());
        info!(
            "listing {name} failed ({}: {}); retrying in {:.1}s",
            error.kind,
            error.message,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
    }
}

/// Says which repositories the destination holds under a namespace line's target that the
/// namespace no longer lists: they are kept (ferry never deletes), and said so, by the shard
/// their target belongs to. The destination is asked once per registry (its catalog) or
/// looked at (OCI layouts); one that cannot tell is said at `-v`.
pub async fn gone(
    client: &Arc<RegistryClient>,
    options: &NamespaceOptions,
    destination: &Destination,
    shard: Option<Shard>,
    discovery: &Discovery,
) -> Vec<String> {
    let mut said = Vec::new();
    let mut catalogs: HashMap<String, Option<Arc<Catalog>>> = HashMap::new();
    for expanded in &discovery.expanded {
        let entry = &expanded.entry;
        let Some(prefix) = target_prefix(entry, destination) else {
            continue;
        };
        let held: BTreeSet<String> = match destination {
            Destination::Registry(_) => {
                let name = prefix.clone();
                let Some(host) = client.endpoint_host(Side::Destination, &name) else {
                    continue;
                };
                if !catalogs.contains_key(&host) {
                    let read = client
                        .catalog(Side::Destination, &name, options.max_catalog)
                        .await;
                    let read = match read {
                        Ok(Listing::Found(catalog)) => Some(Arc::new(catalog)),
                        Ok(Listing::Unsupported(why)) => {
                            info!("{host} lists no catalog ({why}): which repositories a namespace no longer lists is not told");
                            None
                        }
                        Err(e) => {
                            info!(
                                "{e}: which repositories a namespace no longer lists is not told"
                            );
                            None
                        }
                    };
                    catalogs.insert(host.clone(), read);
                }
                let Some(catalog) = catalogs[&host].clone() else {
                    continue;
                };
                let under = match client.registry_of(Side::Destination, &format!("{name}/x")) {
                    Ok((_, repository)) => {
                        repository.strip_suffix('x').unwrap_or_default().to_owned()
                    }
                    Err(_) => continue,
                };
                catalog
                    .repositories
                    .iter()
                    .filter_map(|listed| listed.strip_prefix(&under))
                    .map(str::to_owned)
                    .collect()
            }
            Destination::OciDir(_) => layouts_under(Path::new(&prefix)),
        };
        let listed: BTreeSet<&String> = expanded
            .repositories
            .iter()
            .chain(&expanded.excluded)
            .chain(&expanded.refused)
            .collect();
        for relative in held {
            if !entry.namespace.takes(&relative) || listed.contains(&relative) {
                continue;
            }
            let Ok(example) = entry.entry_for(&relative) else {
                continue;
            };
            let Ok(target) = target_for(&example, destination) else {
                continue;
            };
            if shard.is_some_and(|shard| crate::shard::of(&target) % shard.count != shard.index) {
                continue;
            }
            said.push(format!(
                "{}: {} is no longer listed under {}; its mirror {target} is kept (ferry never \
                 deletes)",
                entry.origin, example.source, entry.namespace
            ));
        }
    }
    said
}

/// The OCI layouts under `root` (directories holding an `index.json`), by their path below it,
/// at most [`MAX_DEPTH`] deep.
fn layouts_under(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![(root.to_owned(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if path.join("index.json").is_file() {
                if let Ok(relative) = path.strip_prefix(root) {
                    found.insert(relative.display().to_string());
                }
            } else if depth < MAX_DEPTH {
                stack.push((path, depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::TargetSpec;
    use crate::model::Origin;
    use crate::reference::RepoPrefix;

    fn entry(pattern: &str, target: Option<&str>) -> NamespaceEntry {
        NamespaceEntry {
            origin: Origin {
                file: "l".into(),
                line: 2,
            },
            namespace: Namespace::parse(pattern).unwrap().unwrap(),
            explicit_target: target.map(|t| TargetSpec::parse(t).unwrap()),
            filter: None,
            can_name_target: true,
            signatures: None,
        }
    }

    #[test]
    fn listed_names_are_checked_and_excluded() {
        let options = NamespaceOptions {
            exclude: Some(NamespaceOptions::exclude(".*-test").unwrap()),
            ..NamespaceOptions::default()
        };
        let names = ["a", "b-test", "A", "../x", "c/d", "e-test-not"]
            .map(str::to_owned)
            .into_iter()
            .collect();
        let expanded = keep(
            &entry("quay.io/ns/**", None),
            &options,
            Method::Catalog { pages: 1 },
            names,
        );
        assert_eq!(expanded.repositories, ["a", "c/d", "e-test-not"]);
        assert_eq!(expanded.excluded, ["b-test"]);
        assert_eq!(expanded.refused, ["../x", "A"]);
        let registry = Destination::Registry(RepoPrefix::parse("h.example/m").unwrap());
        let second = Destination::Registry(RepoPrefix::parse("g.example/n").unwrap());
        let (groups, problems) = jobs(&[expanded], &[registry, second]);
        assert!(problems.is_empty(), "{problems:?}");
        // One group per repository, its jobs in the order of the destinations.
        let targets: Vec<Vec<String>> = groups
            .iter()
            .map(|group| group.iter().map(|j| j.target.to_string()).collect())
            .collect();
        assert_eq!(
            targets,
            [
                ["h.example/m/quay.io/ns/a", "g.example/n/quay.io/ns/a"],
                ["h.example/m/quay.io/ns/c/d", "g.example/n/quay.io/ns/c/d"],
                [
                    "h.example/m/quay.io/ns/e-test-not",
                    "g.example/n/quay.io/ns/e-test-not"
                ]
            ]
        );
        let jobs: Vec<&Job> = groups.iter().flatten().collect();
        assert!(jobs.iter().all(|j| j.source.is_whole_repository()));
    }

    #[test]
    fn a_namespace_that_cannot_be_scoped_needs_a_target() {
        let registry = Destination::Registry(RepoPrefix::parse("h.example/m").unwrap());
        let error = check_target(&entry("localhost:5000/ns/*", None), &registry).unwrap_err();
        assert!(
            error.starts_with("cannot map \"localhost:5000/ns/*\" under \"h.example/m\""),
            "{error}"
        );
        assert!(check_target(
            &entry("localhost:5000/ns/*", Some("h.example/ns")),
            &registry
        )
        .is_ok());
        assert_eq!(
            target_prefix(&entry("quay.io/ns/*", None), &registry).as_deref(),
            Some("h.example/m/quay.io/ns")
        );
        let layouts = Destination::OciDir("mirror".into());
        assert_eq!(
            target_prefix(&entry("registry.k8s.io/*", None), &layouts).as_deref(),
            Some("mirror/registry.k8s.io")
        );
    }

    #[test]
    fn layouts_are_found_at_any_depth() {
        let dir = crate::scratch::ScratchDir::create().unwrap();
        for layout in ["a", "b/c", "b/d/e"] {
            let path = dir.path().join(layout);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("index.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("empty/dir")).unwrap();
        let found: Vec<String> = layouts_under(dir.path()).into_iter().collect();
        assert_eq!(found, ["a", "b/c", "b/d/e"]);
    }
}
