#!/bin/bash
# The command lines of vdpa-lu-vmm, vdpa-lu-vduse-blk and vdpa-lu-blackout:
# a bad value, an unknown value, an unknown option or an extra argument is
# refused with status 2 and a message on stderr that names the option and
# the value, before the program does anything (no device is touched:
# these run on the host, where there is none); --help and --version work.
# Environment: O, the build output directory (default build/user). TAP.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd -P)
O=${O:-$top/build/user}
vmm=$O/vmm/vdpa-lu-vmm vduse=$O/vmm/vdpa-lu-vduse-blk blackout=$O/bench/vdpa-lu-blackout
# The version the library header declares, as --version must print it
version=$(sed -n 's/^#define VDPALU_VERSION_\(MAJOR\|MINOR\|PATCH\)[[:space:]]*\([0-9]*\).*/\2/p' \
	"$top/lib/vdpalu.h" | paste -sd.)
. "$top/testbed/tap.sh"
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

# refused WHAT... -- PROGRAM ARGS: status 2, nothing on stdout, and each
# WHAT on stderr.
refused() {
	local want=() st w miss=
	while [ "$1" != -- ]; do want+=("$1"); shift; done
	shift
	"$@" > "$out" 2> "$err" < /dev/null
	st=$?
	for w in "${want[@]}"; do grep -qF -- "$w" "$err" || miss="$miss '$w'"; done
	[ $st = 2 ] && [ ! -s "$out" ] && [ -z "$miss" ]
	tap_ok $? "${1##*/} ${*:2}: refused, status $st: $(head -1 "$err")${miss:+ (missing:$miss)}"
}
helps() {	# PROGRAM OPTION WORD: status 0, WORD on stdout
	"$1" "$2" > "$out" 2> "$err" < /dev/null
	local st=$?
	[ $st = 0 ] && grep -q -- "$3" "$out" && [ ! -s "$err" ]
	tap_ok $? "${1##*/} $2: status $st, prints '$3'"
}

for p in "$vmm" "$vduse" "$blackout"; do
	[ -x "$p" ] || { echo "Bail out! $p missing: build userspace first"; exit 1; }
	helps "$p" --help usage:
	helps "$p" --version "${version//./\\.}"
	refused "${p##*/}: unknown option '--bogus'" -- "$p" --bogus
	# The program's name, not the path it was started by
	head -1 "$err" | grep -q "^${p##*/}: "
	tap_ok $? "${p##*/} --bogus: the message starts with the program's name: $(head -1 "$err")"
	refused "option '--help' takes no value" -- "$p" --help=x
done

refused --updates 12x "not a number" -- "$vmm" --dev /dev/null --updates 12x
refused --updates -1 -- "$vmm" --dev /dev/null --updates -1
refused --window 0 "out of range" -- "$vmm" --dev /dev/null --window 0
refused --updates 0x10 "not a number" -- "$vmm" --dev /dev/null --updates 0x10
# Decimal, never octal: 017 is seventeen regions, one too many, not fifteen
refused --regions 017 "out of range" -- "$vmm" --dev /dev/null --regions 017
refused --mem 99999999999999999999 -- "$vmm" --dev /dev/null --mem 99999999999999999999
refused --update-after " 5" -- "$vmm" --dev /dev/null --update-after " 5"
refused --regions 17 -- "$vmm" --dev /dev/null --regions 17
refused --memlock 1k -- "$vmm" --dev /dev/null --memlock 1k
refused --flow sideways "auto, reset, resume" -- "$vmm" --dev /dev/null --flow sideways
refused --create "net:" -- "$vmm" --create net:
refused --create "disk" -- "$vmm" --create disk:x
refused --create --caps "one command" -- "$vmm" --create net:a --caps /dev/null
refused --mac 52:54:00:12:34 "not a MAC" -- "$vmm" --create net:a --mac 52:54:00:12:34
refused --mac 52:54:00:12:34:5g "not a MAC" -- "$vmm" --create net:a --mac 52:54:00:12:34:5g
refused --mac "only with --create net" -- "$vmm" --create blk:a --mac 52:54:00:12:34:56
refused --mac "only with --create net" -- "$vmm" --dev /dev/null --mac 52:54:00:12:34:56
refused "unexpected argument 'extra'" -- "$vmm" --dev /dev/null extra
refused "nothing to do" -- "$vmm"
refused "option '--dev' needs a value" -- "$vmm" --dev
refused "unexpected argument 'b'" -- "$vduse" a b
refused "no device NAME" -- "$vduse"
refused "a/b" -- "$vduse" a/b
refused --mem 0 -- "$blackout" --dev /dev/null --csv /dev/null --mem 0
refused --runs 5x -- "$blackout" --dev /dev/null --csv /dev/null --mem 8 --runs 5x
refused --continue 7 -- "$blackout" --dev /dev/null --csv /dev/null --mem 8 --continue 7
refused "--dev, --csv and --mem" -- "$blackout" --mem 8
refused "unexpected argument 'x'" -- "$blackout" --dev /dev/null --csv /dev/null --mem 8 x
refused --label "one CSV field" -- "$blackout" --dev /dev/null --csv /dev/null --mem 8 --label a,b
refused --label "one CSV field" -- "$blackout" --dev /dev/null --csv /dev/null --mem 8 --label ""

tap_done
