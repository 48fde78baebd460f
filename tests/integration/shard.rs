//! `--shard K/N` and `report merge`: three shards run side by side on one list into one
//! destination; together they copy every entry exactly once, all tags of a repository in one
//! shard, and their merged report holds the entries of an unsharded plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::mirror::*;
use crate::common::*;

fn targets(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["target"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn shards_copy_each_entry_once_and_merge_into_the_unsharded_plan() {
    let m = Mirror::new(false);
    let mut list = String::new();
    for repo in ["nginx", "redis", "alpine", "busybox", "memcached", "httpd"] {
        for tag in ["1", "2"] {
            m.push(&format!("library/{repo}:{tag}"), &format!("{repo}-{tag}"));
            list.push_str(&format!("{repo}:{tag}\n"));
        }
    }
    // A whole repository is listed by its shard only.
    for tag in ["a", "b", "c"] {
        m.push(
            &format!("library/postgres:{tag}"),
            &format!("postgres-{tag}"),
        );
    }
    list.push_str("postgres\n");
    let list = m.write("images.list", &list);

    let plan_path = m.scratch.path().join("plan.json");
    let mut plan = m.ferry();
    plan.args(["plan", "--dest-tls-verify=false", "--dest"])
        .arg(m.prefix())
        .arg(&list)
        .arg("--report")
        .arg(&plan_path);
    run(&mut plan, 0);
    let planned: BTreeSet<String> = targets(&report(&plan_path), "entries")
        .into_iter()
        .collect();
    assert_eq!(planned.len(), 15);

    let reports: Vec<_> = (0..3)
        .map(|k| m.scratch.path().join(format!("shard-{k}.json")))
        .collect();
    let children: Vec<_> = reports
        .iter()
        .enumerate()
        .map(|(k, path)| {
            let mut cmd = m.sync(&list);
            cmd.args(["--progress", "none", "--report"])
                .arg(path)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // The first shard takes its index from the environment, as a Kubernetes pod does.
            match k {
                0 => cmd.args(["--shard", "3"]).env("JOB_COMPLETION_INDEX", "0"),
                _ => cmd.args(["--shard", &format!("{k}/3")]),
            };
            cmd.spawn().expect("ferry starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }

    // Every entry copied exactly once: one copy per entry, no target twice.
    let mut copied: BTreeMap<String, usize> = BTreeMap::new();
    let mut shard_of_repository: BTreeMap<String, usize> = BTreeMap::new();
    for (k, path) in reports.iter().enumerate() {
        for target in targets(&report(path), "images") {
            let repository = target.rsplit_once(':').unwrap().0.to_owned();
            let first = *shard_of_repository.entry(repository.clone()).or_insert(k);
            assert_eq!(first, k, "{repository} is in shards {first} and {k}");
            *copied.entry(target).or_default() += 1;
        }
    }
    assert!(copied.values().all(|n| *n == 1), "{copied:#?}");
    assert_eq!(copied.keys().cloned().collect::<BTreeSet<_>>(), planned);
    assert_eq!(
        m.invocations().len(),
        15,
        "one skopeo per entry, across the shards"
    );
    let sizes: Vec<usize> = reports
        .iter()
        .map(|p| targets(&report(p), "images").len())
        .collect();
    assert!(sizes.iter().filter(|n| **n > 0).count() >= 2, "{sizes:?}");

    // The merged report holds the unsharded plan's entries, with the summary counted again.
    let merged_path = m.scratch.path().join("merged.json");
    let mut merge = m.ferry();
    merge
        .args(["report", "merge"])
        .arg(&merged_path)
        .args(&reports);
    run(&mut merge, 0);
    let merged = report(&merged_path);
    let merged_targets: BTreeSet<String> = targets(&merged, "images").into_iter().collect();
    assert_eq!(merged_targets, planned);
    assert_eq!(merged["summary"]["total"], 15);
    assert_eq!(merged["summary"]["synced"], 15);

    // The listings shard the same way.
    let shown = |k: usize| {
        let out = run(
            m.ferry()
                .args(["show-images", "--dest"])
                .arg(m.prefix())
                .args(["--shard", &format!("{k}/3")])
                .arg(&list),
            0,
        );
        stdout_of(&out)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let first_shard: BTreeSet<String> = targets(&report(&reports[1]), "images")
        .into_iter()
        .filter(|t| !t.contains("/postgres:"))
        .collect();
    let listed: BTreeSet<String> = shown(1)
        .into_iter()
        .filter(|t| !t.ends_with("/postgres"))
        .collect();
    assert_eq!(listed, first_shard);

    // A shard that does not exist is a usage error.
    let out = run(m.sync(&list).args(["--shard", "3/3"]), 2);
    assert!(
        stderr_of(&out).contains("shard 3 of 3 does not exist: K counts from 0"),
        "{}",
        stderr_of(&out)
    );
}

/// `count` repositories for each of N shards of `m`'s destination, by asking ferry where
/// candidates land (the destination's port is part of the hash, so it differs every run).
fn repositories_per_shard(m: &Mirror, n: usize, count: usize) -> Vec<Vec<String>> {
    let candidates: Vec<String> = (0..40).map(|i| format!("app{i}")).collect();
    let list = m.write(
        "candidates.list",
        &candidates
            .iter()
            .map(|c| format!("{c}:1\n"))
            .collect::<String>(),
    );
    (0..n)
        .map(|k| {
            let out = run(
                m.ferry()
                    .args(["show-images", "--dest"])
                    .arg(m.prefix())
                    .args(["--shard", &format!("{k}/{n}")])
                    .arg(&list),
                0,
            );
            let shown = stdout_of(&out);
            let repositories: Vec<String> = shown
                .lines()
                .filter_map(|t| t.rsplit('/').next())
                .map(|name| name.trim_end_matches(":1").to_owned())
                .take(count)
                .collect();
            assert_eq!(repositories.len(), count, "shard {k}/{n}: {shown}");
            repositories
        })
        .collect()
}

/// `ferry verify` of `list` on shard `shard` (`K/N`), its report at `report`; the exit code
/// `code`.
fn verify_shard(m: &Mirror, list: &Path, shard: &str, report: &Path, code: i32) -> Output {
    run(
        m.ferry()
            .args(["verify", "--dest-tls-verify=false", "--dest"])
            .arg(m.prefix())
            .arg(list)
            .args(["--shard", shard, "--report"])
            .arg(report),
        code,
    )
}

fn merge(m: &Mirror, out: &Path, reports: &[&Path], code: i32) -> Output {
    run(
        m.ferry().args(["report", "merge"]).arg(out).args(reports),
        code,
    )
}

/// Three `verify --shard K/3` runs, each finding one target missing and so exiting 1: their
/// reports say so (`missing`, counted as a problem), and merged they exit 1 with the problems
/// counted, their failed list feeding the missing targets back to `ferry sync`. A shard
/// merged twice, shards of another N, another command or another list are refused (exit 2,
/// naming the files); a shard left out fails the merge (exit 1, naming it).
#[test]
fn verify_shards_that_found_missing_targets_merge_into_a_failure() {
    let m = Mirror::new(false);
    let shards = repositories_per_shard(&m, 3, 2);
    let mut list = String::new();
    let mut present = String::new();
    for repositories in &shards {
        for (i, repository) in repositories.iter().enumerate() {
            m.push(&format!("library/{repository}:1"), repository);
            list.push_str(&format!("{repository}:1\n"));
            if i == 0 {
                present.push_str(&format!("{repository}:1\n"));
            }
        }
    }
    let list = m.write("images.list", &list);
    // The first repository of each shard is mirrored, the second is not.
    run(&mut m.sync(&m.write("present.list", &present)), 0);

    let dir = m.scratch.path();
    let reports: Vec<PathBuf> = (0..3)
        .map(|k| dir.join(format!("verify-{k}.json")))
        .collect();
    for (k, path) in reports.iter().enumerate() {
        let out = verify_shard(&m, &list, &format!("{k}/3"), path, 1);
        assert!(
            stdout_of(&out).contains("2 targets: 1 verified, 1 with problems"),
            "{}",
            stdout_of(&out)
        );
        let report = report(path);
        assert_eq!(report["command"], "verify");
        assert_eq!(
            report["shard"],
            serde_json::json!({ "index": k, "count": 3 })
        );
        assert_eq!(report["summary"]["verified"], 1, "{report:#}");
        assert_eq!(report["summary"]["problems"], 1, "{report:#}");
        assert_eq!(report["summary"]["missing"], 1, "{report:#}");
        let statuses: Vec<&str> = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["verified", "missing"], "{report:#}");
    }
    // One list, so one fingerprint across the shards.
    let fingerprints: BTreeSet<String> = reports
        .iter()
        .map(|p| report(p)["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fingerprints.len(), 1, "{fingerprints:?}");

    let merged_path = dir.join("merged.json");
    let failed_path = dir.join("failed.list");
    let out = run(
        m.ferry()
            .args(["report", "merge"])
            .arg(&merged_path)
            .args(&reports)
            .arg("--failed-list")
            .arg(&failed_path),
        1,
    );
    assert_eq!(
        stdout_of(&out),
        "merged 3 reports (shards 0, 1, 2 of 3): 6 targets: 3 verified, 3 with problems \
         (3 missing, 0 mismatch, 0 no-source, 0 error)\n"
    );
    let merged = report(&merged_path);
    assert_eq!(merged["command"], "verify");
    assert_eq!(merged["summary"]["total"], 6);
    assert_eq!(merged["summary"]["problems"], 3);
    assert_eq!(merged["summary"]["missing"], 3);
    assert_eq!(
        merged["shards"],
        serde_json::json!({ "count": 3, "merged": [0, 1, 2], "missing": [] })
    );

    // The failed list names the missing targets and feeds them back to a sync.
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    let lines: Vec<&str> = failed.lines().filter(|l| !l.starts_with('#')).collect();
    let p = m.prefix();
    let mut expected: Vec<String> = shards
        .iter()
        .map(|r| format!("docker.io/library/{0}:1 {p}/docker.io/library/{0}:1", r[1]))
        .collect();
    let mut named: Vec<String> = lines
        .iter()
        .map(|l| l.split("  #").next().unwrap().to_owned())
        .collect();
    expected.sort();
    named.sort();
    assert_eq!(named, expected, "{failed}");
    assert!(lines.iter().all(|l| l.ends_with("(missing)")), "{failed}");
    assert!(
        failed.starts_with(&format!(
            "# targets ferry verify found missing, mismatched or unreadable, in the merged \
             reports; feed back with: ferry sync THIS_FILE --dest-tls-verify=false \
             --registries-conf {}\n",
            m.conf.display()
        )),
        "{failed}"
    );
    run(&mut m.feed_back(&failed_path), 0);
    run(
        m.ferry()
            .args(["verify", "--dest-tls-verify=false", "--dest"])
            .arg(m.prefix())
            .arg(&list),
        0,
    );

    // The same shard twice: refused, naming both files, nothing written.
    let twice = dir.join("twice.json");
    let copy = dir.join("verify-0-again.json");
    std::fs::copy(&reports[0], &copy).unwrap();
    let out = merge(
        &m,
        &twice,
        &[&reports[0], &reports[1], &copy, &reports[2]],
        2,
    );
    assert_eq!(
        stderr_of(&out),
        format!(
            "ferry: error: {} and {} are both shard 0/3: give each shard's report once\n",
            reports[0].display(),
            copy.display()
        )
    );
    assert!(!twice.exists());

    // A shard left out: the rest is merged, the merge fails naming it.
    let partial = dir.join("partial.json");
    let out = merge(&m, &partial, &[&reports[0], &reports[2]], 1);
    assert!(
        stderr_of(&out).contains(
            "ferry: error: shard 1/3 is missing: no report of it was given, so the merged \
             report lacks its entries"
        ),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stdout_of(&out).starts_with("merged 2 reports (shards 0, 2 of 3): 4 targets"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        report(&partial)["shards"],
        serde_json::json!({ "count": 3, "merged": [0, 2], "missing": [1] })
    );

    // A shard of another N.
    let of_two = dir.join("verify-1-of-2.json");
    verify_shard(&m, &list, "1/2", &of_two, 0);
    let out = merge(&m, &dir.join("n.json"), &[&reports[0], &of_two], 2);
    assert_eq!(
        stderr_of(&out),
        format!(
            "ferry: error: {} is shard 0/3 and {} is shard 1/2: the shards of a run share N\n",
            reports[0].display(),
            of_two.display()
        )
    );

    // Another command's report of the same shard place.
    let plan = dir.join("plan-1.json");
    run(
        m.ferry()
            .args(["plan", "--dest-tls-verify=false", "--dest"])
            .arg(m.prefix())
            .arg(&list)
            .args(["--shard", "1/3", "--report"])
            .arg(&plan),
        0,
    );
    assert_eq!(
        report(&plan)["fingerprint"],
        report(&reports[0])["fingerprint"]
    );
    let out = merge(&m, &dir.join("c.json"), &[&reports[0], &plan], 2);
    assert!(
        stderr_of(&out).contains("is a `ferry verify` report and"),
        "{}",
        stderr_of(&out)
    );

    // A shard of another list.
    let other_list = m.write("other.list", &format!("{}:1\n", shards[1][0]));
    let other = dir.join("other-1.json");
    verify_shard(&m, &other_list, "1/3", &other, 0);
    let out = merge(&m, &dir.join("o.json"), &[&reports[0], &other], 2);
    assert!(
        stderr_of(&out).contains(&format!(
            "{} and {} are not shards of one run: their list fingerprints differ",
            reports[0].display(),
            other.display()
        )),
        "{}",
        stderr_of(&out)
    );
}

/// A sync shard's failed image fails the merge, and the merged failed list is a sync's own.
#[test]
fn a_merged_sync_with_a_failed_image_exits_1_with_its_failed_list() {
    let m = Mirror::new(false);
    let shards = repositories_per_shard(&m, 2, 1);
    m.push(&format!("library/{}:1", shards[0][0]), "present");
    // The second shard's image does not exist in the source.
    let list = m.write(
        "images.list",
        &format!("{}:1\n{}:1\n", shards[0][0], shards[1][0]),
    );
    let dir = m.scratch.path();
    let reports: Vec<PathBuf> = (0..2).map(|k| dir.join(format!("sync-{k}.json"))).collect();
    for (k, path) in reports.iter().enumerate() {
        run(
            m.sync(&list)
                .args(["--shard", &format!("{k}/2"), "--report"])
                .arg(path),
            k as i32,
        );
    }
    let merged_path = dir.join("merged.json");
    let failed_path = dir.join("failed.list");
    let out = run(
        m.ferry()
            .args(["report", "merge"])
            .arg(&merged_path)
            .args(&reports)
            .arg("--failed-list")
            .arg(&failed_path),
        1,
    );
    assert_eq!(
        stdout_of(&out),
        "merged 2 reports (shards 0, 1 of 2): 2 images: 1 synced, 0 skipped, 1 failed\n"
    );
    assert_eq!(report(&merged_path)["summary"]["failed"], 1);
    let failed = std::fs::read_to_string(&failed_path).unwrap();
    assert_eq!(
        failed,
        format!(
            "# images that failed in the merged reports of a ferry sync; feed back with: ferry \
             sync THIS_FILE --dest-tls-verify=false --registries-conf {} --engine skopeo\n\
             docker.io/library/{1}:1 {2}/docker.io/library/{1}:1  # {3}:2 (not-found)\n",
            m.conf.display(),
            shards[1][0],
            m.prefix(),
            list.display()
        )
    );
}

#[test]
fn a_report_from_an_older_ferry_is_refused_with_what_to_do() {
    let dir = TempDir::new("merge");
    let old = dir.path().join("old.json");
    std::fs::write(
        &old,
        r#"{"ferry_version": "0.1.0", "destination": "h.example/m",
            "images": [{"target": "t1", "status": "failed"}], "summary": {"duration_ms": 5}}"#,
    )
    .unwrap();
    let out_path = dir.path().join("m.json");
    let out = run(
        ferry().args(["report", "merge"]).arg(&out_path).arg(&old),
        2,
    );
    assert_eq!(
        stderr_of(&out),
        format!(
            "ferry: error: {}: a report from an older ferry, which does not record its command, \
             shard and list fingerprint that merging needs: run that command again with ferry \
             {} and merge the new report\n",
            old.display(),
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(!out_path.exists());
    let missing = run(
        ferry()
            .args(["report", "merge", "-"])
            .arg(dir.path().join("nope.json")),
        2,
    );
    assert!(
        stderr_of(&missing).contains("cannot read the report"),
        "{}",
        stderr_of(&missing)
    );
}
