//! `--signatures`: what travels with an image, against real `docker-registry` processes. The
//! source's registry gets the OCI 1.1 referrers API (which docker-registry 2.8 lacks) from
//! `scripts/hostile-registry.py --attack '*=referrers-api'` in front of it; the destination is
//! the real registry without it (behind a front that only logs, to count requests), so ferry
//! keeps the referrers tag schema's index there. An image built in the test carries a
//! cosign-shaped signature (`sha256-<hex>.sig`: a simple-signing payload with cosign's
//! signature annotation), an attestation (`.att`: an in-toto DSSE envelope) and an SBOM
//! referrer (`subject` set, `artifactType` application/spdx+json, pushed by digest alone).

use std::process::Command;

use crate::common::artifacts::*;
use crate::common::engines::{per_engine, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

/// A mirror whose source has the referrers API (a front), and whose destination is reached
/// through a front that only logs; docker.io goes to the source's front.
struct World {
    mirror: Mirror,
    source_front: ScriptProxy,
    dest_front: ScriptProxy,
    conf: std::path::PathBuf,
}

/// One signed image of the source.
struct Signed {
    image: Image,
    signature: Pushed,
    attestation: Pushed,
    sbom: Pushed,
}

impl World {
    fn new(engine: Engine) -> World {
        let mirror = Mirror::with_engine(false, engine);
        let dir = mirror.scratch.path();
        let source_front =
            ScriptProxy::hostile(dir, &mirror.source.addr(), &[("*", "referrers-api")], &[]);
        let dest_front = ScriptProxy::hostile(dir, &mirror.dest.addr(), &[], &[]);
        let conf = registries_conf(dir, &[("docker.io", &source_front.addr())]);
        World {
            mirror,
            source_front,
            dest_front,
            conf,
        }
    }

    fn source_api(&self) -> Api<'_> {
        Api {
            addr: self.source_front.addr(),
            scratch: self.mirror.scratch.path(),
        }
    }

    fn dest_api(&self) -> Api<'_> {
        Api {
            addr: self.mirror.dest.addr(),
            scratch: self.mirror.scratch.path(),
        }
    }

    /// Pushes `library/NAME:1` with a signature, an attestation and an SBOM referrer.
    fn signed(&self, name: &str) -> Signed {
        let repo = format!("library/{name}");
        let image = push_new_image(
            &self.mirror.source,
            self.mirror.scratch.path(),
            &format!("{repo}:1"),
            name,
        );
        let api = self.source_api();
        let size = raw_manifest(&self.mirror.source, &format!("{repo}@{}", image.digest))
            .unwrap()
            .len();
        Signed {
            signature: api.cosign_signature(&repo, &image.digest, name),
            attestation: api.cosign_attestation(&repo, &image.digest, name),
            sbom: api.sbom_referrer(&repo, &image.digest, size, name),
            image,
        }
    }

    fn prefix(&self) -> String {
        format!("{}/third", self.dest_front.addr())
    }

    /// `ferry COMMAND LIST --dest PREFIX` with this world's redirect, and `args`.
    fn ferry(&self, command: &str, list: &str, args: &[&str]) -> Command {
        let list = self.mirror.write(&format!("list-{}", unique()), list);
        let mut cmd = self.mirror.ferry();
        cmd.env("CONTAINERS_REGISTRIES_CONF", &self.conf)
            .arg(command)
            .arg(list)
            .args(["--dest", &self.prefix(), "--dest-tls-verify=false"])
            .args(args);
        cmd
    }
}

fn tag_of(digest: &str, suffix: &str) -> String {
    let tag = digest.replacen(':', "-", 1);
    match suffix {
        "" => tag,
        suffix => format!("{tag}.{suffix}"),
    }
}

/// The requests of a front's log since `from` (a count of lines): without ferry's probe of a
/// plain-HTTP registry's scheme (a TLS handshake the front refuses, logged `- - 400`), which
/// is no registry request.
fn log_since(front: &ScriptProxy, from: usize) -> Vec<String> {
    front
        .log()
        .lines()
        .skip(from)
        .filter(|line| !line.starts_with("- - "))
        .map(str::to_owned)
        .collect()
}

fn signatures_travel_with_their_image(engine: Engine) {
    let native = engine == Engine::Native;
    let w = World::new(engine);
    let signed = w.signed("signed");
    let index = &signed.image.digest;
    let target_repo = "third/docker.io/library/signed";
    let target = format!("{}/docker.io/library/signed:1", w.prefix());

    // Without --signatures, the image alone.
    Test::mirror(&w.mirror, w.ferry("sync", "signed:1\n", &[]))
        .stdout_results(format!(
            "synced  {target}  [t]  [..] reused\n\
             1 image: 1 synced, 0 skipped, 0 failed in [t]\n"
        ))
        .run();
    assert_eq!(tags(&w.mirror.dest, target_repo), ["1"]);
    let at_dest =
        |reference: &str| remote_digest(&w.mirror.dest, &format!("{target_repo}{reference}"));
    assert_eq!(at_dest(&format!("@{}", signed.sbom.digest)), None);

    // With it, the image is current and what belongs to it follows, digests kept.
    let copied = if native {
        "3 artifacts: 3 copied"
    } else {
        "3 artifacts: 2 copied, 1 needs-native"
    };
    let summary = if native {
        "3 artifacts: 3 copied, 0 current, 0 failed, 0 needs-native"
    } else {
        "3 artifacts: 2 copied, 0 current, 0 failed, 1 needs-native"
    };
    let note = match native {
        true => String::new(),
        false => format!(
            "ferry: note: with --engine {0}, --signatures copies cosign's signature, \
             attestation and SBOM tags as copies of their own; OCI referrers exist by digest \
             alone, which {0} cannot copy: they are reported as needs-native (copy them with \
             --engine native)\n",
            w.mirror.engine.name()
        ),
    };
    let ran = Test::mirror(&w.mirror, w.ferry("sync", "signed:1\n", &["--signatures"]))
        .report()
        .stdout_results(format!(
            "skipped {target}  [t]  current at {index}; {copied}\n\
             1 image: 0 synced, 1 skipped, 0 failed in [t]; {summary}\n"
        ))
        .stderr(note)
        .run();
    let sig_tag = tag_of(index, "sig");
    let att_tag = tag_of(index, "att");
    assert_eq!(
        at_dest(&format!(":{sig_tag}")),
        Some(signed.signature.digest.clone())
    );
    assert_eq!(
        at_dest(&format!(":{att_tag}")),
        Some(signed.attestation.digest.clone())
    );
    let artifacts = &images(ran.report())[0]["artifacts"];
    let listed: Vec<(&str, &str, &str)> = artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let name = a["tag"]
                .as_str()
                .unwrap_or_else(|| a["digest"].as_str().unwrap());
            (
                a["kind"].as_str().unwrap(),
                name,
                a["state"].as_str().unwrap(),
            )
        })
        .collect();
    let sbom_state = if native { "copied" } else { "needs-native" };
    assert_eq!(
        listed,
        [
            ("signature", sig_tag.as_str(), "copied"),
            ("attestation", att_tag.as_str(), "copied"),
            ("referrer", signed.sbom.digest.as_str(), sbom_state),
        ]
    );
    for artifact in artifacts.as_array().unwrap() {
        assert_eq!(artifact["subject"], index.as_str(), "{artifact}");
    }
    assert_eq!(artifacts[2]["artifact_type"], SPDX);
    assert_eq!(
        ran.report()["summary"]["artifacts"]["copied"],
        if native { 3 } else { 2 }
    );
    let fallback = raw_manifest(
        &w.mirror.dest,
        &format!("{target_repo}:{}", tag_of(index, "")),
    );
    if !native {
        assert_eq!(at_dest(&format!("@{}", signed.sbom.digest)), None);
        assert_eq!(fallback, None);
        // A rerun starts no engine: the tags are current, the referrer still needs native.
        let runs = w.mirror.invocations().len();
        Test::mirror(&w.mirror, w.ferry("sync", "signed:1\n", &["--signatures"]))
            .stdout_results(format!(
                "skipped {target}  [t]  current at {index}; 3 artifacts: 2 current, 1 \
                 needs-native\n\
                 1 image: 0 synced, 1 skipped, 0 failed in [t]; \
                 3 artifacts: 0 copied, 2 current, 0 failed, 1 needs-native\n"
            ))
            .run();
        assert_eq!(w.mirror.invocations().len(), runs);
        return;
    }
    // The referrer by its digest, subject intact, and listed in the referrers tag schema's
    // index, as the spec has a client keep it for a registry without the referrers API.
    let sbom = raw_manifest(
        &w.mirror.dest,
        &format!("{target_repo}@{}", signed.sbom.digest),
    );
    assert_eq!(sbom.as_deref(), Some(signed.sbom.bytes.as_slice()));
    let fallback: serde_json::Value = serde_json::from_slice(&fallback.unwrap()).unwrap();
    assert_eq!(fallback["mediaType"], OCI_INDEX);
    assert_eq!(
        fallback["manifests"],
        serde_json::json!([referrer_descriptor(&signed.sbom)])
    );

    // A rerun is a no-op: one request per artifact tag and referrers listing (see README).
    let (source_from, dest_from) = (
        w.source_front.log().lines().count(),
        w.dest_front.log().lines().count(),
    );
    Test::mirror(&w.mirror, w.ferry("sync", "signed:1\n", &["--signatures"]))
        .stdout_results(format!(
            "skipped {target}  [t]  current at {index}; 3 artifacts: 3 current\n\
             1 image: 0 synced, 1 skipped, 0 failed in [t]; \
             3 artifacts: 0 copied, 3 current, 0 failed, 0 needs-native\n"
        ))
        .run();
    let source_log = log_since(&w.source_front, source_from);
    let dest_log = log_since(&w.dest_front, dest_from);
    // Source: the plan's HEAD of the tag, then for the index and each of its 2 platforms a
    // HEAD of each cosign tag and one referrers listing: 1 + 3 × (3 + 1).
    assert_eq!(source_log.len(), 13, "{source_log:#?}");
    assert_eq!(
        source_log.iter().filter(|l| l.starts_with("HEAD ")).count(),
        10,
        "{source_log:#?}"
    );
    assert_eq!(
        source_log
            .iter()
            .filter(|l| l.contains("/referrers/"))
            .count(),
        3,
        "{source_log:#?}"
    );
    // Destination: the plan's HEAD; the image's manifest (its platforms); a HEAD of each
    // cosign tag the source has; and the index's referrers listing: the API's 404, then the
    // referrers tag schema's tag: 1 + 1 + 2 + 2.
    let mut dest_expected = [
        "HEAD /v2/third/docker.io/library/signed/manifests/1 200".to_owned(),
        format!("GET /v2/third/docker.io/library/signed/manifests/{index} 200"),
        format!("HEAD /v2/third/docker.io/library/signed/manifests/{sig_tag} 200"),
        format!("HEAD /v2/third/docker.io/library/signed/manifests/{att_tag} 200"),
        format!("GET /v2/third/docker.io/library/signed/referrers/{index} 404"),
        format!(
            "GET /v2/third/docker.io/library/signed/manifests/{} 200",
            tag_of(index, "")
        ),
    ];
    // (In any order: an image's artifacts are looked at several at a time.)
    let mut dest_log = dest_log;
    dest_log.sort();
    dest_expected.sort();
    assert_eq!(dest_log, dest_expected);

    // verify --signatures checks every artifact of the source at the target.
    let list = "signed:1\n";
    Test::mirror(&w.mirror, w.ferry("verify", list, &["--signatures"]))
        .stdout(format!(
            "verified  {target}  {index}  with 3 artifacts\n\
             1 target: 1 verified, 0 with problems ([..] requests in [t])\n"
        ))
        .run();
    w.dest_api()
        .delete_manifest(target_repo, &signed.signature.digest);
    Test::mirror(&w.mirror, w.ferry("verify", list, &["--signatures"]))
        .code(1)
        .stdout(format!(
            "missing-artifacts {target}  signature {sig_tag} missing\n\
             1 target: 0 verified, 1 with problems ([..] requests in [t])\n"
        ))
        .run();
    // Without --signatures, verify looks at the image alone.
    Test::mirror(&w.mirror, w.ferry("verify", list, &[]))
        .stdout(format!(
            "verified  {target}  {index}\n\
             1 target: 1 verified, 0 with problems ([..] requests in [t])\n"
        ))
        .run();
}

fn a_new_image_lands_before_what_belongs_to_it(engine: Engine) {
    let w = World::new(engine);
    let signed = w.signed("fresh");
    let index = &signed.image.digest;
    Test::mirror(
        &w.mirror,
        w.ferry("sync", "fresh:1\n", &["--signatures=sig,att"]),
    )
    .stdout_results(format!(
        "synced  {}/docker.io/library/fresh:1  [t]  [..] reused; 2 artifacts: 2 copied\n\
             1 image: 1 synced, 0 skipped, 0 failed in [t]; 2 artifacts: 2 copied, 0 current, 0 \
             failed, 0 needs-native\n",
        w.prefix()
    ))
    .stderr("")
    .run();
    // Every manifest write, in order: the image's (its platforms, then its tag) first.
    let puts: Vec<String> = w
        .dest_front
        .requests("PUT", "/manifests/")
        .into_iter()
        .map(|line| {
            line.split(' ')
                .nth(1)
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let image_tag = puts.iter().position(|p| p == "1").expect("the image's tag");
    let sig = puts
        .iter()
        .position(|p| *p == tag_of(index, "sig"))
        .expect("the .sig");
    let att = puts
        .iter()
        .position(|p| *p == tag_of(index, "att"))
        .expect("the .att");
    assert!(image_tag < sig && image_tag < att, "{puts:#?}");
    assert!(!puts.contains(&signed.sbom.digest), "{puts:#?}");
}

per_engine!(
    signatures_travel_with_their_image,
    a_new_image_lands_before_what_belongs_to_it
);

/// Neither side has the referrers API: the source's referrers are read from its referrers tag
/// schema's index, and the destination's index is written, then updated, as the spec says.
#[test]
fn without_a_referrers_api_the_tag_schemas_index_is_read_and_kept() {
    let m = Mirror::with_engine(false, Engine::Native);
    let source = Api {
        addr: m.source.addr(),
        scratch: m.scratch.path(),
    };
    let repo = "library/plain";
    let image = push_new_image(&m.source, m.scratch.path(), &format!("{repo}:1"), "plain");
    let size = raw_manifest(&m.source, &format!("{repo}@{}", image.digest))
        .unwrap()
        .len();
    let first = source.sbom_referrer(repo, &image.digest, size, "first");
    source.fallback_index(repo, &image.digest, &[&first]);
    // A referrer of one platform too.
    let platform = &image.platform_digests[1];
    let platform_size = raw_manifest(&m.source, &format!("{repo}@{platform}"))
        .unwrap()
        .len();
    let of_platform = source.sbom_referrer(repo, platform, platform_size, "arm64");
    source.fallback_index(repo, platform, &[&of_platform]);
    let list = m.write("images.list", "plain:1\n");
    let target_repo = "third/docker.io/library/plain";
    let fallback = |subject: &str| {
        let raw = raw_manifest(&m.dest, &format!("{target_repo}:{}", tag_of(subject, "")));
        serde_json::from_slice::<serde_json::Value>(&raw.expect("the referrers index")).unwrap()
    };
    m.test_sync(&list)
        .arg("--signatures")
        .stdout_results(format!(
            "synced  {}/docker.io/library/plain:1  [t]  [..] reused; 2 artifacts: 2 copied\n\
             1 image: 1 synced, 0 skipped, 0 failed in [t]; 2 artifacts: 2 copied, 0 current, 0 \
             failed, 0 needs-native\n",
            m.prefix()
        ))
        .run();
    for (subject, referrer) in [(&image.digest, &first), (platform, &of_platform)] {
        assert_eq!(
            remote_digest(&m.dest, &format!("{target_repo}@{}", referrer.digest)),
            Some(referrer.digest.clone())
        );
        assert_eq!(
            fallback(subject)["manifests"],
            serde_json::json!([referrer_descriptor(referrer)])
        );
    }
    // Another referrer at the source: the destination's index gets it appended.
    let second = source.sbom_referrer(repo, &image.digest, size, "second");
    source.fallback_index(repo, &image.digest, &[&first, &second]);
    m.test_sync(&list)
        .arg("--signatures")
        .stdout_results(format!(
            "skipped {}/docker.io/library/plain:1  [t]  current at {}; 3 artifacts: 1 copied, \
             2 current\n\
             1 image: 0 synced, 1 skipped, 0 failed in [t]; 3 artifacts: 1 copied, 2 current, 0 \
             failed, 0 needs-native\n",
            m.prefix(),
            image.digest
        ))
        .run();
    assert_eq!(
        fallback(&image.digest)["manifests"],
        serde_json::json!([referrer_descriptor(&first), referrer_descriptor(&second)])
    );
    // The referrers tag schema's tags are the image's artifacts, not images of their own: a
    // whole repository with --signatures leaves them to it.
    let whole = m.write("whole.list", "plain\n");
    m.test_sync(&whole)
        .arg("--signatures")
        .stdout_results(format!(
            "skipped {}/docker.io/library/plain:1  [t]  current at {}; 3 artifacts: 3 current\n\
             1 image: 0 synced, 1 skipped, 0 failed in [t]; 3 artifacts: 0 copied, 3 current, 0 \
             failed, 0 needs-native\n",
            m.prefix(),
            image.digest
        ))
        .run();
}

/// A destination with the referrers API lists what was pushed by digest; no referrers tag
/// schema's tag is written there.
#[test]
fn a_destination_with_the_referrers_api_gets_no_fallback_tag() {
    let w = World::new(Engine::Native);
    let dest_api_front = ScriptProxy::hostile(
        w.mirror.scratch.path(),
        &w.mirror.dest.addr(),
        &[("*", "referrers-api")],
        &[],
    );
    let signed = w.signed("apidest");
    let list = w.mirror.write("images.list", "apidest:1\n");
    let mut cmd = w.mirror.ferry();
    cmd.env("CONTAINERS_REGISTRIES_CONF", &w.conf)
        .arg("sync")
        .arg(&list)
        .args([
            "--dest",
            &format!("{}/third", dest_api_front.addr()),
            "--dest-tls-verify=false",
            "--signatures=application/spdx+json",
        ]);
    Test::mirror(&w.mirror, cmd)
        .stdout_results(format!(
            "synced  {}/third/docker.io/library/apidest:1  [t]  [..] reused; 1 \
             artifact: 1 copied\n\
             1 image: 1 synced, 0 skipped, 0 failed in [t]; 1 artifact: 1 copied, 0 current, 0 \
             failed, 0 needs-native\n",
            dest_api_front.addr()
        ))
        .run();
    let target_repo = "third/docker.io/library/apidest";
    assert_eq!(tags(&w.mirror.dest, target_repo), ["1"]);
    let api = Api {
        addr: dest_api_front.addr(),
        scratch: w.mirror.scratch.path(),
    };
    let (status, body) = api.get(&format!(
        "/v2/{target_repo}/referrers/{}",
        signed.image.digest
    ));
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        listed["manifests"][0]["digest"],
        signed.sbom.digest.as_str()
    );
    // The one type named was asked of the source's API, which filtered on it.
    let asked = w.source_front.requests("GET", "/referrers/");
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|l| l.contains("?artifactType=application%2Fspdx%2Bjson ")),
        "{asked:#?}"
    );
    // A type it has none of: nothing travels (and the cosign tags were not asked for).
    let mut cmd = w.mirror.ferry();
    cmd.env("CONTAINERS_REGISTRIES_CONF", &w.conf)
        .arg("sync")
        .arg(&list)
        .args([
            "--dest",
            &format!("{}/third", dest_api_front.addr()),
            "--dest-tls-verify=false",
            "--signatures=application/vnd.example.none",
        ]);
    let heads = w.source_front.requests("HEAD", ".sig").len();
    Test::mirror(&w.mirror, cmd)
        .stdout_results(format!(
            "skipped {}/third/docker.io/library/apidest:1  [t]  current at {}; no artifacts\n\
             1 image: 0 synced, 1 skipped, 0 failed in [t]; 0 artifacts: 0 copied, 0 current, 0 \
             failed, 0 needs-native\n",
            dest_api_front.addr(),
            signed.image.digest
        ))
        .run();
    assert_eq!(heads, 0);
    assert_eq!(w.source_front.requests("HEAD", ".sig").len(), 0);
    // Asked for a type it lists none of, the source's API filters them all out.
    let (_, body) = w.source_api().get(&format!(
        "/v2/library/apidest/referrers/{}?artifactType=application%2Fexample",
        signed.image.digest
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["manifests"],
        serde_json::json!([])
    );
}

/// What a referrers listing holds is checked before use: a digest that leaves the repository
/// fails the image, and no request goes out with it; more than 1,000 referrers too.
#[test]
fn a_hostile_referrers_listing_fails_its_image_and_goes_nowhere() {
    let m = Mirror::with_engine(false, Engine::Native);
    let front = ScriptProxy::hostile(
        m.scratch.path(),
        &m.source.addr(),
        &[
            ("library/traversal", "referrers-traversal"),
            ("library/many", "referrers-many"),
        ],
        &[],
    );
    let conf = registries_conf(m.scratch.path(), &[("docker.io", &front.addr())]);
    for name in ["traversal", "many"] {
        push_new_image(
            &m.source,
            m.scratch.path(),
            &format!("library/{name}:1"),
            name,
        );
    }
    let list = m.write("images.list", "traversal:1\nmany:1\n");
    let prefix = m.prefix();
    m.test_sync(&list)
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .args(["--signatures=referrers", "--retry-times", "0"])
        .code(1)
        .stdout_results(format!(
            "failed  {prefix}/docker.io/library/traversal:1  [t]  other: the image is at the \
             target, but its artifacts could not be looked up: referrers of \
             docker.io/library/traversal@sha256:[..]: unexpected response: a referrer's digest \
             \"sha256:../../../../x\" is not a sha256 digest, which ferry cannot verify\n\
             failed  {prefix}/docker.io/library/many:1  [t]  other: the image is at the target, \
             but its artifacts could not be looked up: referrers of \
             docker.io/library/many@sha256:[..]: the subject has more than 1000 referrers, the \
             most ferry reads: the registry is broken or hostile\n\
             2 images: 0 synced, 0 skipped, 2 failed in [t]; 0 artifacts: 0 copied, 0 current, 0 \
             failed, 0 needs-native\n"
        ))
        .run();
    let strays: Vec<String> = front
        .log()
        .lines()
        .filter(|l| l.contains(".."))
        .map(str::to_owned)
        .collect();
    assert!(
        strays.is_empty(),
        "a request left the repository: {strays:#?}"
    );
}

/// An images.json element (or a skopeo YAML registry) may say `signatures: true` for its own
/// images: they take their artifacts along without `--signatures`, and the others do not.
#[test]
fn an_input_entry_may_take_its_signatures_along_by_itself() {
    let w = World::new(Engine::Native);
    let signed = w.signed("keyed");
    let plain = w.signed("unkeyed");
    let prefix = w.prefix();
    let images = format!(
        r#"[
  {{"source": "keyed:1", "target": "{prefix}/keyed:1", "signatures": true}},
  {{"source": "unkeyed:1", "target": "{prefix}/unkeyed:1"}}
]"#
    );
    let path = w.mirror.write("images.json", &images);
    let mut cmd = w.mirror.ferry();
    cmd.env("CONTAINERS_REGISTRIES_CONF", &w.conf)
        .arg("sync")
        .arg(&path)
        .arg("--dest-tls-verify=false");
    Test::mirror(&w.mirror, cmd)
        .stdout_results(format!(
            "synced  {prefix}/keyed:1  [t]  [..] reused; 3 artifacts: 3 copied\n\
             synced  {prefix}/unkeyed:1  [t]  [..] reused\n\
             2 images: 2 synced, 0 skipped, 0 failed in [t]; 3 artifacts: 3 copied, 0 current, \
             0 failed, 0 needs-native\n"
        ))
        .run();
    let at = |repo: &str, tag: &str| remote_digest(&w.mirror.dest, &format!("third/{repo}:{tag}"));
    assert_eq!(
        at("keyed", &tag_of(&signed.image.digest, "sig")),
        Some(signed.signature.digest.clone())
    );
    assert_eq!(at("unkeyed", &tag_of(&plain.image.digest, "sig")), None);
}
