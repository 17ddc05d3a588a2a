#!/bin/bash
# The in-VM job of `make demo`: the reference mini-VMM live-updates itself
# while traffic flows, on a vdpa_sim net and block device, in the vdpa_sim
# mode the VM was booted with (PA: use_va=0, VA: use_va=1), in the reset
# and the resume flow, by exec (to a v2 binary), fork and SCM_RIGHTS
# transfer.  Prints each update's timeline, the totals and a verdict.
#
# Environment: O (build output, default $BUILD/user),
# UPDATES (exec updates per run, 3), UPDATE_AFTER (requests per image, 500).
set -u
O=${O:-${BUILD:-$(cd "$(dirname "$0")/.." && pwd)/build}/user}
VMM=$O/vmm/vdpa-lu-vmm
VMM2=$O/vmm/vdpa-lu-vmm-v2
UPDATES=${UPDATES:-3}
N=${UPDATE_AFTER:-500}
LOG=/run/lu-demo
mkdir -p "$LOG"

. "$(dirname "$0")/../testbed/guest.sh"
sim_mode=$(vdpa_sim_mode)
mode=${sim_mode%%-*} mode=${mode^^}
echo "==> vhost-vdpa live update demo: kernel $(uname -r), vdpa_sim $sim_mode"

verdict=PASS
show() {	# show LOGFILES...: the lines worth reading
	cat "$@" | grep -E 'update [0-9]+/|totals:|verdict|error|handed|blk device|net device' |
		sed -e 's/^vdpa-lu-vmm/  vdpa-lu-vmm/'
}
judge() {	# judge STATUS LAST-LOG
	if [ "$1" = 0 ] && grep -q 'verdict: PASS' "$2"; then
		echo "  -> ok"
	else
		echo "  -> FAILED"
		verdict=FAIL
	fi
}

for type in net blk; do
	dev=$("$VMM" --create "$type:demo$type") || { echo "cannot create $type device"; exit 1; }
	for flow in reset resume; do
		echo
		echo "==> $type, $flow flow: $UPDATES exec updates (v1 -> v2 -> v2 ...), $N requests per image"
		timeout 300 "$VMM" --dev "$dev" --flow "$flow" --update-after "$N" \
			--updates "$UPDATES" --exec "$VMM2" > "$LOG/exec.log" 2>&1
		st=$?
		show "$LOG/exec.log"
		judge $st "$LOG/exec.log"

		echo "==> $type, $flow flow: 2 fork updates (the child takes over, the parent exits)"
		timeout 300 "$VMM" --dev "$dev" --flow "$flow" --update-after "$N" \
			--updates 2 --fork > "$LOG/fork.log" 2>&1
		st=$?
		show "$LOG/fork.log"
		judge $st "$LOG/fork.log"

		echo "==> $type, $flow flow: 2 transfers to separately started processes (SCM_RIGHTS)"
		rm -f "$LOG"/in*.log
		pids=()
		for i in 1 2; do
			timeout 300 "$VMM" --incoming "$LOG/sock.$i" > "$LOG/in$i.log" 2>&1 &
			pids+=($!)
		done
		timeout 300 "$VMM" --dev "$dev" --flow "$flow" --update-after "$N" \
			--updates 2 --transfer "$LOG/sock" > "$LOG/xfer.log" 2>&1
		st=$?
		for p in "${pids[@]}"; do wait "$p" || st=1; done
		show "$LOG/xfer.log" "$LOG/in1.log" "$LOG/in2.log"
		judge $st "$LOG/in2.log"
	done
	"$VMM" --destroy "demo$type"
done

# VDUSE: the same VMM over a block device served from userspace.
echo
echo "==> VDUSE block device (vdpa-lu-vduse-blk): traffic, then $UPDATES exec updates"
"$O/vmm/vdpa-lu-vduse-blk" demovduse > "$LOG/vduse.log" 2>&1 &
vpid=$!
for i in $(seq 50); do grep -q ready "$LOG/vduse.log" && break; sleep 0.1; done
if dev=$("$VMM" --create vduse:demovduse); then
	timeout 300 "$VMM" --dev "$dev" --update-after "$N" --updates "$UPDATES" > "$LOG/vduse-vmm.log" 2>&1
	st=$?
	show "$LOG/vduse-vmm.log"
	if grep -q 'lacks VHOST_BACKEND_F_SUSPEND' "$LOG/vduse-vmm.log" &&
	   grep -q 'lost=0 duplicated=0 bad=0' "$LOG/vduse-vmm.log"; then
		echo "  -> traffic ok; live update refused: this kernel's VDUSE cannot suspend"
	else
		judge $st "$LOG/vduse-vmm.log"
	fi
	"$VMM" --destroy demovduse
else
	echo "  -> cannot create the VDUSE device"
	verdict=FAIL
fi
kill $vpid; wait $vpid
sed 's/^/  /' "$LOG/vduse.log"

pins_balanced || verdict=FAIL
echo
echo "==> pinned pages: nr_foll_pin_acquired $pin_acquired, nr_foll_pin_released $pin_released"
echo "==> demo verdict ($mode): $verdict"
[ $verdict = PASS ]
