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
out=$TOP/qemu/patches
export_series "$dev" "$TOP/qemu/cover-letter.txt" "$out"
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
