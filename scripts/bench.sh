#!/usr/bin/env bash
# Benchmark: the old serial `skopeo sync` loop against `ferry sync`, cold (empty destination) and
# no-op (everything already there), on throwaway local registries. Prints wall time, HTTP requests
# the source and the destination received and skopeo processes spawned, per phase.
#   scripts/bench.sh
# Environment: BENCH_IMAGES (20), BENCH_LAYER_KB (256), BENCH_JOBS (ferry -j, 4), FERRY_BIN (the
# ferry to measure; default this checkout's target/release/ferry, built with cargo when missing),
# BENCH_KEEP=1 keeps the scratch directory. Needs docker-registry, skopeo, curl and python3.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and awk must agree on the decimal point

images=${BENCH_IMAGES:-20}
layer_kb=${BENCH_LAYER_KB:-256}
jobs=${BENCH_JOBS:-4}
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")
oci_index=application/vnd.oci.image.index.v1+json

die() { echo "bench: $*" >&2; exit 1; }

for n in "$images" "$layer_kb" "$jobs"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGES, BENCH_LAYER_KB and BENCH_JOBS must be positive integers"
done
for tool in docker-registry skopeo curl python3; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
# Resolved before the counting wrapper goes first on PATH, so the wrapper can exec the real one.
real_skopeo=$(command -v skopeo)

ferry=${FERRY_BIN:-$root/target/release/ferry}
if [ ! -x "$ferry" ]; then
  [ -z "${FERRY_BIN:-}" ] || die "FERRY_BIN=$FERRY_BIN is not executable"
  echo "building ferry (cargo build --release) ..." >&2
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
fi
# A user's FERRY_SKOPEO would bypass the counting wrapper and FERRY_DEST_CREDS etc. would change
# what is measured: ferry sees only the flags below.
unset "${!FERRY_@}"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
pids=() # registries this script started; the only processes cleanup kills
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work" # ferry and skopeo write nothing into the checkout

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME VAR: serve $work/NAME on a free loopback port and store the port in VAR.
# Access logging on at level info: distribution 2.8 then logs one "response completed" line
# ("response completed with error" for 4xx/5xx) per request, which is what phases count.
# A port free a moment ago can be taken before the registry binds it, so retry on another one.
start_registry() {
  local name=$1 dir=$work/$1 port pid
  mkdir -p "$dir"
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    printf '%s\n' "version: 0.1" "log:" "  level: info" "  accesslog:" "    disabled: false" \
      "storage:" "  filesystem:" "    rootdirectory: $dir/storage" \
      "http:" "  addr: 127.0.0.1:$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    pids+=("$pid")
    # Ours once it logs that it listens (logged after the bind succeeded) and answers /v2/.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      if grep -q "listening on 127.0.0.1:$port" "$dir/registry.log" &&
        curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
        printf -v "$2" %s "$port"
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
spawns() { wc -l <"$work/skopeo.count"; }
# A registry logs a request just after answering it: wait until the logs stop growing.
settle() {
  local before after
  after=$(cat "$work"/*/registry.log | wc -c)
  while before=$after && sleep 0.2 && after=$(cat "$work"/*/registry.log | wc -c) &&
    [ "$before" != "$after" ]; do :; done
}

# quiet LOG CMD...: run CMD with its output in LOG; on failure show the tail and fail.
quiet() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 </dev/null || { tail -n 30 "$log" >&2; die "failed: $* (log above)"; }
}

# The old script's way: one skopeo sync per list line, one after the other.
loop_sync() {
  local name
  while read -r name; do
    quiet "$work/loop.log" skopeo --registries-conf "$conf" sync --all --scoped --preserve-digests \
      --src docker --dest docker --dest-tls-verify=false "docker.io/library/$name" "$dest_loop/loop"
  done <"$list"
}

ferry_sync() {
  CONTAINERS_REGISTRIES_CONF=$conf quiet "$work/ferry.log" \
    "$ferry" sync "$list" --dest "$dest_ferry/ferry" --dest-tls-verify=false -j "$jobs"
}

declare -A secs src dst procs
# measure PHASE DEST CMD...: run CMD; record wall seconds, new requests to the source and to
# registry DEST, skopeo processes started.
measure() {
  local phase=$1 to=$2 src0 dst0 procs0 t0 t1
  shift 2
  settle
  src0=$(requests src) dst0=$(requests "$to") procs0=$(spawns)
  echo "running: $phase" >&2
  t0=$EPOCHREALTIME
  "$@"
  t1=$EPOCHREALTIME
  settle
  secs[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  src[$phase]=$(($(requests src) - src0))
  dst[$phase]=$(($(requests "$to") - dst0))
  procs[$phase]=$(($(spawns) - procs0))
}

# digest PORT REPO TAG: the Docker-Content-Digest of the tag's index, empty when missing.
digest() {
  curl -fsSI --noproxy '*' -H "Accept: $oci_index" "http://127.0.0.1:$1/v2/$2/manifests/$3" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}

verify() {
  local name repo tag want got prefix port_var bad=0
  while read -r name; do
    repo=${name%%:*} tag=${name#*:}
    want=$(digest "$src_port" "library/$repo" "$tag")
    [ -n "$want" ] || { echo "source has no library/$name" >&2; bad=1; }
    for prefix in loop ferry; do
      port_var=${prefix}_port
      got=$(digest "${!port_var}" "$prefix/docker.io/library/$repo" "$tag")
      [ "$got" = "$want" ] || { echo "$prefix/docker.io/library/$name: ${got:-missing}, source $want" >&2; bad=1; }
    done
  done <"$list"
  [ "$bad" = 0 ] || die "DIGEST MISMATCH: destination differs from source (see above)"
}

# 1. registries. Each approach gets its own empty destination: in a shared one, skopeo mounts
# the blobs the loop already pushed (POST ...?mount=&from=loop/...) instead of fetching them
# from the source, so the second approach would never run cold.
start_registry src src_port
start_registry dst-loop loop_port
start_registry dst-ferry ferry_port
dest_loop=127.0.0.1:$loop_port dest_ferry=127.0.0.1:$ferry_port

# 2. corpus, pushed to the source as library/img-NN:1.0
echo "generating and pushing $images images ..." >&2
python3 "$scripts/bench-image.py" "$work/corpus" "$images" "$layer_kb"
for layout in "$work"/corpus/img-*; do
  quiet "$work/push.log" "$real_skopeo" --insecure-policy copy --all --preserve-digests \
    --dest-tls-verify=false "oci:$layout:latest" "docker://127.0.0.1:$src_port/library/${layout##*/}:1.0"
done

# 3. list and the docker.io -> source redirect
list=$work/images.list
for ((i = 1; i <= images; i++)); do printf 'img-%02d:1.0\n' "$i"; done >"$list"
conf=$work/registries.conf
printf '%s\n' '[[registry]]' 'prefix = "docker.io"' "location = \"127.0.0.1:$src_port\"" \
  'insecure = true' >"$conf"

# 4. phases; every skopeo start goes through the counting wrapper
mkdir "$work/bin"
: >"$work/skopeo.count"
printf '%s\n' '#!/bin/sh' "echo >>'$work/skopeo.count'" "exec '$real_skopeo' \"\$@\"" >"$work/bin/skopeo"
chmod +x "$work/bin/skopeo"
export PATH=$work/bin:$PATH
measure "loop cold" dst-loop loop_sync
measure "loop no-op" dst-loop loop_sync
measure "ferry cold" dst-ferry ferry_sync
measure "ferry no-op" dst-ferry ferry_sync

# 5. both destinations hold exactly what the source holds
verify

# 6. report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
row() { printf '| %-16s | %7s | %15s | %20s | %16s |\n' "$@"; }
echo
echo "ferry benchmark: $images images x 2 platforms (linux/amd64, linux/arm64), one uncompressed"
echo "$layer_kb KiB layer each; ferry -j $jobs; nproc $(nproc); $("$real_skopeo" --version)."
echo "Loop and ferry each sync into their own empty docker-registry 2.8 on loopback."
echo
row phase seconds "source requests" "destination requests" "skopeo processes"
echo "|------------------|--------:|----------------:|---------------------:|-----------------:|"
for phase in "loop cold" "loop no-op" "ferry cold" "ferry no-op"; do
  row "$phase" "${secs[$phase]}" "${src[$phase]}" "${dst[$phase]}" "${procs[$phase]}"
done
for kind in cold no-op; do
  f="ferry $kind" l="loop $kind"
  row "ferry/loop $kind" "$(ratio "${secs[$f]}" "${secs[$l]}")" "$(ratio "${src[$f]}" "${src[$l]}")" \
    "$(ratio "${dst[$f]}" "${dst[$l]}")" "$(ratio "${procs[$f]}" "${procs[$l]}")"
done
echo
echo "Digests verified: all $images indexes under loop/ and ferry/ equal the source's."
