#!/bin/bash
# Refuse, before anything is built, what the test bed cannot run: paths the
# guest cannot see or the kernel command line cannot carry, and unknown
# vdpa_sim modes. Silent when all is well.
#
# Usage: preflight.sh [--paths PATH...] [--modes MODE...]
#   no arguments: the checkout, BUILD, KTREE and KOBJ, and $MODES
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Paths reach the guest as words of the kernel command line (lu_top=...,
# lu_keep=a:b:c), which has no quoting and holds 2048 bytes in all.
check_path() {
	local what=$1 p
	p=$(realpath -m "$2")
	[[ $p =~ ^[A-Za-z0-9._/+@,=-]+$ ]] ||
		die "$what $p: the test bed passes paths on the kernel command line; use one without spaces, colons or quotes"
	[ ${#p} -le 200 ] ||
		die "$what $p: longer than 200 characters, too long for the kernel command line"
	case $p in
	/proc|/proc/*|/sys|/sys/*|/dev|/dev/*)
		die "$what $p: the guest mounts its own /proc, /sys and /dev there" ;;
	/|/tmp|/run|/root|/var/tmp|/var/run|/var/lib/dhcp)
		die "$what $p: the guest needs this directory writable (tmpfs); use a directory below it" ;;
	esac
}

paths=() modes=() which=
if [ $# = 0 ]; then
	paths=("$TOP" "$BUILD" "$KTREE" "$KOBJ")
	read -ra modes <<< "${MODES:-}"
fi
for a in "$@"; do
	case $a in
	--paths|--modes) which=$a ;;
	-*) die "preflight.sh: unknown option $a" ;;
	*)
		case $which in
		--paths) paths+=("$a") ;;
		--modes) modes+=("$a") ;;
		*) die "usage: preflight.sh [--paths PATH...] [--modes MODE...]" ;;
		esac ;;
	esac
done
for p in "${paths[@]}"; do
	check_path path "$p"
done
for m in "${modes[@]}"; do
	[ -n "${VM_MODES[$m]:-}" ] || die "unknown mode '$m' in MODES (one of: ${VM_MODE_ORDER[*]})"
done
