#!/bin/bash
# What the series defines for userspace, kept in the repo as the patched
# tree has it, so that libvdpalu and its users build on a stock
# distribution (whose linux-libc-dev predates the series) and the
# interface's documentation can be read without building anything:
#   lib/uapi/linux/  the uapi headers, as `make headers_install` writes them
#   docs/            the series' userspace-API page (Documentation/userspace-api)
#
# Usage: uapi-headers.sh           regenerate both from $KTREE
#        uapi-headers.sh --check   TAP: both match $KTREE, or fails
# Environment: KHDR, headers_install output of $KTREE to compare with
# (make check has it); without it they are installed afresh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

HEADERS=(vhost.h vhost_types.h vduse.h)
dest=$TOP/lib/uapi/linux
DOCS=(vhost-vdpa-live-update.rst)
docsrc=$KTREE/Documentation/userspace-api
docdest=$TOP/docs
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
	mkdir -p "$dest" "$docdest"
	for h in "${HEADERS[@]}"; do
		install -m644 "$gen/$h" "$dest/$h"
	done
	for d in "${DOCS[@]}"; do
		install -m644 "$docsrc/$d" "$docdest/$d"
	done
	step "lib/uapi/linux: ${HEADERS[*]}; docs: ${DOCS[*]}; from $(git -C "$KTREE" describe --always 2>/dev/null || echo "$KTREE")"
	exit 0
fi
. "$TOP/testbed/tap.sh"
same() {	# COPY ORIGINAL NAME-OF-COPY NAME-OF-ORIGINAL
	if diff -u "$1" "$2" > "$obj/diff" 2>&1; then
		tap_ok 0 "$3 is the series' $4"
	else
		tap_ok 1 "$3 differs from the series' $4: run 'make uapi-headers'"
		head -40 "$obj/diff" | tap_diag
	fi
}
for h in "${HEADERS[@]}"; do
	same "$dest/$h" "$gen/$h" "lib/uapi/linux/$h" "include/uapi/linux/$h"
done
for d in "${DOCS[@]}"; do
	same "$docdest/$d" "$docsrc/$d" "docs/$d" "Documentation/userspace-api/$d"
done
tap_done
