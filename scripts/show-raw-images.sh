#!/usr/bin/env bash
# Drop-in for the old show-raw-images.sh: prints every image of the list, normalized.
#   scripts/show-raw-images.sh [LIST]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
exec "$(ferry_bin)" show-raw-images "${1:-${SOURCE_IMAGES_LIST:-source-images.list}}"
