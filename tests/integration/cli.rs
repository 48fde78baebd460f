//! The command line itself, without registries: how errors, help and logs look to a person,
//! and the drop-in scripts' arguments.

use std::process::Command;

use crate::common::*;

/// A sync that needs no network: `--force` skips the lookups and `true` stands in for skopeo
/// (named: layouts are copied natively by default), so `-v` logs its INFO lines and nothing
/// else happens.
fn offline_sync(dir: &TempDir) -> Command {
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "127.0.0.1:9/x:1\n").unwrap();
    let mut cmd = ferry();
    cmd.args([
        "sync", "-v", "--force", "--engine", "skopeo", "--skopeo", "true",
    ])
    .arg("--dest-dir")
    .arg(dir.path().join("mirror"))
    .arg(&list)
    .env_remove("NO_COLOR")
    .env_remove("FERRY_DEST");
    cmd
}

#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let dir = TempDir::new("cli-colour");
    let out = run(&mut offline_sync(&dir), 0);
    let stderr = stderr_of(&out);
    assert!(stderr.contains("INFO"), "-v logs nothing: {stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a pipe: {stderr:?}"
    );
}

/// `script` gives ferry a terminal; its output (the terminal's) comes back on stdout.
fn on_a_terminal(cmd: &Command) -> String {
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qec", &line.join(" "), "/dev/null"]);
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    stdout_of(&run(&mut script, 0))
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    let dir = TempDir::new("cli-colour-tty");
    let shown = on_a_terminal(&offline_sync(&dir));
    assert!(shown.contains("INFO"), "-v logs nothing: {shown}");
    assert!(shown.contains('\x1b'), "no colour on a terminal: {shown:?}");
    let mut cmd = offline_sync(&dir);
    cmd.env("NO_COLOR", "1");
    let shown = on_a_terminal(&cmd);
    assert!(shown.contains("INFO"), "-v logs nothing: {shown}");
    assert!(
        !shown.contains('\x1b'),
        "colour despite NO_COLOR: {shown:?}"
    );
}

#[test]
fn durations_need_a_unit_and_must_not_be_zero() {
    for flag in ["--retry-delay", "--max-retry-delay", "--image-timeout"] {
        for value in ["0", "5", "0s"] {
            let out = run(ferry().args(["sync", "--dry-run", flag, value]), 2);
            let stderr = stderr_of(&out);
            assert!(
                stderr.contains(flag) && stderr.contains("500ms, 2s, 5m, 1h"),
                "{flag} {value}: {stderr}"
            );
        }
    }
}

#[test]
fn a_typo_in_registries_conf_is_a_usage_error_with_its_line() {
    let dir = TempDir::new("cli-conf");
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        "# redirect Docker Hub\nunqualified-search-registries = []\n\n[[registry]]\n\
         prefix = \"docker.io\"\n\nlocaton = \"127.0.0.1:9\"\ninsecure = true\n",
    )
    .unwrap();
    let mut cmd = offline_sync(&dir);
    cmd.arg("--registries-conf").arg(&conf);
    let stderr = stderr_of(&run(&mut cmd, 2));
    let expected = format!(
        "ferry: error: {}:7: unknown key \"locaton\" in [[registry]] (known: prefix, location,",
        conf.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(!dir.path().join("mirror").exists(), "something was copied");
}

#[test]
fn a_byte_order_mark_is_dropped_in_every_input_format() {
    let dir = TempDir::new("cli-bom");
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
        let path = dir.path().join(name);
        std::fs::write(&path, format!("\u{feff}{text}")).unwrap();
        let out = run(ferry().arg("show-raw-images").arg(&path), 0);
        assert_eq!(stdout_of(&out), "docker.io/library/nginx:1.25\n", "{name}");
    }
}

/// Names are read as distribution's `ParseNormalizedNamed` reads them and land where
/// `skopeo sync --scoped` puts them; an image ID is no name.
#[test]
fn references_are_read_as_distribution_reads_them() {
    let dir = TempDir::new("cli-grammar");
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        "localhost:5000\nregistry-1.docker.io/bitnami/redis:7\nindex.docker.io/library/nginx:1\n",
    )
    .unwrap();
    let out = run(
        ferry()
            .args(["show-images", "--dest", "harbor.example/third"])
            .arg(&list),
        0,
    );
    assert_eq!(
        stdout_of(&out),
        "harbor.example/third/docker.io/library/localhost:5000\n\
         harbor.example/third/registry-1.docker.io/bitnami/redis:7\n\
         harbor.example/third/docker.io/library/nginx:1\n"
    );
    let id = "0123456789abcdef".repeat(4);
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, format!("nginx:1.25\n{id}\n")).unwrap();
    let stderr = stderr_of(&run(ferry().arg("show-raw-images").arg(&bad), 2));
    let expected = format!(
        "{}:2: invalid image reference \"{id}\": a 64-character hex string is an image ID",
        bad.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn a_list_that_is_not_utf8_names_its_first_bad_line() {
    let dir = TempDir::new("cli-utf8");
    let path = dir.path().join("list.txt");
    std::fs::write(&path, b"nginx:1.25\n# caf\xe9 au lait\nredis:7\n").unwrap();
    let out = run(ferry().arg("show-raw-images").arg(&path), 2);
    let expected = format!("{}:2: not valid UTF-8\n", path.display());
    assert!(
        stderr_of(&out).starts_with(&expected),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn filter_errors_on_the_command_line_say_why() {
    for (flag, value, reason) in [
        (
            "--semver",
            "banana",
            "ferry: error: invalid --semver range \"banana\": unexpected character 'b'",
        ),
        (
            "--tags",
            "(",
            "ferry: error: invalid --tags regex \"(\": unclosed group",
        ),
    ] {
        let out = run(ferry().args(["plan", flag, value, "list.txt"]), 2);
        let stderr = stderr_of(&out);
        assert!(stderr.starts_with(reason), "{flag} {value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn typos_get_suggestions() {
    for (args, tip) in [
        (&["synk"][..], "a similar subcommand exists: 'sync'"),
        (
            &["sync", "--jobz", "2"][..],
            "a similar argument exists: '--jobs'",
        ),
    ] {
        let stderr = stderr_of(&run(ferry().args(args), 2));
        assert!(stderr.contains(tip), "{args:?}: {stderr}");
    }
}

#[test]
fn help_lines_fit_in_100_columns() {
    for columns in [None, Some("200")] {
        let mut cmd = ferry();
        cmd.args(["sync", "-h"]);
        match columns {
            Some(columns) => cmd.env("COLUMNS", columns),
            None => cmd.env_remove("COLUMNS"),
        };
        let help = stdout_of(&run(&mut cmd, 0));
        assert!(help.contains("--image-timeout"), "{help}");
        let widest = help.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(
            widest <= 100,
            "COLUMNS={columns:?}: {widest} columns\n{help}"
        );
    }
}

#[test]
fn every_error_starts_with_ferry_error_and_help_does_not() {
    let dir = TempDir::new("cli-prefix");
    let bad_list = dir.path().join("bad.txt");
    std::fs::write(&bad_list, "Nginx:1\n").unwrap();
    let bad_list = bad_list.to_str().unwrap();
    for args in [
        &["synk"][..],
        &["sync", "--jobz", "2"][..],
        &["sync", "--image-timeout", "5"][..],
        &["sync", "--dest"][..],
        &["sync", "--jobs", "0", "--dry-run"][..],
        &["show-images", "--dest", "third"][..],
    ] {
        let stderr = stderr_of(&run(ferry().args(args), 2));
        assert!(stderr.starts_with("ferry: error: "), "{args:?}: {stderr}");
    }
    // An input's problems are FILE:LINE lines, closed by ferry's own error line.
    let stderr = stderr_of(&run(ferry().args(["show-raw-images", bad_list]), 2));
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("ferry: error: 1 problem"), "{stderr}");
    for args in [&["--help"][..], &["sync", "-h"][..], &["--version"][..]] {
        let out = run(ferry().args(args), 0);
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr_of(&out));
        assert!(!stdout_of(&out).contains("error:"), "{args:?}");
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
    let out = run(ferry().args(["completions", "tcsh"]), 2);
    assert!(
        stderr_of(&out).contains("invalid value 'tcsh'"),
        "{}",
        stderr_of(&out)
    );
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
        let out = run(
            ferry()
                .args(["show-images", "--dest", "h.example/m", "--shard", shard])
                .env_remove("JOB_COMPLETION_INDEX"),
            2,
        );
        assert_eq!(stderr_of(&out).trim_end(), expected, "--shard {shard}");
    }
}
