//! `ferry manpage`: the manual pages, rendered from the command line's own definition so that
//! they never disagree with `--help`. `ferry manpage` prints ferry(1); `ferry manpage --dir DIR`
//! writes ferry(1) and one page per subcommand (`ferry-sync.1`, `ferry-report-merge.1`, …), each
//! with its options and the sections clap knows nothing of: exit status, environment, files and
//! the pages it refers to.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;

use crate::cli::Cli;
use crate::error::{Error, Outcome};

/// The sections a page gets beyond what clap renders, for one command path (`["sync"]`,
/// `["report", "merge"]`, `[]` for ferry itself).
struct Extra {
    exit: &'static [(&'static str, &'static str)],
    environment: Vec<(&'static str, &'static str)>,
    files: &'static [(&'static str, &'static str)],
}

const EXIT_COPY: &[(&str, &str)] = &[
    ("0", "Every image was synced or was already current."),
    (
        "1",
        "Some images failed (every other image was still processed), or a report could not be \
         written.",
    ),
    (
        "2",
        "Bad usage, list or configuration: nothing was copied. Every input is checked before \
         anything is copied.",
    ),
    (
        "128+N",
        "Stopped by signal N (129 SIGHUP, 130 SIGINT, 143 SIGTERM); the report and the failed \
         list were written.",
    ),
];

const EXIT_PLAN: &[(&str, &str)] = &[
    (
        "0",
        "The plan was made; entries whose lookups failed are shown as unknown.",
    ),
    ("2", "Bad usage, list or configuration."),
    ("128+N", "Stopped by signal N."),
];

const EXIT_VERIFY: &[(&str, &str)] = &[
    ("0", "Every target exists with its source's digest."),
    (
        "1",
        "Some target is missing, differs from its source, has no source, or could not be \
         looked up.",
    ),
    ("2", "Bad usage, list or configuration."),
    ("128+N", "Stopped by signal N."),
];

const EXIT_SERVE: &[(&str, &str)] = &[
    ("2", "Bad usage, list, schedule or configuration at start."),
    (
        "128+N",
        "Stopped by signal N (130 SIGINT, 143 SIGTERM); SIGHUP starts a run instead.",
    ),
];

const EXIT_OFFLINE: &[(&str, &str)] = &[
    ("0", "Success."),
    ("2", "Bad usage, list or configuration."),
];

const EXIT_MERGE: &[(&str, &str)] = &[
    ("0", "The reports were merged and no entry in them failed."),
    (
        "1",
        "Some entry failed or has a problem, or a shard's report is missing.",
    ),
    (
        "2",
        "Bad usage, or reports that cannot be merged (not ferry reports, different commands, \
         lists or shard counts, or one shard twice).",
    ),
];

const EXIT_CATALOG: &[(&str, &str)] = &[
    (
        "0",
        "The catalog was written (failed images are listed in it; a shard without a report is \
         said on stderr and in it).",
    ),
    (
        "2",
        "Bad usage, or reports that make no catalog: those merge refuses (not ferry reports, \
         different commands, lists or shard counts, or one shard twice) and a plan's.",
    ),
];

const ENV_LIST: &[(&str, &str)] = &[("NO_COLOR", "Set to anything non-empty: no colour codes.")];

const ENV_DEST: &[(&str, &str)] = &[
    ("FERRY_DEST", "The destination prefix, as --dest."),
    ("NO_COLOR", "Set to anything non-empty: no colour codes."),
];

const ENV_REGISTRY: &[(&str, &str)] = &[
    ("FERRY_DEST", "The destination prefix, as --dest."),
    (
        "FERRY_SRC_CREDS, FERRY_DEST_CREDS",
        "USER:PASS for the sources or the destination (safer than the flags: argv is visible \
         to other users).",
    ),
    (
        "FERRY_DEST_USERNAME, FERRY_DEST_PASSWORD",
        "The destination's credentials as two variables.",
    ),
    (
        "FERRY_ENGINE, FERRY_SKOPEO, FERRY_CRANE",
        "The copy engine, and the skopeo and crane binaries, as --engine, --skopeo and --crane.",
    ),
    (
        "CONTAINERS_REGISTRIES_CONF",
        "The registries.conf to read, as --registries-conf.",
    ),
    (
        "REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, DOCKER_CONFIG, HOME",
        "Where credentials are looked for when no auth file is given (see FILES).",
    ),
    (
        "JOB_COMPLETION_INDEX",
        "K for --shard N when --shard-index-env is not given (set by a Kubernetes Indexed Job).",
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "Extra trusted CA certificates for skopeo and crane.",
    ),
    ("NO_COLOR", "Set to anything non-empty: no colour codes."),
];

const ENV_SERVE: &[(&str, &str)] = &[(
    "TZ",
    "The time zone --cron expressions are read in (the system's when unset).",
)];

const FILES_LIST: &[(&str, &str)] = &[(
    "./source-images.list",
    "The image list read when no LIST is given.",
)];

const FILES_REGISTRY: &[(&str, &str)] = &[
    (
        "./source-images.list",
        "The image list read when no LIST is given.",
    ),
    (
        "./mirror",
        "The directory of OCI layouts written when no destination is given (--dest-dir).",
    ),
    (
        "$REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, \
         ~/.config/containers/auth.json, ~/.docker/config.json",
        "Credentials, in this order, as skopeo reads them, when no --authfile is given; Docker's \
         credential helpers are run where config.json names them.",
    ),
    (
        "/etc/containers/registries.conf",
        "Mirrors, redirects, blocked and insecure registries, when --registries-conf is not \
         given.",
    ),
    (
        "/etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST",
        "CA certificates and client certificates for HOST, when no --*-cert-dir is given.",
    ),
];

fn extra(path: &[&str]) -> Extra {
    let (exit, environment, files): (_, &[_], &[_]) = match path {
        ["sync"] => (EXIT_COPY, ENV_REGISTRY, FILES_REGISTRY),
        ["plan"] => (EXIT_PLAN, ENV_REGISTRY, FILES_REGISTRY),
        ["verify"] => (EXIT_VERIFY, ENV_REGISTRY, FILES_REGISTRY),
        ["serve"] => (EXIT_SERVE, ENV_REGISTRY, FILES_REGISTRY),
        ["show-raw-images"] => (EXIT_OFFLINE, ENV_LIST, FILES_LIST),
        ["show-images"] => (EXIT_OFFLINE, ENV_DEST, FILES_LIST),
        ["report", "merge"] => (EXIT_MERGE, &[], &[]),
        ["report", "catalog"] => (EXIT_CATALOG, &[], &[]),
        ["report"] | ["completions"] | ["manpage"] => (EXIT_OFFLINE, &[], &[]),
        _ => (EXIT_COPY, ENV_REGISTRY, FILES_REGISTRY),
    };
    let mut environment = environment.to_vec();
    if path == ["serve"] {
        // serve reads everything sync reads, and TZ.
        environment.extend_from_slice(ENV_SERVE);
    }
    Extra {
        exit,
        environment,
        files,
    }
}

/// One rendered page: its file name and roff text.
pub struct Page {
    pub file_name: String,
    pub text: Vec<u8>,
}

/// Every page: ferry(1) first, then each subcommand's, depth first, in the order `--help`
/// lists them.
pub fn pages() -> Result<Vec<Page>, std::io::Error> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    collect(&command, &mut Vec::new(), &mut pages)?;
    Ok(pages)
}

fn collect<'a>(
    command: &'a clap::Command,
    path: &mut Vec<&'a str>,
    pages: &mut Vec<Page>,
) -> Result<(), std::io::Error> {
    pages.push(render(command, path)?);
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        path.push(sub.get_name());
        collect(sub, path, pages)?;
        path.pop();
    }
    Ok(())
}

fn render(command: &clap::Command, path: &[&str]) -> Result<Page, std::io::Error> {
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("ferry {}", env!("CARGO_PKG_VERSION")))
        .manual("ferry manual");
    let mut text = Vec::new();
    man.render_title(&mut text)?;
    man.render_name_section(&mut text)?;
    man.render_synopsis_section(&mut text)?;
    man.render_description_section(&mut text)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut text)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(&mut text)?;
    }
    let extra = extra(path);
    section(&mut text, "EXIT STATUS", extra.exit)?;
    section(&mut text, "ENVIRONMENT", &extra.environment)?;
    section(&mut text, "FILES", extra.files)?;
    see_also(&mut text, command, path)?;
    if command.get_version().is_some() {
        man.render_version_section(&mut text)?;
    }
    Ok(Page {
        file_name: man.get_filename(),
        text,
    })
}

/// A section of tagged paragraphs (`.TP`), left out when it has none.
fn section(out: &mut Vec<u8>, title: &str, items: &[(&str, &str)]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, ".SH \"{title}\"")?;
    for (tag, text) in items {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff(tag), roff(text))?;
    }
    Ok(())
}

/// SEE ALSO: a page names ferry(1) and its parent's page, and the pages of every command below
/// it (so ferry(1) names them all).
fn see_also(out: &mut Vec<u8>, command: &clap::Command, path: &[&str]) -> std::io::Result<()> {
    fn below(command: &clap::Command, prefix: &str, names: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            names.push(name.clone());
            below(sub, &name, names);
        }
    }
    let mut names: Vec<String> = Vec::new();
    if !path.is_empty() {
        names.push("ferry".to_owned());
        if path.len() > 1 {
            names.push(format!("ferry-{}", path[..path.len() - 1].join("-")));
        }
    }
    let prefix = std::iter::once("ferry")
        .chain(path.iter().copied())
        .collect::<Vec<_>>()
        .join("-");
    below(command, &prefix, &mut names);
    let mut refs: Vec<String> = names
        .iter()
        .map(|name| format!("\\fB{}\\fR(1)", roff(name)))
        .collect();
    refs.extend([
        "\\fBskopeo\\fR(1)".to_owned(),
        "\\fBcrane\\fR(1)".to_owned(),
    ]);
    writeln!(out, ".SH \"SEE ALSO\"\n{}", refs.join(", "))
}

/// `text` escaped for roff: backslashes, hyphens (so they are not turned into dashes), and a
/// leading dot or quote that would start a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// `ferry manpage`: ferry(1) on stdout; with `dir`, every page written there.
pub fn manpage(dir: Option<&Path>) -> Result<Outcome, Error> {
    let pages =
        pages().map_err(|e| Error::Internal(format!("cannot render the man pages: {e}")))?;
    let Some(dir) = dir else {
        let _ = std::io::stdout().write_all(&pages[0].text);
        return Ok(Outcome::Done);
    };
    let cannot = |path: &Path, e: std::io::Error| {
        Error::Usage(format!("cannot write the man page {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
    for page in &pages {
        let path: PathBuf = dir.join(&page.file_name);
        std::fs::write(&path, &page.text).map_err(|e| cannot(&path, e))?;
        super::say(path.display());
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_has_its_page_with_its_options_and_exit_codes() {
        let pages = pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|p| p.file_name.as_str()).collect();
        for expected in [
            "ferry.1",
            "ferry-show-raw-images.1",
            "ferry-show-images.1",
            "ferry-plan.1",
            "ferry-verify.1",
            "ferry-sync.1",
            "ferry-serve.1",
            "ferry-report.1",
            "ferry-report-merge.1",
            "ferry-report-catalog.1",
            "ferry-completions.1",
            "ferry-manpage.1",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        let page = |name: &str| {
            let page = pages.iter().find(|p| p.file_name == name).unwrap();
            String::from_utf8(page.text.clone()).unwrap()
        };
        let sync = page("ferry-sync.1");
        for part in [
            ".TH ferry-sync 1",
            "\\-\\-dest\\-tls\\-verify",
            ".SH \"EXIT STATUS\"",
            "128+N",
            ".SH \"ENVIRONMENT\"",
            "FERRY_DEST_PASSWORD",
            ".SH \"FILES\"",
            "/etc/containers/registries.conf",
            "\\fBferry\\fR(1)",
        ] {
            assert!(sync.contains(part), "ferry-sync.1 lacks {part}:\n{sync}");
        }
        assert!(page("ferry-serve.1").contains("\\fBTZ\\fR"));
        let top = page("ferry.1");
        assert!(top.contains("\\fBferry\\-report\\-merge\\fR(1)"), "{top}");
        assert!(page("ferry-report-merge.1").contains("\\fBferry\\-report\\fR(1)"));
        let catalog = page("ferry-report-catalog.1");
        assert!(
            catalog.contains("a plan\\(aqs") || catalog.contains("plan's"),
            "{catalog}"
        );
        assert!(!catalog.contains("FERRY_DEST_PASSWORD"), "{catalog}");
    }

    #[test]
    fn roff_escapes_what_would_be_read_as_requests() {
        assert_eq!(roff("--dest"), "\\-\\-dest");
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
