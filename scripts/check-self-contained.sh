#!/usr/bin/env bash
# Fails when code, tests or scripts reach outside the repository: a path into a
# sibling "shared" folder, or an absolute path of the machine the code was
# written on. A clone elsewhere has neither, so such a test passes only here.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard -- '*.go' '*.sh' '*.yaml' '*.yml' '*.tpl' 'Makefile' '.ci/*' |
  grep -v '^scripts/check-self-contained\.sh$' || true)
[ -z "$files" ] && exit 0
# shellcheck disable=SC2086
hits=$(grep -nE '\.\./+shared|"\.\.", *"\.\.", *"\.\.", *"shared"|(^|[^A-Za-z0-9_.])/(work|home|root|Users)/' $files || true)
if [ -n "$hits" ]; then
  echo "paths outside the repository (use a testdata/ folder inside it):"
  echo "$hits"
  exit 1
fi
