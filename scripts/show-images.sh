#!/usr/bin/env bash
# Drop-in for the old show-images.sh: prints the target of every image in the list.
#   scripts/show-images.sh [LIST] [DEST_PREFIX]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list; DEST_PREFIX to $FERRY_DEST.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
list=${1:-${SOURCE_IMAGES_LIST:-source-images.list}}
dest=${2:-${FERRY_DEST:-}}
args=(show-images "$list")
[ -n "$dest" ] && args+=(--dest "$dest")
exec "$(ferry_bin)" "${args[@]}"
