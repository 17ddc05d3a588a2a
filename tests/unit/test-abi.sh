#!/bin/bash
# libvdpalu as a VMM developer gets it: the shared library exports exactly
# the functions vdpalu.h marks VDPALU_API, carries the SONAME of its major
# version, and `make install` / `make uninstall` with PREFIX, LIBDIR and
# DESTDIR give headers and a .pc that build a program on a stock
# distribution (its own /usr/include/linux predates the series).
# Environment: O, the build output directory (default build/user). TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd -P)
O=${O:-$top/build/user}
lib=$top/lib
. "$top/testbed/tap.sh"

ver() { sed -n "s/^#define VDPALU_VERSION_$1[[:space:]]*\([0-9]*\).*/\1/p" "$lib/vdpalu.h"; }
major=$(ver MAJOR) version=$(ver MAJOR).$(ver MINOR).$(ver PATCH)
so=$O/lib/libvdpalu.so.$version

[ -f "$so" ]
tap_ok $? "the shared library is libvdpalu.so.$version, from vdpalu.h's version macros"
soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libvdpalu.so.$major" ]
tap_ok $? "its SONAME is libvdpalu.so.$major (${soname:-none})"

# Declarations that start "VDPALU_API <type> vdpalu_name(".
public=$(grep -o '^VDPALU_API [^(]*\bvdpalu_[a-z0-9_]*(' "$lib/vdpalu.h" |
	grep -o 'vdpalu_[a-z0-9_]*' | sort -u)
exported=$(nm -D --defined-only "$so" 2>/dev/null | awk '{ print $3 }' | sort -u)
leaked=$(comm -13 <(echo "$public") <(echo "$exported"))
missing=$(comm -23 <(echo "$public") <(echo "$exported"))
[ -n "$exported" ] && [ -z "$leaked" ]
tap_ok $? "no internal symbol is exported ($(echo "$exported" | wc -w) exported; leaked: ${leaked:-none})" 
[ -n "$public" ] && [ -z "$missing" ]
tap_ok $? "every VDPALU_API function is exported ($(echo "$public" | wc -w); missing: $(echo ${missing:-none}))"

# Install into a staging directory, as a distribution package would.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
prefix=/opt/vdpalu libdir=/opt/vdpalu/lib64
make -s -C "$lib" O="$O" PREFIX=$prefix LIBDIR=$libdir DESTDIR="$stage" install > "$stage.log" 2>&1
st=$?
[ $st = 0 ] && [ -f "$stage$libdir/libvdpalu.so.$version" ] &&
	[ "$(readlink "$stage$libdir/libvdpalu.so.$major")" = "libvdpalu.so.$version" ] &&
	[ "$(readlink "$stage$libdir/libvdpalu.so")" = "libvdpalu.so.$major" ] &&
	[ -f "$stage$prefix/include/vdpalu.h" ] && [ -f "$stage$prefix/include/vdpalu/linux/vhost.h" ] &&
	[ -f "$stage$libdir/pkgconfig/vdpalu.pc" ]
tap_ok $? "make install PREFIX=$prefix LIBDIR=$libdir DESTDIR=...: library, links, headers, .pc"
[ $st = 0 ] || sed 's/^/# /' "$stage.log"
rm -f "$stage.log"

# A program that uses what the series added, against the installed files
# only: pkg-config with the staging directory as sysroot.
cat > "$stage/prog.c" <<'PROG'
#include <stdio.h>
#include <vdpalu.h>
#if VDPALU_VERSION < VDPALU_VERSION_NUM(0, 1, 0)
#error version macros
#endif
int main(void)
{
	unsigned long long b = VDPALU_BACKEND_WANTED | (1ULL << VHOST_BACKEND_F_SUSPEND);
	printf("%d.%d.%d %llx %d\n", VDPALU_VERSION_MAJOR, VDPALU_VERSION_MINOR,
	       VDPALU_VERSION_PATCH, b, vdpalu_now_ns() > 0);
	return 0;
}
PROG
pc() { PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$stage$libdir/pkgconfig pkg-config "$@" vdpalu; }
out=$(gcc -std=gnu11 -Wall -Werror $(pc --cflags) -o "$stage/prog" "$stage/prog.c" $(pc --libs) 2>&1 &&
	LD_LIBRARY_PATH=$stage$libdir "$stage/prog" 2>&1)
st=$?
[ $st = 0 ] && [ "${out%% *}" = "$version" ] && [ "${out##* }" = 1 ]
tap_ok $? "a program builds against the installed header and .pc and runs with the shared library ($out)"
[ "$(pc --modversion)" = "$version" ]
tap_ok $? "the .pc says version $version"

make -s -C "$lib" O="$O" PREFIX=$prefix LIBDIR=$libdir DESTDIR="$stage" uninstall > /dev/null 2>&1
left=$(cd "$stage" && find . -type f -o -type l | grep -v '^./prog' | sort | tr '\n' ' ')
[ -z "$left" ]
tap_ok $? "make uninstall removes every installed file (left: ${left:-none})"

tap_done
