#!/bin/bash
# Host side of `make demo`: boot the test VM in each vdpa_sim mode the demo
# needs and run the reference VMM's demo job (vmm/demo.sh) inside. Until the
# reference VMM exists, show what the devices offer.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

job=$TOP/vmm/demo.sh
[ -f "$job" ] || job=$TOP/testbed/demo-devices.sh
status=0
for mode in "vdpa_sim.use_va=0" "vdpa_sim.use_va=1"; do
	step "demo VM: $mode"
	"$TOP/testbed/run-vm.sh" --name "demo-${mode##*=}" --mem "${VM_MEM:-2G}" \
		--append "$mode BUILD=$BUILD lu_top=$TOP" "$job" || status=$?
done
exit $status
