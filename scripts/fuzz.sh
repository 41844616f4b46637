#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a short while
# (FUZZTIME, default 3s each). Inputs that fail are written under the
# package's testdata/fuzz, where they become regression tests.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
fail=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name ($FUZZTIME)"
	if ! "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 2 "$pkg" > /tmp/pushgate-fuzz.log 2>&1; then
		cat /tmp/pushgate-fuzz.log
		fail=1
	fi
done < <(grep -rhoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' --with-filename . | sed -E 's/^\.\///; s/:func /:/' | sort)
exit $fail
