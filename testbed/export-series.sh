#!/bin/bash
# Export build/kernel-tree (debian-base..series) to kernel/patches/ with
# git format-patch and rewrite kernel/patches/series to match.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dev=$BUILD/kernel-tree
[ -d "$dev/.git" ] || die "no ${dev#"$TOP"/}: run 'make kernel-tree' first"
[ -z "$(git -C "$dev" status --porcelain --untracked-files=no)" ] ||
	die "${dev#"$TOP"/} has uncommitted changes: commit them first"
out=$TOP/kernel/patches
rm -f "$out"/*.patch
git -C "$dev" format-patch -q --no-signature --zero-commit --no-numbered \
	-o "$out" debian-base..HEAD
(cd "$out" && ls -1 -- *.patch 2>/dev/null || true) > "$out/series"
step "exported $(wc -l < "$out/series") patches to kernel/patches/"
