#!/usr/bin/env bash
# Drop-in for the old sync-image.sh loop: mirrors every image of a list into a registry prefix.
#   scripts/sync-image.sh [LIST] [DEST_PREFIX] [more `ferry sync` flags ...]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list; DEST_PREFIX to $FERRY_DEST
# (with neither, images go to the local OCI directory ./mirror).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
list=${1:-${SOURCE_IMAGES_LIST:-source-images.list}}
dest=${2:-${FERRY_DEST:-}}
shift $(( $# > 2 ? 2 : $# ))
args=(sync "$list")
[ -n "$dest" ] && args+=(--dest "$dest")
exec "$(ferry_bin)" "${args[@]}" "$@"
