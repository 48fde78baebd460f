//! `ferry report catalog`: the exact Markdown of two shards' reports (tests/golden/catalog/),
//! the same catalog from their merged report, the HTML read by a real HTML5 parser (html5lib,
//! through tests/html5check.py) for its entries and for anything that would fetch, hostile
//! registry text escaped in both formats, and the reports it refuses.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::*;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/catalog")
        .join(name)
}

/// The two shards' reports: docker.io and quay.io images, one failed with a hostile message,
/// one with a hostile platform list, one left out for its platforms, signatures on some.
fn shards() -> [PathBuf; 2] {
    [golden("shard-0.json"), golden("shard-1.json")]
}

fn catalog(args: &[&Path], extra: &[&str], code: i32) -> (String, String) {
    let out = run(
        ferry().args(["report", "catalog"]).args(args).args(extra),
        code,
    );
    (stdout_of(&out), stderr_of(&out))
}

/// Where the expected and the actual differ, line by line.
fn first_difference(expected: &str, actual: &str) -> String {
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        if e != a {
            return format!("line {}:\n  expected: {e}\n  actual:   {a}", n + 1);
        }
    }
    format!(
        "{} lines expected, {} written",
        expected.lines().count(),
        actual.lines().count()
    )
}

#[test]
fn the_markdown_catalog_of_two_shards_is_exactly_the_golden_file() {
    let [zero, one] = shards();
    let (markdown, stderr) = catalog(&[&zero, &one], &["--format", "markdown"], 0);
    let expected = fs::read_to_string(golden("catalog.md")).unwrap();
    assert!(
        markdown == expected,
        "tests/golden/catalog/catalog.md differs: {}\n--- written:\n{markdown}",
        first_difference(&expected, &markdown)
    );
    assert_eq!(
        stderr,
        "ferry: catalog of 2 registries, 4 repositories, 5 tags, 1 failed\n"
    );
    // The shards in another order make the same catalog; Markdown is the default.
    let (again, _) = catalog(&[&one, &zero], &[], 0);
    assert_eq!(again, expected);
}

#[test]
fn a_merged_report_makes_the_catalog_its_shards_make() {
    let dir = TempDir::new("catalog-merged");
    let merged = dir.path().join("report.json");
    let [zero, one] = shards();
    run(
        ferry()
            .args(["report", "merge"])
            .arg(&merged)
            .args([&zero, &one]),
        1,
    );
    let (from_merged, _) = catalog(&[&merged], &[], 0);
    let (from_shards, _) = catalog(&[&zero, &one], &[], 0);
    let differing: Vec<(&str, &str)> = from_merged
        .lines()
        .zip(from_shards.lines())
        .filter(|(a, b)| a != b)
        .collect();
    // Only the line that says what it was made from: each tag keeps its shard's time.
    assert_eq!(
        differing,
        [(
            "- from: 1 report of ferry sync (the whole list)",
            "- from: 2 reports of ferry sync (shards 0, 1 of 2)"
        )],
        "{from_merged}"
    );
    assert_eq!(from_merged.lines().count(), from_shards.lines().count());
}

/// The python that has html5lib (scripts/test installs it in a venv under target/), or `None`:
/// the test says it was skipped, and under CI or FERRY_REQUIRE_VALIDATORS=1 it fails.
pub fn python_with_html5lib() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ferry-test-venv/bin/python3");
    let candidates = [
        std::env::var_os("FERRY_TEST_PYTHON").map(PathBuf::from),
        Some(venv),
        Some(PathBuf::from("python3")),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import html5lib"])
            .output()
            .is_ok_and(|out| out.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var_os("FERRY_REQUIRE_VALIDATORS").is_none(),
            "html5lib is missing: scripts/test installs it"
        );
        eprintln!("SKIPPED: no python with html5lib (scripts/test installs it)");
    }
    found
}

/// `html` as an HTML5 parser reads it (see tests/html5check.py).
pub fn parse_html(python: &Path, html: &str) -> Value {
    let dir = TempDir::new("catalog-html");
    let file = dir.path().join("page.html");
    fs::write(&file, html).unwrap();
    let out = run(
        Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/html5check.py"))
            .arg(&file),
        0,
    );
    serde_json::from_str(&stdout_of(&out)).unwrap()
}

/// The checks every catalog page passes: it parses as HTML5 without an error, fetches
/// nothing, and has its viewport, print style, filter box and a policy that forbids fetches.
pub fn check_page(page: &Value) {
    assert_eq!(page["errors"], json!([]), "parse errors");
    assert_eq!(page["external"], json!([]), "would fetch");
    assert_eq!(page["title"], "Mirror catalog");
    assert_eq!(page["viewport"], "width=device-width, initial-scale=1");
    assert!(
        page["csp"]
            .as_str()
            .is_some_and(|csp| csp.starts_with("default-src 'none';")),
        "{}",
        page["csp"]
    );
    assert_eq!(page["print_css"], true);
    assert_eq!(page["filter"], true);
}

/// Each table's body rows (its first row is the header).
pub fn rows(page: &Value) -> Vec<Vec<String>> {
    page["tables"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|table| table.as_array().unwrap()[1..].to_vec())
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_html_catalog_parses_as_html5_holds_every_entry_and_fetches_nothing() {
    let Some(python) = python_with_html5lib() else {
        return;
    };
    // The checker sees what would fetch: a page with an image, a stylesheet, a CSS url() and
    // a script is refused for each.
    let hostile = parse_html(
        &python,
        "<!DOCTYPE html><html><head><title>x</title><link rel=stylesheet href=//a/b.css>\
         <style>body { background: URL( 'https://a/b.png' ) }</style></head><body>\
         <img src=x.png><p style=\"background:url(x)\">x</p><script>fetch('/x')</script>\
         <table><tr><td>x</td></table></body></html>",
    );
    let external: Vec<String> = serde_json::from_value(hostile["external"].clone()).unwrap();
    assert_eq!(external.len(), 7, "{external:?}");
    let broken = parse_html(&python, "<html><p>unclosed <b>x</i></p>");
    assert_ne!(broken["errors"], json!([]), "no parse error found");

    let dir = TempDir::new("catalog-html");
    let file = dir.path().join("catalog.html");
    let [zero, one] = shards();
    // `-o x.html` writes HTML without --format.
    let (stdout, _) = catalog(&[&zero, &one], &["-o", file.to_str().unwrap()], 0);
    assert_eq!(stdout, "");
    let html = fs::read_to_string(&file).unwrap();
    let page = parse_html(&python, &html);
    check_page(&page);
    let headings: Vec<(u64, String)> = page["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h[0].as_u64().unwrap(), h[1].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        headings,
        [
            (1, "Mirror catalog"),
            (2, "Failed"),
            (2, "docker.io"),
            (3, "library/alpine"),
            (3, "library/nginx"),
            (2, "quay.io"),
            (3, "coreos/etcd"),
            (3, "evil/x"),
        ]
        .map(|(l, t)| (l, t.to_owned()))
    );
    let digest = |c: &str| format!("sha256:{}", c.repeat(64));
    let rows = rows(&page);
    let dest = "harbor.example/third";
    assert_eq!(
        rows[0],
        [
            "quay.io/coreos/etcd:v3.5.12".to_owned(),
            format!("{dest}/quay.io/coreos/etcd:v3.5.12"),
            "network: dial tcp: <script>alert(1)</script> | `rm -rf /` *bold*".to_owned(),
        ],
        "the failed image, its message shown as the registry said it"
    );
    let nginx = &rows[3];
    assert_eq!(
        nginx,
        &[
            "1.25.3".to_owned(),
            format!("{dest}/docker.io/library/nginx:1.25.3"),
            "sha256:aaaaaaaaaaaa… copy".to_owned(),
            "linux/amd64,linux/arm64".to_owned(),
            "1 sbom, 1 signature".to_owned(),
            "2026-12-03T02:31:07Z".to_owned(),
            format!("docker pull {dest}/docker.io/library/nginx:1.25.3 copy"),
        ]
    );
    assert_eq!(rows.len(), 1 + 5, "{rows:?}");
    let targets: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    for tag in [
        "docker.io/library/alpine@",
        "docker.io/library/nginx:1.24.0",
        "docker.io/library/nginx:1.25.3",
        "quay.io/coreos/etcd:v3.5.11",
        "quay.io/evil/x:1",
    ] {
        assert!(
            targets
                .iter()
                .any(|t| t.starts_with(&format!("{dest}/{tag}"))),
            "{tag} is not in {targets:?}"
        );
    }
    // The hostile platform list is text, not an image to fetch.
    assert_eq!(rows[5][3], "linux/amd64|<img src=//evil.example/x.png>`");
    // Full digests on hover and on the copy buttons, with the pull commands.
    let titles: Vec<String> = serde_json::from_value(page["titles"].clone()).unwrap();
    let copies: Vec<String> = serde_json::from_value(page["copies"].clone()).unwrap();
    for c in ["a", "b", "c", "e", "9"] {
        assert!(titles.contains(&digest(c)), "{titles:?}");
        assert!(copies.contains(&digest(c)), "{copies:?}");
    }
    assert!(copies.contains(&format!("docker pull {dest}/quay.io/evil/x:1")));
    let text = page["text"].as_str().unwrap();
    assert!(
        text.contains("2 registries, 4 repositories, 5 tags, 1 failed"),
        "{text}"
    );
    assert!(text.contains("1 image whose source has none of the platforms asked for"));
}

/// A sync report of one image with `platforms` (hostile), `message` (its error) and a source
/// that is no reference.
fn hostile_report(source: &str, message: &str, platforms: &str) -> Value {
    json!({
        "ferry_version": "0.1.0", "command": "sync", "shard": null,
        "fingerprint": "sha256:1", "destination": "h.example/m|<b>",
        "finished_at": "2026-12-03T00:00:00Z",
        "images": [
            {
                "source": source, "target": format!("h.example/m/{source}"),
                "list_line": "x", "origin": "l:1", "status": "synced",
                "digest": "sha256:`|<i>", "error": null,
                "platform": { "outcome": "filtered", "upstream": "x", "platforms": platforms },
            },
            {
                "source": "docker.io/library/x:1", "target": "h.example/m/x:1",
                "list_line": "x", "origin": "l:2", "status": "failed",
                "error": { "kind": "other", "message": message },
            },
        ],
        "summary": {},
    })
}

#[test]
fn hostile_registry_text_is_escaped_in_markdown_and_html() {
    let dir = TempDir::new("catalog-hostile");
    let report = dir.path().join("report.json");
    let source = "evil|<script>alert(1)</script>`x";
    let message = "denied | <script>alert(2)</script> ``` [a](javascript:x) ![i](http://e/x.png) \x1b[2J\n| forged | row |";
    let platforms = "linux/amd64 | <img src=x onerror=alert(3)> `$x$`";
    fs::write(
        &report,
        hostile_report(source, message, platforms).to_string(),
    )
    .unwrap();
    let (markdown, _) = catalog(&[&report], &[], 0);
    // No raw HTML tag, no unescaped pipe or backtick, no control character, and every table
    // row has as many cells as its header.
    for c in ['<', '>', '[', ']', '$', '&'] {
        assert_eq!(unescaped(&markdown, c), 0, "an unescaped {c} in {markdown}");
    }
    assert!(
        !markdown.chars().any(|c| c.is_control() && c != '\n'),
        "{markdown}"
    );
    assert!(markdown.contains("\\<script\\>alert(1)"), "{markdown}");
    let mut columns = None;
    for line in markdown.lines().filter(|l| l.starts_with('|')) {
        let cells = unescaped(line, '|');
        if line.starts_with("|---") || line.starts_with("| Tag") || line.starts_with("| Source") {
            columns = Some(cells);
            continue;
        }
        assert_eq!(Some(cells), columns, "a row with other cells: {line}");
    }
    for raw in ["`$x$`", "``` [a]", "\\x1b[2J | forged"] {
        let escaped = raw.chars().fold(String::new(), |mut s, c| {
            if "\\`*_[]<>&|~#$".contains(c) {
                s.push('\\');
            }
            s.push(c);
            s
        });
        assert!(markdown.contains(&escaped), "{escaped} not in {markdown}");
    }

    let Some(python) = python_with_html5lib() else {
        return;
    };
    let html = dir.path().join("catalog.html");
    catalog(&[&report], &["-o", html.to_str().unwrap()], 0);
    let page = parse_html(&python, &fs::read_to_string(&html).unwrap());
    check_page(&page);
    let rows = rows(&page);
    assert_eq!(rows[0][0], "docker.io/library/x:1");
    assert!(
        rows[0][2].starts_with("other: denied | <script>alert(2)</script>")
            && rows[0][2].contains("\\x1b[2J | forged | row |"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[1][0], "");
    assert_eq!(rows[1][3], platforms);
    assert!(page["text"].as_str().unwrap().contains("h.example/m|<b>"));
    let headings: Vec<String> = page["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect();
    assert!(headings.contains(&source.to_owned()), "{headings:?}");
}

/// How many of `line`'s `c` are not escaped by a backslash (which escapes the character after
/// it): for `|`, where GitHub splits a table row into cells.
fn unescaped(line: &str, c: char) -> usize {
    let mut found = 0;
    let mut chars = line.chars();
    while let Some(next) = chars.next() {
        match next {
            '\\' => {
                chars.next();
            }
            next if next == c => found += 1,
            _ => {}
        }
    }
    found
}

#[test]
fn reports_that_are_not_one_sync_are_refused_and_a_missing_shard_is_said() {
    let dir = TempDir::new("catalog-refused");
    let [zero, one] = shards();
    // Another run's report: the fingerprints differ, as merge says.
    let mut other: Value = serde_json::from_str(&fs::read_to_string(&one).unwrap()).unwrap();
    other["fingerprint"] = json!(format!("sha256:{}", "9".repeat(64)));
    let other_file = dir.path().join("other.json");
    fs::write(&other_file, other.to_string()).unwrap();
    let (_, stderr) = catalog(&[&zero, &other_file], &[], 2);
    assert!(stderr.contains("are not shards of one run"), "{stderr}");
    // A plan's report.
    let plan = dir.path().join("plan.json");
    fs::write(
        &plan,
        json!({ "command": "plan", "shard": null, "fingerprint": "sha256:1", "entries": [],
                "summary": {} })
        .to_string(),
    )
    .unwrap();
    let (_, stderr) = catalog(&[&plan], &[], 2);
    assert!(
        stderr.contains("a `ferry plan` report says what a sync would copy"),
        "{stderr}"
    );
    // Shard 1 of 2 missing: the catalog lists shard 0's images and says so.
    let (markdown, stderr) = catalog(&[&zero], &[], 0);
    assert!(
        markdown
            .contains("- incomplete: no report of shard 1/2 was given: its images are not listed"),
        "{markdown}"
    );
    assert!(stderr.contains("no report of 1/2 was given"), "{stderr}");
    assert!(!markdown.contains("etcd:v3.5.11"));
}

#[test]
fn a_verify_report_makes_a_catalog_of_what_it_verified() {
    let dir = TempDir::new("catalog-verify");
    let report = dir.path().join("verify.json");
    let digest = format!("sha256:{}", "d".repeat(64));
    fs::write(
        &report,
        json!({
            "ferry_version": "0.1.0", "command": "verify", "shard": null,
            "fingerprint": "sha256:1", "destination": "h.example/m",
            "finished_at": "2026-12-03T05:00:00Z",
            "entries": [
                { "source": "docker.io/library/nginx:1", "target": "h.example/m/docker.io/library/nginx:1",
                  "list_line": "a", "origin": "l:1", "status": "verified",
                  "source_digest": digest, "target_digest": digest, "error": null },
                { "source": "docker.io/library/nginx:2", "target": "h.example/m/docker.io/library/nginx:2",
                  "list_line": "b", "origin": "l:2", "status": "missing",
                  "source_digest": digest, "target_digest": null, "error": null },
            ],
            "summary": {},
        })
        .to_string(),
    )
    .unwrap();
    let (markdown, _) = catalog(&[&report], &[], 0);
    assert!(
        markdown.contains("**1 registry, 1 repository, 1 tag, 1 failed**"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- last verified: 2026-12-03T05:00:00Z"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "| `docker.io/library/nginx:2` | `h.example/m/docker.io/library/nginx:2` | missing |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("| `1` | `h.example/m/docker.io/library/nginx:1` | `{digest}` | — | 2026-12-03T05:00:00Z |")),
        "{markdown}"
    );
}
