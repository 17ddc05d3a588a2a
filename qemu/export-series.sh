#!/bin/bash
# Export build/qemu-tree (debian-base..HEAD) to qemu/patches/ with
# git format-patch: numbered patches, a cover letter made from
# qemu/cover-letter.txt (first line: subject), and qemu/patches/series
# listing the patches (not the cover letter) in order.  Each patch is run
# through QEMU's scripts/checkpatch.pl; a warning or error stops the export.
set -euo pipefail
. "$(dirname "$0")/../testbed/lib.sh"

dev=${QTREE:-$BUILD/qemu-tree}
[ -d "$dev/.git" ] || die "no ${dev#"$TOP"/}: run 'make qemu' first"
[ -z "$(git -C "$dev" status --porcelain --untracked-files=no)" ] ||
	die "${dev#"$TOP"/} has uncommitted changes: commit them first"
cover=$TOP/qemu/cover-letter.txt
[ -s "$cover" ] || die "${cover#"$TOP"/} is missing"
out=$TOP/qemu/patches
mkdir -p "$out"
rm -f "$out"/*.patch
branch=$(git -C "$dev" symbolic-ref --short HEAD)
git -C "$dev" config "branch.$branch.description" "$(cat "$cover")"
git -C "$dev" format-patch -q --no-signature --zero-commit --numbered \
	--cover-letter --cover-from-description=subject \
	-o "$out" debian-base..HEAD
(cd "$out" && ls -1 -- *.patch 2>/dev/null | grep -v '^0000-cover-letter\.patch$' || true) > "$out/series"
# The uapi header patch cannot come from scripts/update-linux-headers.sh
# while the kernel series is not in mainline: that one warning is expected
# (and said in the patch); any other warning or error stops the export.
bad=0
while read -r p; do
	(cd "$dev" && perl scripts/checkpatch.pl "$out/$p") >"$BUILD/qemu-checkpatch.log" 2>&1 || true
	if grep -E '^(ERROR|WARNING):' "$BUILD/qemu-checkpatch.log" |
		grep -qv 'are you using scripts/update-linux-headers.sh'; then
		cat "$BUILD/qemu-checkpatch.log" >&2
		echo "checkpatch: $p" >&2
		bad=1
	fi
done < "$out/series"
# The tree now matches the series: fetch-build.sh may re-apply it.
want=$( (cat "$dev.version"; cat "$out/series"; sed "s|^|$out/|" "$out/series" | xargs cat) | sha256sum | cut -d' ' -f1)
printf '%s\n%s\n' "$want" "$(git -C "$dev" rev-parse HEAD)" > "$dev.series-applied"
step "exported $(wc -l < "$out/series") patches and a cover letter to qemu/patches/"
[ $bad = 0 ] || die "checkpatch.pl complained (above)"
