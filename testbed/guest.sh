# Helpers for scripts that run inside the test VM. Sourced, not run.
# shellcheck shell=bash

# A counter of /proc/vmstat. Each CPU batches its updates of the counters
# and folds them in its own time: stat_refresh folds them all first, so
# that a pin released a moment ago is counted.
vmstat() {
	echo 1 > /proc/sys/vm/stat_refresh
	awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat
}

# Every pinned page released: nr_foll_pin_acquired == nr_foll_pin_released.
# Waits up to 5 s for a release still on its way. Sets pin_acquired,
# pin_released and pin_wait_ms for the message.
pins_balanced() {
	local i
	for i in $(seq 50); do
		pin_acquired=$(vmstat nr_foll_pin_acquired)
		pin_released=$(vmstat nr_foll_pin_released)
		[ "$pin_acquired" = "$pin_released" ] && break
		sleep 0.1
	done
	pin_wait_ms=$(( (i - 1) * 100 ))
	[ "$pin_acquired" = "$pin_released" ]
}

# vdpa_sim's boot-time mode, named as lib.sh's VM_MODES: "pa-batch",
# "va-map", ...: a PA or VA device (use_va), whose IOTLB reaches it by
# set_map or dma_map (batch_mapping).  The one reader of the two module
# parameters for the scripts and tests that run in the VM.
vdpa_sim_mode() {
	local use_va batch
	read -r use_va < /sys/module/vdpa_sim/parameters/use_va
	read -r batch < /sys/module/vdpa_sim/parameters/batch_mapping
	case $use_va in Y|1) echo -n va ;; *) echo -n pa ;; esac
	case $batch in Y|1) echo -batch ;; *) echo -map ;; esac
}
