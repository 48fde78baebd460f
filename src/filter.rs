//! Tag filters for whole-repository entries: `--tags`, `--exclude-tags`, `--no-prerelease`,
//! `--semver` and `--latest`.
//!
//! An image-list line without tag or digest stands for every tag of the repository; these
//! filters narrow that list. The filter is pure: it takes the tag list the registry returned
//! and says which tags to keep and, for each dropped one, which filter dropped it, so the
//! caller can report "skipped by --semver" instead of silently copying less.
//!
//! Registry tags are free-form, so versions are *coerced* (`v1.25`, `1.25.3-alpine`, `3.13.0a1`)
//! rather than parsed as strict SemVer; see [`coerce_version`] and [`is_prerelease`].

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use semver::{Prerelease, Version, VersionReq};

/// Words that mark a build as not a release. Matched as whole tokens, so `latest` is not
/// `test`, `devel` (CUDA's flavour) is not `dev` and `alpine` is not `alpha`.
const PRERELEASE_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "nightly", "canary", "test",
];

/// The raw filter options, as the user gave them (CLI flags or one entry of an input file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    pub include: Option<String>,
    pub exclude: Option<String>,
    pub semver: Option<String>,
    pub latest: Option<usize>,
    pub no_prerelease: bool,
}

impl FilterSpec {
    /// The command-line flags that give this spec.
    pub fn as_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (flag, value) in [
            ("--tags", &self.include),
            ("--exclude-tags", &self.exclude),
            ("--semver", &self.semver),
        ] {
            if let Some(value) = value {
                flags.extend([flag.to_owned(), value.clone()]);
            }
        }
        if let Some(n) = self.latest {
            flags.extend(["--latest".to_owned(), n.to_string()]);
        }
        if self.no_prerelease {
            flags.push("--no-prerelease".to_owned());
        }
        flags
    }
}

/// A validated [`FilterSpec`]: regexes and the range are compiled once, not per tag.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    spec: FilterSpec,
    include: Option<Regex>,
    exclude: Option<Regex>,
    range: Option<VersionReq>,
}

/// The outcome of [`TagFilter::select`]; both lists keep the input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub kept: Vec<String>,
    pub dropped: Vec<(String, DropReason)>,
}

/// Which filter dropped a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    NotIncluded,
    Excluded,
    Prerelease,
    /// `--semver` needs a version, and the tag is none.
    NotAVersion,
    OutsideRange,
    /// `--latest` (without `--semver`) needs a version, and the tag is none.
    LatestNotAVersion,
    NotLatest,
    /// With `--signatures`, a tag an artifact lives under (cosign's `sha256-<hex>.sig`, the
    /// referrers tag schema's `sha256-<hex>`): it travels with its image.
    Artifact,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NotIncluded => "--tags",
            DropReason::Excluded => "--exclude-tags",
            DropReason::Prerelease => "--no-prerelease",
            DropReason::NotAVersion => "--semver (not a version)",
            DropReason::OutsideRange => "--semver",
            DropReason::LatestNotAVersion => "--latest (not a version)",
            DropReason::NotLatest => "--latest",
            DropReason::Artifact => "--signatures: it travels with its image",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid {option} regex {pattern:?}")]
    Regex {
        option: &'static str,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("invalid --semver range {range:?}")]
    Range {
        range: String,
        #[source]
        source: semver::Error,
    },
    #[error("--latest must be at least 1")]
    LatestZero,
}

impl TagFilter {
    pub fn new(spec: &FilterSpec) -> Result<TagFilter, FilterError> {
        TagFilter::default().overridden_by(spec)
    }

    pub fn spec(&self) -> &FilterSpec {
        &self.spec
    }

    /// Entry-specific options win over these (field by field; `no_prerelease` is OR-ed).
    ///
    /// Only the entry's own options are compiled: the CLI's are reused, since one run may
    /// apply the same CLI filter to thousands of entries.
    pub fn overridden_by(&self, entry: &FilterSpec) -> Result<TagFilter, FilterError> {
        if entry.latest == Some(0) {
            return Err(FilterError::LatestZero);
        }
        let include = compile_or(&entry.include, &self.include, |p| anchored("--tags", p))?;
        let exclude = compile_or(&entry.exclude, &self.exclude, |p| {
            anchored("--exclude-tags", p)
        })?;
        let range = compile_or(&entry.semver, &self.range, parse_range)?;
        let spec = FilterSpec {
            include: entry.include.clone().or_else(|| self.spec.include.clone()),
            exclude: entry.exclude.clone().or_else(|| self.spec.exclude.clone()),
            semver: entry.semver.clone().or_else(|| self.spec.semver.clone()),
            latest: entry.latest.or(self.spec.latest),
            no_prerelease: entry.no_prerelease || self.spec.no_prerelease,
        };
        Ok(TagFilter {
            spec,
            include,
            exclude,
            range,
        })
    }

    pub fn select(&self, tags: &[String]) -> Selection {
        let mut verdicts: Vec<_> = tags.iter().map(|tag| self.verdict(tag)).collect();
        if let Some(n) = self.spec.latest {
            // Survivors all carry a version here: `verdict` drops the rest when --latest is set.
            // The N highest distinct versions stay with all their tags (`1.25.3` and
            // `1.25.3-alpine` are one version), so neither the registry's order nor a tie
            // decides what is kept.
            let mut versions: Vec<&Version> = verdicts
                .iter()
                .filter_map(|v| v.as_ref().ok()?.as_ref())
                .collect();
            versions.sort_unstable_by(|a, b| b.cmp(a));
            versions.dedup();
            let lowest_kept = versions.get(n.saturating_sub(1)).map(|v| (*v).clone());
            for verdict in &mut verdicts {
                let below = match (verdict.as_ref(), &lowest_kept) {
                    (Ok(Some(version)), Some(lowest)) => version < lowest,
                    _ => false,
                };
                if below {
                    *verdict = Err(DropReason::NotLatest);
                }
            }
        }
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        for (tag, verdict) in tags.iter().zip(verdicts) {
            match verdict {
                Ok(_) => kept.push(tag.clone()),
                Err(reason) => dropped.push((tag.clone(), reason)),
            }
        }
        Selection { kept, dropped }
    }

    /// Runs every filter but `--latest` (which needs the whole list) on one tag, in the
    /// documented order. On success carries the coerced version when a later step needs it.
    fn verdict(&self, tag: &str) -> Result<Option<Version>, DropReason> {
        if self.include.as_ref().is_some_and(|re| !re.is_match(tag)) {
            return Err(DropReason::NotIncluded);
        }
        if self.exclude.as_ref().is_some_and(|re| re.is_match(tag)) {
            return Err(DropReason::Excluded);
        }
        if self.spec.no_prerelease && is_prerelease(tag) {
            return Err(DropReason::Prerelease);
        }
        if self.range.is_none() && self.spec.latest.is_none() {
            return Ok(None);
        }
        let needs_version = match self.range {
            Some(_) => DropReason::NotAVersion,
            None => DropReason::LatestNotAVersion,
        };
        let version = coerce_version(tag).ok_or(needs_version)?;
        match &self.range {
            Some(req) if !req.matches(&version) => Err(DropReason::OutsideRange),
            _ => Ok(Some(version)),
        }
    }
}

/// The entry's option compiled when it has one, else the already compiled base value.
fn compile_or<T: Clone>(
    entry: &Option<String>,
    base: &Option<T>,
    compile: impl Fn(&str) -> Result<T, FilterError>,
) -> Result<Option<T>, FilterError> {
    entry
        .as_deref()
        .map(compile)
        .transpose()
        .map(|own| own.or_else(|| base.clone()))
}

/// Compiles `^(?:pattern)$`. The bare pattern is compiled first so that its errors point at
/// what the user typed, and so that `a)|(b` cannot escape the anchoring group.
fn anchored(option: &'static str, pattern: &str) -> Result<Regex, FilterError> {
    let error = |source| FilterError::Regex {
        option,
        pattern: pattern.to_owned(),
        source,
    };
    Regex::new(pattern).map_err(error)?;
    Regex::new(&format!("^(?:{pattern})$")).map_err(error)
}

fn parse_range(range: &str) -> Result<VersionReq, FilterError> {
    VersionReq::parse(range).map_err(|source| FilterError::Range {
        range: range.to_owned(),
        source,
    })
}

/// Coerces a registry tag to a version: `v1.25` → 1.25.0, `1` → 1.0.0, `1.25.3-alpine` → 1.25.3
/// (a variant is the same release), `1.26.0-rc.1` / `v2.0.0-beta2` / `3.13.0a1` → 1.26.0-rc.1 /
/// 2.0.0-beta.2 / 3.13.0-alpha.1. Prerelease identifiers are split at letter/digit boundaries
/// so `beta10` sorts after `beta2`. `None` for tags that are not versions (`latest`,
/// `sha-abc123`, `3f2a9c1`) and for four-part numbers, which SemVer cannot order faithfully.
pub fn coerce_version(tag: &str) -> Option<Version> {
    let lower = tag.to_ascii_lowercase();
    let (core, rest) = split_core(strip_v(&lower))?;
    if core.len() > 3 {
        return None;
    }
    let mut numbers = [0u64; 3];
    for (slot, digits) in numbers.iter_mut().zip(&core) {
        *slot = digits.parse().ok()?;
    }
    let mut version = Version::new(numbers[0], numbers[1], numbers[2]);
    let pre: Vec<&str> = if let Some((word, number, after)) = python_pre(rest) {
        [word, number].into_iter().chain(tokens(after)).collect()
    } else if has_prerelease_word(rest) {
        tokens(rest).collect()
    } else if rest.is_empty() || rest.starts_with(is_separator) {
        return Some(version);
    } else {
        // Letters glued to the number without being a prerelease: a hash or `8u312`.
        return None;
    };
    let pre: Vec<&str> = pre.into_iter().map(strip_leading_zeros).collect();
    version.pre = Prerelease::new(&pre.join(".")).ok()?;
    Some(version)
}

/// True for alpha/beta/rc-style tags: a whole token from [`PRERELEASE_WORDS`] anywhere
/// (`1.29.0-rc.1`, `1.0-SNAPSHOT`, `nightly`, `2024-dev`), or Python's `a1`/`b2`/`rc1` glued
/// to the version number (`3.13.0a1`). Variants (`-alpine`, `-debian-12-r3`) are not.
pub fn is_prerelease(tag: &str) -> bool {
    let lower = tag.to_ascii_lowercase();
    let tag = strip_v(&lower);
    split_core(tag).is_some_and(|(_, rest)| python_pre(rest).is_some()) || has_prerelease_word(tag)
}

/// Drops a `v` only before a digit, so `vtest` is not read as `test`.
fn strip_v(tag: &str) -> &str {
    match tag.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => tag,
    }
}

/// The leading dotted number and the rest: `1.25.3-alpine` → `1.25.3`, `-alpine`.
static CORE: LazyLock<Regex> = LazyLock::new(|| static_regex(r"(?s)^([0-9]+(?:\.[0-9]+)*)(.*)$"));
/// Python's `a1`/`b2`/`rc1` must end the tag or a token, so that a hash like `7b3c9` doesn't.
static PYTHON_PRE: LazyLock<Regex> =
    LazyLock::new(|| static_regex(r"(?s)^(rc|a|b)([0-9]+)((?:[-._+].*)?)$"));
/// Runs of letters or of digits: `beta2.x` → `beta`, `2`, `x`.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| static_regex("[a-z]+|[0-9]+"));

fn static_regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in regex is valid")
}

fn split_core(tag: &str) -> Option<(Vec<&str>, &str)> {
    let (_, [core, rest]) = CORE.captures(tag)?.extract();
    Some((core.split('.').collect(), rest))
}

/// Python's spelling right after the number: the SemVer word, the number and what follows.
fn python_pre(rest: &str) -> Option<(&'static str, &str, &str)> {
    let (_, [short, number, tail]) = PYTHON_PRE.captures(rest)?.extract();
    let word = match short {
        "a" => "alpha",
        "b" => "beta",
        _ => "rc",
    };
    Some((word, number, tail))
}

fn has_prerelease_word(lower: &str) -> bool {
    tokens(lower).any(|t| PRERELEASE_WORDS.contains(&t))
}

fn tokens(lower: &str) -> impl Iterator<Item = &str> {
    TOKEN.find_iter(lower).map(|m| m.as_str())
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | '_' | '+')
}

/// SemVer forbids leading zeros in numeric identifiers (`rc.01`); a token is all letters or
/// all digits, so only digit tokens can start with `0`.
fn strip_leading_zeros(token: &str) -> &str {
    match token.trim_start_matches('0') {
        "" => "0",
        trimmed => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use DropReason::*;

    #[rustfmt::skip]
    const COERCE: &[(&str, Option<&str>)] = &[
        ("1.29.2", Some("1.29.2")), ("v1.29.2", Some("1.29.2")), ("V2.0", Some("2.0.0")),
        ("3.10", Some("3.10.0")), ("1", Some("1.0.0")), ("2024.01.15", Some("2024.1.15")),
        ("1.25.3-alpine", Some("1.25.3")), ("1.25-slim-bookworm", Some("1.25.0")),
        ("16.4.0-debian-12-r3", Some("16.4.0")), ("1.29.0-rc.1", Some("1.29.0-rc.1")),
        ("v2.0.0-beta2", Some("2.0.0-beta.2")), ("2.0.0-beta10", Some("2.0.0-beta.10")),
        ("3.13.0a1", Some("3.13.0-alpha.1")), ("3.13.0rc2-slim", Some("3.13.0-rc.2.slim")),
        ("1.0-SNAPSHOT", Some("1.0.0-snapshot")), ("2024-dev", Some("2024.0.0-dev")),
        ("1.0.0-rc.01", Some("1.0.0-rc.1")), ("latest", None), ("stable", None),
        ("sha-abc123", None), ("3f2a9c1", None), ("8u312", None), ("nightly", None),
        ("1.2.3.4", None), ("v", None), ("", None), ("99999999999999999999999", None),
    ];

    #[test]
    fn coerce_version_table() {
        for &(tag, want) in COERCE {
            let want = want.map(|w| Version::parse(w).unwrap());
            assert_eq!(coerce_version(tag), want, "coerce_version({tag:?})");
        }
        assert!(coerce_version("2.0.0-beta10") > coerce_version("2.0.0-beta2"));
        assert!(coerce_version("3.13.0b1") > coerce_version("3.13.0a2"));
    }

    #[test]
    fn is_prerelease_table() {
        let yes = "1.29.0-rc.1 v2.0.0-beta2 3.13.0a1 3.13.0b2 3.13.0rc1-slim 1.0-SNAPSHOT nightly \
                   nightly-2024-01-01 2024-dev 1.0.0-ALPHA 5.0.0-preview.3 1.0.0-pre1 canary 1.2-test";
        // `devel` is CUDA's flavour, `7b3c9` a hash, and `v` is stripped only before a digit.
        let no = "1.25.3 v1.27.1 1.25.3-alpine 1.25-slim bookworm 16.4.0-debian-12-r3 latest \
                  12.2.0-devel-ubuntu22.04 stable sha-abc123 7b3c9 vtest1";
        for (tags, want) in [(yes, true), (no, false)] {
            for tag in tags.split_whitespace() {
                assert_eq!(is_prerelease(tag), want, "is_prerelease({tag:?})");
            }
        }
    }

    const NGINX: &str = "1.24.0 1.25.0 1.25.3 1.25.3-alpine 1.26.0-rc.1 1.26.0 1.27.0-beta \
                         latest stable mainline v1.27.1 1.9 1.10";

    fn strings(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// Builds a spec from CLI-like words, e.g. `--semver ^1 --no-prerelease`.
    fn spec(args: &str) -> FilterSpec {
        let mut spec = FilterSpec::default();
        let mut words = args.split_whitespace();
        while let Some(flag) = words.next() {
            let mut value = || words.next().map(str::to_owned);
            match flag {
                "--tags" => spec.include = value(),
                "--exclude-tags" => spec.exclude = value(),
                "--semver" => spec.semver = value(),
                "--latest" => spec.latest = value().map(|n| n.parse().unwrap()),
                "--no-prerelease" => spec.no_prerelease = true,
                _ => panic!("unknown flag {flag}"),
            }
        }
        spec
    }

    /// `drops` groups the expected dropped tags by reason; the expected `Selection` is rebuilt
    /// in input order, so a tag missing from both `kept` and `drops` fails the comparison.
    fn check(args: &str, tags: &str, kept: &str, drops: &[(DropReason, &str)]) {
        let tags = strings(tags);
        let reason = |tag: &String| {
            let listed = |(_, ts): &&(DropReason, &str)| ts.split_whitespace().any(|t| t == tag);
            drops.iter().find(listed).map(|&(r, _)| r)
        };
        let want = Selection {
            kept: strings(kept),
            dropped: tags
                .iter()
                .filter_map(|t| Some((t.clone(), reason(t)?)))
                .collect(),
        };
        let got = TagFilter::new(&spec(args)).unwrap().select(&tags);
        assert_eq!(got, want, "{args}");
    }

    const NOT_VERSIONS: (DropReason, &str) = (NotAVersion, "latest stable mainline");
    const LATEST_NOT_VERSIONS: (DropReason, &str) = (LatestNotAVersion, "latest stable mainline");

    /// (CLI-like options, expected kept tags, expected drops) over the `NGINX` list.
    type Drops = &'static [(DropReason, &'static str)];
    type Case = (&'static str, &'static str, Drops);

    #[rustfmt::skip]
    const ALONE: &[Case] = &[
        ("", NGINX, &[]),
        (r"--tags 1\.25.*", "1.25.0 1.25.3 1.25.3-alpine", &[(NotIncluded,
            "1.24.0 1.26.0-rc.1 1.26.0 1.27.0-beta latest stable mainline v1.27.1 1.9 1.10")]),
        // Anchored: `1.2` must not pick `1.24.0`, and `|` stays inside the anchors.
        ("--tags 1.2|1.9|1.10", "1.9 1.10", &[(NotIncluded, "1.24.0 1.25.0 1.25.3 \
            1.25.3-alpine 1.26.0-rc.1 1.26.0 1.27.0-beta latest stable mainline v1.27.1")]),
        ("--exclude-tags .*-alpine|latest", "1.24.0 1.25.0 1.25.3 1.26.0-rc.1 1.26.0 \
            1.27.0-beta stable mainline v1.27.1 1.9 1.10", &[(Excluded, "1.25.3-alpine latest")]),
        ("--no-prerelease", "1.24.0 1.25.0 1.25.3 1.25.3-alpine 1.26.0 latest stable mainline \
            v1.27.1 1.9 1.10", &[(Prerelease, "1.26.0-rc.1 1.27.0-beta")]),
        ("--semver >=1.25,<1.27", "1.25.0 1.25.3 1.25.3-alpine 1.26.0",
            &[(OutsideRange, "1.24.0 1.26.0-rc.1 1.27.0-beta v1.27.1 1.9 1.10"), NOT_VERSIONS]),
        // SemVer's own rule: a prerelease matches only a comparator naming that release.
        ("--semver >=1.26.0-rc.0,<1.27", "1.26.0-rc.1 1.26.0", &[(OutsideRange,
            "1.24.0 1.25.0 1.25.3 1.25.3-alpine 1.27.0-beta v1.27.1 1.9 1.10"), NOT_VERSIONS]),
        ("--latest 3", "1.26.0 1.27.0-beta v1.27.1", &[(NotLatest,
            "1.24.0 1.25.0 1.25.3 1.25.3-alpine 1.26.0-rc.1 1.9 1.10"), LATEST_NOT_VERSIONS]),
        // A version's variants stay with it: 1.25.3 and 1.25.3-alpine are one version.
        ("--latest 4 --no-prerelease", "1.25.0 1.25.3 1.25.3-alpine 1.26.0 v1.27.1", &[
            (Prerelease, "1.26.0-rc.1 1.27.0-beta"), (NotLatest, "1.24.0 1.9 1.10"),
            LATEST_NOT_VERSIONS]),
    ];

    #[rustfmt::skip]
    const COMBINED: &[Case] = &[
        ("--exclude-tags .*-alpine --no-prerelease --semver ~1.25 --latest 1", "1.25.3", &[
            (Excluded, "1.25.3-alpine"), (Prerelease, "1.26.0-rc.1 1.27.0-beta"),
            (OutsideRange, "1.24.0 1.26.0 v1.27.1 1.9 1.10"), NOT_VERSIONS, (NotLatest, "1.25.0")]),
        (r"--tags v?1\.(9|1\d)|.*1\.27.*|latest --no-prerelease --latest 2", "v1.27.1 1.10", &[
            (NotIncluded, "1.24.0 1.25.0 1.25.3 1.25.3-alpine 1.26.0-rc.1 1.26.0 stable mainline"),
            (Prerelease, "1.27.0-beta"), (LatestNotAVersion, "latest"), (NotLatest, "1.9")]),
    ];

    #[test]
    fn select_each_filter_alone_and_combined() {
        for &(args, kept, drops) in ALONE.iter().chain(COMBINED) {
            check(args, NGINX, kept, drops);
        }
        // The tags of the N highest versions, whatever order the registry lists them in.
        let tags = "1.26.0-alpine 1.26.0 1.25.4 1.25.4-alpine 1.24.0";
        let mut shuffled = strings(tags);
        for turn in 0..shuffled.len() {
            shuffled.rotate_left(1);
            if turn % 2 == 1 {
                shuffled.reverse();
            }
            let order = shuffled.join(" ");
            let kept = |args: &str| -> Vec<String> {
                let mut kept = TagFilter::new(&spec(args)).unwrap().select(&shuffled).kept;
                kept.sort();
                kept
            };
            assert_eq!(
                kept("--latest 1 --no-prerelease"),
                strings("1.26.0 1.26.0-alpine"),
                "{order}"
            );
            assert_eq!(
                kept("--latest 2"),
                strings("1.25.4 1.25.4-alpine 1.26.0 1.26.0-alpine"),
                "{order}"
            );
        }
    }

    #[test]
    fn overridden_by_merges_field_by_field() {
        let cli = r"--tags 1\..* --exclude-tags .*-alpine --latest 5 --no-prerelease";
        let cli = TagFilter::new(&spec(cli)).unwrap();
        let entry = spec(r"--tags v?1\.2[67].* --semver ^1 --latest 1");
        let merged = cli.overridden_by(&entry).unwrap();
        let want =
            r"--tags v?1\.2[67].* --exclude-tags .*-alpine --semver ^1 --latest 1 --no-prerelease";
        assert_eq!(merged.spec(), &spec(want));
        assert_eq!(merged.select(&strings(NGINX)).kept, strings("v1.27.1"));
        let unchanged = cli.overridden_by(&FilterSpec::default()).unwrap();
        assert_eq!(unchanged.spec(), cli.spec());
        assert!(cli.overridden_by(&spec("--semver nope")).is_err());
    }

    #[test]
    fn a_spec_gives_back_its_flags() {
        let args =
            r"--tags v?1\..* --exclude-tags .*-alpine --semver ^1 --latest 2 --no-prerelease";
        let flags = spec(args).as_flags();
        assert_eq!(flags.join(" "), args);
        assert!(FilterSpec::default().as_flags().is_empty());
    }

    #[test]
    fn errors_name_the_option() {
        let cases = [
            ("--tags (", r#"invalid --tags regex "(""#),
            ("--tags a)|(b", r#"invalid --tags regex "a)|(b""#),
            ("--exclude-tags [", r#"invalid --exclude-tags regex "[""#),
            ("--semver >=x", r#"invalid --semver range ">=x""#),
            ("--latest 0", "--latest must be at least 1"),
        ];
        for (args, want) in cases {
            let err = TagFilter::new(&spec(args)).unwrap_err();
            assert_eq!(err.to_string(), want);
            let wraps_a_cause = !matches!(err, FilterError::LatestZero);
            assert_eq!(err.source().is_some(), wraps_a_cause, "{args}");
        }
    }

    #[test]
    fn drop_reason_names_the_filter() {
        let reasons = [
            NotIncluded,
            Excluded,
            Prerelease,
            NotAVersion,
            OutsideRange,
            LatestNotAVersion,
            NotLatest,
        ];
        let names: Vec<String> = reasons.iter().map(ToString::to_string).collect();
        let want = "--tags|--exclude-tags|--no-prerelease|--semver (not a version)|--semver|\
                    --latest (not a version)|--latest";
        assert_eq!(names.join("|"), want);
    }
}
