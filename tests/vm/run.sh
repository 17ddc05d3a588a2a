#!/bin/bash
# End-to-end suite of vhost-vdpa live update, run as root inside the test VM
# on the patched kernel.  Prints TAP.
#
# For the vdpa_sim mode the VM was booted with (use_va, batch_mapping), on a
# net and a block device, in the reset and the resume flow:
#   20 exec updates (to another binary and on), 5 fork updates, 5 SCM_RIGHTS
#   transfers, all with requests in flight: 0 lost, 0 duplicated, every
#   frame/block verified, VmPin preserved, pins balanced after exit;
# plus libvdpalu's refusals against the real device; and the same VMM over a
# VDUSE block device served by vdpa-lu-vduse-blk.
#
# Tests that need kernel features the running kernel lacks fail: this suite
# is a statement about the patched kernel, not a probe of what exists.
#
# Environment: O (build output, default $BUILD/user),
# EXEC_UPDATES / FORK_UPDATES / TRANSFERS (20/5/5), UPDATE_AFTER (100),
# VDUSE=0 to leave the VDUSE part out.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd -P)
. "$top/testbed/tap.sh"
. "$top/testbed/guest.sh"
O=${O:-${BUILD:-$top/build}/user}
VMM=$O/vmm/vdpa-lu-vmm
VMM2=$O/vmm/vdpa-lu-vmm-v2
REFUSE=$O/tests/vm/lu-refuse
BLACKOUT=$O/bench/vdpa-lu-blackout
EXEC_UPDATES=${EXEC_UPDATES:-20}
FORK_UPDATES=${FORK_UPDATES:-5}
TRANSFERS=${TRANSFERS:-5}
N=${UPDATE_AFTER:-100}
T=${LU_TIMEOUT:-300}
LOG=${LOG:-/run/lu-tests}
mkdir -p "$LOG"

# After every run all pins must be back: the devices stay, but no VMM holds
# them open.
pins_balanced_ok() {	# NAME
	pins_balanced
	tap_ok $? "$1: pins balanced after exit (nr_foll_pin_acquired $pin_acquired, released $pin_released$( [ "$pin_wait_ms" -gt 0 ] && echo ", after $pin_wait_ms ms"))"
}

for f in "$VMM" "$VMM2" "$REFUSE" "$BLACKOUT"; do
	[ -x "$f" ] || { echo "Bail out! $f missing: build userspace first"; exit 1; }
done

# The booted mode decides what applies.
mode=$(vdpa_sim_mode)
echo "# vdpa_sim mode $mode, kernel $(uname -r)"

devs=()
declare -A dev	# type -> /dev/vhost-vdpa-N
for type in net blk; do
	name=lu$type
	path=$("$VMM" --create "$type:$name" 2>&1)
	tap_ok $? "$mode: create vdpa_sim $type device bound to vhost_vdpa ($path)"
	dev[$type]=$path
	devs+=("$name")
done

# Kernel features this mode needs: missing ones fail here, loudly.
NEW_OWNER=$((1 << 9)) IOTLB_REMAP=$((1 << 10)) SUSPEND=$((1 << 4))
RESUME=$((1 << 5)) PERSIST=$((1 << 8))
for type in net blk; do
	path=${dev[$type]}
	caps=$("$VMM" --caps "$path" 2>&1) || caps=0
	echo "# $type backend features offered: $caps"
	for f in NEW_OWNER SUSPEND RESUME PERSIST; do
		(( caps & ${!f} )); tap_ok $? "$mode: $type device offers VHOST_BACKEND_F_$f"
	done
	if [ "${mode%%-*}" = va ]; then
		(( caps & IOTLB_REMAP )); tap_ok $? "$mode: VA $type device offers VHOST_BACKEND_F_IOTLB_REMAP"
	else
		(( !(caps & IOTLB_REMAP) )); tap_ok $? "$mode: PA $type device does not need VHOST_BACKEND_F_IOTLB_REMAP"
	fi
done

# Exec updates leave the old image's address space to a keeper until the
# new image runs (vdpalu_keep_old_mm()); none may outlive its release.
# Waits up to 5 s for a teardown that is still on its way.
old_mm_released() {	# NAME
	local i left
	for i in $(seq 50); do
		left=$(cat /proc/[0-9]*/stat 2>/dev/null |
			awk '$2 == "(vdpalu-old-mm)" && $3 != "Z"' | wc -l)
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	[ "$left" = 0 ]
	tap_ok $? "$1: every old address space was released ($left keepers left)"
}

# run_vmm NAME EXPECTED_UPDATES ARGS...: one VMM run and its checks.
run_vmm() {
	local name=$1 k=$2 out=$LOG/$1.log st
	shift 2
	timeout "$T" "$@" > "$out" 2>&1
	st=$?
	# Every image's timeline, for the record.
	grep -E 'update [0-9]+/|totals:|error' "$out" | tap_diag
	grep -q 'verdict: PASS' "$out" && [ $st = 0 ] &&
		grep -q "lost=0 duplicated=0 bad=0 updates=$k/$k" "$out" &&
		! grep -q 'error' "$out"
	tap_ok $? "$name: $k updates, 0 lost, 0 duplicated, all verified, VmPin preserved"
	pins_balanced_ok "$name"
	case $name in *exec*) old_mm_released "$name" ;; esac
}

for type in net blk; do
	path=${dev[$type]}
	for flow in reset resume; do
		t="$mode $type $flow"
		run_vmm "$t exec" "$EXEC_UPDATES" "$VMM" --dev "$path" --flow "$flow" \
			--update-after "$N" --updates "$EXEC_UPDATES" --exec "$VMM2"
		run_vmm "$t fork" "$FORK_UPDATES" "$VMM" --dev "$path" --flow "$flow" \
			--update-after "$N" --updates "$FORK_UPDATES" --fork

		# Transfer: the incoming processes start first, the last one reports.
		sock=/run/lu-$type-$flow.sock
		pids=()
		for i in $(seq 1 "$TRANSFERS"); do
			timeout "$T" "$VMM" --incoming "$sock.$i" > "$LOG/$type-$flow-in$i.log" 2>&1 &
			pids+=($!)
		done
		timeout "$T" "$VMM" --dev "$path" --flow "$flow" --update-after "$N" \
			--updates "$TRANSFERS" --transfer "$sock" > "$LOG/$type-$flow-xfer.log" 2>&1
		st=$?
		for p in "${pids[@]}"; do wait "$p" || st=1; done
		last=$LOG/$type-$flow-in$TRANSFERS.log
		cat "$LOG/$type-$flow-xfer.log" "$LOG/$type-$flow"-in*.log |
			grep -E 'update [0-9]+/|totals:|error|handed' | tap_diag
		[ $st = 0 ] && grep -q 'verdict: PASS' "$last" &&
			grep -q "lost=0 duplicated=0 bad=0 updates=$TRANSFERS/$TRANSFERS" "$last" &&
			! cat "$LOG/$type-$flow"-*.log | grep -q error
		tap_ok $? "$t transfer: $TRANSFERS processes took over by SCM_RIGHTS, 0 lost, 0 duplicated, all verified, VmPin preserved"
		pins_balanced_ok "$t transfer"
	done

	# A VMM that does not consent: the update is refused, traffic goes on.
	out=$LOG/$type-refused.log
	timeout "$T" "$VMM" --dev "$path" --update-after "$N" --updates 1 --no-new-owner > "$out" 2>&1
	tap_diag < "$out"
	grep -q 'did not ack VHOST_BACKEND_F_NEW_OWNER' "$out" &&
		grep -q 'lost=0 duplicated=0 bad=0 updates=0/0' "$out"
	tap_ok $? "$mode $type: update without consent refused, device ran on, 0 lost"
	pins_balanced_ok "$mode $type refused update"

	# A new process that refuses (RLIMIT_MEMLOCK below the pinned guest
	# memory: NEW_OWNER fails with ENOMEM) leaves the old one in charge.
	if [ "${mode%%-*}" = pa ]; then
		sock=/run/lu-$type-refuse.sock
		timeout "$T" "$VMM" --incoming "$sock.1" --memlock 1024 > "$LOG/$type-refuse-in.log" 2>&1 &
		pid=$!
		timeout "$T" "$VMM" --dev "$path" --update-after "$N" --updates 1 \
			--transfer "$sock" > "$LOG/$type-refuse-xfer.log" 2>&1
		wait $pid
		cat "$LOG/$type-refuse-in.log" "$LOG/$type-refuse-xfer.log" | tap_diag
		grep -q 'RLIMIT_MEMLOCK too small' "$LOG/$type-refuse-in.log" &&
			grep -q 'resuming here' "$LOG/$type-refuse-xfer.log" &&
			grep -q 'lost=0 duplicated=0 bad=0 updates=0/0' "$LOG/$type-refuse-xfer.log"
		tap_ok $? "$mode $type: new process refused the transfer (ENOMEM), the old one resumed, 0 lost"
		pins_balanced_ok "$mode $type refused transfer"
	fi

	# Library refusals against the device.
	"$REFUSE" "$path" > "$LOG/$type-lu-refuse.log" 2>&1
	while read -r line; do
		case $line in
		"ok - "*) tap_ok 0 "$mode $type: ${line#ok - }" ;;
		"not ok - "*) tap_ok 1 "$mode $type: ${line#not ok - }" ;;
		*) echo "# $line" ;;
		esac
	done < "$LOG/$type-lu-refuse.log"
	pins_balanced_ok "$mode $type lu-refuse"
done

# The benchmark's process chain, small: that it runs and measures all four
# methods (its figures belong to `make bench`, not to a test), twice, since
# every image after the first inherits what the chain's updates left in
# its environment. 8 MiB: a PA mapping of scattered pages takes up to one
# IOTLB entry per page, and vhost_vdpa.max_iotlb_entries is 2048 here as
# by default.
csv=$LOG/blackout.csv
rm -f "$csv"
timeout "$T" "$BLACKOUT" --dev "${dev[blk]}" --mem 8 --runs 2 --csv "$csv" \
	--label "$mode" > "$LOG/blackout.log" 2>&1
st=$?
tap_diag < "$LOG/blackout.log"
[ $st = 0 ] && [ "$(cut -d, -f3,4 "$csv" 2>/dev/null | sort | tr '\n' ' ')" = \
	"baseline,0 baseline,1 prestaged,0 prestaged,1 update-reset,0 update-reset,1 update-resume,0 update-resume,1 " ]
tap_ok $? "$mode blk: the benchmark chain measured baseline, reset and resume flow, pre-staged, twice"
pins_balanced_ok "$mode blackout benchmark"
old_mm_released "$mode blackout benchmark"

# VDUSE: a userspace block device (vdpa-lu-vduse-blk) under the same VMM.
# It keeps guest memory as file + offset; the update needs SUSPEND (and
# RESUME for the resume flow) from it like from any device.
# VDUSE=0 leaves it out (said in the output, not silently).
if [ "${VDUSE:-1}" = 0 ]; then
	echo "# VDUSE section left out (VDUSE=0)"
else
	"$O/vmm/vdpa-lu-vduse-blk" luvduse > "$LOG/vduse-daemon.log" 2>&1 &
	vduse_pid=$!
	for i in $(seq 50); do grep -q ready "$LOG/vduse-daemon.log" && break; sleep 0.1; done
	path=$("$VMM" --create vduse:luvduse 2>&1)
	tap_ok $? "vduse: create a VDUSE block device bound to vhost_vdpa ($path)"
	caps=$("$VMM" --caps "$path" 2>&1) || caps=0
	echo "# vduse backend features offered: $caps"
	for f in NEW_OWNER SUSPEND; do
		(( caps & ${!f} )); tap_ok $? "vduse: device offers VHOST_BACKEND_F_$f"
	done
	run_vmm "vduse traffic" 0 "$VMM" --dev "$path" --update-after 1000
	run_vmm "vduse exec" 5 "$VMM" --dev "$path" --update-after "$N" --updates 5
	"$VMM" --destroy luvduse
	kill "$vduse_pid"; wait "$vduse_pid"
	tap_diag < "$LOG/vduse-daemon.log"
fi

for name in "${devs[@]}"; do
	"$VMM" --destroy "$name"
done
pins_balanced_ok "$mode: devices destroyed"

tap_done
