# Shared by the drop-in scripts: find the ferry binary, building it with cargo when missing.
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
