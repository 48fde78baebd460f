#!/usr/bin/env bash
# Drop-in for the old show-images.sh: prints the target of every image in the list.
#   scripts/show-images.sh [LIST] [DEST_PREFIX] [`ferry show-images` flags ...]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list; DEST_PREFIX to $FERRY_DEST.
# Flags (words starting with `-`, with their values, and everything after `--`) go to ferry
# wherever they stand, before LIST or after it; other extra words are an error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
split_args show-images 2 "usage: $0 [LIST] [DEST_PREFIX] [ferry show-images flags ...]" "$@"
list=${positional[0]:-${SOURCE_IMAGES_LIST:-source-images.list}}
dest=${positional[1]:-${FERRY_DEST:-}}
args=(show-images "$list")
[ -n "$dest" ] && args+=(--dest "$dest")
exec "$(ferry_bin)" "${args[@]}" "${flags[@]}"
