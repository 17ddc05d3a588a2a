#!/bin/bash
# Configure (tinyconfig + kernel/config/*.config) and build the test kernel.
#
# Usage: build-kernel.sh [TREE [OBJDIR [FRAGMENT...]]]
# Environment: KTARGETS, the make targets (default bzImage); HEARTBEAT,
# seconds between progress lines (default 60).
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
# A cold build runs for many minutes with nothing to show: say every
# HEARTBEAT seconds how long it has run and how many objects exist, against
# the count the last complete build left.
count_objects() { find "$obj" -name '*.o' 2>/dev/null | wc -l; }
heartbeat() {
	local total n t
	total=$(cat "$obj/.objects-built" 2>/dev/null || true)
	while sleep "${HEARTBEAT:-60}"; do
		n=$(count_objects) t=$(( $(date +%s) - start ))
		printf '    ... %dm%02ds, %d objects%s\n' $((t / 60)) $((t % 60)) "$n" \
			"${total:+ of $total last time}" >&2
	done
}
heartbeat &
heartbeat_pid=$!
trap 'kill $heartbeat_pid 2>/dev/null || true' EXIT
# shellcheck disable=SC2086 # several targets are several words
kmake -j"$JOBS" $targets
count_objects > "$obj/.objects-built"
step "built $targets in $(( $(date +%s) - start ))s in ${obj#"$TOP"/}"
