#!/bin/bash
# Guest side of `make bench`: one vdpa_sim block device, one process chain
# per guest memory size (see blackout.c), rows appended to the CSV in the
# run's output directory; on the VA device also the cost per mapping
# (regions.csv).
set -euo pipefail
. "$lu_top/testbed/guest.sh"
mode=$(vdpa_sim_mode) mode=${mode%%-*}	# pa or va
csv=/run/out/blackout.csv
dev=$("$lu_top/testbed/vdpa-dev.sh" add blk bench-blk)
# One vCPU for the benchmark and the simulator's worker (lu_bench_pin=0: no
# pinning): a handover is a chain of wake-ups (old process to new, driver to
# the device's worker and back), and under TCG on a busy host a wake-up of
# another, idle vCPU takes milliseconds that belong to the emulator, not to
# the kernel or the library being measured.
pin=()
if [ "${lu_bench_pin:-1}" = 1 ]; then
	for p in /proc/[0-9]*; do
		case $(cat "$p/comm" 2>/dev/null) in
		"vDPA sim worker"*) taskset -p 1 "${p#/proc/}" >/dev/null ;;
		esac
	done
	pin=(taskset 1)
fi
# exec reads the new image from tmpfs, as a VMM's would come from a local
# disk's page cache, not over the 9p root.
bin=/run/bench/vdpa-lu-blackout
mkdir -p /run/bench && cp "$BUILD/user/bench/vdpa-lu-blackout" "$bin"
avail_mib=$(( $(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo) / 1024 ))
echo "bench: $mode device $dev, ${avail_mib} MiB available, sizes ${lu_bench_sizes}, ${lu_bench_runs} runs"
for size in ${lu_bench_sizes//,/ }; do
	# Guest memory plus the vhost IOTLB and page tables must fit.
	if [ $(( size + size / 8 + 256 )) -gt "$avail_mib" ]; then
		echo "bench: skipping $size MiB: the VM has $avail_mib MiB available"
		continue
	fi
	# One size failing (see bench/run.sh) does not end the others.
	"${pin[@]}" "$bin" --dev "$dev" --mem "$size" --runs "$lu_bench_runs" --csv "$csv" \
		--label "$mode" || echo "bench: $mode $size MiB failed, going on"
done
# For comparison: exec tearing down the old address space in the blackout.
plain=${lu_bench_plain_sizes:-}
for size in ${plain//,/ }; do
	[ $(( size + size / 8 + 256 )) -le "$avail_mib" ] || continue
	"${pin[@]}" "$bin" --dev "$dev" --mem "$size" --runs "$lu_bench_runs" --csv "$csv" \
		--label "$mode-plain-exec" --no-keep-old-mm ||
		echo "bench: $mode $size MiB with a plain exec failed, going on"
done
# Cost per mapping (VA: one REMAP each): pre-staged handovers only, guest
# memory split into N mappings of one memfd, with the REMAPs in one IOTLB
# batch and without.
if [ "$mode" = va ]; then
	for n in ${lu_bench_regions:+${lu_bench_regions//,/ }}; do
		for batch in batch nobatch; do
			flag=
			[ "$batch" = nobatch ] && flag=--no-batch
			"${pin[@]}" "$bin" --dev "$dev" --mem "${lu_bench_regions_mem:-256}" \
				--runs "$lu_bench_runs" --csv /run/out/regions.csv \
				--label "va-$batch" --regions "$n" --only-prestaged $flag ||
				echo "bench: $n regions ($batch) failed, going on"
		done
	done
fi
"$lu_top/testbed/vdpa-dev.sh" del bench-blk
