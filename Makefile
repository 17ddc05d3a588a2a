# vhost-vdpa live update: the front door.
#
#   make check   install deps, build the patched kernel and the tests, run
#                them in QEMU in every vdpa_sim mode, print a summary
#   make demo    boot the VM and run the reference VMM through live updates
#   make help    everything else
#
# Long steps print what they do. Everything built lands in build/.

TOP     := $(CURDIR)
BUILD   ?= $(TOP)/build
KTREE   ?= $(BUILD)/linux
KOBJ    ?= $(BUILD)/kbuild
KHDR    := $(KOBJ)/usr/include
USER_O  := $(BUILD)/user
KSELFTEST := $(BUILD)/kselftest
export BUILD KTREE KOBJ

.PHONY: uapi-headers all help preflight testbed-tools deps kernel-source kernel headers selftests userspace unit \
	check check-stress vm-check checkpatch check-bisect check-mlx5 demo shell kernel-tree series bench clean \
	qemu qemu-series nested-guest qemu-tests check-qemu demo-qemu

all: kernel selftests userspace

help:
	@sed -n 's/^##//p' $(MAKEFILE_LIST)

## preflight     refuse paths and MODES the test bed can't run, before any build
preflight:
	@MODES="$(MODES)" testbed/preflight.sh

## deps          install missing Debian packages (apt-get; root)
deps: preflight
	@testbed/deps.sh

## kernel        extract Debian linux-source-6.12, apply kernel/patches, build
kernel-source: deps
	@testbed/kernel-source.sh

kernel: kernel-source
	@testbed/build-kernel.sh

headers: kernel
	@$(MAKE) -s -C $(KTREE) O=$(KOBJ) headers_install >/dev/null

## selftests     build the kernel selftests of the series against its uapi and install
##               them with kselftest's runner (build/kselftest/run_kselftest.sh)
# As a kernel developer does: O= is the kernel's object directory, whose
# usr/include is what `make headers` installed.
selftests: headers
	@printf '\033[1m==> building tools/testing/selftests/vhost_vdpa into %s\033[0m\n' $(KSELFTEST)
	@$(MAKE) -s -C $(KTREE)/tools/testing/selftests O=$(KOBJ) TARGETS=vhost_vdpa \
		INSTALL_PATH=$(KSELFTEST) install >/dev/null

testbed-tools: headers
	@mkdir -p $(BUILD)/testbed
	@gcc -O2 -Wall -Wextra -Werror -isystem $(KHDR) -o $(BUILD)/testbed/vdpa-info testbed/tools/vdpa-info.c

## userspace     build the library, the reference VMM and the unit tests
userspace: headers testbed-tools
	@for d in lib vmm bench tests/unit tests/vm; do \
		printf '\033[1m==> building %s\033[0m\n' $$d; \
		$(MAKE) -s -C $$d O=$(USER_O) KHDR=$(KHDR) || exit 1; \
	done

## unit          host unit tests of the library (no VM, no kernel build)
unit: kernel-source
	@$(MAKE) -s -C tests/unit O=$(USER_O) check

## uapi-headers  regenerate lib/uapi/linux and docs/ from the patched tree (after a series change)
uapi-headers: kernel-source
	@testbed/uapi-headers.sh

## checkpatch    scripts/checkpatch.pl --strict over every patch
checkpatch: kernel-source
	@testbed/checkpatch.sh

## check-bisect  build the kernel and the selftests after each patch in turn
check-bisect: deps
	@testbed/check-bisect.sh

## check-mlx5    compile drivers/vdpa/mlx5 of the patched tree
check-mlx5: kernel-source
	@testbed/check-mlx5.sh

## check         everything: checkpatch, mlx5 compile, host tests, VM tests,
##               QEMU's cpr-transfer in a PA and a VA boot (CHECK_QEMU)
# setpriv --pdeathsig: check.sh is told when make dies, and stops its VM.
# Every QEMU case in three nested-guest boots a mode (qemu_cpr.py --cases):
# B killed then A -> C -> D, a refused update then a live migration, QEMU 7.2,
# and x-svq=on refused (no traffic needed: a few seconds).  The vIOMMU
# refusal (a q35 guest of its own, ~2 min) and the reset flow are in
# make check-qemu: in make check they would take the cold run past 75 min.
CHECK_QEMU_CASES = killed+chain,refused+livemig,qemu72,svq
CHECK_QEMU ?= va-batch=$(CHECK_QEMU_CASES) pa-map=$(CHECK_QEMU_CASES)
CHECK_QEMU_FRAMES ?= 4000
check: checkpatch check-mlx5 kernel selftests userspace $(if $(strip $(CHECK_QEMU)),qemu nested-guest qemu-tests)
	@LU_HOST_TESTS="$(MAKE) -s -C $(TOP)/tests/unit O=$(USER_O) check" KHDR=$(KHDR) \
		LU_QEMU="$(CHECK_QEMU)" LU_QEMU_FRAMES="$(CHECK_QEMU_FRAMES)" \
		exec setpriv --pdeathsig TERM testbed/check.sh $(MODES)

## check-stress the VM suites and the kselftests on a KASAN + lockdep + failslab kernel
##               (build/kbuild-kasan), stress suite with STRESS_OPS=50000, 50 rounds per race
check-stress: selftests userspace
	@KASAN=1 KOBJ=$(BUILD)/kbuild-kasan testbed/build-kernel.sh
	@ops=$${STRESS_OPS:-50000}; \
	KOBJ=$(BUILD)/kbuild-kasan STRESS_OPS=$$ops \
		VM_TIMEOUT=$${VM_TIMEOUT:-$$(. tests/vm/stress-limits.sh && \
			echo $$(( $$(stress_random_limit $$ops) + 1800 )))} \
		STRESS_RACE_ROUNDS=$${STRESS_RACE_ROUNDS:-50} \
		STRESS_KILL_METHODS=$${STRESS_KILL_METHODS:-exec,fork,transfer} LU_TESTBED_SELFTEST=0 \
		LU_UAPI_CHECK=0 exec setpriv --pdeathsig TERM testbed/check.sh $(MODES)

## vm-check      only the VM part of check (MODES="pa-batch va-map", LU_FILTER=name)
vm-check: kernel selftests userspace
	@LU_TESTBED_SELFTEST=0 LU_UAPI_CHECK=0 exec setpriv --pdeathsig TERM testbed/check.sh $(MODES)

## demo          boot the VM and live-update the reference VMM with traffic
demo: kernel userspace
	@testbed/demo.sh

## shell         boot the test VM to an interactive shell (APPEND="vdpa_sim.use_va=1")
shell: kernel selftests userspace
	@testbed/run-vm.sh --interactive --name shell --append "$(APPEND)" testbed/vm-init.sh

## kernel-tree   git tree of the patched source for editing: build/kernel-tree
kernel-tree: kernel-source
	@testbed/kernel-tree.sh

## series        export build/kernel-tree back to kernel/patches (git format-patch)
series:
	@testbed/export-series.sh

## bench         device blackout benchmark (see bench/README)
bench: kernel userspace
	@testbed/deps.sh bench
	@bench/run.sh

## qemu          fetch trixie's QEMU 10.0.x source, apply qemu/patches, build it (build/qemu-build)
qemu: deps
	@qemu/fetch-build.sh

## qemu-series   export build/qemu-tree back to qemu/patches (git format-patch, checkpatch)
qemu-series:
	@qemu/export-series.sh

## nested-guest  kernel + initramfs of the guest that QEMU live-updates (build/nested)
nested-guest: kernel-source
	@qemu/nested/build.sh

qemu-tests: headers
	@mkdir -p $(BUILD)/qemu-tests
	@gcc -O2 -Wall -Wextra -Werror -shared -fPIC -isystem $(KHDR) \
		-o $(BUILD)/qemu-tests/backend-shim.so tests/vm/backend-shim.c -ldl

## check-qemu    QEMU cpr-transfer with a vhost-vdpa NIC and a guest's traffic, in the VM (MODES)
check-qemu: kernel userspace qemu nested-guest qemu-tests
	@qemu/check-qemu.sh $(MODES)

## demo-qemu     one QEMU cpr-transfer with a readable timeline
demo-qemu: kernel userspace qemu nested-guest qemu-tests
	@qemu/check-qemu.sh --demo $(or $(MODES),va-batch)

## clean         remove build outputs (keeps the extracted kernel source)
clean:
	rm -rf $(KOBJ) $(BUILD)/kbuild-mlx5 $(KSELFTEST) $(USER_O) $(BUILD)/vm $(BUILD)/check
