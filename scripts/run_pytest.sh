#!/usr/bin/env bash
# Runs the pytest suite; "no tests collected" (exit 5) is a failure, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest -ra "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "run_pytest: no tests were collected - failing" >&2; exit 1; fi
exit $rc
