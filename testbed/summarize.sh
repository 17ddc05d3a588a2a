#!/bin/bash
# Count TAP results in the output of one or more VM runs (testbed/vm-tests.sh
# framing) and print failures. A program that exits non-zero without a
# "not ok" line (a crash, a harness abort) counts as one failure; a VM that
# stopped early (watchdog, panic) counts as one failure per run.
# Prints "pass fail skip" on stdout.
set -euo pipefail
pass=0 fail=0 skip=0
for log in "$@"; do
	read -r p f s < <(awk -v logf="$log" '
		function flush() {
			if (prog != "" && code != "" && code + 0 != 0 && code + 0 != 4 && nfail == 0) {
				printf "FAIL %s: %s exited %s without reporting a failed test\n", logf, prog, code > "/dev/stderr"
				fail++
			}
		}
		{ sub(/\r$/, "") }	# the guest writes through a serial port: CRLF
		/^lu-test: running / { prog = $3; nfail = 0; sub_fail = 0; code = ""; next }
		# kselftest runner: the TAP of each program, prefixed with "# ",
		# counts; its line for the program adds a failure (timeout,
		# crash) only where the program reported none itself.
		# A program whose results never arrived (lost output) fails.
		prog == "selftests" && /^# selftests: / { sub_fail = 0; sub_n = 0; next }
		prog == "selftests" && /^# ok / { sub_n++; if ($0 ~ /# *SKIP/) skip++; else pass++; next }
		prog == "selftests" && /^# not ok / {
			sub_n++
			if ($0 ~ /# *TODO/) { skip++; next }
			fail++; nfail++; sub_fail++
			printf "FAIL %s: %s: %s\n", logf, prog, substr($0, 3) > "/dev/stderr"
			next
		}
		prog == "selftests" && /^ok / {
			if (sub_n == 0 && $0 !~ /# *SKIP/) {
				fail++; nfail++
				printf "FAIL %s: %s: %s printed no test results\n", logf, prog, $0 > "/dev/stderr"
			}
			next
		}
		prog == "selftests" && /^not ok / {
			if (sub_fail == 0) {
				fail++; nfail++
				printf "FAIL %s: %s: %s\n", logf, prog, $0 > "/dev/stderr"
			}
			next
		}
		/^lu-test: .* exit=/ { split($NF, a, "="); code = a[2]; flush(); prog = ""; next }
		/^Bail out!/ { fail++; nfail++; printf "FAIL %s: %s: %s\n", logf, prog, $0 > "/dev/stderr"; next }
		/^ok / { if ($0 ~ /# *SKIP/) skip++; else pass++; next }
		/^not ok / {
			if ($0 ~ /# *TODO/) { skip++; next }
			fail++; nfail++
			printf "FAIL %s: %s: %s\n", logf, prog, $0 > "/dev/stderr"
			next
		}
		END {
			if (prog != "") {
				printf "FAIL %s: %s never finished\n", logf, prog > "/dev/stderr"
				fail++
			}
			print pass + 0, fail + 0, skip + 0
		}' "$log")
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
echo "$pass $fail $skip"
