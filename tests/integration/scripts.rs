//! The drop-in scripts: LIST and DEST as the old scripts took them, flags passed on to ferry,
//! extra words refused. They run the ferry under test through FERRY_BIN; dry runs and the
//! offline `show-*` commands need no registry.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// `scripts/NAME` run in `dir` with the ferry under test, none of the user's defaults, and `args`.
fn script(dir: &Path, name: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name),
    );
    cmd.current_dir(dir)
        .args(args)
        .env("FERRY_BIN", env!("CARGO_BIN_EXE_ferry"))
        .env_remove("FERRY_DEST")
        .env_remove("SOURCE_IMAGES_LIST");
    cmd
}

/// A list whose name says YAML, so it reads right only when `--format=list` reaches ferry.
fn list_named_yaml(dir: &TempDir) {
    std::fs::write(dir.path().join("list.yaml"), "nginx:1.25\n").unwrap();
}

#[test]
fn sync_image_passes_flags_after_the_list_to_ferry() {
    let dir = TempDir::new("scripts-sync");
    std::fs::write(dir.path().join("list.txt"), "nginx:1.25\n").unwrap();
    let out = run(
        &mut script(dir.path(), "sync-image.sh", &["list.txt", "--dry-run"]),
        0,
    );
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("# dry run: 1 entry")
            && stdout.contains("oci:mirror/docker.io/library/nginx:1.25"),
        "{stdout}"
    );
    // With DEST, and a flag's value after it as the old script allowed.
    let args = ["list.txt", "harbor.example/x", "--dry-run", "-j", "2"];
    let stdout = stdout_of(&run(&mut script(dir.path(), "sync-image.sh", &args), 0));
    assert!(
        stdout.contains("harbor.example/x/docker.io/library/nginx:1.25"),
        "{stdout}"
    );
    assert!(!dir.path().join("mirror").exists(), "a dry run copied");
}

#[test]
fn scripts_take_flags_before_list_and_dest() {
    let dir = TempDir::new("scripts-flags-first");
    list_named_yaml(&dir);
    // Flags with values, a boolean written as its own word, all before LIST and DEST: the
    // list is read as a list only if `--format list` reached ferry whole.
    let args = [
        "-j",
        "2",
        "--format",
        "list",
        "--dest-tls-verify",
        "false",
        "list.yaml",
        "harbor.example/x",
        "--dry-run",
    ];
    let out = run(&mut script(dir.path(), "sync-image.sh", &args), 0);
    let stdout = stdout_of(&out);
    assert!(
        stdout.contains("list.yaml:1 -> harbor.example/x/docker.io/library/nginx:1.25"),
        "{stdout}"
    );
    assert!(!dir.path().join("mirror").exists(), "a dry run copied");
    let args = ["--format", "list", "list.yaml", "harbor.example/x"];
    let out = run(&mut script(dir.path(), "show-images.sh", &args), 0);
    assert_eq!(
        stdout_of(&out),
        "harbor.example/x/docker.io/library/nginx:1.25\n"
    );
    let out = run(
        &mut script(
            dir.path(),
            "show-raw-images.sh",
            &["--format", "list", "list.yaml"],
        ),
        0,
    );
    assert_eq!(stdout_of(&out), "docker.io/library/nginx:1.25\n");
}

#[test]
fn show_scripts_pass_flags_to_ferry() {
    let dir = TempDir::new("scripts-show");
    list_named_yaml(&dir);
    for (name, args, expected) in [
        (
            "show-raw-images.sh",
            &["list.yaml", "--format=list"][..],
            "docker.io/library/nginx:1.25\n",
        ),
        (
            "show-images.sh",
            &["list.yaml", "harbor.example/x", "--format=list"][..],
            "harbor.example/x/docker.io/library/nginx:1.25\n",
        ),
        (
            "show-images.sh",
            &["list.yaml", "harbor.example/x", "--", "--format", "list"][..],
            "harbor.example/x/docker.io/library/nginx:1.25\n",
        ),
    ] {
        let out = run(&mut script(dir.path(), name, args), 0);
        assert_eq!(stdout_of(&out), expected, "{name} {args:?}");
    }
}

#[test]
fn show_scripts_refuse_extra_arguments() {
    let dir = TempDir::new("scripts-extra");
    list_named_yaml(&dir);
    for (name, args) in [
        ("show-raw-images.sh", &["list.yaml", "extra"][..]),
        (
            "show-images.sh",
            &["list.yaml", "harbor.example/x", "extra"][..],
        ),
    ] {
        let out = run(&mut script(dir.path(), name, args), 2);
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("unexpected argument \"extra\"") && stderr.contains("usage:"),
            "{name}: {stderr}"
        );
        assert!(stdout_of(&out).is_empty(), "{name} printed images");
    }
}
