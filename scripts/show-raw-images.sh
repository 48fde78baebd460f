#!/usr/bin/env bash
# Drop-in for the old show-raw-images.sh: prints every image of the list, normalized.
#   scripts/show-raw-images.sh [LIST] [`ferry show-raw-images` flags ...]
# LIST defaults to $SOURCE_IMAGES_LIST, then ./source-images.list. Flags (words starting with
# `-`, with their values, and everything after `--`) go to ferry wherever they stand;
# other extra words are an error.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
split_args show-raw-images 1 "usage: $0 [LIST] [ferry show-raw-images flags ...]" "$@"
exec "$(ferry_bin)" show-raw-images "${positional[0]:-${SOURCE_IMAGES_LIST:-source-images.list}}" "${flags[@]}"
