#!/bin/bash
# scripts/checkpatch.pl --strict over every patch of the series.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mapfile -t patches < <(series_patches)
[ ${#patches[@]} -gt 0 ] || { echo "checkpatch: the series is empty"; exit 0; }
"$TOP/testbed/kernel-source.sh"
bad=0
# The tree is Debian's tarball in git, without upstream history: the
# commit ids of Fixes: tags cannot be looked up in it (they were checked
# against mainline), so checkpatch would call each of them unknown.
for p in "${patches[@]}"; do
	if out=$(cd "$KTREE" && ./scripts/checkpatch.pl --strict --no-tree -q --summary-file \
			--ignore FILE_PATH_CHANGES,UNKNOWN_COMMIT_ID "$p" 2>&1); then
		echo "checkpatch: $(basename "$p"): clean"
	else
		echo "$out"
		echo "checkpatch: $(basename "$p"): NOT clean" >&2
		bad=1
	fi
done
[ $bad = 0 ] || die "checkpatch --strict found problems (above)"
