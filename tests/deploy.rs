//! The deployables: the Dockerfile. There is no Docker engine here, so it is read as its
//! instructions and checked for what ferry's image relies on. Each checker returns the
//! problems it finds, so that it is also shown broken copies of the files and must name what
//! broke.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const DOCKERFILE: &str = "Dockerfile";

// ---------------------------------------------------------------------------------------------
// Reading

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    let file = repo_path(path);
    fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

/// `text` with its one occurrence of `from` replaced by `to`.
fn mutated(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the mutation needs exactly one {from:?} in the file"
    );
    text.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------------------------
// Checkers: each returns the problems it finds, empty when the files are right.

/// One Dockerfile instruction: its keyword (upper case) and the rest, continuation lines joined.
struct Instruction {
    keyword: String,
    rest: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comments (and parser directives) are dropped, also inside a continued instruction.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let line = std::mem::take(&mut pending);
                let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
                found.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    rest: squeezed_spaces(rest),
                });
            }
        }
    }
    found
}

/// Runs of blanks as one space.
fn squeezed_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Stage {
    image: String,
    name: Option<String>,
    body: Vec<Instruction>,
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions(text) {
        if instruction.keyword == "FROM" {
            let words: Vec<&str> = instruction
                .rest
                .split(' ')
                .filter(|w| !w.starts_with("--"))
                .collect();
            let name = match words[..] {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_owned()),
                _ => None,
            };
            stages.push(Stage {
                image: words.first().unwrap_or(&"").to_string(),
                name,
                body: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.body.push(instruction);
        }
    }
    stages
}

fn dockerfile_problems(text: &str) -> Vec<String> {
    let stages = stages(text);
    let mut problems = Vec::new();
    let runs = |stage: &Stage| -> Vec<String> {
        stage
            .body
            .iter()
            .filter(|i| i.keyword == "RUN")
            .map(|i| i.rest.clone())
            .collect()
    };
    let stage_of = |image: &str| {
        stages[..stages.len().saturating_sub(1)]
            .iter()
            .find(|s| s.image == image)
    };
    let Some(runtime) = stages.last().filter(|_| stages.len() >= 3) else {
        return vec![format!(
            "Dockerfile: {} stages, not a Rust builder, a Go builder and a runtime",
            stages.len()
        )];
    };

    let rust = stage_of("rust:1-bookworm");
    match rust {
        None => problems.push("Dockerfile: no rust:1-bookworm builder stage".to_owned()),
        Some(stage) => {
            if !runs(stage)
                .iter()
                .any(|r| r.contains("cargo build --release --locked"))
            {
                problems.push(
                    "Dockerfile: the Rust stage does not cargo build --release --locked".to_owned(),
                );
            }
        }
    }
    let go = stage_of("golang:1.22-bookworm");
    match go {
        None => problems.push("Dockerfile: no golang:1.22-bookworm stage for crane".to_owned()),
        Some(stage) => {
            let installs = runs(stage).iter().any(|r| {
                r.contains("go install")
                    && r.contains("github.com/google/go-containerregistry/cmd/crane@v0.20.2")
            });
            if !installs {
                problems
                    .push("Dockerfile: the Go stage does not go install crane@v0.20.2".to_owned());
            }
            if !stage.body.iter().any(|i| i.rest.contains("CGO_ENABLED=0")) {
                problems.push("Dockerfile: crane is not built with CGO_ENABLED=0".to_owned());
            }
        }
    }

    if runtime.image != "debian:bookworm-slim" {
        problems.push(format!(
            "Dockerfile: the runtime is {}, not debian:bookworm-slim",
            runtime.image
        ));
    }
    let apt = runs(runtime)
        .into_iter()
        .find(|r| r.contains("apt-get install"));
    match apt {
        None => problems.push("Dockerfile: the runtime installs nothing with apt-get".to_owned()),
        Some(apt) => {
            let words: Vec<&str> = apt.split(' ').collect();
            for package in ["skopeo", "ca-certificates"] {
                if !words.contains(&package) {
                    problems.push(format!(
                        "Dockerfile: the runtime does not install {package}"
                    ));
                }
            }
            if !words.contains(&"--no-install-recommends") {
                problems.push("Dockerfile: apt-get installs recommends".to_owned());
            }
            if !apt.contains("rm -rf /var/lib/apt/lists/*") {
                problems.push("Dockerfile: the apt lists stay in the image".to_owned());
            }
        }
    }
    let copies_from = |stage: Option<&Stage>, binary: &str| {
        let Some(name) = stage.and_then(|s| s.name.as_deref()) else {
            return false;
        };
        runtime.body.iter().any(|i| {
            i.keyword == "COPY"
                && i.rest.contains(&format!("--from={name} "))
                && i.rest.contains(binary)
        })
    };
    if !copies_from(rust, "ferry") {
        problems.push("Dockerfile: ferry is not copied into the runtime".to_owned());
    }
    if !copies_from(go, "crane") {
        problems.push("Dockerfile: crane is not copied into the runtime".to_owned());
    }

    // USER, numeric (what runAsNonRoot can verify) and not root, set before the ENTRYPOINT.
    let position = |keyword: &str| runtime.body.iter().rposition(|i| i.keyword == keyword);
    let user = position("USER").map(|at| &runtime.body[at].rest);
    let uid = user.and_then(|u| u.split(':').next()?.parse::<u64>().ok());
    match uid {
        None => problems.push(format!(
            "Dockerfile: USER {user:?} is no numeric uid, which runAsNonRoot cannot verify"
        )),
        Some(0) => problems.push("Dockerfile: USER is root".to_owned()),
        Some(uid) => {
            let creates = runs(runtime)
                .iter()
                .any(|r| r.contains(&format!("--uid {uid}")) && r.contains("/home/ferry"));
            if !creates {
                problems.push(format!(
                    "Dockerfile: no user {uid} with home /home/ferry is created"
                ));
            }
        }
    }
    if position("USER") > position("ENTRYPOINT") {
        problems.push("Dockerfile: USER comes after the ENTRYPOINT".to_owned());
    }
    let exec_form = |keyword: &str| {
        position(keyword)
            .and_then(|at| serde_json::from_str::<Vec<String>>(&runtime.body[at].rest).ok())
    };
    if exec_form("ENTRYPOINT").as_deref() != Some(&["ferry".to_owned()][..]) {
        problems.push("Dockerfile: ENTRYPOINT is not the exec form [\"ferry\"]".to_owned());
    }
    if exec_form("CMD").as_deref() != Some(&["--help".to_owned()][..]) {
        problems.push("Dockerfile: CMD is not [\"--help\"]".to_owned());
    }
    if position("WORKDIR").map(|at| runtime.body[at].rest.as_str()) != Some("/work") {
        problems.push("Dockerfile: WORKDIR is not /work".to_owned());
    }
    problems
}

fn dockerignore_problems(text: &str) -> Vec<String> {
    let patterns: BTreeSet<&str> = text
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .collect();
    ["target", ".git"]
        .iter()
        .filter(|p| !patterns.contains(*p))
        .map(|p| format!(".dockerignore: {p}/ is sent to the build"))
        .collect()
}

/// The problems of the file at `path` (one of the deployables), read as `text`.
fn problems_of(path: &str, text: &str) -> Vec<String> {
    match path {
        DOCKERFILE => dockerfile_problems(text),
        _ => panic!("no checker for {path}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The files as they are

#[test]
fn the_deployables_have_what_ferry_relies_on() {
    let mut problems = dockerfile_problems(&read(DOCKERFILE));
    problems.extend(dockerignore_problems(&read(".dockerignore")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checkers_name_what_a_broken_copy_breaks() {
    let cases = [
        (
            DOCKERFILE,
            "ENTRYPOINT [\"ferry\"]",
            "ENTRYPOINT ferry",
            "exec form",
        ),
        (DOCKERFILE, "USER 10001:10001", "USER ferry", "numeric"),
        (DOCKERFILE, "USER 10001:10001", "USER 0", "root"),
        (DOCKERFILE, "      skopeo \\\n", "", "install skopeo"),
        (
            DOCKERFILE,
            "COPY --from=crane",
            "COPY --from=build",
            "crane is not copied",
        ),
    ];
    for (path, from, to, expected) in cases {
        let text = read(path);
        assert!(
            problems_of(path, &text).is_empty(),
            "{path} as it is has problems"
        );
        let problems = problems_of(path, &mutated(&text, from, to));
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{path} with {from:?} changed to {to:?}: expected a problem with {expected:?}, \
             got {problems:#?}"
        );
    }
}
