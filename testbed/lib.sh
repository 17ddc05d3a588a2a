# Shared helpers for the test-bed scripts. Sourced, not run.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
BUILD=${BUILD:-$TOP/build}
KSRC_TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
# The tree `make kernel` builds: pristine Debian source plus the series.
KTREE=${KTREE:-$BUILD/linux}
KOBJ=${KOBJ:-$BUILD/kbuild}
JOBS=${JOBS:-$(nproc)}

# The vdpa_sim modes `make check` boots, in order: use_va and batch_mapping
# are boot-time parameters of vdpa_sim.
declare -A VM_MODES=(
	[pa-batch]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=1"
	[va-batch]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=1"
	[pa-map]="vdpa_sim.use_va=0 vdpa_sim.batch_mapping=0"
	[va-map]="vdpa_sim.use_va=1 vdpa_sim.batch_mapping=0"
)
VM_MODE_ORDER=(pa-batch va-batch pa-map va-map)

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

debian_kernel_version() {
	dpkg-query -W -f '${Version}' linux-source-6.12 2>/dev/null || echo unknown
}

# Patches named by kernel/patches/series, in order, as absolute paths.
series_patches() {
	local line
	[ -f "$TOP/kernel/patches/series" ] || return 0
	while read -r line; do
		line=${line%%#*}
		line=${line// /}
		[ -n "$line" ] && echo "$TOP/kernel/patches/$line"
	done < "$TOP/kernel/patches/series"
}

# What the applied tree is stamped with: the series file and its patches.
series_hash() {
	local patches
	mapfile -t patches < <(series_patches)
	(cat "$TOP/kernel/patches/series" 2>/dev/null; cat "${patches[@]}" /dev/null) |
		sha256sum | cut -d' ' -f1
}
