//! Splitting one list over several workers (`--shard K/N`): an entry belongs to shard
//! `fnv1a64(target repository) mod N`. The target repository is the target without its tag or
//! digest (`harbor.example/third/docker.io/library/nginx`, or the OCI layout directory), so
//! every tag of a repository, and the blobs they share, go to one worker, and a whole
//! repository is listed by its shard only. With several destinations (`--dest A --dest B`),
//! an entry is placed by its target under the first, so all its copies go to one worker. FNV-1a (64-bit, offset basis 0xcbf29ce484222325,
//! prime 0x100000001b3) over the name's UTF-8 bytes is fixed here and stays the same across
//! versions, so shards agree whichever ferry each worker runs.
//!
//! The shards of one run share its list fingerprint ([`fingerprint`]), which `report merge`
//! compares to tell the shards of one run from those of another.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::model::{Job, Target};

/// One worker's part of a list: shard `index` of `count`, counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// The variable a Kubernetes Indexed Job sets to each pod's index.
pub const KUBERNETES_INDEX: &str = "JOB_COMPLETION_INDEX";

impl Shard {
    /// Parses `K/N`, or `N` with K read from the environment variable `index_env` (by default
    /// [`KUBERNETES_INDEX`]), through `env`. The errors say which part is wrong and what to
    /// write; `--shard VALUE: ` is the caller's to add.
    pub fn parse(
        value: &str,
        index_env: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, String> {
        let form = "write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env";
        let number = |text: &str, what: &str| {
            text.trim()
                .parse::<u64>()
                .map_err(|_| format!("{what} {text:?} is not a whole number: {form}"))
        };
        let count_of = |text: &str| {
            let count = number(text, "the shard count N")?;
            if count == 0 {
                return Err(
                    "N, the number of shards, must be at least 1 (write K/N with \
                            0 <= K < N, e.g. 0/3)"
                        .to_owned(),
                );
            }
            Ok(count)
        };
        let (index, count) = match value.split_once('/') {
            Some((index, count)) => {
                let index = number(index, "the shard index K")?;
                (index, count_of(count)?)
            }
            None => {
                let count = count_of(value)?;
                let var = index_env.unwrap_or(KUBERNETES_INDEX);
                let index = env(var).ok_or_else(|| {
                    format!(
                        "K comes from ${var}, which is not set: set it, name the variable that \
                         holds K with --shard-index-env, or write K/N"
                    )
                })?;
                let index = index.trim().parse::<u64>().map_err(|_| {
                    format!("${var} is {index:?}, not a shard index K (0 <= K < {count})")
                })?;
                (index, count)
            }
        };
        if index >= count {
            return Err(format!(
                "shard {index} of {count} does not exist: K counts from 0, so it must be less \
                 than N ({})",
                match count {
                    1 => "0 is the only shard".to_owned(),
                    n => format!("0 to {} here", n - 1),
                }
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether `job` belongs to this shard.
    pub fn contains(&self, job: &Job) -> bool {
        self.holds(&job.target)
    }

    /// Whether an entry whose target is `target` belongs to this shard. With several
    /// destinations, an entry is placed by its target at the first: its shard does not depend
    /// on the destination.
    pub fn holds(&self, target: &Target) -> bool {
        of(target) % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The hash that places a target: FNV-1a 64 of its repository.
pub fn of(target: &Target) -> u64 {
    let repository = match target {
        Target::Registry(reference) => reference.repository(),
        Target::Oci { layout, .. } => layout.display().to_string(),
    };
    of_name(&repository)
}

/// The same hash of any name (a namespace line that could not be listed goes to the shard of
/// its pattern).
pub fn of_name(name: &str) -> u64 {
    fnv1a64(name.as_bytes())
}

/// The list fingerprint: what identifies the input of one run, the same in each of its shards
/// and in the unsharded run. `sha256:` and the hex SHA-256 of a text naming the destination
/// (`destination`, as reports name it), the tag filters (`filters`, as flags) and every mapped
/// entry before sharding (source, target and the entry's own filters), the entries sorted, so
/// that neither the order of the lines nor the lists' file names or paths matter. How the
/// registries are reached (TLS, credentials), the engine and the command are no part of it:
/// shards may differ there and still be shards of one run.
#[cfg(test)]
pub fn fingerprint(destination: &str, filters: &[String], jobs: &[Job]) -> String {
    fingerprint_with(destination, filters, jobs, &[])
}

/// [`fingerprint`], with `namespaces` (each namespace line as written with its target and
/// filters: never its repositories, which may change between the shards' listings) among the
/// entries. Without namespaces, the fingerprint is [`fingerprint`]'s.
pub fn fingerprint_with(
    destination: &str,
    filters: &[String],
    jobs: &[Job],
    namespaces: &[String],
) -> String {
    let mut entries: Vec<String> = jobs
        .iter()
        .map(|job| {
            let filters = job
                .filter
                .as_ref()
                .map(|f| f.as_flags())
                .unwrap_or_default();
            let entry = format!("{}\t{}\t{}", job.source, job.target, filters.join("\0"));
            // An entry's own `signatures:` says what the run copies too (none: as before).
            match job.signatures {
                Some(signatures) => format!("{entry}\tsignatures={signatures}"),
                None => entry,
            }
        })
        .chain(namespaces.iter().map(|line| format!("namespace\t{line}")))
        .collect();
    entries.sort_unstable();
    let mut text = format!(
        "ferry list fingerprint 1\ndestination\t{destination}\nfilters\t{}\n",
        filters.join("\0")
    );
    for entry in &entries {
        let _ = writeln!(text, "entry\t{entry}");
    }
    format!("sha256:{:x}", Sha256::digest(text.as_bytes()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ImageRef;

    #[test]
    fn the_hash_is_fnv1a_64_and_never_changes() {
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // Where a repository lands: pinned, so a later version cannot move it.
        let target = Target::Registry(
            ImageRef::parse("harbor.example/third/docker.io/library/nginx:1.25").unwrap(),
        );
        assert_eq!(of(&target), 0xeb9a_a4a0_7723_156b);
        assert_eq!(of(&target) % 3, 2);
    }

    #[test]
    fn the_fingerprint_is_the_run_input_not_its_spelling() {
        use crate::input::parse_list;
        use crate::mapping::map_all;
        use crate::model::Destination;
        use crate::reference::RepoPrefix;
        let registry = Destination::Registry(RepoPrefix::parse("h.example/m").unwrap());
        let jobs = |file: &str, list: &str, destination: &Destination| {
            let (entries, errors) = parse_list(file, list);
            assert!(errors.is_empty(), "{errors:?}");
            map_all(&entries, destination).jobs
        };
        let of = |file: &str, list: &str, filters: &[&str], destination: &Destination| {
            let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
            fingerprint(
                &destination.label(),
                &filters,
                &jobs(file, list, destination),
            )
        };
        let base = of("a.list", "nginx:1.25\nredis\n", &[], &registry);
        assert!(base.starts_with("sha256:") && base.len() == 71, "{base}");
        // Another file name, another order, comments, spelling: the same input.
        assert_eq!(
            of(
                "/ci/work/b.list",
                "# mirror\ndocker.io/library/redis\n\nnginx:1.25  # web\n",
                &[],
                &registry
            ),
            base
        );
        // Another entry, filter or destination: another input.
        for other in [
            of("a.list", "nginx:1.25\n", &[], &registry),
            of(
                "a.list",
                "nginx:1.25\nredis\n",
                &["--tags", "7.*"],
                &registry,
            ),
            of(
                "a.list",
                "nginx:1.25\nredis\n",
                &[],
                &Destination::Registry(RepoPrefix::parse("h.example/other").unwrap()),
            ),
            of(
                "a.list",
                "nginx:1.25\nredis\n",
                &[],
                &Destination::OciDir("mirror".into()),
            ),
        ] {
            assert_ne!(other, base);
        }
        // An entry whose input says its signatures go along (or not) is another entry.
        let mut signed = jobs("a.list", "nginx:1.25\nredis\n", &registry);
        signed[0].signatures = Some(true);
        assert_ne!(fingerprint(&registry.label(), &[], &signed), base);
        signed[0].signatures = Some(false);
        assert_ne!(fingerprint(&registry.label(), &[], &signed), base);
    }

    #[test]
    fn every_tag_of_a_repository_is_in_one_shard() {
        let tag = |t: &str| {
            Target::Registry(
                ImageRef::parse(&format!("h.example/m/docker.io/library/nginx:{t}")).unwrap(),
            )
        };
        let shards: Vec<u64> = ["1", "2", "latest"]
            .iter()
            .map(|t| of(&tag(t)) % 5)
            .collect();
        assert!(shards.windows(2).all(|w| w[0] == w[1]), "{shards:?}");
    }

    #[test]
    fn shards_are_parsed_from_the_flag_or_the_environment() {
        let none = |_: &str| None;
        let k8s = |var: &str| (var == KUBERNETES_INDEX).then(|| "2".to_owned());
        let custom = |var: &str| (var == "CI_NODE_INDEX").then(|| "1".to_owned());
        assert_eq!(
            Shard::parse("1/3", None, none),
            Ok(Shard { index: 1, count: 3 })
        );
        assert_eq!(
            Shard::parse("3", None, k8s),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            Shard::parse("4", Some("CI_NODE_INDEX"), custom),
            Ok(Shard { index: 1, count: 4 })
        );
        let error = |value, env: Option<&str>| Shard::parse(value, env, k8s).unwrap_err();
        let bad_index_env = |var: &str| (var == "CI_NODE_INDEX").then(|| "x".to_owned());
        let table: [(&str, Option<&str>, &str); 12] = [
            ("3/3", None, "shard 3 of 3 does not exist: K counts from 0, so it must be less than N (0 to 2 here)"),
            ("1/1", None, "shard 1 of 1 does not exist: K counts from 0, so it must be less than N (0 is the only shard)"),
            ("2", None, "shard 2 of 2 does not exist: K counts from 0, so it must be less than N (0 to 1 here)"),
            ("0/0", None, "N, the number of shards, must be at least 1 (write K/N with 0 <= K < N, e.g. 0/3)"),
            ("1/0", None, "N, the number of shards, must be at least 1 (write K/N with 0 <= K < N, e.g. 0/3)"),
            // N alone is checked before K is looked for.
            ("0", Some("UNSET"), "N, the number of shards, must be at least 1 (write K/N with 0 <= K < N, e.g. 0/3)"),
            ("a/3", None, "the shard index K \"a\" is not a whole number: write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"),
            ("-1/3", None, "the shard index K \"-1\" is not a whole number: write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"),
            ("1/x", None, "the shard count N \"x\" is not a whole number: write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"),
            ("1/3/5", None, "the shard count N \"3/5\" is not a whole number: write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"),
            ("", None, "the shard count N \"\" is not a whole number: write K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"),
            ("3", Some("CI_NODE_INDEX"), "K comes from $CI_NODE_INDEX, which is not set: set it, name the variable that holds K with --shard-index-env, or write K/N"),
        ];
        for (value, env, expected) in table {
            assert_eq!(error(value, env), expected, "--shard {value:?}");
        }
        assert_eq!(
            Shard::parse("3", Some("CI_NODE_INDEX"), bad_index_env).unwrap_err(),
            "$CI_NODE_INDEX is \"x\", not a shard index K (0 <= K < 3)"
        );
    }
}
