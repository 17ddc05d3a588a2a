#!/bin/bash
# Export build/kernel-tree (debian-base..series) to kernel/patches/ with
# git format-patch: numbered patches, a cover letter made from
# kernel/cover-letter.txt (first line: subject), and kernel/patches/series
# listing the patches (not the cover letter) in order.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dev=$BUILD/kernel-tree
[ -d "$dev/.git" ] || die "no ${dev#"$TOP"/}: run 'make kernel-tree' first"
[ -z "$(git -C "$dev" status --porcelain --untracked-files=no)" ] ||
	die "${dev#"$TOP"/} has uncommitted changes: commit them first"
cover=$TOP/kernel/cover-letter.txt
[ -s "$cover" ] || die "${cover#"$TOP"/} is missing"
out=$TOP/kernel/patches
rm -f "$out"/*.patch
# format-patch takes the cover letter's subject and body from the branch
# description.
branch=$(git -C "$dev" symbolic-ref --short HEAD)
git -C "$dev" config "branch.$branch.description" "$(cat "$cover")"
git -C "$dev" format-patch -q --no-signature --zero-commit --numbered \
	--cover-letter --cover-from-description=subject \
	-o "$out" debian-base..HEAD
(cd "$out" && ls -1 -- *.patch 2>/dev/null | grep -v '^0000-cover-letter\.patch$' || true) > "$out/series"
step "exported $(wc -l < "$out/series") patches and a cover letter to kernel/patches/"
