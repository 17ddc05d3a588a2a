#!/bin/bash
# Build the test kernel after each patch of the series in turn, so that
# every patch builds on its own (git bisect must never stop on a broken
# build), and build the selftests wherever a patch leaves them. Uses
# $KTREE and $KOBJ, so each step rebuilds only what the patch touches; the
# tree ends with the whole series applied, as `make kernel` leaves it.
#
# Usage: check-bisect.sh [FIRST]   start at patch number FIRST (default 1)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

first=${1:-1}
mapfile -t patches < <(series_patches)
[ ${#patches[@]} -gt 0 ] || die "the series is empty"
"$TOP/testbed/kernel-source.sh"
stamp=$KTREE.series-applied
rm -f "$stamp"
git -C "$KTREE" reset -q --hard debian-base
log=$BUILD/check-bisect.log
: > "$log"
n=0 failed=0
for p in "${patches[@]}"; do
	n=$((n + 1))
	git -C "$KTREE" am -q --keep-cr "$p" || die "$(basename "$p") does not apply"
	[ $n -lt "$first" ] && continue
	step "[$n/${#patches[@]}] $(basename "$p")"
	if ! "$TOP/testbed/build-kernel.sh" >>"$log" 2>&1; then
		echo "FAIL [$n] $(basename "$p"): the kernel does not build (see ${log#"$TOP"/})" >&2
		failed=$((failed + 1))
		continue
	fi
	sel=$KTREE/tools/testing/selftests/vhost_vdpa
	# The patches before the first selftest have none to build; once they
	# exist, a patch that loses them fails.
	if [ ! -d "$sel" ] && [ "${had_selftests:-0}" = 1 ]; then
		echo "FAIL [$n] $(basename "$p"): the selftests are gone" >&2
		failed=$((failed + 1))
	elif [ -d "$sel" ]; then
		had_selftests=1
		make -s -C "$KOBJ" headers_install >>"$log" 2>&1
		out=$BUILD/check-bisect/selftests
		rm -rf "$out" && mkdir -p "$out"
		if ! make -s -C "$sel" OUTPUT="$out" \
			KHDR_INCLUDES="-isystem $KOBJ/usr/include" >>"$log" 2>&1; then
			echo "FAIL [$n] $(basename "$p"): the selftests do not build" >&2
			failed=$((failed + 1))
		fi
	fi
done
# The tree now holds the whole series: let `make kernel` know.
series_hash > "$stamp"
echo "check-bisect: $((n - first + 1)) patches built, $failed failed"
[ $failed = 0 ]
