#!/usr/bin/env bash
# Scale benchmark: ferry's native engine over SCALE_REPOS x SCALE_TAGS tags (default 2,000
# repositories x 5 tags = 10,000), small single-platform images (one config of their own, one
# layer every image shares). The corpus is written straight into a docker-registry 2.8
# filesystem store (blobs/sha256/XX/HEX/data, repositories/NAME/_manifests/tags/TAG/current/link,
# _manifests/tags/TAG/index/sha256/HEX/link, _manifests/revisions/sha256/HEX/link,
# _layers/sha256/HEX/link): no push (about 20 s for 10,000 tags). That store is served as the source, an
# empty docker-registry as the destination, and ferry runs, each phase measured in wall seconds,
# requests each registry logged (its access log's "response completed" lines, as
# scripts/bench.sh counts them), peak RSS (GNU time's "Maximum resident set size") and CPU
# seconds (user+system) of ferry (GNU time) and of each registry (utime+stime of its process in
# /proc/PID/stat, read before and after the phase):
#   native cold     ferry sync into the empty destination
#   native no-op    ferry sync again (everything is there)
#   native plan     ferry plan against a second, empty destination
# Each phase is printed beside two bounds, both what the registries can do on this machine:
# - HEAD bound: the phase's requests at the busier registry's rate of manifest HEADs
#   (SCALE_RATE_REQUESTS HEADs, curl --parallel, SCALE_RATE_PARALLEL at once, at each
#   registry): the time the phase would take if every request were as cheap as a manifest HEAD.
#   A cold run is mostly writes (blob uploads, mounts, manifest PUTs), dearer than HEADs, so its
#   HEAD bound is far below anything reachable.
# - CPU floor: (ferry's + the source's + the destination's CPU seconds) / the cores (nproc): the
#   wall time if the machine's cores did nothing but this phase's work. A phase at time/floor
#   near 1 is CPU-bound on this machine, the registries included: docker-registry 2.8 spends
#   about 1.5 ms of CPU per request, a write 3-4 ms on a disk-backed store (half of it in the
#   kernel, writing its files); ferry less than a tenth of the total. Well above 1, the time
#   goes to waiting (latency, too few requests in flight) or to other processes on the machine
#   (the floor counts only the phase's own). In skopeo's row, "ferry CPU s" is skopeo's.
# And the registries' push rate, at a scratch registry of its own (so the phases' counts stay
# exact): SCALE_RATE_PUSHES small images shaped as the corpus (per repository a layer mount,
# per tag a config POST+PUT and a manifest PUT), SCALE_RATE_PARALLEL repositories at once from
# a python3 client over kept-alive connections; a cold phase's push bound is its tags at that
# rate. skopeo runs on a sample only (SCALE_SKOPEO_TAGS tags, default 100, cold, one
# `skopeo copy` per tag, as the loop of scripts/bench.sh would: at its pace the whole corpus
# would take many minutes), its time also scaled to the whole corpus; SCALE_SKOPEO_TAGS=0
# leaves it out. The HEAD rates and the push rate add 10-25 s at the defaults.
#   scripts/bench-scale.sh
#   TMPDIR=/dev/shm scripts/bench-scale.sh
# The second puts the registries' stores (the work directory, made in TMPDIR) on tmpfs: no disk
# writes in the measurement, about 1 GB of memory for 10,000 tags. The stores take about 15
# files and directories per tag on each side: 100,000 tags need some 3 million inodes, more than
# a default /dev/shm offers here (as root: mount -o remount,nr_inodes=12000000 /dev/shm);
# a registry out of them answers 500 to every write. It changes the writes' cost
# most: at 1,000 tags (one run each, the machine shared) the push rate went from 83 to 226
# images/s, the cold run from 16.5 s to 8.0 s.
# Environment: SCALE_REPOS (2000), SCALE_TAGS (tags per repository, 5), SCALE_JOBS (ferry -j,
# 8), SCALE_RATE_REQUESTS (4000), SCALE_RATE_PARALLEL (8), SCALE_RATE_PUSHES (1000),
# SCALE_SKOPEO_TAGS (100), FERRY_BIN (default this checkout's target/release/ferry, built when
# missing), SCALE_KEEP=1 keeps the scratch directory (made in TMPDIR, default /tmp). Needs
# docker-registry, curl, python3, GNU time (/usr/bin/time), and skopeo for its sample.
set -euo pipefail
export LC_ALL=C

repos=${SCALE_REPOS:-2000}
tags=${SCALE_TAGS:-5}
jobs=${SCALE_JOBS:-8}
rate_requests=${SCALE_RATE_REQUESTS:-4000}
rate_parallel=${SCALE_RATE_PARALLEL:-8}
rate_pushes=${SCALE_RATE_PUSHES:-1000}
skopeo_tags=${SCALE_SKOPEO_TAGS:-100}
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")

die() { echo "bench-scale: $*" >&2; exit 1; }

for n in "$repos" "$tags" "$jobs" "$rate_requests" "$rate_parallel" "$rate_pushes"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "SCALE_REPOS, SCALE_TAGS, SCALE_JOBS, SCALE_RATE_REQUESTS, SCALE_RATE_PARALLEL and SCALE_RATE_PUSHES must be positive integers"
done
[[ $skopeo_tags =~ ^[0-9]+$ ]] || die "SCALE_SKOPEO_TAGS must be an integer (0: no skopeo sample)"
total=$((repos * tags))
cores=$(nproc)
hz=$(getconf CLK_TCK)
((skopeo_tags <= total)) || skopeo_tags=$total
for tool in docker-registry curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
((skopeo_tags == 0)) || command -v skopeo >/dev/null || die "skopeo not found (SCALE_SKOPEO_TAGS=0 leaves it out)"
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian/Ubuntu: apt-get install time)"

ferry=${FERRY_BIN:-$root/target/release/ferry}
if [ ! -x "$ferry" ]; then
  [ -z "${FERRY_BIN:-}" ] || die "FERRY_BIN=$FERRY_BIN is not executable"
  echo "building ferry (cargo build --release) ..." >&2
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
fi
unset "${!FERRY_@}"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-scale.XXXXXX")
pids=() # registries this script started; the only processes cleanup kills
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${SCALE_KEEP:-}" = 1 ]; then echo "bench-scale: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME: serve $work/NAME/storage on a free loopback port (port[NAME]), access log
# on (one "response completed" line per request).
declare -A port
registry_exe=$(readlink -f "$(command -v docker-registry)")
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
      if grep -qs "listening on 127.0.0.1:$p" "$dir/registry.log" &&
        curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$p/v2/" 2>/dev/null; then
        # $! is docker-registry itself once it answers (bash execs a backgrounded simple
        # command in the child it forked), not a wrapper subshell: its CPU in /proc/PID/stat
        # is the registry's.
        [ "$(readlink "/proc/$pid/exe")" = "$registry_exe" ] ||
          die "PID $pid ($name) is $(readlink "/proc/$pid/exe"), not $registry_exe: its CPU would not be the registry's"
        port[$name]=$p
        pid_of[$name]=$pid
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

requests() { grep -c 'response completed' "$work/$1/registry.log" || true; }
# cpu_ticks NAME: user+system clock ticks registry NAME's process has used (utime and stime,
# fields 14 and 15 of /proc/PID/stat; the fields after "(comm)" start at field 3). All of a Go
# process's threads are in them.
declare -A pid_of
cpu_ticks() {
  local stat f
  read -r stat <"/proc/${pid_of[$1]}/stat" || die "docker-registry ($1) is gone"
  stat=${stat##*) }
  read -r -a f <<<"$stat"
  echo $((f[11] + f[12]))
}
settle() {
  local before after
  after=$(cat "$work"/*/registry.log | wc -c)
  while before=$after && sleep 0.3 && after=$(cat "$work"/*/registry.log | wc -c) &&
    [ "$before" != "$after" ]; do :; done
}

# 1. The corpus, written into the source's store.
t0=$EPOCHREALTIME
python3 - "$work/src/storage" "$repos" "$tags" "$work/list.txt" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
store, repos, tags, listing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
v2 = os.path.join(store, "docker/registry/v2")

def put_blob(data):
    hexd = hashlib.sha256(data).hexdigest()
    d = os.path.join(v2, "blobs/sha256", hexd[:2], hexd)
    if not os.path.exists(d):
        os.makedirs(d)
        with open(os.path.join(d, "data"), "wb") as f:
            f.write(data)
    return hexd

def link(path, hexd):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "link"), "w") as f:
        f.write("sha256:" + hexd)

# One small layer every image shares, as images built on one base do.
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    payload = b"ferry scale corpus\n" * 64
    info = tarfile.TarInfo("etc/corpus")
    info.size, info.mtime = len(payload), 0
    tar.addfile(info, io.BytesIO(payload))
tar_bytes = raw.getvalue()
layer = gzip.compress(tar_bytes, mtime=0)
layer_hex = put_blob(layer)
diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
with open(listing, "w") as out:
    for r in range(repos):
        name = "library/s%05d" % r
        repo = os.path.join(v2, "repositories", name)
        link(os.path.join(repo, "_layers/sha256", layer_hex), layer_hex)
        for t in range(tags):
            tag = "t%d" % t
            config = json.dumps({
                "architecture": "amd64", "os": "linux",
                "config": {"Labels": {"corpus": "%s:%s" % (name, tag)}},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }, separators=(",", ":")).encode()
            config_hex = put_blob(config)
            link(os.path.join(repo, "_layers/sha256", config_hex), config_hex)
            manifest = json.dumps({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:" + config_hex, "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": "sha256:" + layer_hex, "size": len(layer)}],
            }, separators=(",", ":")).encode()
            manifest_hex = put_blob(manifest)
            link(os.path.join(repo, "_manifests/revisions/sha256", manifest_hex), manifest_hex)
            tagdir = os.path.join(repo, "_manifests/tags", tag)
            link(os.path.join(tagdir, "current"), manifest_hex)
            link(os.path.join(tagdir, "index/sha256", manifest_hex), manifest_hex)
            out.write("s%05d:%s\n" % (r, tag))
EOF
t1=$EPOCHREALTIME
corpus_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
echo "corpus: $total tags ($repos repositories x $tags tags) written in ${corpus_secs}s" >&2

start_registry src
start_registry dst
start_registry plan
conf=$work/registries.conf
printf '%s\n' '[[registry]]' 'prefix = "docker.io"' "location = \"127.0.0.1:${port[src]}\"" \
  'insecure = true' >"$conf"
first=$(head -n 1 list.txt)
curl -fsS --noproxy '*' -o /dev/null -I -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:${port[src]}/v2/library/${first%%:*}/manifests/${first#*:}" ||
  die "the source does not serve the corpus it was written (its store layout is not docker-registry's)"

declare -A secs src dst peak cpu_ferry cpu_src cpu_dst
# measure PHASE DEST_REGISTRY CMD...: wall seconds, new requests at the source and at
# DEST_REGISTRY, peak RSS of CMD's processes in MiB, CPU seconds (user+system) of CMD (GNU
# time: it and the children it waited for), of the source and of DEST_REGISTRY.
measure() {
  local phase=$1 to=$2 s0 d0 sc0 dc0 t0 t1 status=0
  shift 2
  settle
  s0=$(requests src) d0=$(requests "$to")
  sc0=$(cpu_ticks src) dc0=$(cpu_ticks "$to")
  echo "running: $phase" >&2
  t0=$EPOCHREALTIME
  /usr/bin/time -v -o "$work/rss-${phase// /-}.txt" "$@" >"$work/${phase// /-}.log" 2>&1 </dev/null || status=$?
  t1=$EPOCHREALTIME
  if [ "$status" != 0 ]; then
    tail -n 30 "$work/${phase// /-}.log" >&2
    die "$phase exited with $status (log above)"
  fi
  settle
  cpu_src[$phase]=$(awk -v a="$sc0" -v b="$(cpu_ticks src)" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
  cpu_dst[$phase]=$(awk -v a="$dc0" -v b="$(cpu_ticks "$to")" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
  cpu_ferry[$phase]=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$work/rss-${phase// /-}.txt")
  secs[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  src[$phase]=$(($(requests src) - s0))
  dst[$phase]=$(($(requests "$to") - d0))
  peak[$phase]=$(awk -F': ' '/Maximum resident set size/ { if ($2 > m) m = $2 } END { printf "%.1f", m / 1024 }' "$work/rss-${phase// /-}.txt")
}

ferry_run=(env CONTAINERS_REGISTRIES_CONF="$conf" "$ferry")
sync_args=(list.txt --dest-tls-verify=false --engine native -j "$jobs" --progress none
  --dest "127.0.0.1:${port[dst]}/mirror")
measure "native cold" dst "${ferry_run[@]}" sync "${sync_args[@]}" --report "$work/cold.json"
measure "native no-op" dst "${ferry_run[@]}" sync "${sync_args[@]}" --report "$work/noop.json"
measure "native plan" plan "${ferry_run[@]}" plan list.txt --dest-tls-verify=false \
  --dest "127.0.0.1:${port[plan]}/mirror"

# Every tag landed, at the source's digest (a sample of 20, spread over the corpus).
python3 - "$work/cold.json" "$work/noop.json" "$total" <<'EOF' || die "ferry's reports do not show every tag synced, then skipped"
import json, sys
cold, noop, total = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
def count(report, status):
    return sum(1 for image in report["images"] if image["status"] == status)
ok = len(cold["images"]) == total and count(cold, "synced") == total and count(noop, "skipped") == total
print("reports: cold %d synced, no-op %d skipped, of %d" % (count(cold, "synced"), count(noop, "skipped"), total), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
step=$(((total + 19) / 20))
awk -v s="$step" '(NR - 1) % s == 0' list.txt | while read -r line; do
  repo=${line%%:*} tag=${line#*:}
  want=$(curl -fsSI --noproxy '*' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:${port[src]}/v2/library/$repo/manifests/$tag" | tr -d '\r' |
    awk 'tolower($1) == "docker-content-digest:" { print $2 }')
  got=$(curl -fsSI --noproxy '*' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:${port[dst]}/v2/mirror/docker.io/library/$repo/manifests/$tag" | tr -d '\r' |
    awk 'tolower($1) == "docker-content-digest:" { print $2 }')
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    die "DIGEST MISMATCH: $line: destination ${got:-missing}, source $want"
  fi
done

# skopeo on a sample: one skopeo copy per tag, one after another (as the old script's loop).
if ((skopeo_tags > 0)); then
  head -n "$skopeo_tags" list.txt >sample.txt
  cat >skopeo-loop.sh <<EOF
while read -r line; do
  skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \\
    "docker://127.0.0.1:${port[src]}/library/\$line" \\
    "docker://127.0.0.1:${port[plan]}/skopeo/library/\$line" || exit 1
done <sample.txt
EOF
  measure "skopeo sample cold" plan bash skopeo-loop.sh
fi

# 2. The registries' own rate: manifest HEADs, SCALE_RATE_PARALLEL at once, over kept-alive
# connections (curl --parallel), against the source (the corpus) and the destination (its copy).
rate_of() {
  local name=$1 prefix=$2 cfg=$work/rate-$1.cfg t0 t1
  awk -v n="$rate_requests" -v p="${port[$name]}" -v pre="$prefix" '
    { lines[NR] = $0 }
    END { for (i = 0; i < n; i++) { l = lines[i % NR + 1]; split(l, a, ":")
      printf "url = \"http://127.0.0.1:%s/v2/%slibrary/%s/manifests/%s\"\noutput = \"/dev/null\"\n", p, pre, a[1], a[2] } }' \
    list.txt >"$cfg"
  settle
  t0=$EPOCHREALTIME
  curl -sS --no-progress-meter --noproxy '*' --parallel --parallel-max "$rate_parallel" -I \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' -K "$cfg" >/dev/null
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" -v n="$rate_requests" 'BEGIN { printf "%.0f", n / (b - a) }'
}
declare -A rate
rate[src]=$(rate_of src "")
rate[dst]=$(rate_of dst "mirror/docker.io/")

# The registries' push rate, at a scratch registry of its own (the phases' counts stay exact):
# SCALE_RATE_PUSHES small images (rounded up to whole repositories of SCALE_TAGS tags), shaped
# as the corpus, SCALE_RATE_PARALLEL repositories at once (one thread each, a kept-alive
# connection per thread). Per repository the shared layer is mounted from a base repository
# (POST ?mount=), then per tag a config of its own goes up (POST, then a monolithic PUT) and the
# manifest is PUT: what a cold copy writes. Prints images per second, the registry's CPU
# seconds and the client's own (python3 shares the cores with the registry).
start_registry push
push_c0=$(cpu_ticks push)
push_out=$(python3 - "${port[push]}" "$rate_pushes" "$tags" "$rate_parallel" <<'EOF2'
import hashlib, http.client, json, os, sys, threading, time, urllib.parse
port, pushes, tags, parallel = (int(a) for a in sys.argv[1:])
repos = (pushes + tags - 1) // tags
OCI = "application/vnd.oci.image.manifest.v1+json"

def request(conn, method, path, body=b"", headers={}, want=201):
    conn.request(method, path, body=body, headers=dict(headers, **{"Content-Length": str(len(body))}))
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != want:
        sys.exit("push rate: %s %s: %d %s" % (method, path, resp.status, data[:200]))
    return resp

def upload(conn, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = request(conn, "POST", "/v2/%s/blobs/uploads/" % repo, want=202).getheader("Location")
    u = urllib.parse.urlsplit(loc)
    path = u.path + "?" + (u.query + "&" if u.query else "") + "digest=" + urllib.parse.quote(digest)
    request(conn, "PUT", path, data, {"Content-Type": "application/octet-stream"})
    return digest

conn = http.client.HTTPConnection("127.0.0.1", port)
layer = b"ferry push rate layer\n" * 64
layer_digest = upload(conn, "rate/base", layer)
conn.close()

lock = threading.Lock()
todo = iter(range(repos))

def work():
    conn = http.client.HTTPConnection("127.0.0.1", port)
    while True:
        with lock:
            r = next(todo, None)
        if r is None:
            return
        repo = "rate/p%05d" % r
        request(conn, "POST", "/v2/%s/blobs/uploads/?mount=%s&from=rate/base" % (repo, layer_digest))
        for t in range(tags):
            config = json.dumps({"architecture": "amd64", "os": "linux",
                                 "config": {"Labels": {"rate": "%s:t%d" % (repo, t)}},
                                 "rootfs": {"type": "layers", "diff_ids": []}}).encode()
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": OCI,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": upload(conn, repo, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest, "size": len(layer)}]}).encode()
            request(conn, "PUT", "/v2/%s/manifests/t%d" % (repo, t), manifest, {"Content-Type": OCI})

c0, t0 = os.times(), time.monotonic()
threads = [threading.Thread(target=work) for _ in range(parallel)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t1, c1 = time.monotonic(), os.times()
print(repos * tags, "%.2f" % (t1 - t0), "%.2f" % (c1.user + c1.system - c0.user - c0.system))
EOF2
) || die "the push rate's pushes failed"
settle
read -r push_images push_secs push_client_cpu <<<"$push_out"
push_cpu=$(awk -v a="$push_c0" -v b="$(cpu_ticks push)" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
push_rate=$(awk -v n="$push_images" -v s="$push_secs" 'BEGIN { printf "%.0f", n / s }')

# 3. The tables.
echo
echo "corpus: $total tags ($repos repositories x $tags tags, one shared layer), written in ${corpus_secs}s; ferry -j $jobs; $cores cores"
echo "registries' rate (manifest HEADs, $rate_parallel at once): source ${rate[src]}/s, destination ${rate[dst]}/s"
echo "registries' push rate: $push_rate images/s (POST+PUT config blob, PUT manifest; a layer mount per repository; $rate_parallel repositories at once): $push_images images in ${push_secs}s, registry CPU $push_cpu s ($(awk -v c="$push_cpu" -v n="$push_images" 'BEGIN { printf "%.1f", c * 1000 / n }') ms per image), client CPU $push_client_cpu s"
echo "HEAD bound: the busier registry's requests at its HEAD rate (the phase if every request were as cheap as a manifest HEAD)"
echo "CPU floor: (ferry + source + destination CPU s) / $cores cores (the phase if the cores did nothing but its work); time/floor near 1: CPU-bound here"
echo
row='| %-20s | %7s | %15s | %20s | %12s | %14s | %15s | %11s | %12s | %17s | %13s | %10s |\n'
# shellcheck disable=SC2059 # the format is the one above
printf "$row" phase seconds "source requests" "destination requests" "peak RSS MiB" "HEAD bound (s)" \
  "time/HEAD bound" "ferry CPU s" "source CPU s" "destination CPU s" "CPU floor (s)" "time/floor"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------" "--------:" \
  "----------------:" "---------------------:" "-------------:" "---------------:" \
  "----------------:" "------------:" "-------------:" "------------------:" "--------------:" \
  "-----------:"
for phase in "native cold" "native no-op" "native plan" "skopeo sample cold"; do
  [ -n "${secs[$phase]:-}" ] || continue
  # The HEAD bound: the busier registry's requests at its measured HEAD rate.
  bound=$(awk -v s="${src[$phase]}" -v d="${dst[$phase]}" -v rs="${rate[src]}" -v rd="${rate[dst]}" \
    'BEGIN { a = s / rs; b = d / rd; printf "%.2f", (a > b ? a : b) }')
  ratio=$(awk -v t="${secs[$phase]}" -v b="$bound" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", t / b }')
  # The CPU floor: every process of the phase's CPU seconds spread over all the cores.
  floor=$(awk -v f="${cpu_ferry[$phase]}" -v s="${cpu_src[$phase]}" -v d="${cpu_dst[$phase]}" -v n="$cores" \
    'BEGIN { printf "%.2f", (f + s + d) / n }')
  floor_ratio=$(awk -v t="${secs[$phase]}" -v b="$floor" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", t / b }')
  # shellcheck disable=SC2059 # the format is the one above
  printf "$row" "$phase" "${secs[$phase]}" "${src[$phase]}" "${dst[$phase]}" "${peak[$phase]}" \
    "$bound" "$ratio" "${cpu_ferry[$phase]}" "${cpu_src[$phase]}" "${cpu_dst[$phase]}" "$floor" \
    "$floor_ratio"
done
echo
# The push bound: a cold phase's tags at the push rate (the destination's writes alone).
for phase in "native cold" "skopeo sample cold"; do
  [ -n "${secs[$phase]:-}" ] || continue
  n=$total
  [ "$phase" = "native cold" ] || n=$skopeo_tags
  echo "push bound, $phase: $n tags at $push_rate images/s = $(awk -v n="$n" -v r="$push_rate" 'BEGIN { printf "%.2f", n / r }') s; it took ${secs[$phase]} s ($(awk -v t="${secs[$phase]}" -v n="$n" -v r="$push_rate" 'BEGIN { printf "%.2fx", t / (n / r) }'))"
done
if [ -n "${secs[skopeo sample cold]:-}" ]; then
  echo
  echo "skopeo: a sample of $skopeo_tags tags only (one skopeo copy per tag, in turn); at that pace $total tags would take $(awk -v s="${secs[skopeo sample cold]}" -v n="$skopeo_tags" -v t="$total" 'BEGIN { printf "%.0f", s / n * t }') s"
fi
