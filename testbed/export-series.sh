#!/bin/bash
# Export build/kernel-tree (debian-base..series) to kernel/patches/ with
# git format-patch: numbered patches, a cover letter made from
# kernel/cover-letter.txt (first line: subject), and kernel/patches/series
# listing the patches (not the cover letter) in order.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dev=$BUILD/kernel-tree
[ -d "$dev/.git" ] || die "no ${dev#"$TOP"/}: run 'make kernel-tree' first"
out=$TOP/kernel/patches
export_series "$dev" "$TOP/kernel/cover-letter.txt" "$out"
step "exported $(wc -l < "$out/series") patches and a cover letter to kernel/patches/"
