//! `ferry report catalog`: what the mirror holds, from the reports of a sync run (its shards'
//! reports, merged as `report merge` merges them, or a merged one), or of a verification, as
//! Markdown (for a repository's README-like page on GitHub) or as one self-contained HTML
//! page (a filter box, readable on a phone, printable, and no fetch of anything).
//!
//! Every piece of text in a report came from a registry or from a file anyone may have
//! edited: it is escaped for the format it goes into (Markdown's punctuation, HTML's `&<>"'`),
//! its control characters shown as escapes (see [`super::escape`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use super::escape;
use super::merge::{self, Kind};
use crate::reference::ImageRef;
use crate::words::count;

/// How the catalog is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
}

/// The mirror as the reports tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// `Sync` or `Verify` (a plan copies nothing: refused).
    pub kind: Kind,
    /// How many reports it was made from.
    pub reports: usize,
    /// Which shards: `shards 0, 1 of 2`, or `the whole list`.
    pub shards: String,
    /// The shards of N no report was given for, as `K/N`.
    pub missing: Vec<String>,
    pub destination: String,
    /// The latest report's time (RFC 3339), when the reports say one.
    pub finished_at: Option<String>,
    /// What the mirror holds, by source registry, repository, then tag and target.
    pub tags: Vec<Tag>,
    pub failed: Vec<Failed>,
    /// Images whose source has none of the platforms asked for (nothing to hold).
    pub other_platform: usize,
    /// Whether any image had `--signatures` (else the column is left out).
    pub artifacts: bool,
}

/// One mirrored tag (or digest).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    /// The source's registry and repository, its tag (`@sha256:…` when pinned by digest).
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub target: String,
    pub digest: Option<String>,
    /// With `--platform`, the platforms the target's index keeps.
    pub platforms: Option<String>,
    /// When the report it came from was written.
    pub at: Option<String>,
    /// What travelled with it (`--signatures`), e.g. `1 signature, 1 sbom`; `None` when not
    /// asked for.
    pub artifacts: Option<String>,
}

/// One image that did not make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub source: String,
    pub target: String,
    /// `kind: message` of a sync, or the problem a verification found.
    pub reason: String,
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// The catalog of `reports` (each named by its file, for errors): they must be one run's
/// reports as `report merge` takes them (the same refusals, with its words), of a sync or a
/// verification.
pub fn from_reports(reports: &[(String, Value)]) -> Result<Catalog, String> {
    let merged = merge::merge(reports)?;
    if merged.kind == Kind::Plan {
        return Err(format!(
            "{}: a `ferry plan` report says what a sync would copy, not what the mirror \
             holds: give the reports of a `ferry sync` (or of a `ferry verify`)",
            reports[0].0
        ));
    }
    let report = &merged.report;
    let entries = match merged.kind {
        Kind::Sync => &report["images"],
        _ => &report["entries"],
    };
    let finished_at = report["finished_at"].as_str().map(str::to_owned);
    let mut catalog = Catalog {
        kind: merged.kind,
        reports: reports.len(),
        shards: merged.shards.clone(),
        missing: merged
            .missing
            .iter()
            .map(|k| format!("{k}/{}", merged.count))
            .collect(),
        destination: text(report, "destination").to_owned(),
        finished_at: finished_at.clone(),
        tags: Vec::new(),
        failed: Vec::new(),
        other_platform: 0,
        artifacts: false,
    };
    for entry in entries.as_array().map(Vec::as_slice).unwrap_or_default() {
        let status = text(entry, "status");
        let source = text(entry, "source");
        let target = text(entry, "target");
        let platform = &entry["platform"];
        let held = match merged.kind {
            Kind::Sync => matches!(status, "synced" | "skipped"),
            _ => status == "verified",
        };
        if platform["outcome"] == "skipped" || (merged.kind == Kind::Verify && status == "skipped")
        {
            catalog.other_platform += 1;
            continue;
        }
        if !held {
            let error = &entry["error"];
            let message = match (error["kind"].as_str(), error["message"].as_str()) {
                (Some(kind), Some(message)) => {
                    Some(super::kind_and_message_str(kind, &super::short(message)))
                }
                (Some(kind), None) => Some(kind.to_owned()),
                _ => None,
            };
            let reason = match (merged.kind, message) {
                (Kind::Sync, Some(message)) => message,
                (Kind::Sync, None) => "failed".to_owned(),
                (_, Some(message)) => format!("{status}: {message}"),
                (_, None) => status.to_owned(),
            };
            catalog.failed.push(Failed {
                source: source.to_owned(),
                target: target.to_owned(),
                reason,
            });
            continue;
        }
        let (registry, repository, tag) = parts(source);
        let digest = match merged.kind {
            Kind::Sync => entry["digest"].as_str(),
            _ => entry["target_digest"].as_str(),
        };
        let artifacts = entry["artifacts"].as_array().map(|list| artifacts(list));
        catalog.artifacts |= artifacts.is_some();
        catalog.tags.push(Tag {
            registry,
            repository,
            tag,
            target: target.to_owned(),
            digest: digest.map(str::to_owned),
            platforms: (platform["outcome"] == "filtered")
                .then(|| text(platform, "platforms").to_owned()),
            at: entry["finished_at"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| finished_at.clone()),
            artifacts,
        });
    }
    catalog.tags.sort();
    Ok(catalog)
}

/// A source's registry, repository and tag (`@digest` when it has no tag); a source that is
/// no reference (a report edited by hand) is shown whole, under `?`.
fn parts(source: &str) -> (String, String, String) {
    match ImageRef::parse(source) {
        Ok(image) => {
            let tag = match (image.tag(), image.digest()) {
                (Some(tag), _) => tag.to_owned(),
                (None, Some(digest)) => format!("@{digest}"),
                (None, None) => String::new(),
            };
            (image.domain().to_owned(), image.path().to_owned(), tag)
        }
        Err(_) => ("?".to_owned(), source.to_owned(), String::new()),
    }
}

/// An image's artifacts as the catalog tells them: how many of each kind the mirror holds
/// (`1 signature, 2 referrers`), then those it lacks (`1 failed`), or `none`.
fn artifacts(list: &[Value]) -> String {
    let mut held: BTreeMap<&str, usize> = BTreeMap::new();
    let mut lacking: BTreeMap<&str, usize> = BTreeMap::new();
    for artifact in list {
        let kind = artifact["kind"].as_str().unwrap_or("artifact");
        match artifact["state"].as_str().unwrap_or("?") {
            "copied" | "current" | "present" => *held.entry(kind).or_default() += 1,
            state => *lacking.entry(state).or_default() += 1,
        }
    }
    let mut parts: Vec<String> = held
        .iter()
        .map(|(kind, n)| match *n {
            1 => format!("1 {kind}"),
            n => format!("{n} {kind}s"),
        })
        .collect();
    if parts.is_empty() {
        parts.push("none".to_owned());
    }
    let lacking: Vec<String> = lacking.iter().map(|(s, n)| format!("{n} {s}")).collect();
    match lacking.is_empty() {
        true => parts.join(", "),
        false => format!("{} ({})", parts.join(", "), lacking.join(", ")),
    }
}

impl Catalog {
    /// The tags by registry, then repository.
    fn grouped(&self) -> BTreeMap<&str, BTreeMap<&str, Vec<&Tag>>> {
        let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<&Tag>>> = BTreeMap::new();
        for tag in &self.tags {
            groups
                .entry(&tag.registry)
                .or_default()
                .entry(&tag.repository)
                .or_default()
                .push(tag);
        }
        groups
    }

    /// `2 registries, 3 repositories, 4 tags, 1 failed`.
    pub fn counts(&self) -> String {
        let registries: BTreeSet<&str> = self.tags.iter().map(|t| t.registry.as_str()).collect();
        let repositories: BTreeSet<(&str, &str)> = self
            .tags
            .iter()
            .map(|t| (t.registry.as_str(), t.repository.as_str()))
            .collect();
        format!(
            "{}, {}, {}, {} failed",
            count(registries.len(), "registry", "registries"),
            count(repositories.len(), "repository", "repositories"),
            count(self.tags.len(), "tag", "tags"),
            self.failed.len()
        )
    }

    /// `synced` or `verified`, for "last synced".
    fn verb(&self) -> &'static str {
        match self.kind {
            Kind::Sync => "synced",
            _ => "verified",
        }
    }

    /// The lines of the summary after the counts, as plain text (each escaped by the caller).
    fn about(&self) -> Vec<(String, String)> {
        let mut about = vec![(
            "destination".to_owned(),
            match self.destination.as_str() {
                "" => "—".to_owned(),
                d => d.to_owned(),
            },
        )];
        about.push((
            format!("last {}", self.verb()),
            self.finished_at.clone().unwrap_or_else(|| "—".to_owned()),
        ));
        about.push((
            "from".to_owned(),
            format!(
                "{} of ferry {} ({})",
                count(self.reports, "report", "reports"),
                self.kind.name(),
                self.shards
            ),
        ));
        if !self.missing.is_empty() {
            let one = self.missing.len() == 1;
            about.push((
                "incomplete".to_owned(),
                format!(
                    "no report of {} {} was given: {} images are not listed",
                    if one { "shard" } else { "shards" },
                    self.missing.join(", "),
                    if one { "its" } else { "their" }
                ),
            ));
        }
        if self.other_platform > 0 {
            about.push((
                "not mirrored".to_owned(),
                format!(
                    "{} whose source has none of the platforms asked for",
                    count(self.other_platform, "image", "images")
                ),
            ));
        }
        about
    }

    /// The catalog in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Html => self.html(),
        }
    }

    /// GitHub-flavoured Markdown: a summary, the failed images, then a table per repository
    /// under a heading per registry.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Mirror catalog\n\n");
        let _ = writeln!(out, "**{}**\n", md_text(&self.counts()));
        for (key, value) in self.about() {
            let value = match key.as_str() {
                "destination" if value != "—" => md_code(&value),
                _ => md_text(&value),
            };
            let _ = writeln!(out, "- {}: {value}", md_text(&key));
        }
        out.push('\n');
        if !self.failed.is_empty() {
            let _ = writeln!(out, "## Failed\n");
            out.push_str("| Source | Target | Why |\n|---|---|---|\n");
            for failed in &self.failed {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    md_code(&failed.source),
                    md_code(&failed.target),
                    md_text(&failed.reason)
                );
            }
            out.push('\n');
        }
        let verb = self.verb();
        for (registry, repositories) in self.grouped() {
            let _ = writeln!(out, "## {}\n", md_text(registry));
            for (repository, tags) in repositories {
                let _ = writeln!(out, "### {}\n", md_text(repository));
                let mut header = vec!["Tag", "Target", "Digest", "Platforms"];
                if self.artifacts {
                    header.push("Signatures");
                }
                let last = format!("Last {verb}");
                header.extend([last.as_str(), "Pull"]);
                let _ = writeln!(out, "| {} |", header.join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
                for tag in tags {
                    let mut cells = vec![
                        md_code(&tag.tag),
                        md_code(&tag.target),
                        tag.digest
                            .as_deref()
                            .map_or_else(|| "—".to_owned(), md_code),
                        tag.platforms
                            .as_deref()
                            .map_or_else(|| "—".to_owned(), md_text),
                    ];
                    if self.artifacts {
                        cells.push(
                            tag.artifacts
                                .as_deref()
                                .map_or_else(|| "—".to_owned(), md_text),
                        );
                    }
                    cells.push(tag.at.as_deref().map_or_else(|| "—".to_owned(), md_text));
                    cells.push(pull(&tag.target).map_or_else(|| "—".to_owned(), |p| md_code(&p)));
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out
    }

    /// One HTML5 page, self-contained: inline CSS and JS, a Content-Security-Policy that
    /// allows no fetch at all, a filter box, a layout for phones and one for print.
    pub fn html(&self) -> String {
        let mut out = String::with_capacity(4096 + self.tags.len() * 600);
        out.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n\
             <title>Mirror catalog</title>\n<style>\n",
        );
        out.push_str(CSS);
        out.push_str("</style>\n</head>\n<body>\n<header>\n<h1>Mirror catalog</h1>\n");
        let _ = writeln!(out, "<p class=\"counts\">{}</p>\n<dl>", h(&self.counts()));
        for (key, value) in self.about() {
            let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", h(&key), h(&value));
        }
        out.push_str(
            "</dl>\n<label class=\"filter\">Filter <input type=\"search\" id=\"filter\" \
             placeholder=\"registry, repository, tag, digest, platform…\" \
             autocomplete=\"off\"></label> <span id=\"shown\"></span>\n</header>\n<main>\n",
        );
        if !self.failed.is_empty() {
            out.push_str(
                "<section class=\"failed\">\n<h2>Failed</h2>\n<table>\n<thead><tr><th>Source\
                 </th><th>Target</th><th>Why</th></tr></thead>\n<tbody>\n",
            );
            for failed in &self.failed {
                let search = [&failed.source, &failed.target, &failed.reason]
                    .map(|s| s.as_str())
                    .join(" ");
                let _ = writeln!(
                    out,
                    "<tr data-search=\"{}\"><td data-label=\"Source\"><code>{}</code></td>\
                     <td data-label=\"Target\"><code>{}</code></td><td data-label=\"Why\">{}</td></tr>",
                    h(&search.to_lowercase()),
                    h(&failed.source),
                    h(&failed.target),
                    h(&failed.reason)
                );
            }
            out.push_str("</tbody>\n</table>\n</section>\n");
        }
        let last = format!("Last {}", self.verb());
        for (registry, repositories) in self.grouped() {
            let _ = writeln!(
                out,
                "<section class=\"registry\">\n<h2>{}</h2>",
                h(registry)
            );
            for (repository, tags) in repositories {
                let _ = write!(
                    out,
                    "<section class=\"repository\">\n<h3>{}</h3>\n<table>\n<thead><tr>\
                     <th>Tag</th><th>Target</th><th>Digest</th><th>Platforms</th>",
                    h(repository)
                );
                if self.artifacts {
                    out.push_str("<th>Signatures</th>");
                }
                let _ = writeln!(
                    out,
                    "<th>{}</th><th>Pull</th></tr></thead>\n<tbody>",
                    h(&last)
                );
                for tag in tags {
                    self.html_row(&mut out, tag, &last);
                }
                out.push_str("</tbody>\n</table>\n</section>\n");
            }
            out.push_str("</section>\n");
        }
        if self.tags.is_empty() {
            out.push_str("<p>No image is mirrored.</p>\n");
        }
        out.push_str("</main>\n<script>\n");
        out.push_str(JS);
        out.push_str("</script>\n</body>\n</html>\n");
        out
    }

    fn html_row(&self, out: &mut String, tag: &Tag, last: &str) {
        let dash = || "—".to_owned();
        let search = [
            tag.registry.as_str(),
            &tag.repository,
            &tag.tag,
            &tag.target,
            tag.digest.as_deref().unwrap_or_default(),
            tag.platforms.as_deref().unwrap_or_default(),
            tag.artifacts.as_deref().unwrap_or_default(),
        ]
        .join(" ");
        let _ = write!(
            out,
            "<tr data-search=\"{}\"><td data-label=\"Tag\"><code>{}</code></td>\
             <td data-label=\"Target\"><code>{}</code></td><td data-label=\"Digest\">{}</td>\
             <td data-label=\"Platforms\">{}</td>",
            h(&search.to_lowercase()),
            h(&tag.tag),
            h(&tag.target),
            tag.digest.as_deref().map_or_else(dash, |digest| format!(
                "<code title=\"{0}\">{1}</code> <button type=\"button\" data-copy=\"{0}\">copy\
                 </button>",
                h(digest),
                h(&short_digest(digest))
            )),
            tag.platforms.as_deref().map_or_else(dash, h)
        );
        if self.artifacts {
            let _ = write!(
                out,
                "<td data-label=\"Signatures\">{}</td>",
                tag.artifacts.as_deref().map_or_else(dash, h)
            );
        }
        let _ = writeln!(
            out,
            "<td data-label=\"{}\">{}</td><td data-label=\"Pull\">{}</td></tr>",
            h(last),
            tag.at.as_deref().map_or_else(dash, |at| format!(
                "<time datetime=\"{0}\">{0}</time>",
                h(at)
            )),
            pull(&tag.target).map_or_else(dash, |pull| format!(
                "<code>{0}</code> <button type=\"button\" data-copy=\"{0}\">copy</button>",
                h(&pull)
            ))
        );
    }
}

/// `docker pull TARGET` for a registry target; none for an OCI layout (`oci:DIR:TAG`).
fn pull(target: &str) -> Option<String> {
    (!target.starts_with("oci:") && !target.is_empty()).then(|| format!("docker pull {target}"))
}

/// `sha256:` and 12 hex digits, as people compare digests.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) if hex.chars().count() > 12 => {
            format!("{algorithm}:{}…", hex.chars().take(12).collect::<String>())
        }
        _ => digest.to_owned(),
    }
}

/// Text for HTML, in an element or a quoted attribute.
fn h(text: &str) -> String {
    let text = escape::one_line(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for Markdown (in a table cell, a heading or a list item): on one line, every
/// character that means something to GitHub's Markdown (emphasis, links, HTML, entities,
/// tables, math, strikethrough, headings' closing `#`) escaped with a backslash, so it shows as
/// it is (`(` and `!` mean something only next to a `[`, which is escaped).
fn md_text(text: &str) -> String {
    let text = escape::one_line(text);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\`*_[]<>&|~#$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A name, a digest or a command in a code span; one that a code span cannot hold as it is (a
/// backtick, a backslash before a table's `|`, a `|`) is escaped text instead.
fn md_code(text: &str) -> String {
    let text = escape::one_line(text);
    if text.is_empty() {
        return "—".to_owned();
    }
    if text.contains(['`', '\\', '|']) || text.starts_with(' ') || text.ends_with(' ') {
        return md_text(&text);
    }
    format!("`{text}`")
}

const CSS: &str = r#":root { color-scheme: light dark; --line: #8884; --muted: #777; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1rem; max-width: 110rem; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.3rem; margin: 1.6rem 0 .4rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.1rem 0 .3rem; font-family: ui-monospace, monospace; }
.counts { font-weight: 600; margin: .2rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .4rem 0 .8rem; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
.filter input { font: inherit; padding: .35rem .5rem; width: min(28rem, 80vw); }
#shown { color: var(--muted); margin-left: .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; overflow-wrap: anywhere; }
button { font: inherit; font-size: .75rem; padding: 0 .35rem; cursor: pointer; }
.failed h2 { color: #c33; }
[hidden] { display: none !important; }
@media (max-width: 45rem) {
  body { padding: .6rem; }
  table, thead, tbody, tr, td { display: block; }
  thead { display: none; }
  tr { border: 1px solid var(--line); border-radius: .4rem; margin: .5rem 0; padding: .3rem; }
  td { border: 0; padding: .15rem .3rem; }
  td::before { content: attr(data-label); display: block; font-size: .75rem; color: var(--muted); }
}
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  .filter, #shown, button { display: none; }
  h2, h3 { break-after: avoid; }
  tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

const JS: &str = r#"(function () {
  "use strict";
  var box = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-search]"));
  function apply() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var n = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-search");
      var show = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !show;
      if (show) { n += 1; }
    });
    document.querySelectorAll("section.repository, section.failed").forEach(function (s) {
      s.hidden = !s.querySelector("tbody tr:not([hidden])");
    });
    document.querySelectorAll("section.registry").forEach(function (s) {
      s.hidden = !s.querySelector("section.repository:not([hidden])");
    });
    shown.textContent = words.length ? n + " of " + rows.length + " shown" : "";
  }
  box.addEventListener("input", apply);
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
      button.textContent = "copied";
      setTimeout(function () { button.textContent = "copy"; }, 1500);
    });
  });
}());
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markdown_text_shows_as_written() {
        assert_eq!(md_text("a|b"), "a\\|b");
        assert_eq!(md_text("<script>x</script>"), "\\<script\\>x\\</script\\>");
        assert_eq!(md_text("*_`$~"), "\\*\\_\\`\\$\\~");
        assert_eq!(md_text("one\ntwo"), "one\\\\ntwo");
        assert_eq!(md_code("h.example/m/a:1"), "`h.example/m/a:1`");
        assert_eq!(md_code("a`b|c"), "a\\`b\\|c");
        assert_eq!(md_code("a\\|b"), "a\\\\\\|b");
        assert_eq!(
            h("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(h("\x1b[2J"), "\\x1b[2J");
    }

    #[test]
    fn digests_are_short_in_text() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digest(&digest), "sha256:abababababab…");
        assert_eq!(short_digest("x"), "x");
    }

    #[test]
    fn artifacts_say_what_the_mirror_holds_and_what_it_lacks() {
        let list = [
            json!({ "kind": "signature", "state": "copied" }),
            json!({ "kind": "referrer", "state": "current" }),
            json!({ "kind": "referrer", "state": "current" }),
            json!({ "kind": "sbom", "state": "failed" }),
        ];
        assert_eq!(artifacts(&list), "2 referrers, 1 signature (1 failed)");
        assert_eq!(artifacts(&[]), "none");
    }

    #[test]
    fn a_plan_report_is_refused() {
        let plan = json!({
            "command": "plan", "shard": null, "fingerprint": "sha256:1", "entries": [],
            "summary": {}
        });
        let error = from_reports(&[("plan.json".to_owned(), plan)]).unwrap_err();
        assert!(
            error.starts_with("plan.json: a `ferry plan` report"),
            "{error}"
        );
    }
}
