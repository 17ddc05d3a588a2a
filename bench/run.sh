#!/bin/bash
# Host side of `make bench`: boot the test VM once per device kind (PA:
# vdpa_sim use_va=0, pins at map time; VA: use_va=1), measure the blackout
# of the four methods over guest memory sizes and, on VA, the cost per
# mapping of a pre-staged handover, then tabulate and plot.
#
# Environment: BENCH_SIZES (MiB, comma-separated; BENCH_SIZES_PA for the PA
#              device), BENCH_PLAIN_EXEC_SIZES (VA sizes also measured
#              without keeping the old address space; "" for none),
#              BENCH_RUNS (per point), BENCH_REGIONS (mapping counts
#              for the cost per mapping; "" for none), BENCH_REGIONS_MEM
#              (MiB split into them), BENCH_VM_MEM (QEMU -m),
#              BENCH_MODES ("pa va"), BENCH_PIN (1: the benchmark and
#              the simulator's worker on vCPU 0, see vm-bench.sh), KVM=1.
set -euo pipefail
. "$(dirname "$0")/../testbed/lib.sh"

sizes=${BENCH_SIZES:-256,1024,2048,4096,8192}
sizes_pa=${BENCH_SIZES_PA:-$sizes}
# VA sizes measured again without vdpalu_keep_old_mm(), to show what it buys.
plain_sizes=${BENCH_PLAIN_EXEC_SIZES-256,8192}
runs=${BENCH_RUNS:-5}
regions=${BENCH_REGIONS-1,8,64,512}
regions_mem=${BENCH_REGIONS_MEM:-256}
# 8 GiB of guest memory, its page tables and the IOTLB fit in 10 GiB; the
# machine is shared with other VMs.
vm_mem=${BENCH_VM_MEM:-10G}
out=$BUILD/bench
mkdir -p "$out"
: > "$out/blackout.csv.new"
: > "$out/regions.csv.new"
for mode in ${BENCH_MODES:-pa va}; do
	use_va=0 msizes=$sizes_pa psizes=
	[ "$mode" = va ] && use_va=1 msizes=$sizes psizes=$plain_sizes
	step "bench VM ($mode): sizes $msizes MiB, $runs runs each"
	# A PA mapping takes one IOTLB entry per physically contiguous run of
	# pages, in vhost-vdpa's table and again in vdpa_sim's: up to one per
	# 4 KiB page of scattered shmem, far more than the default limit of 2048
	# of each (8 MiB of guest memory at worst). Past it the IOTLB update
	# fails with EFAULT.
	"$TOP/testbed/run-vm.sh" --name "bench-$mode" --mem "$vm_mem" --timeout 7200 \
		--append "vdpa_sim.use_va=$use_va vdpa_sim.max_iotlb_entries=4194304 vhost_vdpa.max_iotlb_entries=4194304 BUILD=$BUILD lu_top=$TOP lu_bench_sizes=$msizes lu_bench_plain_sizes=$psizes lu_bench_runs=$runs lu_bench_regions=$regions lu_bench_regions_mem=$regions_mem lu_bench_pin=${BENCH_PIN:-1}" \
		"$TOP/bench/vm-bench.sh"
	cat "$BUILD/vm/bench-$mode/blackout.csv" >> "$out/blackout.csv.new"
	if [ -f "$BUILD/vm/bench-$mode/regions.csv" ]; then
		cat "$BUILD/vm/bench-$mode/regions.csv" >> "$out/regions.csv.new"
	fi
done
for f in blackout regions; do
	{
		echo "mode,mem_mib,method,run,blackout_us,exec_us,steps"
		cat "$out/$f.csv.new"
	} > "$out/$f.csv"
	rm -f "$out/$f.csv.new"
done
# Debian's python3: matplotlib comes from testbed/deps.sh bench.
/usr/bin/python3 "$TOP/bench/report.py" "$out/blackout.csv" "$out" "$out/regions.csv"
step "results: $out/{blackout,regions,summary}.csv, $out/blackout.{png,svg}, $out/regions.{png,svg}"
