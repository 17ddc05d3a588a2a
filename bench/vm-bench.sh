#!/bin/bash
# Guest side of `make bench`: one vdpa_sim block device, one process chain
# per guest memory size (see blackout.c), rows appended to the CSV in the
# run's output directory.
set -euo pipefail
mode=pa
[ "$(cat /sys/module/vdpa_sim/parameters/use_va)" = Y ] && mode=va
csv=/run/out/blackout.csv
dev=$("$lu_top/testbed/vdpa-dev.sh" add blk bench-blk)
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
	"$bin" --dev "$dev" --mem "$size" --runs "$lu_bench_runs" --csv "$csv" \
		--label "$mode" || echo "bench: $mode $size MiB failed, going on"
done
# For comparison: exec tearing down the old address space in the blackout.
plain=${lu_bench_plain_sizes:-}
for size in ${plain//,/ }; do
	[ $(( size + size / 8 + 256 )) -le "$avail_mib" ] || continue
	"$bin" --dev "$dev" --mem "$size" --runs "$lu_bench_runs" --csv "$csv" \
		--label "$mode-plain-exec" --no-keep-old-mm ||
		echo "bench: $mode $size MiB with a plain exec failed, going on"
done
"$lu_top/testbed/vdpa-dev.sh" del bench-blk
