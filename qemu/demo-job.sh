#!/bin/bash
# Inside the test VM (make demo-qemu): one cpr-transfer of QEMU with the
# nested guest's frames flowing, printed as a timeline.
cd "${lu_top:?}" || exit 1
BUILD=${BUILD:-$lu_top/build} python3 tests/vm/qemu_cpr.py --demo --cases transfer
