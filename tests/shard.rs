//! `--shard K/N` and `report merge`: three shards run side by side on one list into one
//! destination; together they copy every entry exactly once, all tags of a repository in one
//! shard, and their merged report holds the entries of an unsharded plan.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;

use common::mirror::*;
use common::*;

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

#[test]
fn a_merged_report_with_a_failed_image_exits_1() {
    let dir = TempDir::new("merge");
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(
        &a,
        r#"{"images": [{"target": "t1", "status": "synced"}], "summary": {"duration_ms": 5}}"#,
    )
    .unwrap();
    std::fs::write(
        &b,
        r#"{"images": [{"target": "t2", "status": "failed"}], "summary": {"duration_ms": 9}}"#,
    )
    .unwrap();
    let out_path = dir.path().join("m.json");
    let out = run(
        ferry()
            .args(["report", "merge"])
            .arg(&out_path)
            .arg(&a)
            .arg(&b),
        1,
    );
    assert!(stdout_of(&out).contains("merged 2 reports: 2 entries, 1 failed"));
    let merged = report(&out_path);
    assert_eq!(merged["summary"]["failed"], 1);
    assert_eq!(merged["summary"]["duration_ms"], 9);
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
