#!/bin/bash
# Configure (tinyconfig + kernel/config/*.config) and build the test kernel.
#
# Usage: build-kernel.sh [TREE [OBJDIR [FRAGMENT...]]]
# Environment: KTARGETS, the make targets (default bzImage).
# The configuration is regenerated only when a fragment changes, so an
# edited patch rebuilds only what it touches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tree=${1:-$KTREE}
obj=${2:-$KOBJ}
shift $(( $# > 2 ? 2 : $# ))
if [ $# -gt 0 ]; then
	fragments=("$@")
else
	fragments=("$TOP"/kernel/config/*.config)
fi
[ "${KASAN:-0}" = 1 ] && fragments+=("$TOP/kernel/config/kasan.config.opt")

mkdir -p "$obj"
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Paths under the checkout reach ccache relative to the object directory,
# so a clone at another path hits the same cache entries.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$TOP}
cc="ccache gcc"
command -v ccache >/dev/null || cc=gcc
kmake() { make -s -C "$tree" O="$obj" CC="$cc" HOSTCC="$cc" "$@"; }

want=$(cat "${fragments[@]}" | sha256sum | cut -d' ' -f1)
if [ ! -f "$obj/.config" ] || [ "$(cat "$obj/.config-fragments" 2>/dev/null)" != "$want" ]; then
	step "configuring: tinyconfig + ${fragments[*]##*/}"
	kmake tinyconfig >/dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "${fragments[@]}" >/dev/null
	kmake olddefconfig >/dev/null
	# merge_config.sh only warns when Kconfig drops a value (unmet
	# dependency); a dropped driver would silently skip its tests.
	missing=0
	for f in "${fragments[@]}"; do
		while IFS= read -r opt; do
			grep -qx "$opt" "$obj/.config" || { echo "  not set: $opt (from ${f##*/})" >&2; missing=1; }
		done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$f")
	done
	[ $missing = 0 ] || die "Kconfig dropped options above: check their dependencies"
	echo "$want" > "$obj/.config-fragments"
fi

targets=${KTARGETS:-bzImage}
step "building $targets of $(kmake kernelversion) in ${obj#"$TOP"/} (-j$JOBS)"
start=$(date +%s)
# shellcheck disable=SC2086 # several targets are several words
kmake -j"$JOBS" $targets
step "built $targets in $(( $(date +%s) - start ))s in ${obj#"$TOP"/}"
