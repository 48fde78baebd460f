# Shared by the drop-in scripts: find the ferry binary, building it with cargo when missing,
# and split their arguments into LIST [DEST] and the flags passed on to ferry.

# FERRY_BIN overrides the binary; otherwise ferry from PATH, then this checkout's release build.
ferry_bin() {
  if [ -n "${FERRY_BIN:-}" ]; then
    printf '%s\n' "$FERRY_BIN"
    return
  fi
  if command -v ferry >/dev/null 2>&1; then
    command -v ferry
    return
  fi
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [ ! -x "$root/target/release/ferry" ]; then
    echo "building ferry (cargo build --release) ..." >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" >&2
  fi
  printf '%s\n' "$root/target/release/ferry"
}

# split_args SLOTS USAGE ARGS...: the first SLOTS words (LIST, DEST) go to the array
# `positional`, flags to the array `flags`, kept in order for ferry. A word starting with `-`
# is a flag (a lone `-` is standard input, a LIST), and so is everything after `--`. A flag's
# value is attached (`--format=list`) or, once every positional slot is filled, the next word
# (`-j 8`): before that, the word after a flag is LIST or DEST, as in the old scripts. Any
# other word is an error: exit 2 with USAGE, since a word silently dropped would be an
# argument the user thinks was used.
split_args() {
  local slots=$1 usage=$2 after_flag=0
  shift 2
  positional=()
  flags=()
  while [ $# -gt 0 ]; do
    case $1 in
      --)
        shift
        flags+=("$@")
        break
        ;;
      -?*)
        flags+=("$1")
        after_flag=1
        [[ $1 == *=* ]] && after_flag=0
        ;;
      *)
        if [ "${#positional[@]}" -lt "$slots" ]; then
          positional+=("$1")
        elif [ "$after_flag" = 1 ]; then
          flags+=("$1")
        else
          printf '%s: unexpected argument "%s"\n%s\n' "$(basename "$0")" "$1" "$usage" >&2
          printf "(a flag's value goes after '=', as in --format=list, or the flag after --)\n" >&2
          exit 2
        fi
        after_flag=0
        ;;
    esac
    shift
  done
}
