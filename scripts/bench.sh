#!/usr/bin/env bash
# Benchmark: the old serial `skopeo sync` loop against `ferry sync` with each engine (skopeo, crane
# when one is found, and ferry's own native engine), cold (empty destination) and no-op (everything already there), on
# throwaway local registries. The corpus is multi-arch and, as in real registries, its images
# share a base layer per platform under a top layer of their own. Prints, per phase, wall time,
# the HTTP requests the source and the destination received and the engine processes (skopeo or
# crane) spawned, then
# the same requests per image. Each ferry tool also runs a no-op with --missing-only, which must send
# the source no request at all.
# Then ferry with native and skopeo syncing the corpus into two empty destinations in one run
# (--dest A --dest B), cold and no-op, against their one-destination runs (BENCH_TWO_DESTS=0 skips).
# Then a large-layer corpus (BENCH_LARGE_IMAGES images x 2 platforms x BENCH_LARGE_MB MiB), cold,
# with each tool's peak RSS (GNU time's "Maximum resident set size"; for the loop, its largest
# skopeo process).
# Then the rate-limited source, as Docker Hub is: the source behind scripts/rate-limit-proxy.py (a
# token bucket like nginx limit_req without burst, answering 429 with Retry-After), the first
# BENCH_LIMITED_IMAGES images, new empty (unlimited) destinations. Prints wall time, 429s the
# limiter answered, requests that reached the source, the bound those requests allow (requests /
# rate: no client can be faster), engine processes and failed images per phase (a failure there is
# counted, not fatal). Every mirrored digest is checked against the source.
#   scripts/bench.sh
# Environment: BENCH_IMAGES (20), BENCH_LAYER_KB (top layers, 256), BENCH_BASE_KB (the shared base
# layers, 1024; 0: none), BENCH_JOBS (ferry -j, 4), BENCH_LARGE_IMAGES (4; 0 skips the large
# corpus), BENCH_LARGE_MB (64), BENCH_LIMITED_IMAGES (images of the rate-limited phases, 8 or all
# if fewer; 0 skips them), BENCH_RATE (the limiter's requests per second, 2), FERRY_BIN (the ferry
# to measure; default this checkout's target/release/ferry, built with cargo when missing),
# FERRY_CRANE (the crane of the crane phases; default crane on PATH, else ../shared/crane/bin/crane;
# without one they are left out), BENCH_TOOLS (the tools to measure, of: loop skopeo native crane;
# default all), BENCH_LIMITED_CRANE=1 (crane in the rate-limited phases too), BENCH_KEEP=1 keeps
# the scratch directory. Needs docker-registry, skopeo, curl, python3 and GNU time
# (/usr/bin/time; Debian: apt-get install time).
set -euo pipefail
export LC_ALL=C # $EPOCHREALTIME and awk must agree on the decimal point

images=${BENCH_IMAGES:-20}
layer_kb=${BENCH_LAYER_KB:-256}
base_kb=${BENCH_BASE_KB:-1024}
jobs=${BENCH_JOBS:-4}
large=${BENCH_LARGE_IMAGES:-4}
large_mb=${BENCH_LARGE_MB:-64}
limited=${BENCH_LIMITED_IMAGES:-8}
rate=${BENCH_RATE:-2}
scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$scripts")
oci_index=application/vnd.oci.image.index.v1+json

die() { echo "bench: $*" >&2; exit 1; }

for n in "$images" "$layer_kb" "$jobs" "$large_mb"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "BENCH_IMAGES, BENCH_LAYER_KB, BENCH_JOBS and BENCH_LARGE_MB must be positive integers"
done
for n in "$base_kb" "$large"; do
  [[ $n =~ ^[0-9]+$ ]] || die "BENCH_BASE_KB and BENCH_LARGE_IMAGES must be integers (0: none)"
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
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time (Debian/Ubuntu: apt-get install time)"
# Resolved before the counting wrapper goes first on PATH, so the wrapper can exec the real one.
real_skopeo=$(command -v skopeo)
real_crane=${FERRY_CRANE:-$(command -v crane || true)}
[ -n "$real_crane" ] || [ ! -x "$root/../shared/crane/bin/crane" ] || real_crane=$root/../shared/crane/bin/crane

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

# start_registry NAME: serve $work/NAME on a free loopback port, stored in port[NAME].
# Access logging on at level info: distribution 2.8 then logs one "response completed" line
# ("response completed with error" for 4xx/5xx) per request, which is what phases count.
# A port free a moment ago can be taken before the registry binds it, so retry on another one.
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
    # Ours once it logs that it listens (logged after the bind succeeded) and answers /v2/.
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

# requests NAME[,NAME...]: the requests those registries logged, all told.
requests() {
  local name n=0 c
  for name in ${1//,/ }; do
    c=$(grep -c 'response completed' "$work/$name/registry.log" || true)
    n=$((n + c))
  done
  echo "$n"
}
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

# Failed images of the running phase. With strict=1 (the unlimited phases) a failure ends the
# benchmark; behind the limiter (strict=0) failures are counted, shown and kept in failures.log.
strict=1 failed=0
# failure LOG IMAGE REASON: one image failed in the running phase (measure's $phase).
failure() {
  if [ "$strict" = 1 ]; then tail -n 30 "$1" >&2; die "$phase: $2 failed (log above)"; fi
  failed=$((failed + 1))
  echo "bench: $phase: $2 failed: $3" >&2
  { echo "== $phase: $2"; cat "$1"; } >>"$work/failures.log"
}

# With rss set (measure --rss), every tool process runs under GNU time, appending to $rss.
rss=''
timed() {
  if [ -n "$rss" ]; then /usr/bin/time -v -a -o "$rss" "$@"; else "$@"; fi
}

# loop_sync CONF LIST DEST: the old script's way, one skopeo sync per list line, one after the other.
loop_sync() {
  local conf=$1 list=$2 dest=$3 name
  while read -r name; do
    timed skopeo --registries-conf "$conf" sync --all --scoped --preserve-digests --src docker \
      --dest docker --dest-tls-verify=false "docker.io/library/$name" "$dest/loop" \
      >"$work/loop.log" 2>&1 </dev/null ||
      failure "$work/loop.log" "$name" "$(tail -n 1 "$work/loop.log")"
  done <"$list"
}

# ferry_sync ENGINE CONF LIST DEST [FLAG...]: exit 1 means some images failed (named in the
# report). Output and report per phase (measure's $phase): ferry-PHASE.log, ferry-PHASE.json.
ferry_sync() {
  local engine=$1 conf=$2 list=$3 dest=$4 out=$work/ferry-${phase// /-} status=0 line
  shift 4
  timed env CONTAINERS_REGISTRIES_CONF="$conf" "$ferry" sync "$list" --dest "$dest/$engine" \
    --dest-tls-verify=false --engine "$engine" -j "$jobs" --report "$out.json" "$@" \
    >"$out.log" 2>&1 </dev/null || status=$?
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

declare -A secs src dst procs throttled fails peak
pause=0 # seconds to wait before each phase: behind the limiter, time for the bucket to refill
# measure [--rss] PHASE SOURCE DEST CMD...: run CMD; record wall seconds, new requests to registry
# SOURCE and to registry DEST, engine processes started, 429s from the limiter, failed images and,
# with --rss, the peak RSS in MiB of the tool's processes.
measure() {
  local with_rss=0
  if [ "$1" = --rss ]; then with_rss=1; shift; fi
  local phase=$1 from=$2 to=$3 src0 dst0 procs0 throttled0 t0 t1
  shift 3
  settle
  sleep "$pause"
  src0=$(requests "$from") dst0=$(requests "$to") procs0=$(spawns) throttled0=$(too_many) failed=0
  rss=''
  if [ "$with_rss" = 1 ]; then rss=$work/rss-${phase// /-}.txt; : >"$rss"; fi
  echo "running: $phase" >&2
  t0=$EPOCHREALTIME
  "$@"
  t1=$EPOCHREALTIME
  settle
  secs[$phase]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  src[$phase]=$(($(requests "$from") - src0))
  dst[$phase]=$(($(requests "$to") - dst0))
  procs[$phase]=$(($(spawns) - procs0))
  throttled[$phase]=$(($(too_many) - throttled0))
  fails[$phase]=$failed
  if [ -n "$rss" ]; then
    peak[$phase]=$(awk -F': ' '/Maximum resident set size/ { if ($2 > m) m = $2 } END { printf "%.1f", m / 1024 }' "$rss")
    rss=''
  fi
}

# digest PORT REPO TAG: the Docker-Content-Digest of the tag's index, empty when missing.
digest() {
  curl -fsSI --noproxy '*' -H "Accept: $oci_index" "http://127.0.0.1:$1/v2/$2/manifests/$3" 2>/dev/null |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}

declare -A missing mismatched
# verify SOURCE_PORT LIST PREFIX=PORT...: compare every image of LIST under
# PREFIX/docker.io/library/ on each registry PORT with the source; name each problem and count
# them per PREFIX in missing and mismatched.
verify() {
  local source=$1 list=$2 name repo tag want got dest prefix p
  shift 2
  missing=() mismatched=()
  for dest in "$@"; do missing[${dest%%=*}]=0 mismatched[${dest%%=*}]=0; done
  while read -r name; do
    repo=${name%%:*} tag=${name#*:}
    want=$(digest "$source" "library/$repo" "$tag")
    [ -n "$want" ] || die "source has no library/$name"
    for dest in "$@"; do
      prefix=${dest%%=*} p=${dest#*=}
      got=$(digest "$p" "$prefix/docker.io/library/$repo" "$tag")
      [ "$got" = "$want" ] && continue
      echo "127.0.0.1:$p/$prefix/docker.io/library/$name: ${got:-missing}, source $want" >&2
      if [ -z "$got" ]; then
        missing[$prefix]=$((missing[$prefix] + 1))
      else
        mismatched[$prefix]=$((mismatched[$prefix] + 1))
      fi
    done
  done <"$list"
}

# push_corpus DIR NAME_PREFIX: push every layout under DIR to the source as library/PREFIX-NN:1.0.
push_corpus() {
  local layout
  for layout in "$1"/img-*; do
    quiet "$work/push.log" "$real_skopeo" --insecure-policy copy --all --preserve-digests \
      --dest-tls-verify=false "oci:$layout:latest" \
      "docker://127.0.0.1:${port[src]}/library/$2-${layout##*-}:1.0"
  done
}

# redirect PORT: a registries.conf sending docker.io to 127.0.0.1:PORT.
redirect() {
  local conf=$work/registries-$1.conf
  printf '%s\n' '[[registry]]' 'prefix = "docker.io"' "location = \"127.0.0.1:$1\"" \
    'insecure = true' >"$conf"
  echo "$conf"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
tools=(loop skopeo native)
if [ -n "$real_crane" ]; then
  tools+=(crane)
else
  echo "bench: no crane found (FERRY_CRANE): ferry's crane phases are left out" >&2
fi
if [ -n "${BENCH_TOOLS:-}" ]; then
  read -ra wanted <<<"$BENCH_TOOLS"
  for tool in "${wanted[@]}"; do
    [[ " ${tools[*]} " == *" $tool "* ]] || die "BENCH_TOOLS: $tool is not one of: ${tools[*]}"
  done
  tools=("${wanted[@]}")
fi
measured() { [[ " ${tools[*]} " == *" $1 "* ]]; }
label() { case $1 in loop) echo "loop" ;; *) echo "ferry $1" ;; esac; }
# dests PREFIX: verify's TOOL=PORT arguments for the destinations dst-PREFIXTOOL of every tool.
dests() {
  local tool
  for tool in "${tools[@]}"; do echo "$tool=${port[dst-$1$tool]}"; done
}
# checked_all: every tool's destination matched the source, else the benchmark ends.
checked_all() {
  local tool
  for tool in "${tools[@]}"; do
    ((missing[$tool] + mismatched[$tool] == 0)) || die "DIGEST MISMATCH: destination differs from source (see above)"
  done
}
under_all() { local IFS=,; echo "${tools[*]/%//}" | sed 's/,/, /g'; }

# 1. registries. Each approach gets its own empty destination: in a shared one, skopeo mounts
# the blobs an earlier approach pushed (POST ...?mount=&from=...) instead of fetching them from
# the source, so the later approaches would never run cold.
start_registry src
for tool in "${tools[@]}"; do start_registry "dst-$tool"; done

# 2. corpus, pushed to the source as library/img-NN:1.0
echo "generating and pushing $images images ..." >&2
python3 "$scripts/bench-image.py" "$work/corpus" "$images" "$layer_kb" "$base_kb"
push_corpus "$work/corpus" img

# 3. list and the docker.io -> source redirect
list=$work/images.list
for ((i = 1; i <= images; i++)); do printf 'img-%02d:1.0\n' "$i"; done >"$list"
conf=$(redirect "${port[src]}")

# 4. phases; every skopeo and crane start goes through a counting wrapper
mkdir "$work/bin"
: >"$work/skopeo.count"
: >"$work/crane.count"
printf '%s\n' '#!/bin/sh' "echo >>'$work/skopeo.count'" "exec '$real_skopeo' \"\$@\"" >"$work/bin/skopeo"
[ -z "$real_crane" ] ||
  printf '%s\n' '#!/bin/sh' "echo >>'$work/crane.count'" "exec '$real_crane' \"\$@\"" >"$work/bin/crane"
chmod +x "$work"/bin/*
export PATH=$work/bin:$PATH
# run_tool TOOL CONF LIST DEST [FLAG...]: one sync of LIST to DEST by TOOL.
run_tool() {
  local tool=$1
  shift
  case $tool in
    loop) loop_sync "$1" "$2" "$3" ;;
    *) ferry_sync "$tool" "$@" ;;
  esac
}
for tool in "${tools[@]}"; do
  for kind in cold no-op; do
    measure "$tool $kind" src "dst-$tool" run_tool "$tool" "$conf" "$list" "127.0.0.1:${port[dst-$tool]}"
  done
  # ferry's --missing-only no-op: every tag is at the destination, so the source is never asked.
  if [ "$tool" != loop ]; then
    measure "$tool missing-only" src "dst-$tool" run_tool "$tool" "$conf" "$list" \
      "127.0.0.1:${port[dst-$tool]}" --missing-only
    [ "${src[$tool missing-only]}" = 0 ] ||
      die "$tool --missing-only no-op: ${src[$tool missing-only]} source requests, expected 0"
  fi
done

# 5. every destination holds exactly what the source holds
mapfile -t checked < <(dests '')
verify "${port[src]}" "$list" "${checked[@]}"
checked_all

# 6. report
row() { printf '| %-26s | %7s | %15s | %20s | %16s |\n' "$@"; }
echo
base_text="no shared base layer"
[ "$base_kb" = 0 ] || base_text="a $base_kb KiB base layer per platform shared by every image"
echo "ferry benchmark: $images images x 2 platforms (linux/amd64, linux/arm64), each an uncompressed"
echo "$layer_kb KiB top layer on $base_text; ferry -j $jobs; nproc $(nproc);"
echo "$("$real_skopeo" --version). Each tool syncs into its own empty docker-registry 2.8 on loopback."
echo
row phase seconds "source requests" "destination requests" "engine processes"
echo "|----------------------------|--------:|----------------:|---------------------:|-----------------:|"
for tool in "${tools[@]}"; do
  kinds=(cold no-op)
  [ "$tool" = loop ] || kinds+=(missing-only)
  for kind in "${kinds[@]}"; do
    p="$tool $kind"
    row "$(label "$tool") $kind" "${secs[$p]}" "${src[$p]}" "${dst[$p]}" "${procs[$p]}"
  done
done
for pair in "skopeo loop" "native loop" "native skopeo" "crane loop" "native crane"; do
  read -r a b <<<"$pair"
  measured "$a" && measured "$b" || continue
  for kind in cold no-op; do
    row "$a/$b $kind" "$(ratio "${secs[$a $kind]}" "${secs[$b $kind]}")" \
      "$(ratio "${src[$a $kind]}" "${src[$b $kind]}")" "$(ratio "${dst[$a $kind]}" "${dst[$b $kind]}")" \
      "$(ratio "${procs[$a $kind]}" "${procs[$b $kind]}")"
  done
done
echo
echo "Requests per image (the counts above / $images):"
echo
row2() { printf '| %-14s | %11s | %16s | %12s | %17s |\n' "$@"; }
row2 tool "source cold" "destination cold" "source no-op" "destination no-op"
echo "|----------------|------------:|-----------------:|-------------:|------------------:|"
for tool in "${tools[@]}"; do
  row2 "$(label "$tool")" "$(per "${src[$tool cold]}" "$images")" "$(per "${dst[$tool cold]}" "$images")" \
    "$(per "${src[$tool no-op]}" "$images")" "$(per "${dst[$tool no-op]}" "$images")"
done
echo
echo "Digests verified: all $images indexes under $(under_all) equal the source's."

# 6b. two destinations in one run, against one: the corpus into two new empty destinations.
two=()
for tool in native skopeo; do measured "$tool" && two+=("$tool"); done
if [ "${BENCH_TWO_DESTS:-1}" != 0 ] && ((${#two[@]} > 0)); then
  for tool in "${two[@]}"; do
    start_registry "dst-two-a-$tool"
    start_registry "dst-two-b-$tool"
    for kind in cold no-op; do
      measure "two $tool $kind" src "dst-two-a-$tool,dst-two-b-$tool" ferry_sync "$tool" "$conf" \
        "$list" "127.0.0.1:${port[dst-two-a-$tool]}" --dest "127.0.0.1:${port[dst-two-b-$tool]}/$tool"
    done
    verify "${port[src]}" "$list" "$tool=${port[dst-two-a-$tool]}" "$tool=${port[dst-two-b-$tool]}"
    ((missing[$tool] + mismatched[$tool] == 0)) || die "DIGEST MISMATCH: destination differs from source (see above)"
  done
  echo
  echo "Two destinations: ferry syncs the corpus into two new empty destinations in one run"
  echo "(--dest A --dest B), against its one-destination runs above; destination requests are both"
  echo "destinations' together."
  echo
  row phase seconds "source requests" "destination requests" "engine processes"
  echo "|----------------------|--------:|----------------:|---------------------:|-----------------:|"
  for tool in "${two[@]}"; do
    for kind in cold no-op; do
      p="two $tool $kind"
      row "$tool x2 $kind" "${secs[$p]}" "${src[$p]}" "${dst[$p]}" "${procs[$p]}"
    done
    for kind in cold no-op; do
      a="two $tool $kind" b="$tool $kind"
      row "$tool x2/x1 $kind" "$(ratio "${secs[$a]}" "${secs[$b]}")" "$(ratio "${src[$a]}" "${src[$b]}")" \
        "$(ratio "${dst[$a]}" "${dst[$b]}")" "$(ratio "${procs[$a]}" "${procs[$b]}")"
    done
  done
  echo
  echo "Digests verified: all $images indexes in both destinations of $(IFS=,; echo "${two[*]}" | sed 's/,/, /g') equal the source's."
fi

# 7. the large-layer corpus, cold, with peak RSS
if [ "$large" -gt 0 ]; then
  echo >&2
  echo "large layers: $large images x 2 platforms x $large_mb MiB ..." >&2
  python3 "$scripts/bench-image.py" "$work/large" "$large" "$((large_mb * 1024))"
  push_corpus "$work/large" big
  rm -rf "$work/large"
  large_list=$work/large.list
  for ((i = 1; i <= large; i++)); do printf 'big-%02d:1.0\n' "$i"; done >"$large_list"
  for tool in "${tools[@]}"; do
    start_registry "dst-large-$tool"
    measure --rss "large $tool" src "dst-large-$tool" run_tool "$tool" "$conf" "$large_list" \
      "127.0.0.1:${port[dst-large-$tool]}"
  done
  mapfile -t checked < <(dests large-)
  verify "${port[src]}" "$large_list" "${checked[@]}"
  checked_all
  row3() { printf '| %-14s | %7s | %13s | %15s | %20s | %16s |\n' "$@"; }
  echo
  echo "Large layers: $large images x 2 platforms x one $large_mb MiB uncompressed layer, cold, each tool"
  echo "into its own empty destination. Peak RSS: GNU time's maximum resident set size of ferry (with"
  echo "the skopeo or crane engine, ferry or its largest child), and of the loop's largest skopeo."
  echo
  row3 tool seconds "peak RSS MiB" "source requests" "destination requests" "engine processes"
  echo "|----------------|--------:|--------------:|----------------:|---------------------:|-----------------:|"
  for tool in "${tools[@]}"; do
    p="large $tool"
    row3 "$(label "$tool")" "${secs[$p]}" "${peak[$p]}" "${src[$p]}" "${dst[$p]}" "${procs[$p]}"
  done
  ! measured native || ! measured skopeo || row3 "native/skopeo" "$(ratio "${secs[large native]}" "${secs[large skopeo]}")" \
    "$(ratio "${peak[large native]}" "${peak[large skopeo]}")" \
    "$(ratio "${src[large native]}" "${src[large skopeo]}")" \
    "$(ratio "${dst[large native]}" "${dst[large skopeo]}")" "n/a"
  echo
  echo "Digests verified: all $large indexes under $(under_all) equal the source's."
fi
[ "$limited" -gt 0 ] || exit 0

# crane sits out the limited phases unless BENCH_LIMITED_CRANE=1: each crane run pings /v2/ and
# asks for the manifest right after, so behind a bucket of one its GET always meets a 429, which
# crane does not retry; every image fails after all of ferry's retries (8 of 8, 355 s, in one run).
if [ "${BENCH_LIMITED_CRANE:-}" != 1 ] && measured crane; then
  kept=()
  for tool in "${tools[@]}"; do [ "$tool" = crane ] || kept+=("$tool"); done
  tools=("${kept[@]}")
  echo "bench: crane sits out the rate-limited phases (BENCH_LIMITED_CRANE=1 runs it)" >&2
fi

# 8. the rate-limited source: the limiter in front of the same source, docker.io redirected to it,
# the first $limited images into new empty destinations (only the source is limited).
echo >&2
echo "rate-limited source: $rate requests/s, $limited images ..." >&2
mkdir "$work/proxy"
python3 "$scripts/rate-limit-proxy.py" --listen 127.0.0.1:0 --upstream "127.0.0.1:${port[src]}" \
  --rate "$rate" --port-file "$work/proxy/port" --log "$work/proxy/requests.log" \
  >"$work/proxy/proxy.log" 2>&1 </dev/null &
pids+=("$!")
for _ in $(seq 100); do # the port file appears once it listens
  if [ -s "$work/proxy/port" ] || ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
  sleep 0.1
done
[ -s "$work/proxy/port" ] || { cat "$work/proxy/proxy.log" >&2; die "rate-limit-proxy.py did not start"; }
limited_conf=$(redirect "$(<"$work/proxy/port")")
limited_list=$work/limited.list
head -n "$limited" "$list" >"$limited_list"
# As tests/integration/rate_limit.rs runs ferry against its limiter.
ferry_limited_flags=(--retry-times 8 --retry-delay 1s --max-retry-delay 8s)

strict=0
# Every phase starts with a full bucket (capacity one: refilled after 1/rate seconds).
pause=$(awk -v r="$rate" 'BEGIN { printf "%.2f", 1 / r + 0.1 }')
for tool in "${tools[@]}"; do
  start_registry "dst-limited-$tool"
  for kind in cold no-op; do
    measure "limited $tool $kind" src "dst-limited-$tool" run_tool "$tool" "$limited_conf" \
      "$limited_list" "127.0.0.1:${port[dst-limited-$tool]}" "${ferry_limited_flags[@]}"
  done
done

# 9. what arrived is the source's; an image may be missing only if a phase reported it failed.
mapfile -t checked < <(dests limited-)
verify "${port[src]}" "$limited_list" "${checked[@]}"
for tool in "${tools[@]}"; do
  ((mismatched[$tool] == 0)) || die "DIGEST MISMATCH: destination differs from source (see above)"
done

# 10. report
row4() { printf '| %-20s | %7s | %6s | %15s | %9s | %11s | %16s | %13s |\n' "$@"; }
echo
echo "Rate-limited source: the source behind scripts/rate-limit-proxy.py at $rate requests/s (token"
echo "bucket of one, no burst; 429 + Retry-After like Docker Hub); the first $limited images into new"
echo "empty, unlimited destinations. ferry -j $jobs ${ferry_limited_flags[*]}. Bound: the source"
echo "requests that got through / $rate requests/s, the least time those requests can take."
echo
row4 phase seconds 429s "source requests" "bound (s)" "time/bound" "engine processes" "failed images"
echo "|----------------------|--------:|-------:|----------------:|----------:|------------:|-----------------:|--------------:|"
for tool in "${tools[@]}"; do
  for kind in cold no-op; do
    p="limited $tool $kind"
    bound=$(awk -v n="${src[$p]}" -v r="$rate" 'BEGIN { printf "%.2f", n / r }')
    row4 "$(label "$tool") $kind" "${secs[$p]}" "${throttled[$p]}" "${src[$p]}" "$bound" \
      "$(ratio "${secs[$p]}" "$bound")" "${procs[$p]}" "${fails[$p]}"
  done
done
echo
awk -v n="$limited" -v r="$rate" \
  'BEGIN { printf "Ideal no-op: %d tags / %s requests/s = %.2f s", n, r, n / r }'
echo " (one source request per tag at the limit)."
absent=()
for tool in "${tools[@]}"; do ((missing[$tool] == 0)) || absent+=("${missing[$tool]} under $tool/"); done
if ((${#absent[@]} == 0)); then
  echo "Digests verified: all $limited indexes under $(under_all) equal the source's."
else
  echo "Digests verified: the indexes present equal the source's; missing after the failures above:"
  echo "${absent[*]}."
fi
