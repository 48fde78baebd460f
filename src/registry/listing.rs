//! Listing the repositories under a namespace, the three ways registries offer:
//!
//! - `GET /v2/_catalog` (registry:2, Harbor, JFrog, Nexus): every repository of the registry,
//!   paged with `n` and `last` and a `Link` to the next page;
//! - Google's `child` field of `GET /v2/<ns>/tags/list` (gcr.io, registry.k8s.io's backends,
//!   Artifact Registry): the names one level below, and the namespace's own tags;
//! - Docker Hub's Hub API, `GET /v2/namespaces/<ns>/repositories` on its own host (not the
//!   registry's), paged by `next`, with a login of its own (`POST /v2/users/login`).
//!
//! Each answer is bounded (pages, entries, bytes) and checked; which way fits a registry, and
//! what the names mean, is `plan::namespace`'s to decide. A registry that does not offer a way
//! answers [`Listing::Unsupported`] with what it said, for the message that names every way
//! tried.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LINK};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::api::next_link;
use super::request::{url_authority, Request};
use super::{header, read_json, status_error, RegistryClient, RegistryError};
use crate::access::conf::Endpoint;
use crate::access::Reach;
use crate::model::Side;

/// The largest page of a catalog or a Hub API listing ferry reads.
pub const MAX_LISTING_PAGE_BYTES: u64 = 16 << 20;
/// Entries ferry asks a catalog page for (registry:2's most; one that allows fewer says so
/// with a 400, and is then asked for its own page size).
pub const CATALOG_PAGE: usize = 1000;
/// Repositories ferry asks a Hub API page for (Docker Hub's most).
pub const HUB_PAGE: usize = 100;
/// Docker Hub's API host, where its namespaces are listed.
pub const HUB_API: &str = "https://hub.docker.com";

/// A way of listing that a registry offers, or what it answered instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing<T> {
    Found(T),
    /// The registry does not list this way: what it answered (`HTTP 404`, `no child field`).
    Unsupported(String),
}

/// A registry's catalog: every repository it lists, as it names them (on its own host), and
/// the pages they took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub repositories: Vec<String>,
    pub pages: usize,
}

/// What Google's listing of one name says: its tags, and the names one level below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Children {
    pub tags: Vec<String>,
    pub children: Vec<String>,
}

/// What a run's listings keep: tags a namespace's listing already read (so that planning does
/// not list them again), and the Hub API's login.
#[derive(Default)]
pub struct ListingState {
    tags: Mutex<HashMap<String, Vec<String>>>,
    hub_token: tokio::sync::OnceCell<Option<String>>,
}

impl ListingState {
    /// The tags a namespace's listing read for source `name`, once.
    pub fn take_tags(&self, name: &str) -> Option<Vec<String>> {
        self.tags.lock().expect("lock").remove(name)
    }
}

impl RegistryClient {
    /// Keeps `tags`, which a namespace's listing read for source repository `name`, for the
    /// tag listing of that repository: it is not asked again.
    pub fn remember_tags(&self, name: &str, tags: Vec<String>) {
        let mut kept = self.listing.tags.lock().expect("lock");
        kept.insert(name.to_owned(), tags);
    }

    /// The catalog of the registry serving `name` (a namespace, `domain[/path]`) on `side`,
    /// every page, `Unsupported` when it has none (or does not let this client read it). More
    /// than `max_entries` entries, or the pages they take at 50 a page, is an error naming
    /// `--max-catalog`.
    pub async fn catalog(
        &self,
        side: Side,
        name: &str,
        max_entries: usize,
    ) -> Result<Listing<Catalog>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            repositories: Option<Vec<String>>,
        }
        let endpoint = self.endpoint(side, name)?;
        let what = format!("the catalog of {}", endpoint.host);
        // A name of its own, so that its authorization (a catalog scope) is kept apart from the
        // namespace's repositories'.
        let request_name = format!("{name}/_catalog");
        let max_pages = max_entries.div_ceil(50) + 1;
        let mut path = format!("/v2/_catalog?n={CATALOG_PAGE}");
        let mut asked_n = Some(CATALOG_PAGE);
        let mut repositories: Vec<String> = Vec::new();
        let mut pages = 0;
        loop {
            if pages >= max_pages {
                return Err(past_catalog_bound(&what, max_entries, repositories.len()));
            }
            let response = self
                .send(Request {
                    accept: Some("application/json"),
                    ..Request::new(side, &request_name, Method::GET, path.clone(), &what)
                })
                .await?;
            let status = response.status();
            if status == StatusCode::BAD_REQUEST && pages == 0 && asked_n.is_some() {
                // Fewer entries to a page than asked for (registry:2's `catalog.maxentries`):
                // its own page size, then.
                path = "/v2/_catalog".to_owned();
                asked_n = None;
                continue;
            }
            if let Some(unsupported) = refused_listing(&what, &response, pages)? {
                return Ok(unsupported);
            }
            pages += 1;
            let next = header(response.headers(), LINK.as_str()).and_then(|l| next_link(&l));
            let page: Page = read_json(
                response,
                MAX_LISTING_PAGE_BYTES,
                "catalog page",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            let Some(page) = page.repositories else {
                if pages == 1 {
                    return Ok(Listing::Unsupported("no repositories field".to_owned()));
                }
                break;
            };
            let full = asked_n.is_some_and(|n| page.len() >= n);
            let last = page.last().cloned();
            let grew = last
                .as_ref()
                .is_some_and(|last| repositories.last() != Some(last));
            repositories.extend(page);
            if repositories.len() > max_entries {
                return Err(past_catalog_bound(&what, max_entries, repositories.len()));
            }
            path = match (next, last) {
                (Some(next), _) => next,
                // No Link, but a full page: the next one starts after its last name (the `last`
                // of the distribution spec), where that name can go in a URL as it is.
                (None, Some(last)) if full && grew && plain_name(&last) => {
                    format!("/v2/_catalog?n={CATALOG_PAGE}&last={last}")
                }
                _ => break,
            };
        }
        Ok(Listing::Found(Catalog {
            repositories,
            pages,
        }))
    }

    /// Google's listing of `name` (`domain[/path]`: `/v2/tags/list` for a whole registry):
    /// its tags and the names one level below it; `Unsupported` where the answer has no
    /// `child` field (no Google registry) or there is no such name.
    pub async fn children(
        &self,
        side: Side,
        name: &str,
    ) -> Result<Listing<Children>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            child: Option<Vec<String>>,
            tags: Option<Vec<String>>,
        }
        let endpoint = self.endpoint(side, name)?;
        let what = format!("the listing of {name}");
        let max_tags = self.options.limits.max_tags;
        let max_pages = self.options.limits.max_tag_pages();
        let mut path = match endpoint.repository.as_str() {
            "" => "/v2/tags/list".to_owned(),
            repository => format!("/v2/{repository}/tags/list"),
        };
        let mut found = Children::default();
        let mut pages = 0;
        loop {
            if pages >= max_pages {
                return Err(RegistryError::Bound {
                    what,
                    message: format!(
                        "the listing goes on past {max_pages} pages, more than --max-tags \
                         {max_tags} takes"
                    ),
                });
            }
            let response = self
                .send(Request {
                    accept: Some("application/json"),
                    ..Request::new(side, name, Method::GET, path.clone(), &what)
                })
                .await?;
            if let Some(unsupported) = refused_listing(&what, &response, pages)? {
                return Ok(unsupported);
            }
            pages += 1;
            let next = header(response.headers(), LINK.as_str()).and_then(|l| next_link(&l));
            let page: Page = read_json(
                response,
                MAX_LISTING_PAGE_BYTES,
                "page of tags",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            match page.child {
                Some(children) => found.children.extend(children),
                None if pages == 1 => {
                    return Ok(Listing::Unsupported("no child field".to_owned()));
                }
                None => {}
            }
            found.tags.extend(page.tags.unwrap_or_default());
            if found.tags.len() > max_tags || found.children.len() > max_tags {
                return Err(RegistryError::Bound {
                    what,
                    message: format!(
                        "it lists more than --max-tags {max_tags} tags or names below it"
                    ),
                });
            }
            match next {
                Some(next) => path = next,
                None => return Ok(Listing::Found(found)),
            }
        }
    }

    /// The repositories of Docker Hub namespace `namespace`, from the Hub API (`--hub-api`,
    /// [`HUB_API`] by default), page by page; with the login ferry holds for Docker Hub, when
    /// it holds one. More than `max` repositories is an error naming `--max-repos`.
    pub async fn hub_repositories(
        &self,
        namespace: &str,
        max: usize,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            next: Option<String>,
            #[serde(default)]
            results: Vec<Repository>,
        }
        #[derive(Deserialize)]
        struct Repository {
            name: String,
        }
        let base = self
            .options
            .hub_api
            .as_deref()
            .unwrap_or(HUB_API)
            .trim_end_matches('/')
            .to_owned();
        let what = format!("the repositories of Docker Hub namespace {namespace}");
        let url = reqwest::Url::parse(&base).map_err(|e| RegistryError::Invalid {
            what: what.clone(),
            message: format!("--hub-api {base}: {e}"),
        })?;
        let host = url_authority(&url);
        let client = self.transport.client(
            Side::Source,
            &Endpoint {
                host: host.clone(),
                repository: String::new(),
                insecure: false,
            },
            &Reach {
                tls_verify: None,
                insecure: false,
                cert_dir: None,
            },
        )?;
        let token = self
            .listing
            .hub_token
            .get_or_try_init(|| self.hub_login(&client, &base, namespace))
            .await?
            .clone();
        let max_pages = max.div_ceil(HUB_PAGE) + 1;
        let mut next =
            format!("{base}/v2/namespaces/{namespace}/repositories?page_size={HUB_PAGE}");
        let mut names = Vec::new();
        for _ in 0..max_pages {
            let mut request = client
                .get(&next)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(self.lookup_deadline().after);
            if let Some(token) = &token {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            let response = self
                .transport
                .send(request, &what, self.lookup_deadline())
                .await?;
            match response.status() {
                status if status.is_success() => {}
                StatusCode::NOT_FOUND => {
                    return Err(RegistryError::Rejected {
                        what,
                        status: 404,
                        detail: "no such namespace on Docker Hub".to_owned(),
                    })
                }
                _ => return Err(status_error(&what, &response)),
            }
            let page: Page = read_json(
                response,
                MAX_LISTING_PAGE_BYTES,
                "page of repositories",
                &what,
                self.lookup_deadline(),
            )
            .await?;
            names.extend(page.results.into_iter().map(|r| r.name));
            if names.len() > max {
                return Err(past_repos_bound(&what, max));
            }
            match page.next.filter(|n| !n.is_empty()) {
                None => return Ok(names),
                // Only ever to the Hub API itself: the login goes along.
                Some(link) if same_origin(&link, &url) => next = link,
                Some(link) => {
                    return Err(RegistryError::Invalid {
                        what,
                        message: format!("its next page is on another host ({link}); not followed"),
                    })
                }
            }
        }
        Err(past_repos_bound(&what, max))
    }

    /// The Hub API's token for the login ferry holds for Docker Hub; `None` without one.
    async fn hub_login(
        &self,
        client: &reqwest::Client,
        base: &str,
        namespace: &str,
    ) -> Result<Option<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let what = "logging in to the Docker Hub API";
        let credentials = self
            .options
            .access
            .source
            .credentials
            .lookup(&format!("{}/{namespace}", crate::docker_hub::DOMAIN))
            .map_err(|source| RegistryError::Credentials {
                what: what.to_owned(),
                source,
            })?;
        let Some(credentials) = credentials else {
            return Ok(None);
        };
        let body = serde_json::json!({
            "username": credentials.username,
            "password": credentials.password.expose(),
        });
        let request = client
            .post(format!("{base}/v2/users/login"))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .timeout(self.lookup_deadline().after);
        let response = self
            .transport
            .send(request, what, self.lookup_deadline())
            .await?;
        if !response.status().is_success() {
            return Err(status_error(what, &response));
        }
        let token: Token = read_json(
            response,
            super::MAX_TOKEN_BYTES,
            "token",
            what,
            self.lookup_deadline(),
        )
        .await?;
        Ok(Some(token.token))
    }
}

fn past_catalog_bound(what: &str, max: usize, read: usize) -> RegistryError {
    RegistryError::Bound {
        what: what.to_owned(),
        message: format!(
            "it goes on past --max-catalog {max} entries ({read} read); raise --max-catalog if \
             the registry really holds that many repositories"
        ),
    }
}

fn past_repos_bound(what: &str, max: usize) -> RegistryError {
    RegistryError::Bound {
        what: what.to_owned(),
        message: format!(
            "it lists more than --max-repos {max} repositories; raise --max-repos, or name a \
             narrower namespace"
        ),
    }
}

/// Whether a repository name can go into a URL's query as it is.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
}

/// Whether `link` is on `base`'s scheme, host and port.
fn same_origin(link: &str, base: &reqwest::Url) -> bool {
    reqwest::Url::parse(link).is_ok_and(|url| {
        url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default()
    })
}

/// What a listing's answer means when it is not a page: a failure (a server error, a 429, or
/// a refusal after the first page), or, on the first page, that the registry does not list
/// this way. `None` for a page to read.
fn refused_listing<T>(
    what: &str,
    response: &reqwest::Response,
    pages: usize,
) -> Result<Option<Listing<T>>, RegistryError> {
    let status = response.status();
    if status.is_success() {
        Ok(None)
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || pages > 0 {
        Err(status_error(what, response))
    } else {
        Ok(Some(Listing::Unsupported(format!(
            "HTTP {}",
            status.as_u16()
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_page_on_and_next_pages_stay_on_the_hub() {
        assert!(plain_name("quay/ns/a-b_c.d"));
        assert!(!plain_name("a&b=c") && !plain_name("A") && !plain_name(""));
        let base = reqwest::Url::parse("https://hub.docker.com").unwrap();
        assert!(same_origin(
            "https://hub.docker.com/v2/namespaces/x/repositories?page=2",
            &base
        ));
        assert!(!same_origin("https://evil.example/v2/namespaces/x", &base));
        assert!(!same_origin("http://hub.docker.com/v2/", &base));
        assert!(!same_origin("not a url", &base));
    }
}
