#!/usr/bin/env bash
# What `--signatures` costs against a plain run: the corpus of scripts/bench.sh (BENCH_IMAGES
# multi-arch images, 2 platforms each), every image signed as cosign signs one (a
# `sha256-<hex>.sig` and an `.att` tag) and given an SBOM referrer (an OCI 1.1 artifact whose
# subject is the image). The source is a docker-registry behind scripts/hostile-registry.py with
# the referrers API (`--attack '*=referrers-api'`: docker-registry 2.8 has none); each
# destination is a plain docker-registry, without it, so ferry keeps the referrers tag schema's
# index there. For each tool (BENCH_TOOLS, default "native skopeo"), four phases into fresh
# destinations: plain cold, plain no-op, --signatures cold, --signatures no-op. Prints wall
# time, the requests the source (its front's log, ferry's scheme probes left out) and the
# destination (its access log) received, and the artifacts each run reports; checks that every
# artifact arrived with its digest (the referrers with native only: skopeo cannot copy them).
#   scripts/bench-signatures.sh
# Environment: BENCH_IMAGES (20), BENCH_LAYER_KB (256), BENCH_BASE_KB (1024), BENCH_JOBS (4),
# BENCH_TOOLS (of native, skopeo, crane), FERRY_CRANE (default: crane on PATH, else
# ../shared/crane/bin/crane), FERRY_BIN (default: this checkout's target/release/ferry, built when missing),
# BENCH_KEEP=1 keeps the scratch directory. Needs docker-registry, skopeo, curl and python3.
set -euo pipefail
export LC_ALL=C

images=${BENCH_IMAGES:-20}
layer_kb=${BENCH_LAYER_KB:-256}
base_kb=${BENCH_BASE_KB:-1024}
jobs=${BENCH_JOBS:-4}
read -ra tools <<<"${BENCH_TOOLS:-native skopeo}"
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")
die() { echo "bench-signatures: $*" >&2; exit 1; }
for tool in docker-registry skopeo curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
for tool in "${tools[@]}"; do
  [[ $tool == native || $tool == skopeo || $tool == crane ]] || die "BENCH_TOOLS: $tool is none of native skopeo crane"
done
crane=${FERRY_CRANE:-$(command -v crane || true)}
[ -n "$crane" ] || [ ! -x "$root/../shared/crane/bin/crane" ] || crane=$root/../shared/crane/bin/crane
[[ " ${tools[*]} " != *" crane "* ]] || [ -n "$crane" ] || die "BENCH_TOOLS names crane, but none was found (FERRY_CRANE)"
ferry=${FERRY_BIN:-$root/target/release/ferry}
if [ ! -x "$ferry" ]; then
  [ -z "${FERRY_BIN:-}" ] || die "FERRY_BIN=$FERRY_BIN is not executable"
  echo "building ferry (cargo build --release) ..." >&2
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
fi
unset "${!FERRY_@}"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-signatures.XXXXXX")
pids=() # the processes this script started; the only ones cleanup kills
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "bench-signatures: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME: a docker-registry on a free port (port[NAME]) logging every request.
declare -A port
start_registry() {
  local name=$1 dir=$work/$1 p pid
  mkdir -p "$dir"
  for _ in 1 2 3 4 5; do
    p=$(free_port)
    printf '%s\n' "version: 0.1" "log:" "  level: info" "  accesslog:" "    disabled: false" \
      "storage:" "  filesystem:" "    rootdirectory: $dir/storage" \
      "http:" "  addr: 127.0.0.1:$p" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      if grep -q "listening on 127.0.0.1:$p" "$dir/registry.log" &&
        curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$p/v2/" 2>/dev/null; then
        port[$name]=$p
        return
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset 'pids[-1]'
  done
  cat "$dir/registry.log" >&2
  die "docker-registry ($name) did not start"
}
dest_requests() { grep -c 'response completed' "$work/$1/registry.log" || true; }
source_requests() { grep -vc '^- - ' "$work/front.log" || true; }
settle() {
  local before after
  after=$(cat "$work"/*/registry.log "$work/front.log" | wc -c)
  while before=$after && sleep 0.2 && after=$(cat "$work"/*/registry.log "$work/front.log" | wc -c) &&
    [ "$before" != "$after" ]; do :; done
}

# 1. the source and its front with the referrers API
start_registry src
python3 "$scripts/hostile-registry.py" --listen 127.0.0.1:0 --upstream "127.0.0.1:${port[src]}" \
  --attack '*=referrers-api' --port-file "$work/front.port" --log "$work/front.log" \
  >"$work/front.out" 2>&1 </dev/null &
pids+=("$!")
for _ in $(seq 100); do [ -s "$work/front.port" ] && break; sleep 0.1; done
[ -s "$work/front.port" ] || { cat "$work/front.out" >&2; die "hostile-registry.py did not start"; }
front=127.0.0.1:$(<"$work/front.port")

# 2. the corpus, and what belongs to each image (pushed through the front, which remembers the
# referrers)
echo "generating and pushing $images signed images ..." >&2
python3 "$scripts/bench-image.py" "$work/corpus" "$images" "$layer_kb" "$base_kb"
list=$work/images.list
for layout in "$work"/corpus/img-*; do
  name=img-${layout##*-}
  skopeo --insecure-policy copy --all --preserve-digests --quiet --dest-tls-verify=false \
    "oci:$layout:latest" "docker://127.0.0.1:${port[src]}/library/$name:1.0" >/dev/null </dev/null
  echo "$name:1.0" >>"$list"
done
python3 - "$front" "$list" >"$work/artifacts.txt" <<'EOF'
import base64, hashlib, json, sys, urllib.request
front, names = sys.argv[1], [line.strip() for line in open(sys.argv[2]) if line.strip()]
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"

def call(method, path, body=None, headers=None):
    url = path if path.startswith("http") else f"http://{front}{path}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(request) as answer:
        return answer.headers, answer.read()

def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def blob(repo, data):
    headers, _ = call("POST", f"/v2/{repo}/blobs/uploads/", b"")
    location = headers["Location"]
    sep = "&" if "?" in location else "?"
    call("PUT", f"{location}{sep}digest={digest(data)}", data,
         {"Content-Type": "application/octet-stream"})
    return digest(data)

def manifest(repo, config, layers, extra, reference=None):
    def descriptor(media_type, data, annotations=None):
        d = {"mediaType": media_type, "size": len(data), "digest": blob(repo, data)}
        if annotations:
            d["annotations"] = annotations
        return d
    body = {"schemaVersion": 2, "mediaType": MANIFEST, "config": descriptor(*config),
            "layers": [descriptor(*layer) for layer in layers], **extra}
    data = json.dumps(body, separators=(",", ":")).encode()
    call("PUT", f"/v2/{repo}/manifests/{reference or digest(data)}", data,
         {"Content-Type": MANIFEST})
    return digest(data)

for name in names:
    tag = name.split(":")[1]
    repo = "library/" + name.split(":")[0]
    _, index = call("GET", f"/v2/{repo}/manifests/{tag}", headers={"Accept": INDEX})
    subject = digest(index)
    tag_of = subject.replace(":", "-")
    payload = json.dumps({"critical": {"identity": {"docker-reference": repo},
                                       "image": {"docker-manifest-digest": subject},
                                       "type": "cosign container image signature"}}).encode()
    config = ("application/vnd.oci.image.config.v1+json", b'{"architecture":"","os":"","config":{}}')
    sig = manifest(repo, config, [("application/vnd.dev.cosign.simplesigning.v1+json", payload,
                   {"dev.cosignproject.cosign/signature": base64.b64encode(subject.encode()).decode()})],
                   {}, tag_of + ".sig")
    envelope = json.dumps({"payloadType": "application/vnd.in-toto+json",
                           "payload": base64.b64encode(payload).decode(), "signatures": []}).encode()
    att = manifest(repo, config, [("application/vnd.dsse.envelope.v1+json", envelope,
                   {"predicateType": "https://slsa.dev/provenance/v0.2"})], {}, tag_of + ".att")
    sbom = manifest(repo, ("application/vnd.oci.empty.v1+json", b"{}"),
                    [("application/spdx+json", json.dumps({"name": name}).encode())],
                    {"artifactType": "application/spdx+json",
                     "subject": {"mediaType": INDEX, "digest": subject, "size": len(index)}})
    print(name, subject, sig, att, sbom)
EOF
conf=$work/registries.conf
printf '%s\n' '[[registry]]' 'prefix = "docker.io"' "location = \"$front\"" 'insecure = true' >"$conf"

# 3. the phases
declare -A secs src dst artifacts
measure() { # measure PHASE DEST FLAG...: one sync into registry DEST
  local phase=$1 dest=$2 src0 dst0 t0 t1 report=$work/${1// /-}.json status=0
  shift 2
  settle
  src0=$(source_requests) dst0=$(dest_requests "$dest")
  echo "running: $phase" >&2
  t0=$EPOCHREALTIME
  CONTAINERS_REGISTRIES_CONF=$conf "$ferry" sync "$list" --dest "127.0.0.1:${port[$dest]}/m" \
    --dest-tls-verify=false -j "$jobs" --report "$report" "$@" >"$work/${phase// /-}.log" 2>&1 \
    </dev/null || status=$?
  t1=$EPOCHREALTIME
  [ "$status" = 0 ] || { tail -n 20 "$work/${phase// /-}.log" >&2; die "$phase: ferry exited with $status"; }
  settle
  secs[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  src[$phase]=$(($(source_requests) - src0))
  dst[$phase]=$(($(dest_requests "$dest") - dst0))
  artifacts[$phase]=$(python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))["summary"].get("artifacts")
print("-" if a is None else "%d copied, %d current, %d needs-native" % (a["copied"], a["current"], a["needs_native"]))' "$report")
}
head_digest() {
  curl -fsSI --noproxy '*' -H "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json" \
    "http://127.0.0.1:$1/v2/$2/manifests/$3" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}
for tool in "${tools[@]}"; do
  start_registry "dst-$tool-plain"
  start_registry "dst-$tool-signatures"
  engine=(--engine "$tool")
  [ "$tool" != crane ] || engine+=(--crane "$crane")
  for kind in cold no-op; do
    measure "$tool plain $kind" "dst-$tool-plain" "${engine[@]}"
  done
  for kind in cold no-op; do
    measure "$tool signatures $kind" "dst-$tool-signatures" "${engine[@]}" --signatures
  done
  # Every artifact arrived with its digest (the referrers by digest with native only).
  while read -r name subject sig att sbom; do
    repo=m/docker.io/library/${name%%:*} p=${port[dst-$tool-signatures]} tag=${subject/:/-}
    [ "$(head_digest "$p" "$repo" "$tag.sig")" = "$sig" ] || die "$tool: $repo:$tag.sig is not $sig"
    [ "$(head_digest "$p" "$repo" "$tag.att")" = "$att" ] || die "$tool: $repo:$tag.att is not $att"
    [ "$tool" != native ] || [ "$(head_digest "$p" "$repo" "$sbom")" = "$sbom" ] ||
      die "$tool: $repo@$sbom is missing"
  done <"$work/artifacts.txt"
done

# 4. report
row() { printf '| %-26s | %7s | %15s | %20s | %-38s |\n' "$@"; }
echo
echo "--signatures against a plain run: $images images x 2 platforms, each with a cosign .sig and .att"
echo "and an SBOM referrer; source with the referrers API (hostile-registry.py), destinations plain"
echo "docker-registry 2.8 (the referrers tag schema's index kept there); ferry -j $jobs; nproc $(nproc)."
echo
row phase seconds "source requests" "destination requests" "artifacts"
echo "|----------------------------|--------:|----------------:|---------------------:|:---------------------------------------|"
for tool in "${tools[@]}"; do
  for mode in plain signatures; do
    for kind in cold no-op; do
      p="$tool $mode $kind"
      row "ferry $p" "${secs[$p]}" "${src[$p]}" "${dst[$p]}" "${artifacts[$p]}"
    done
  done
done
echo
echo "Requests per image (the counts above / $images):"
echo
row2() { printf '| %-26s | %11s | %16s | %12s | %17s |\n' "$@"; }
row2 run "source cold" "destination cold" "source no-op" "destination no-op"
echo "|----------------------------|------------:|-----------------:|-------------:|------------------:|"
per() { awk -v a="$1" -v b="$images" 'BEGIN { printf "%.1f", a / b }'; }
for tool in "${tools[@]}"; do
  for mode in plain signatures; do
    row2 "ferry $tool $mode" "$(per "${src[$tool $mode cold]}")" "$(per "${dst[$tool $mode cold]}")" \
      "$(per "${src[$tool $mode no-op]}")" "$(per "${dst[$tool $mode no-op]}")"
  done
done
echo
echo "Artifacts verified: every .sig and .att (and with native every SBOM referrer) at its digest."
