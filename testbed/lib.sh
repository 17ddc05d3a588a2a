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

# What run-vm.sh's exit status STATUS says went wrong (see its header);
# nothing for 0.
vm_failure() {
	case $1 in
	0) ;;
	120) echo "the kernel logged a report (above)" ;;
	121) echo "the guest did not reach its job (boot timeout)" ;;
	122) echo "the VM ended before its job did (above)" ;;
	124) echo "the watchdog stopped the VM" ;;
	125) echo "the VM could not be run (above)" ;;
	*) echo "the VM job ended with status $1" ;;
	esac
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

debian_kernel_version() {
	dpkg-query -W -f '${Version}' linux-source-6.12 2>/dev/null || echo unknown
}

# Patches named by a series file (DIR/series, DIR kernel/patches unless
# given), in order, as absolute paths.
series_patches() {
	local dir=${1:-$TOP/kernel/patches} line
	[ -f "$dir/series" ] || return 0
	while read -r line; do
		line=${line%%#*}
		line=${line// /}
		[ -n "$line" ] && echo "$dir/$line"
	done < "$dir/series"
}

# am_series TREE WHAT PATCH...: git am each patch onto TREE's checkout; a
# patch that does not apply stops the run naming it and WHAT (the version
# the series was applied to).
am_series() {
	local tree=$1 what=$2 p
	shift 2
	for p in "$@"; do
		[ -f "$p" ] || die "$(dirname "${p#"$TOP"/}")/series names $(basename "$p"), which does not exist"
		if ! git -C "$tree" am -q --keep-cr "$p" >"$tree.am.log" 2>&1; then
			git -C "$tree" am --abort >/dev/null 2>&1 || true
			grep -E '^(error|fatal|Patch failed)' "$tree.am.log" >&2 || cat "$tree.am.log" >&2
			die "patch $(basename "$p") does not apply to $what"
		fi
		echo "  applied $(basename "$p")" >&2
	done
}

# What the applied tree is stamped with: the series file and its patches.
series_hash() {
	local patches
	mapfile -t patches < <(series_patches)
	(cat "$TOP/kernel/patches/series" 2>/dev/null; cat "${patches[@]}" /dev/null) |
		sha256sum | cut -d' ' -f1
}

# export_series TREE COVER OUT: debian-base..HEAD of the git tree TREE as
# numbered git format-patch files in OUT, a cover letter made from COVER
# (first line: subject) and OUT/series listing the patches in order (not
# the cover letter).  The kernel's and QEMU's series are exported alike.
export_series() {
	local dev=$1 cover=$2 out=$3 branch
	[ -z "$(git -C "$dev" status --porcelain --untracked-files=no)" ] ||
		die "${dev#"$TOP"/} has uncommitted changes: commit them first"
	[ -s "$cover" ] || die "${cover#"$TOP"/} is missing"
	mkdir -p "$out"
	rm -f "$out"/*.patch
	# format-patch takes the cover letter's subject and body from the
	# branch description.
	branch=$(git -C "$dev" symbolic-ref --short HEAD)
	git -C "$dev" config "branch.$branch.description" "$(cat "$cover")"
	git -C "$dev" format-patch -q --no-signature --zero-commit --numbered \
		--cover-letter --cover-from-description=subject \
		-o "$out" debian-base..HEAD
	(cd "$out" && ls -1 -- *.patch 2>/dev/null | grep -v '^0000-cover-letter\.patch$' || true) > "$out/series"
}
