#!/bin/bash
# Print every kernel report (WARNING, BUG, lockdep, KASAN, Oops, hung task)
# found in a console log with the lines that follow it; exit 1 if any.
set -euo pipefail
log=$1
pattern='WARNING:|BUG:|BUG |kernel BUG at|Oops|Kernel panic|general protection fault|KASAN|UBSAN|INFO: task .* blocked|INFO: trying to register non-static key|watchdog: BUG|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage'
n=$(grep -aEc "$pattern" "$log" || true)
[ "$n" = 0 ] && exit 0
echo "kernel reports in ${log}:" >&2
grep -aE -A25 "$pattern" "$log" | head -150 >&2
exit 1
