//! What large lists need: a destination repository the registry says does not exist
//! (`tags/list` answering `NAME_UNKNOWN`) costs one tag lookup and that one listing, not a
//! lookup per tag (counted at a proxy in front of the destination); a repository that exists,
//! or one with fewer than 3 tags in the list, is looked up tag by tag as ever; the small
//! blobs copied into such a repository go up without a HEAD first.

use crate::common::engines::{engine_tests, Engine};
use crate::common::mirror::*;
use crate::common::script_proxy::ScriptProxy;
use crate::common::*;

const APP_TAGS: [&str; 5] = ["1", "2", "3", "4", "5"];

/// The destination requests the proxy logged since `seen` with `method` and a path holding
/// `part`.
fn asked(proxy: &ScriptProxy, seen: usize, method: &str, part: &str) -> usize {
    proxy
        .log()
        .lines()
        .skip(seen)
        .filter(|line| {
            let mut fields = line.split(' ');
            fields.next() == Some(method) && fields.next().is_some_and(|p| p.contains(part))
        })
        .count()
}

// The scouting is the plan's, the same for every engine; with the native engine the
// destination's requests are the plan's and the copy's alone (skopeo and crane look at the
// destination's manifests again themselves), so every one of them can be counted.
engine_tests!(a_repository_new_to_the_destination_costs_one_lookup_not_one_per_tag: native);

fn a_repository_new_to_the_destination_costs_one_lookup_not_one_per_tag(engine: Engine) {
    let m = Mirror::with_engine(false, engine);
    for tag in APP_TAGS {
        m.push(&format!("library/app:{tag}"), &format!("app-{tag}"));
    }
    m.push("library/pair:1", "pair-1");
    m.push("library/pair:2", "pair-2");
    let proxy = ScriptProxy::rate_limited(m.scratch.path(), &m.dest.addr(), f64::INFINITY);
    let prefix = format!("{}/third", proxy.addr());
    let lines: Vec<String> = APP_TAGS.iter().map(|t| format!("app:{t}")).collect();
    let list = m.write(
        "images.list",
        &format!("{}\npair:1\npair:2\n", lines.join("\n")),
    );
    let command = |verb: &str, list: &std::path::Path| {
        let mut cmd = m.ferry();
        cmd.arg(verb)
            .arg(list)
            .arg("--dest")
            .arg(&prefix)
            .arg("--dest-tls-verify=false");
        cmd
    };
    let app = "/v2/third/docker.io/library/app/";
    let pair = "/v2/third/docker.io/library/pair/";

    // plan: every tag new; app's five cost one HEAD and one listing, pair's two a HEAD each.
    let output = run(&mut command("plan", &list), 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let new = stdout.lines().filter(|l| l.starts_with("new ")).count();
    assert_eq!(new, 7, "{stdout}");
    assert_eq!(asked(&proxy, 0, "HEAD", &format!("{app}manifests/")), 1);
    assert_eq!(asked(&proxy, 0, "GET", &format!("{app}tags/list")), 1);
    assert_eq!(asked(&proxy, 0, "HEAD", &format!("{pair}manifests/")), 2);
    assert_eq!(asked(&proxy, 0, "GET", &format!("{pair}tags/list")), 0);

    // A cold sync: the same lookups, and every tag copied.
    let seen = proxy.log().lines().count();
    run(&mut command("sync", &list), 0);
    assert_eq!(asked(&proxy, seen, "HEAD", &format!("{app}manifests/")), 1);
    assert_eq!(asked(&proxy, seen, "GET", &format!("{app}tags/list")), 1);
    assert_eq!(asked(&proxy, seen, "HEAD", &format!("{pair}manifests/")), 2);
    // Nor is any of app's small blobs asked for before it goes up; pair's are (it was never
    // said not to exist).
    assert_eq!(asked(&proxy, seen, "HEAD", &format!("{app}blobs/")), 0);
    assert!(asked(&proxy, seen, "HEAD", &format!("{pair}blobs/")) > 0);
    assert!(asked(&proxy, seen, "PUT", &format!("{app}blobs/uploads/")) > 0);
    for image in lines
        .iter()
        .chain(["pair:1".to_owned(), "pair:2".to_owned()].iter())
    {
        let target = format!("{}/docker.io/library/{image}", m.prefix());
        let source = remote_digest(&m.source, &format!("library/{image}"));
        assert!(source.is_some(), "{image} is not at the source");
        assert_eq!(m.target_digest(&target), source, "{image}");
    }

    // The repository exists now: a rerun looks every tag up, and asks for no listing.
    let seen = proxy.log().lines().count();
    let output = run(&mut command("sync", &list), 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("7 images: 0 synced, 7 skipped, 0 failed"),
        "{stdout}"
    );
    assert_eq!(asked(&proxy, seen, "HEAD", &format!("{app}manifests/")), 5);
    assert_eq!(asked(&proxy, seen, "GET", &format!("{app}tags/list")), 0);

    // A new tag first in the list: its lookup finds nothing, the listing says the repository
    // exists, and the other tags are still looked up one by one (and found current).
    m.push("library/app:0", "app-0");
    let list = m.write("images-0.list", &format!("app:0\n{}\n", lines.join("\n")));
    let seen = proxy.log().lines().count();
    let output = run(&mut command("sync", &list), 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("6 images: 1 synced, 5 skipped, 0 failed"),
        "{stdout}"
    );
    assert_eq!(asked(&proxy, seen, "HEAD", &format!("{app}manifests/")), 6);
    assert_eq!(asked(&proxy, seen, "GET", &format!("{app}tags/list")), 1);
}
