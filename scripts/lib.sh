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

# value_flags SUBCOMMAND: the flags of `ferry SUBCOMMAND` that take their value in the next word
# (`-j 8`, `--dest harbor.example/x`), one per line, read from ferry's own help so the list is
# always the binary's.
value_flags() {
  "$(ferry_bin)" "$1" --help |
    sed -nE 's/^ +(-([a-zA-Z]), )?(--[a-z0-9-]+) <.*/\3 -\2/p' |
    tr ' ' '\n' | grep -vx -- '-' || true
}

# bool_flags SUBCOMMAND: the flags shown as `--flag[=<BOOL>]`, whose value ferry takes only
# after `=`; the scripts also take `--flag false` (and `true`), as people type it.
bool_flags() {
  "$(ferry_bin)" "$1" --help | sed -nE 's/^ +(--[a-z0-9-]+)\[=<BOOL>\].*/\1/p' || true
}

# split_args SUBCOMMAND SLOTS USAGE ARGS...: the first SLOTS words that are neither flags nor a
# flag's value (LIST, DEST) go to the array `positional`, flags to the array `flags`, kept in
# order for ferry, wherever they stand: `-j 8 list.txt harbor.example/x --dry-run` works as well
# as the old scripts' `list.txt harbor.example/x -j 8`. A word starting with `-` is a flag (a
# lone `-` is standard input, a LIST), and so is everything after `--`. A flag's value is
# attached (`--format=list`) or the next word, for the flags `ferry SUBCOMMAND` says take one
# (and `true`/`false` after a `--flag[=<BOOL>]`).
# Any other word is an error: exit 2 with USAGE, since a word silently dropped would be an
# argument the user thinks was used.
split_args() {
  local subcommand=$1 slots=$2 usage=$3 takes_value takes_bool
  shift 3
  takes_value=$'\n'"$(value_flags "$subcommand")"$'\n'
  takes_bool=$'\n'"$(bool_flags "$subcommand")"$'\n'
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
        if [[ $1 != *=* && $takes_bool == *$'\n'"$1"$'\n'* && ${2:-} =~ ^(true|false)$ ]]; then
          flags+=("$1=$2")
          shift
        else
          flags+=("$1")
          if [[ $1 != *=* && $takes_value == *$'\n'"$1"$'\n'* && $# -gt 1 ]]; then
            shift
            flags+=("$1")
          fi
        fi
        ;;
      *)
        if [ "${#positional[@]}" -lt "$slots" ]; then
          positional+=("$1")
        else
          printf '%s: unexpected argument "%s"\n%s\n' "$(basename "$0")" "$1" "$usage" >&2
          exit 2
        fi
        ;;
    esac
    shift
  done
}
