#!/bin/bash
# Stress suite of vhost-vdpa live update, run as root inside the test VM on
# the patched kernel, on one vdpa_sim block device.  Prints TAP.
#
#   lu-kill:   SIGKILL of the old image after each step of the update and
#              of the new image after each step of its restore (exec, fork,
#              transfer; reset and resume flow)
#   lu-race:   NEW_OWNER raced against itself, the parent's IOTLB writes,
#              close and death; REMAP against INVALIDATE (VA)
#   lu-random: seeded random multi-process sequences with kills and updates
#
# Environment: O (build output), STRESS_OPS (random operations, 10000),
# STRESS_RACE_ROUNDS (rounds per race, 10), STRESS_SEED (default: from the
# clock; printed, and a failure prints the command that replays it),
# STRESS_KILL_METHODS (comma-separated; default two of exec, fork, transfer
# per mode, so that make check covers each in a PA and a VA mode within
# its time; make check-stress sets all three).
set -u
O=${O:-${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}/user}
VMM=$O/vmm/vdpa-lu-vmm
T=$O/tests/vm
OPS=${STRESS_OPS:-10000}
ROUNDS=${STRESS_RACE_ROUNDS:-10}
SEED=${STRESS_SEED:-$(( $(date +%s%N) % 1000000007 ))}
LOG=${LOG:-/run/lu-stress}
mkdir -p "$LOG"

. "$(dirname "$0")/../../testbed/tap.sh"
. "$(dirname "$0")/../../testbed/guest.sh"
. "$(dirname "$0")/stress-limits.sh"

for f in "$VMM" "$T/lu-kill" "$T/lu-race" "$T/lu-random"; do
	[ -x "$f" ] || { echo "Bail out! $f missing: build userspace first"; exit 1; }
done
mode=$(vdpa_sim_mode)
echo "# stress: mode $mode, kernel $(uname -r), seed $SEED, $OPS random operations, $ROUNDS rounds per race"

reports() { dmesg | grep -cE 'WARNING:|BUG:|KASAN|possible circular|possible recursive|inconsistent lock|hung_task|INFO: task .* blocked|Oops|general protection|refcount_t|list_(add|del) corruption' ; }
reports_before=$(reports)

path=$("$VMM" --create blk:lustress 2>&1)
tap_ok $? "$mode stress: create vdpa_sim blk device bound to vhost_vdpa ($path)"

# run_prog NAME TIMEOUT CMD...: its "ok - " lines become tests; a program
# that ends without any, or with a status the lines don't explain, fails.
run_prog() {
	local name=$1 limit=$2 out=$LOG/$1.log st seen=0
	shift 2
	local start=$SECONDS
	timeout -k 5 "$limit" "$@" > "$out" 2>&1
	st=$?
	while read -r line; do
		case $line in
		"ok - "*) tap_ok 0 "$mode $name: ${line#ok - }"; seen=1 ;;
		"not ok - "*) tap_ok 1 "$mode $name: ${line#not ok - }"; seen=1 ;;
		*) echo "# $line" ;;
		esac
	done < "$out"
	[ $st = 0 ] && [ $seen = 1 ]
	tap_ok $? "$mode $name: ended with status $st in $((SECONDS - start)) s$( [ $st = 124 ] && echo ' (TIMEOUT: hung)')"
}

case $mode in
pa-batch) methods=exec,fork ;;
va-batch) methods=fork,transfer ;;
pa-map) methods=transfer,exec ;;
*) methods=exec,fork ;;
esac
methods=${STRESS_KILL_METHODS:-$methods}
echo "# kill methods: $methods"
# shellcheck disable=SC2086 # the methods are words
run_prog lu-kill 900 "$T/lu-kill" "$path" ${methods//,/ }
run_prog lu-race 900 "$T/lu-race" "$path" "$ROUNDS" "$SEED"
run_prog lu-random "$(stress_random_limit "$OPS")" "$T/lu-random" "$path" --seed "$SEED" --ops "$OPS"

"$VMM" --destroy lustress
pins_balanced
tap_ok $? "$mode stress: pins balanced after the suite (acquired $pin_acquired, released $pin_released)"
new=$(( $(reports) - reports_before ))
[ "$new" = 0 ]
tap_ok $? "$mode stress: no kernel report during the suite ($new)"
[ "$new" = 0 ] || dmesg | tail -60 | sed 's/^/# /'

tap_done
