//! The command line itself, without registries: how errors, help and logs look to a person,
//! and the drop-in scripts' arguments.

use crate::common::*;

/// A sync that needs no network: `--force` skips the lookups and `true` stands in for skopeo
/// (named: layouts are copied natively by default), so `-v` logs its INFO lines and nothing
/// else happens.
fn offline_sync() -> Test<'static> {
    Test::new()
        .file("list.txt", "127.0.0.1:9/x:1\n")
        .args([
            "sync", "-v", "--force", "--engine", "skopeo", "--skopeo", "true",
        ])
        .args(["--dest-dir", "mirror", "list.txt"])
        .env_remove("NO_COLOR")
}

/// What [`offline_sync`] prints on stdout: its result and its summary.
const OFFLINE_SYNCED: &str = "synced  oci:mirror/127.0.0.1_9/x:1  [t]  0 blobs copied, 0 reused\n\
                              1 image: 1 synced, 0 skipped, 0 failed in [t]\n";

#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let ran = offline_sync().stdout(OFFLINE_SYNCED).run();
    let stderr = ran.stderr();
    assert!(stderr.contains("INFO"), "-v logs nothing: {stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a pipe: {stderr:?}"
    );
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let shown = offline_sync().on_a_terminal().run().stdout();
    assert!(shown.contains("INFO"), "-v logs nothing: {shown}");
    assert!(shown.contains('\x1b'), "no colour on a terminal: {shown:?}");
    let shown = offline_sync()
        .env("NO_COLOR", "1")
        .on_a_terminal()
        .run()
        .stdout();
    assert!(shown.contains("INFO"), "-v logs nothing: {shown}");
    assert!(
        !shown.contains('\x1b'),
        "colour despite NO_COLOR: {shown:?}"
    );
}

#[test]
fn durations_need_a_unit_and_must_not_be_zero() {
    for flag in ["--retry-delay", "--max-retry-delay", "--image-timeout"] {
        for (value, why) in [
            ("0", "a duration needs a unit"),
            ("5", "a duration needs a unit"),
            ("0s", "must be longer than zero"),
        ] {
            Test::new()
                .args(["sync", "--dry-run", flag, value])
                .code(2)
                .stderr(format!(
                    "ferry: error: invalid value '{value}' for '{flag} <DURATION>': {why} \
                     (e.g. 500ms, 2s, 5m, 1h)\n\nFor more information, try '--help'.\n"
                ))
                .run();
        }
    }
}

#[test]
fn a_typo_in_registries_conf_is_a_usage_error_with_its_line() {
    let sync = offline_sync().file(
        "registries.conf",
        "# redirect Docker Hub\nunqualified-search-registries = []\n\n[[registry]]\n\
         prefix = \"docker.io\"\n\nlocaton = \"127.0.0.1:9\"\ninsecure = true\n",
    );
    let conf = sync.dir().join("registries.conf");
    let ran = sync
        .arg("--registries-conf")
        .arg(&conf)
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: [dir]/registries.conf:7: unknown key \"locaton\" in [[registry]] \
             (known: prefix, location, insecure, blocked, mirror-by-digest-only, mirror)\n",
        )
        .run();
    assert!(!ran.path("mirror").exists(), "something was copied");
}

/// A malformed Docker `config.json` is a configuration problem, like a typo in
/// registries.conf: exit 2 with the file named, before anything runs. Both engines that are
/// handed ferry's credentials in a private file read it first: skopeo when ferry holds
/// credentials (its auth file keeps the user's entries), crane always. (`true` stands in for
/// each: neither may start.)
#[test]
fn a_malformed_docker_config_is_a_configuration_error_naming_the_file() {
    let engines: [&[&str]; 2] = [
        &[
            "--engine",
            "skopeo",
            "--skopeo",
            "true",
            "--src-creds",
            "u:p",
        ],
        &["--engine", "crane", "--crane", "true"],
    ];
    for engine in engines {
        // Cut short after its first entry.
        let test = Test::new()
            .file(
                "docker/config.json",
                "{\n  \"auths\": {\n    \"quay.io\": { \"auth\": \"c2VjcmV0LXB3\" }\n",
            )
            .file("list.txt", "quay.example/x:1\n");
        let dir = test.dir().to_owned();
        test.args(["sync", "--force"])
            .args(engine)
            .args(["--dest", "127.0.0.1:9/m", "list.txt"])
            .env("HOME", dir.join("home"))
            .env("DOCKER_CONFIG", dir.join("docker"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("FERRY_DEST")
            .code(2)
            .stdout("")
            .stderr(
                "ferry: error: invalid auth file [dir]/docker/config.json: not the expected JSON \
                 at line 4, column 0; nothing was copied: fix the file, or name another with \
                 --authfile\n",
            )
            .run();
    }
}

#[test]
fn a_byte_order_mark_is_dropped_in_every_input_format() {
    for (name, text) in [
        ("list.txt", "nginx:1.25\n"),
        (
            "sync.yaml",
            "docker.io:\n  images:\n    nginx: [\"1.25\"]\n",
        ),
        (
            "images.json",
            "[{\"source\": \"nginx:1.25\", \"target\": \"h.example/nginx:1.25\"}]",
        ),
    ] {
        Test::new()
            .file(name, format!("\u{feff}{text}"))
            .args(["show-raw-images", name])
            .stdout("docker.io/library/nginx:1.25\n")
            .stderr("")
            .run();
    }
}

/// Names are read as distribution's `ParseNormalizedNamed` reads them and land where
/// `skopeo sync --scoped` puts them; an image ID is no name.
#[test]
fn references_are_read_as_distribution_reads_them() {
    Test::new()
        .file(
            "list.txt",
            "localhost:5000\nregistry-1.docker.io/bitnami/redis:7\nindex.docker.io/library/nginx:1\n",
        )
        .args(["show-images", "--dest", "harbor.example/third", "list.txt"])
        .stdout(
            "harbor.example/third/docker.io/library/localhost:5000\n\
             harbor.example/third/registry-1.docker.io/bitnami/redis:7\n\
             harbor.example/third/docker.io/library/nginx:1\n",
        )
        .run();
    let id = "0123456789abcdef".repeat(4);
    Test::new()
        .file("bad.txt", format!("nginx:1.25\n{id}\n"))
        .args(["show-raw-images", "bad.txt"])
        .code(2)
        .stdout("")
        .stderr(format!(
            "bad.txt:2: invalid image reference \"{id}\": a 64-character hex string is an image \
             ID, not a repository name (to pin an image, write NAME@sha256:…)\n\
             ferry: error: 1 problem in the input; nothing was copied\n"
        ))
        .run();
}

#[test]
fn a_list_that_is_not_utf8_names_its_first_bad_line() {
    Test::new()
        .file("list.txt", b"nginx:1.25\n# caf\xe9 au lait\nredis:7\n")
        .args(["show-raw-images", "list.txt"])
        .code(2)
        .stdout("")
        .stderr(
            "list.txt:2: not valid UTF-8\n\
             ferry: error: 1 problem in the input; nothing was copied\n",
        )
        .run();
}

#[test]
fn filter_errors_on_the_command_line_say_why() {
    for (flag, value, reason) in [
        (
            "--semver",
            "banana",
            "ferry: error: invalid --semver range \"banana\": unexpected character 'b' while \
             parsing major version number\n",
        ),
        (
            "--tags",
            "(",
            "ferry: error: invalid --tags regex \"(\": unclosed group\n",
        ),
    ] {
        Test::new()
            .args(["plan", flag, value, "list.txt"])
            .code(2)
            .stdout("")
            .stderr(reason)
            .run();
    }
}

#[test]
fn typos_get_suggestions() {
    for (args, tip, usage) in [
        (
            &["synk"][..],
            "unrecognized subcommand 'synk'\n\n  tip: a similar subcommand exists: 'sync'",
            "ferry [OPTIONS] <COMMAND>",
        ),
        (
            &["sync", "--jobz", "2"][..],
            "unexpected argument '--jobz' found\n\n  tip: a similar argument exists: '--jobs'",
            "ferry sync --jobs <N> [LIST]...",
        ),
    ] {
        Test::new()
            .args(args)
            .code(2)
            .stdout("")
            .stderr(format!(
                "ferry: error: {tip}\n\nUsage: {usage}\n\nFor more information, try '--help'.\n"
            ))
            .run();
    }
}

#[test]
fn help_lines_fit_in_100_columns() {
    for columns in [None, Some("200")] {
        let help = match columns {
            Some(columns) => Test::new().env("COLUMNS", columns),
            None => Test::new().env_remove("COLUMNS"),
        };
        let help = help.args(["sync", "-h"]).stderr("").run().stdout();
        assert!(help.contains("--image-timeout"), "{help}");
        let widest = help.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= 100,
            "COLUMNS={columns:?}: {widest} columns\n{help}"
        );
    }
}

/// Every error is one `ferry: error: ` line (clap's with its usage after it), said once; an
/// input's problems are FILE:LINE lines, closed by ferry's own error line; help and the
/// version are no errors.
#[test]
fn every_error_starts_with_ferry_error_and_help_does_not() {
    let more = "\n\nFor more information, try '--help'.\n";
    for (args, expected) in [
        (
            &["synk"][..],
            format!(
                "ferry: error: unrecognized subcommand 'synk'\n\n  \
                 tip: a similar subcommand exists: 'sync'\n\nUsage: ferry [OPTIONS] <COMMAND>{more}"
            ),
        ),
        (
            &["sync", "--jobz", "2"][..],
            format!(
                "ferry: error: unexpected argument '--jobz' found\n\n  \
                 tip: a similar argument exists: '--jobs'\n\nUsage: ferry sync --jobs <N> [LIST]...{more}"
            ),
        ),
        (
            &["sync", "--image-timeout", "5"][..],
            format!(
                "ferry: error: invalid value '5' for '--image-timeout <DURATION>': a duration \
                 needs a unit (e.g. 500ms, 2s, 5m, 1h){more}"
            ),
        ),
        (
            &["sync", "--dest"][..],
            format!(
                "ferry: error: a value is required for '--dest <PREFIX>' but none was supplied{more}"
            ),
        ),
        (
            &["sync", "--jobs", "0", "--dry-run"][..],
            "ferry: error: --jobs must be at least 1\n".to_owned(),
        ),
        (
            &["show-images", "--dest", "third"][..],
            "ferry: error: invalid destination \"third\": destination prefix must start with a \
             registry host (e.g. harbor.example/mirror)\n"
                .to_owned(),
        ),
        (
            &["show-raw-images", "bad.txt"][..],
            "bad.txt:1: invalid image reference \"Nginx:1\": repository name must be lowercase\n\
             ferry: error: 1 problem in the input; nothing was copied\n"
                .to_owned(),
        ),
    ] {
        Test::new()
            .file("bad.txt", "Nginx:1\n")
            .args(args)
            .code(2)
            .stdout("")
            .stderr(expected)
            .run();
    }
    for args in [&["--help"][..], &["sync", "-h"][..], &["--version"][..]] {
        let ran = Test::new().args(args).stderr("").run();
        assert!(!ran.stdout().contains("error:"), "{args:?}");
    }
}

#[test]
fn completions_and_the_man_page_are_generated_for_every_command() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef ferry"),
        ("fish", "complete -c ferry"),
    ] {
        let out = run(ferry().args(["completions", shell]), 0);
        let script = stdout_of(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["sync", "plan", "verify", "show-images", "report"] {
            assert!(script.contains(command), "{shell} completes no {command}");
        }
        assert!(
            script.contains("--dest") || script.contains("-l dest"),
            "{shell} completes no --dest"
        );
    }
    let page = stdout_of(&run(ferry().arg("manpage"), 0));
    assert!(
        page.starts_with(".ie") || page.contains(".TH ferry 1"),
        "{page}"
    );
    assert!(
        page.contains(".TH ferry 1") && page.contains("sync"),
        "{page}"
    );
    // Every subcommand's page, written into a directory, each one that man(1) reads when it
    // is there to read them.
    let dir = TempDir::new("manpages");
    let out = run(
        ferry()
            .args(["manpage", "--dir"])
            .arg(dir.path().join("man1")),
        0,
    );
    let written = stdout_of(&out);
    for name in [
        "ferry",
        "ferry-sync",
        "ferry-serve",
        "ferry-report-merge",
        "ferry-report-catalog",
        "ferry-verify",
    ] {
        let file = dir.path().join("man1").join(format!("{name}.1"));
        assert!(written.contains(&file.display().to_string()), "{written}");
        let page = std::fs::read_to_string(&file).unwrap();
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: {page}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{name}: {page}");
        if std::process::Command::new("man")
            .arg("--version")
            .output()
            .is_ok()
        {
            let shown = std::process::Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&file)
                .env("MANWIDTH", "80")
                .output()
                .unwrap();
            assert!(shown.status.success(), "man {name}: {shown:?}");
            assert!(
                String::from_utf8_lossy(&shown.stderr).trim().is_empty(),
                "man warns about {name}: {}",
                String::from_utf8_lossy(&shown.stderr)
            );
        }
    }
    Test::new()
        .args(["completions", "tcsh"])
        .code(2)
        .stdout("")
        .stderr(
            "ferry: error: invalid value 'tcsh' for '<SHELL>'\n  \
             [possible values: bash, zsh, fish]\n\n  tip: a similar value exists: 'zsh'\n\n\
             For more information, try '--help'.\n",
        )
        .run();
}

/// Every wrong `--shard` says which part is wrong and what to write, once, and exits 2.
#[test]
fn a_wrong_shard_says_what_is_wrong_with_it() {
    let n_at_least_1 = "N, the number of shards, must be at least 1 (write K/N with 0 <= K < N, \
                        e.g. 0/3)";
    for (shard, expected) in [
        ("0", format!("ferry: error: --shard 0: {n_at_least_1}")),
        ("1/0", format!("ferry: error: --shard 1/0: {n_at_least_1}")),
        ("0/0", format!("ferry: error: --shard 0/0: {n_at_least_1}")),
        (
            "3/3",
            "ferry: error: --shard 3/3: shard 3 of 3 does not exist: K counts from 0, so it \
             must be less than N (0 to 2 here)"
                .to_owned(),
        ),
        (
            "-1/3",
            "ferry: error: --shard -1/3: the shard index K \"-1\" is not a whole number: write \
             K/N with 0 <= K < N (e.g. 0/3), or N with K from --shard-index-env"
                .to_owned(),
        ),
        (
            "3",
            "ferry: error: --shard 3: K comes from $JOB_COMPLETION_INDEX, which is not set: set \
             it, name the variable that holds K with --shard-index-env, or write K/N"
                .to_owned(),
        ),
    ] {
        Test::new()
            .args(["show-images", "--dest", "h.example/m", "--shard", shard])
            .env_remove("JOB_COMPLETION_INDEX")
            .code(2)
            .stdout("")
            .stderr(format!("{expected}\n"))
            .run();
    }
}

#[test]
fn signatures_are_refused_where_they_cannot_travel_before_anything_runs() {
    let list = "127.0.0.1:9/x:1 127.0.0.1:9/y:1\n";
    let usage = |args: &[&str], why: &str| {
        Test::new()
            .file("list.txt", list)
            .args(args)
            .arg("list.txt")
            .code(2)
            .stderr(format!("ferry: error: --signatures{why}\n"))
            .run();
    };
    usage(
        &["sync", "--signatures=sig,sigs"],
        "=sig,sigs: \"sigs\" is none of sig, att, sbom, referrers or an artifactType (a media \
         type such as application/spdx+json)",
    );
    usage(
        &["sync", "--signatures", "--dest-dir", "mirror"],
        ": signatures, attestations, SBOMs and referrers are copied into a registry, not into \
         OCI layouts (oci:mirror); give --dest PREFIX",
    );
    usage(
        &["plan", "--signatures", "--dest", "127.0.0.1:9/m"],
        ": `ferry plan` does not look up artifacts; `ferry verify --signatures` checks them at \
         the target and `ferry sync --signatures` copies them",
    );
    // A dry run says what follows each image, and which of it skopeo cannot copy.
    Test::new()
        .file("list.txt", list)
        .args(["sync", "--dry-run", "--signatures", "--engine", "skopeo"])
        .args(["--skopeo", "true", "--dest", "127.0.0.1:9/m", "list.txt"])
        .stdout(
            "# list.txt:1 -> 127.0.0.1:9/y:1\n\
             [..]\n\
             # after each image: its signatures, attestations, SBOMs and referrers (looked up in \
             a real run; each copied as above, a referrer by digest)\n\
             # dry run: 1 entry, nothing copied; targets already current are skipped in a real run\n",
        )
        .stderr(
            "ferry: note: with --engine skopeo, --signatures copies cosign's signature, \
             attestation and SBOM tags as copies of their own; OCI referrers exist by digest \
             alone, which skopeo cannot copy: they are reported as needs-native (copy them with \
             --engine native)\n",
        )
        .run();
}
