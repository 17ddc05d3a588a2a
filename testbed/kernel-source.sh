#!/bin/bash
# Bring $KTREE to "Debian linux-source-6.12 + kernel/patches/series".
#
# The tree is a git repository whose root commit, tagged debian-base, is the
# pristine Debian source. Re-applying the series resets to that tag and runs
# `git am`, which rewrites only the files the series touches, so an edited
# patch costs a rebuild of what it touches and not a full kernel build.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=${1:-$KTREE}
stamp=$tree.series-applied

if [ ! -d "$tree/.git" ]; then
	[ -f "$KSRC_TARBALL" ] || die "$KSRC_TARBALL missing: run 'make deps'"
	step "extracting $(basename "$KSRC_TARBALL") ($(debian_kernel_version)) into $tree"
	tmp=$tree.tmp
	rm -rf "$tmp" && mkdir -p "$tmp"
	tar -C "$tmp" -xf "$KSRC_TARBALL" --strip-components=1
	step "recording the pristine source as git tag debian-base"
	git -C "$tmp" init -q
	git -C "$tmp" config user.name "vdpa live update test bed"
	git -C "$tmp" config user.email "testbed@localhost"
	git -C "$tmp" config gc.auto 0
	# Debian's top-level .gitignore ignores everything: add by force.
	git -C "$tmp" add -f -A .
	git -C "$tmp" commit -q -m "Debian linux-source-6.12 $(debian_kernel_version)"
	git -C "$tmp" tag debian-base
	rm -f "$stamp"
	mv "$tmp" "$tree"
fi

mapfile -t patches < <(series_patches)
want=$(series_hash)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi

rm -f "$stamp"
step "applying kernel/patches/series (${#patches[@]} patches) to $(basename "$tree")"
git -C "$tree" am --abort >/dev/null 2>&1 || true
git -C "$tree" checkout -q --detach debian-base 2>/dev/null || git -C "$tree" reset -q --hard debian-base
git -C "$tree" reset -q --hard debian-base
kver=$(make -s -C "$tree" kernelversion)
am_series "$tree" "Linux $kver (Debian $(debian_kernel_version))" "${patches[@]}"
echo "$want" > "$stamp"
