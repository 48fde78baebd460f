//! How ferry reaches each registry, per side and per host: where registries.conf sends a name
//! (the endpoint), the TLS rules (verify or not, which CA directory, the `certs.d` ones), and
//! the credentials (given to ferry, or found in the user's auth files and credential helpers).
//! Resolved here, in one place, for ferry's own registry client, skopeo's private auth file and
//! crane's private `DOCKER_CONFIG`, so that a lookup and a copy can never disagree about how
//! to talk to a registry.
//!
//! - [`conf`]: registries.conf, read as skopeo reads it.
//! - [`credentials`]: the credential sources of one side (accounts, auth files, Docker's
//!   `config.json`, credential helpers).
//!
//! This module sits below the registry client and the engines, and imports neither.

pub mod conf;
pub mod credentials;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use self::conf::{ConfError, Endpoint, RegistriesConf};
use self::credentials::{CredentialSources, CredentialsError};
use crate::docker_hub;
use crate::model::Side;
use crate::secret::Credentials;

/// The per-host CA directories ferry's client, skopeo and crane read when no cert dir is given:
/// `DIR/HOST` of each, where it exists.
pub const CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// `tls-verify` and `cert-dir` an input gave for one registry host (a skopeo YAML section).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTls {
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
}

/// One side's settings, mirroring skopeo's `--src-*` / `--dest-*` flags.
#[derive(Debug, Clone, Default)]
pub struct SideAccess {
    /// `--*-tls-verify`, when given.
    pub tls_verify: Option<bool>,
    /// `--*-cert-dir`, when given.
    pub cert_dir: Option<PathBuf>,
    /// Credentials given to ferry, the user's auth file and the default credential stores.
    pub credentials: CredentialSources,
    /// TLS settings an input gave for one registry host; they win over the side's.
    pub per_host: HashMap<String, HostTls>,
}

/// How one registry host is reached from one side: its TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// What the user said about verification (for the host, else for the side); `None` when
    /// left to registries.conf.
    pub tls_verify: Option<bool>,
    /// Whether unverified TLS, and plain HTTP, are allowed: `tls_verify` false, or else
    /// registries.conf's `insecure` for the endpoint, as skopeo decides.
    pub insecure: bool,
    /// The CA (and client certificate) directory: the host's, else the side's.
    pub cert_dir: Option<PathBuf>,
}

impl Reach {
    /// The CA (and client certificate) directories for `host`: the cert dir given, else
    /// [`CERTS_D`]`/HOST` of each for which `is_dir` holds.
    pub fn cert_dirs(&self, host: &str, is_dir: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
        match &self.cert_dir {
            Some(dir) => vec![dir.clone()],
            None => CERTS_D
                .iter()
                .map(|base| Path::new(base).join(host))
                .filter(|dir| is_dir(dir))
                .collect(),
        }
    }
}

/// Where and how one repository is reached from one side: the endpoint registries.conf gives
/// and the TLS of that side for the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    pub reach: Reach,
}

/// Every side's access settings and the registries.conf that redirects names.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub conf: RegistriesConf,
    pub source: SideAccess,
    pub destination: SideAccess,
}

impl Access {
    pub fn side(&self, side: Side) -> &SideAccess {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    /// Where requests for `name` (`domain/path`) go on `side`: pulls follow registries.conf's
    /// redirects, pushes never do.
    pub fn endpoint(&self, side: Side, name: &str) -> Result<Endpoint, ConfError> {
        match side {
            Side::Source => self.conf.pull_endpoint(name),
            Side::Destination => self.conf.push_endpoint(name),
        }
    }

    /// How `name` (`domain/path`, as written) is reached on `side`.
    pub fn reach(&self, side: Side, name: &str) -> Reach {
        let conf_insecure = self.endpoint(side, name).is_ok_and(|e| e.insecure);
        self.side(side).reach(name, conf_insecure)
    }

    /// Where requests for `name` on `side` go, and how: an error when registries.conf blocks
    /// the name.
    pub fn route(&self, side: Side, name: &str) -> Result<Route, ConfError> {
        let endpoint = self.endpoint(side, name)?;
        let reach = self.side(side).reach(name, endpoint.insecure);
        Ok(Route { endpoint, reach })
    }

    /// The credentials ferry uses for `name` (`domain/path`, as written) on `side`, whose
    /// requests go to `endpoint`: those for the name; where registries.conf redirected it to
    /// another host, only those held for that host (never the ones given for a whole side,
    /// which are meant for the registries named). ferry's own lookups and every engine's
    /// private auth files use this one rule, so a copy never authenticates differently from
    /// the lookup that planned it.
    pub fn credentials(
        &self,
        side: Side,
        name: &str,
        endpoint: &Endpoint,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let sources = &self.side(side).credentials;
        if docker_hub::api_host(domain_of(name)) == endpoint.host {
            sources.lookup(name)
        } else {
            sources.lookup_redirected(&format!("{}/{}", endpoint.host, endpoint.repository))
        }
    }
}

impl SideAccess {
    /// How `name` is reached, given whether registries.conf marks its endpoint insecure.
    fn reach(&self, name: &str, conf_insecure: bool) -> Reach {
        let host = self.per_host.get(domain_of(name));
        let tls_verify = host.and_then(|h| h.tls_verify).or(self.tls_verify);
        Reach {
            tls_verify,
            insecure: tls_verify.map_or(conf_insecure, |verify| !verify),
            cert_dir: host
                .and_then(|h| h.cert_dir.clone())
                .or_else(|| self.cert_dir.clone()),
        }
    }

    /// The user's auth file for this side (`--*-authfile`, else `--authfile`), if any.
    pub fn authfile(&self) -> Option<&Path> {
        self.credentials.authfile.as_deref()
    }
}

fn domain_of(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_own_settings_win_over_the_sides_which_win_over_registries_conf() {
        let conf =
            RegistriesConf::parse("[[registry]]\nprefix = \"mirror.example\"\ninsecure = true\n")
                .unwrap();
        let mut source = SideAccess {
            tls_verify: Some(true),
            cert_dir: Some("/side/certs".into()),
            ..SideAccess::default()
        };
        source.per_host.insert(
            "quay.io".into(),
            HostTls {
                tls_verify: Some(false),
                cert_dir: Some("/quay/certs".into()),
            },
        );
        let access = Access {
            conf,
            source,
            destination: SideAccess::default(),
        };
        let quay = access.reach(Side::Source, "quay.io/a/b");
        assert_eq!(
            quay,
            Reach {
                tls_verify: Some(false),
                insecure: true,
                cert_dir: Some("/quay/certs".into())
            }
        );
        // The side's flag says verify, whatever registries.conf says.
        let mirror = access.reach(Side::Source, "mirror.example/a");
        assert_eq!((mirror.tls_verify, mirror.insecure), (Some(true), false));
        assert_eq!(mirror.cert_dir.as_deref(), Some(Path::new("/side/certs")));
        // Nothing said on the destination side: registries.conf decides.
        let dest = access.reach(Side::Destination, "mirror.example/a");
        assert_eq!(
            (dest.tls_verify, dest.insecure, dest.cert_dir),
            (None, true, None)
        );
        let other = access.reach(Side::Destination, "harbor.example/a");
        assert!(!other.insecure);
    }

    #[test]
    fn a_given_cert_dir_replaces_the_certs_d_ones_which_count_where_they_exist() {
        let reach = |cert_dir: Option<&str>| Reach {
            tls_verify: None,
            insecure: false,
            cert_dir: cert_dir.map(PathBuf::from),
        };
        let exists = |dir: &Path| dir == Path::new("/etc/docker/certs.d/h.example:5000");
        assert_eq!(
            reach(None).cert_dirs("h.example:5000", &exists),
            [PathBuf::from("/etc/docker/certs.d/h.example:5000")]
        );
        assert!(reach(None).cert_dirs("other.example", &exists).is_empty());
        assert_eq!(
            reach(Some("/home/me/cas")).cert_dirs("h.example:5000", &exists),
            [PathBuf::from("/home/me/cas")]
        );
    }
}
