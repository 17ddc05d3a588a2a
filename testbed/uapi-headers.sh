#!/bin/bash
# lib/uapi/linux/ holds the series' uapi headers as `make headers_install`
# of the patched tree writes them, so that libvdpalu and its users build on
# a stock distribution, whose linux-libc-dev predates the series.
#
# Usage: uapi-headers.sh           regenerate lib/uapi from $KTREE
#        uapi-headers.sh --check   TAP: lib/uapi matches $KTREE, or fails
# Environment: KHDR, headers_install output of $KTREE to compare with
# (make check has it); without it they are installed afresh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HEADERS=(vhost.h vhost_types.h vduse.h)
dest=$TOP/lib/uapi/linux
check=0
case ${1:-} in
--check) check=1 ;;
"") ;;
*) die "usage: uapi-headers.sh [--check]" ;;
esac
[ -d "$KTREE/include/uapi/linux" ] || die "no kernel tree at $KTREE: run 'make kernel-source'"

obj=$BUILD/uapi-headers
mkdir -p "$obj"
if [ -n "${KHDR:-}" ] && [ $check = 1 ]; then
	gen=$KHDR/linux
else
	# headers_install needs no .config: ~20 s in an object directory of
	# its own, which leaves $KOBJ's build alone.
	make -s -C "$KTREE" O="$obj" INSTALL_HDR_PATH="$obj/install" headers_install >/dev/null
	gen=$obj/install/include/linux
fi

if [ $check = 0 ]; then
	mkdir -p "$dest"
	for h in "${HEADERS[@]}"; do
		install -m644 "$gen/$h" "$dest/$h"
	done
	step "lib/uapi/linux: ${HEADERS[*]} from $(git -C "$KTREE" describe --always 2>/dev/null || echo "$KTREE")"
	exit 0
fi
echo "1..${#HEADERS[@]}"
n=0 failed=0
for h in "${HEADERS[@]}"; do
	n=$((n + 1))
	if diff -u "$dest/$h" "$gen/$h" > "$obj/$h.diff" 2>&1; then
		echo "ok $n lib/uapi/linux/$h is the series' include/uapi/linux/$h"
	else
		echo "not ok $n lib/uapi/linux/$h differs from the series': run 'make uapi-headers'"
		sed 's/^/# /' "$obj/$h.diff" | head -40
		failed=1
	fi
done
exit $failed
