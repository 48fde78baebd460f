#!/usr/bin/env bash
# Benchmark: the old serial `skopeo sync` loop against `ferry sync` (with skopeo, and with crane
# when one is found), cold (empty destination) and no-op (everything already there), on
# throwaway local registries. Prints wall time, HTTP requests
# the source and the destination received and skopeo processes spawned, per phase.
# Then the same four phases against a rate-limited source, as Docker Hub is: the source behind
# scripts/rate-limit-proxy.py (a token bucket like nginx limit_req without burst, answering 429 with
# Retry-After), the first BENCH_LIMITED_IMAGES images, two new empty (unlimited) destinations.
# Prints a second table: wall time, 429s the limiter answered, requests that reached the source,
# skopeo processes and failed images per phase (a failure there is counted, not fatal), and the
# ideal no-op time (images / rate). Every mirrored digest is checked against the source.
#   scripts/bench.sh
# Environment: BENCH_IMAGES (20), BENCH_LAYER_KB (256), BENCH_JOBS (ferry -j, 4),
# BENCH_LIMITED_IMAGES (images of the rate-limited phases, 8 or all if fewer; 0 skips them),
# BENCH_RATE (the limiter's requests per second, 2), FERRY_BIN (the ferry to measure; default
# this checkout's target/release/ferry, built with cargo when missing), FERRY_CRANE (the crane
# for ferry's crane phases; default crane on PATH, else ../shared/crane/bin/crane; without one
# they are left out), BENCH_KEEP=1 keeps the scratch directory. Needs docker-registry, skopeo,
# curl and python3.
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and awk must agree on the decimal point

images=${BENCH_IMAGES:-20}
layer_kb=${BENCH_LAYER_KB:-256}
jobs=${BENCH_JOBS:-4}
limited=${BENCH_LIMITED_IMAGES:-8}
rate=${BENCH_RATE:-2}
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")
oci_index=application/vnd.oci.image.index.v1+json

die() { echo "bench: $*" >&2; exit 1; }

for n in "$images" "$layer_kb" "$jobs"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGES, BENCH_LAYER_KB and BENCH_JOBS must be positive integers"
done
[ -n "${BENCH_LIMITED_IMAGES:-}" ] || ((limited <= images)) || limited=$images # the default: 8 at most
if ! [[ $limited =~ ^[0-9]+$ ]] || ((10#$limited > images)); then
  die "BENCH_LIMITED_IMAGES must be an integer from 0 to BENCH_IMAGES ($images)"
fi
limited=$((10#$limited))
if ! [[ $rate =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || ! awk -v r="$rate" 'BEGIN { exit !(r > 0) }'; then
  die "BENCH_RATE must be a positive number of requests per second"
fi
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
crane=${FERRY_CRANE:-$(command -v crane || true)}
[ -n "$crane" ] || [ ! -x "$root/../shared/crane/bin/crane" ] || crane=$root/../shared/crane/bin/crane
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

# Ports of the registries, set by start_registry (through printf -v, which shellcheck cannot see).
src_port='' loop_port='' ferry_port='' crane_port='' loop_limited_port='' ferry_limited_port=''
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
spawns() { cat "$work/skopeo.count" "$work/crane.count" | wc -l; }
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

# Failed images of the running phase. With strict=1 (the first four phases) a failure ends the
# benchmark; behind the limiter (strict=0) failures are counted, shown and kept in failures.log.
strict=1 failed=0
# failure LOG IMAGE REASON: one image failed in the running phase (measure's $phase).
failure() {
  if [ "$strict" = 1 ]; then tail -n 30 "$1" >&2; die "$phase: $2 failed (log above)"; fi
  failed=$((failed + 1))
  echo "bench: $phase: $2 failed: $3" >&2
  { echo "== $phase: $2"; cat "$1"; } >>"$work/failures.log"
}

# loop_sync CONF LIST DEST: the old script's way, one skopeo sync per list line, one after the other.
loop_sync() {
  local conf=$1 list=$2 dest=$3 name
  while read -r name; do
    skopeo --registries-conf "$conf" sync --all --scoped --preserve-digests --src docker \
      --dest docker --dest-tls-verify=false "docker.io/library/$name" "$dest/loop" \
      >"$work/loop.log" 2>&1 </dev/null ||
      failure "$work/loop.log" "$name" "$(tail -n 1 "$work/loop.log")"
  done <"$list"
}

# ferry_sync CONF LIST DEST [FLAG...]: exit 1 means some images failed (named in the report).
# Output and report per phase (measure's $phase): ferry-PHASE.log, ferry-PHASE.json. The images go
# under DEST/ferry (DEST/crane with --engine crane).
ferry_sync() {
  local conf=$1 list=$2 dest=$3 out=$work/ferry-${phase// /-} status=0 line under=ferry
  shift 3
  [[ " $* " != *" --engine crane "* ]] || under=crane
  CONTAINERS_REGISTRIES_CONF=$conf "$ferry" sync "$list" --dest "$dest/$under" --dest-tls-verify=false \
    -j "$jobs" --report "$out.json" "$@" >"$out.log" 2>&1 </dev/null || status=$?
  [ "$status" = 0 ] && return
  [ "$status" = 1 ] || { tail -n 30 "$out.log" >&2; die "$phase: ferry exited with $status (log above)"; }
  python3 -c 'import json, sys
for image in json.load(open(sys.argv[1]))["images"]:
    if image["status"] == "failed":
        error = image.get("error") or {}
        print(image["source"], "%s: %s" % (error.get("kind"), error.get("message")))' "$out.json" \
    >"$out.failed" || die "$phase: cannot read ferry's report $out.json"
  while read -r line; do
    failure "$out.log" "${line%% *}" "${line#* }"
  done <"$out.failed"
}

# 429 answers the limiter logged so far (none before it starts).
too_many() {
  if [ -f "$work/proxy/requests.log" ]; then
    grep -c ' 429$' "$work/proxy/requests.log" || true
  else
    echo 0
  fi
}

declare -A secs src dst procs throttled fails
pause=0 # seconds to wait before each phase: behind the limiter, time for the bucket to refill
# measure PHASE DEST CMD...: run CMD; record wall seconds, new requests to the source and to
# registry DEST, skopeo processes started, 429s from the limiter and failed images.
measure() {
  local phase=$1 to=$2 src0 dst0 procs0 throttled0 t0 t1
  shift 2
  settle
  sleep "$pause"
  src0=$(requests src) dst0=$(requests "$to") procs0=$(spawns) throttled0=$(too_many) failed=0
  echo "running: $phase" >&2
  t0=$EPOCHREALTIME
  "$@"
  t1=$EPOCHREALTIME
  settle
  secs[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  src[$phase]=$(($(requests src) - src0))
  dst[$phase]=$(($(requests "$to") - dst0))
  procs[$phase]=$(($(spawns) - procs0))
  throttled[$phase]=$(($(too_many) - throttled0))
  fails[$phase]=$failed
}

# digest PORT REPO TAG: the Docker-Content-Digest of the tag's index, empty when missing.
digest() {
  curl -fsSI --noproxy '*' -H "Accept: $oci_index" "http://127.0.0.1:$1/v2/$2/manifests/$3" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}

declare -A missing mismatched
# verify LIST PREFIX=PORT...: compare every image of LIST under PREFIX/docker.io/library/ on each
# registry PORT with the source; name each problem and count them per PREFIX in missing and
# mismatched.
verify() {
  local list=$1 name repo tag want got dest prefix port
  shift
  missing=() mismatched=()
  for dest in "$@"; do missing[${dest%%=*}]=0 mismatched[${dest%%=*}]=0; done
  while read -r name; do
    repo=${name%%:*} tag=${name#*:}
    want=$(digest "$src_port" "library/$repo" "$tag")
    [ -n "$want" ] || die "source has no library/$name"
    for dest in "$@"; do
      prefix=${dest%%=*} port=${dest#*=}
      got=$(digest "$port" "$prefix/docker.io/library/$repo" "$tag")
      [ "$got" = "$want" ] && continue
      echo "127.0.0.1:$port/$prefix/docker.io/library/$name: ${got:-missing}, source $want" >&2
      if [ -z "$got" ]; then
        missing[$prefix]=$((missing[$prefix] + 1))
      else
        mismatched[$prefix]=$((mismatched[$prefix] + 1))
      fi
    done
  done <"$list"
}

# 1. registries. Each approach gets its own empty destination: in a shared one, skopeo mounts
# the blobs the loop already pushed (POST ...?mount=&from=loop/...) instead of fetching them
# from the source, so the second approach would never run cold.
start_registry src src_port
start_registry dst-loop loop_port
start_registry dst-ferry ferry_port
dest_loop=127.0.0.1:$loop_port dest_ferry=127.0.0.1:$ferry_port
[ -z "$crane" ] || start_registry dst-crane crane_port

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
: >"$work/crane.count"
printf '%s\n' '#!/bin/sh' "echo >>'$work/skopeo.count'" "exec '$real_skopeo' \"\$@\"" >"$work/bin/skopeo"
chmod +x "$work/bin/skopeo"
export PATH=$work/bin:$PATH
measure "loop cold" dst-loop loop_sync "$conf" "$list" "$dest_loop"
measure "loop no-op" dst-loop loop_sync "$conf" "$list" "$dest_loop"
measure "ferry cold" dst-ferry ferry_sync "$conf" "$list" "$dest_ferry"
measure "ferry no-op" dst-ferry ferry_sync "$conf" "$list" "$dest_ferry"
phases=("loop cold" "loop no-op" "ferry cold" "ferry no-op")
verified=(loop="$loop_port" ferry="$ferry_port")
if [ -n "$crane" ]; then
  # Counted like skopeo: every crane start goes through a wrapper.
  printf '%s\n' '#!/bin/sh' "echo >>'$work/crane.count'" "exec '$crane' \"\$@\"" >"$work/bin/crane-counted"
  chmod +x "$work/bin/crane-counted"
  crane_flags=(--engine crane --crane "$work/bin/crane-counted")
  measure "crane cold" dst-crane ferry_sync "$conf" "$list" "127.0.0.1:$crane_port" "${crane_flags[@]}"
  measure "crane no-op" dst-crane ferry_sync "$conf" "$list" "127.0.0.1:$crane_port" "${crane_flags[@]}"
  phases+=("crane cold" "crane no-op")
  verified+=(crane="$crane_port")
else
  echo "bench: no crane found (FERRY_CRANE): ferry's crane phases are left out" >&2
fi

# 5. every destination holds exactly what the source holds
verify "$list" "${verified[@]}"
for dest in "${verified[@]}"; do
  ((missing[${dest%%=*}] + mismatched[${dest%%=*}] == 0)) ||
    die "DIGEST MISMATCH: destination differs from source (see above)"
done

# 6. report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
row() { printf '| %-16s | %7s | %15s | %20s | %16s |\n' "$@"; }
echo
echo "ferry benchmark: $images images x 2 platforms (linux/amd64, linux/arm64), one uncompressed"
echo "$layer_kb KiB layer each; ferry -j $jobs; nproc $(nproc); $("$real_skopeo" --version)."
echo "The loop, ferry (skopeo) and ferry --engine crane (\"crane\" rows${crane:+, $("$crane" version)})"
echo "each sync into their own empty docker-registry 2.8 on loopback."
echo
row phase seconds "source requests" "destination requests" "engine processes"
echo "|------------------|--------:|----------------:|---------------------:|-----------------:|"
for phase in "${phases[@]}"; do
  row "$phase" "${secs[$phase]}" "${src[$phase]}" "${dst[$phase]}" "${procs[$phase]}"
done
for tool in ferry ${crane:+crane}; do
  for kind in cold no-op; do
    f="$tool $kind" l="loop $kind"
    row "$tool/loop $kind" "$(ratio "${secs[$f]}" "${secs[$l]}")" "$(ratio "${src[$f]}" "${src[$l]}")" \
      "$(ratio "${dst[$f]}" "${dst[$l]}")" "$(ratio "${procs[$f]}" "${procs[$l]}")"
  done
done
echo
echo "Digests verified: all $images indexes under ${verified[*]%%=*} equal the source's."
[ "$limited" -gt 0 ] || exit 0

# 7. the rate-limited source: the limiter in front of the same source, docker.io redirected to it,
# the first $limited images into two new empty destinations (only the source is limited).
echo >&2
echo "rate-limited source: $rate requests/s, $limited images ..." >&2
mkdir "$work/proxy"
python3 "$scripts/rate-limit-proxy.py" --listen 127.0.0.1:0 --upstream "127.0.0.1:$src_port" \
  --rate "$rate" --port-file "$work/proxy/port" --log "$work/proxy/requests.log" \
  >"$work/proxy/proxy.log" 2>&1 </dev/null &
pids+=("$!")
for _ in $(seq 100); do # the port file appears once it listens
  if [ -s "$work/proxy/port" ] || ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
  sleep 0.1
done
[ -s "$work/proxy/port" ] || { cat "$work/proxy/proxy.log" >&2; die "rate-limit-proxy.py did not start"; }
proxy_port=$(<"$work/proxy/port")
start_registry dst-loop-limited loop_limited_port
start_registry dst-ferry-limited ferry_limited_port
dest_loop_limited=127.0.0.1:$loop_limited_port dest_ferry_limited=127.0.0.1:$ferry_limited_port
limited_list=$work/limited.list
head -n "$limited" "$list" >"$limited_list"
limited_conf=$work/registries-limited.conf
printf '%s\n' '[[registry]]' 'prefix = "docker.io"' "location = \"127.0.0.1:$proxy_port\"" \
  'insecure = true' >"$limited_conf"
# As tests/rate_limit.rs runs ferry against its limiter.
ferry_limited_flags=(--retry-times 8 --retry-delay 1s --max-retry-delay 8s)

strict=0
# Every phase starts with a full bucket (capacity one: refilled after 1/rate seconds).
pause=$(awk -v r="$rate" 'BEGIN { printf "%.2f", 1 / r + 0.1 }')
measure "limited loop cold" dst-loop-limited \
  loop_sync "$limited_conf" "$limited_list" "$dest_loop_limited"
measure "limited loop no-op" dst-loop-limited \
  loop_sync "$limited_conf" "$limited_list" "$dest_loop_limited"
measure "limited ferry cold" dst-ferry-limited \
  ferry_sync "$limited_conf" "$limited_list" "$dest_ferry_limited" "${ferry_limited_flags[@]}"
measure "limited ferry no-op" dst-ferry-limited \
  ferry_sync "$limited_conf" "$limited_list" "$dest_ferry_limited" "${ferry_limited_flags[@]}"

# 8. what arrived is the source's; an image may be missing only if a phase reported it failed.
verify "$limited_list" loop="$loop_limited_port" ferry="$ferry_limited_port"
((mismatched[loop] + mismatched[ferry] == 0)) ||
  die "DIGEST MISMATCH: destination differs from source (see above)"

# 9. report
row2() { printf '| %-16s | %7s | %6s | %15s | %16s | %13s |\n' "$@"; }
echo
echo "Rate-limited source: the source behind scripts/rate-limit-proxy.py at $rate requests/s (token"
echo "bucket of one, no burst; 429 + Retry-After like Docker Hub); the first $limited images into two"
echo "new empty, unlimited destinations. ferry -j $jobs ${ferry_limited_flags[*]}."
echo
row2 phase seconds 429s "source requests" "skopeo processes" "failed images"
echo "|------------------|--------:|-------:|----------------:|-----------------:|--------------:|"
for phase in "loop cold" "loop no-op" "ferry cold" "ferry no-op"; do
  p="limited $phase"
  row2 "$phase" "${secs[$p]}" "${throttled[$p]}" "${src[$p]}" "${procs[$p]}" "${fails[$p]}"
done
for kind in cold no-op; do
  f="limited ferry $kind" l="limited loop $kind"
  row2 "ferry/loop $kind" "$(ratio "${secs[$f]}" "${secs[$l]}")" \
    "$(ratio "${throttled[$f]}" "${throttled[$l]}")" "$(ratio "${src[$f]}" "${src[$l]}")" \
    "$(ratio "${procs[$f]}" "${procs[$l]}")" "$(ratio "${fails[$f]}" "${fails[$l]}")"
done
echo
awk -v n="$limited" -v r="$rate" \
  'BEGIN { printf "Ideal no-op: %d tags / %s requests/s = %.2f s", n, r, n / r }'
echo " (one source request per tag at the limit)."
if ((missing[loop] + missing[ferry] == 0)); then
  echo "Digests verified: all $limited indexes under loop/ and ferry/ equal the source's."
else
  echo "Digests verified: the indexes present equal the source's; missing after the failures above:"
  echo "${missing[loop]} under loop/, ${missing[ferry]} under ferry/."
fi
