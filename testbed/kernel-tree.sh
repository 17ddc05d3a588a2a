#!/bin/bash
# Create build/kernel-tree: a git repository for working on the series, with
# the pristine Debian source tagged debian-base and one commit per patch of
# kernel/patches/series on branch "series". `make series` exports it back.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dev=$BUILD/kernel-tree
if [ -d "$dev/.git" ]; then
	echo "$dev exists; export it with 'make series' or remove it to start over" >&2
	exit 0
fi
"$TOP/testbed/kernel-source.sh" >/dev/null
step "cloning the pristine source into ${dev#"$TOP"/}"
git clone -q --no-checkout "$KTREE" "$dev"
git -C "$dev" config user.name "$(git -C "$TOP" config user.name || echo developer)"
git -C "$dev" config user.email "$(git -C "$TOP" config user.email || echo developer@localhost)"
git -C "$dev" config gc.auto 0
git -C "$dev" checkout -q -b series debian-base
mapfile -t patches < <(series_patches)
for p in "${patches[@]}"; do
	git -C "$dev" am -q --keep-cr "$p" || die "patch $(basename "$p") does not apply"
done
step "${dev#"$TOP"/}: branch series = debian-base + ${#patches[@]} patches"
