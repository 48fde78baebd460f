#!/usr/bin/env bash
# Drop-in for the old sync-image.sh loop: mirrors every image of a list into a registry prefix.
#   scripts/sync-image.sh [LIST] [DEST_PREFIX] [`ferry sync` flags ...]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list; DEST_PREFIX to $FERRY_DEST
# (with neither, images go to the local OCI directory ./mirror). Flags (words starting with
# `-`, with their values, and everything after `--`) go to ferry wherever they stand:
# `-j 8 list.txt harbor.example/x --dry-run` as well as `list.txt harbor.example/x -j 8`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
split_args sync 2 "usage: $0 [LIST] [DEST_PREFIX] [ferry sync flags ...]" "$@"
list=${positional[0]:-${SOURCE_IMAGES_LIST:-source-images.list}}
dest=${positional[1]:-${FERRY_DEST:-}}
args=(sync "$list")
[ -n "$dest" ] && args+=(--dest "$dest")
exec "$(ferry_bin)" "${args[@]}" "${flags[@]}"
