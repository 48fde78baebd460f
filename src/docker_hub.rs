//! Docker Hub's names and rules, in one place. Docker Hub answers to several names, each with
//! its own role: `docker.io` is the registry image names write (and the one a name without a
//! registry means), `index.docker.io` its old name (which distribution folds into `docker.io`,
//! and which go-containerregistry, crane's library, calls its API host),
//! `registry-1.docker.io` the host that serves its API, and `https://index.docker.io/v1/` the
//! key of its credentials in auth files. Every other module asks here rather than spelling
//! them: the reference grammar, registries.conf, the credential files and the engines.
//!
//! Depends on nothing.

/// The registry a name without one means, and Docker Hub's name in a normalized reference.
pub const DOMAIN: &str = "docker.io";

/// Docker Hub keeps its official images here: `nginx` means `library/nginx`.
pub const OFFICIAL_NAMESPACE: &str = "library";

/// Docker Hub's old name. distribution folds exactly this spelling into [`DOMAIN`] (other hosts
/// that reach Docker Hub, like [`API_HOST`], stay as written, as they do in skopeo's scoped
/// names); go-containerregistry (crane) talks to Docker Hub's API under this name and keys its
/// credentials by it.
pub const INDEX_HOST: &str = "index.docker.io";

/// The host that serves Docker Hub's API: requests for `docker.io/…` go here.
pub const API_HOST: &str = "registry-1.docker.io";

/// Docker Hub's key in an auth file or Docker `config.json`, for historical reasons, and the
/// server a credential helper is asked about for it.
pub const AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Whether `host` is one of Docker Hub's names (the ones credentials for it are filed under).
pub fn is_docker_hub(host: &str) -> bool {
    matches!(host, DOMAIN | INDEX_HOST | API_HOST)
}

/// A registry's name as a normalized reference writes it: [`INDEX_HOST`] is [`DOMAIN`].
pub fn normalize_domain(domain: &str) -> &str {
    if domain == INDEX_HOST {
        DOMAIN
    } else {
        domain
    }
}

/// The host serving a registry's API: Docker Hub's is not its name.
pub fn api_host(domain: &str) -> &str {
    if domain == DOMAIN {
        API_HOST
    } else {
        domain
    }
}

/// `name` (`host/path`, or a bare host) with any of Docker Hub's names for its host folded into
/// [`DOMAIN`], as credentials are filed: skopeo gives `registry-1.docker.io/…` Docker Hub's
/// login.
pub fn fold_name(name: &str) -> String {
    match name.split_once('/') {
        Some((host, rest)) if is_docker_hub(host) => format!("{DOMAIN}/{rest}"),
        None if is_docker_hub(name) => DOMAIN.to_owned(),
        _ => name.to_owned(),
    }
}

/// The server a credential helper is asked about for `host` (as credentials are filed, see
/// [`fold_name`]): Docker Hub's is its [`AUTH_KEY`].
pub fn helper_server(host: &str) -> &str {
    if host == DOMAIN {
        AUTH_KEY
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hubs_names_each_have_their_role() {
        assert!(["docker.io", "index.docker.io", "registry-1.docker.io"]
            .into_iter()
            .all(is_docker_hub));
        assert!(!is_docker_hub("hub.docker.com"));
        assert_eq!(normalize_domain("index.docker.io"), "docker.io");
        assert_eq!(
            normalize_domain("registry-1.docker.io"),
            "registry-1.docker.io"
        );
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("quay.io"), "quay.io");
        assert_eq!(fold_name("registry-1.docker.io/a/b"), "docker.io/a/b");
        assert_eq!(fold_name("index.docker.io"), "docker.io");
        assert_eq!(fold_name("quay.io/a"), "quay.io/a");
        assert_eq!(helper_server("docker.io"), "https://index.docker.io/v1/");
        assert_eq!(helper_server("quay.io"), "quay.io");
    }
}
