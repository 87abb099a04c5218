#!/usr/bin/env bash
# Installs what is needed (with the test extras and, as root, Debian's chromium, CJK fonts and
# Tesseract), checks the code with ruff and mypy, and runs the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
set +e
# Lint and types first; their failures fail the run, but the tests still run and report.
.venv/bin/ruff check assistant tests eval bench
lint=$?
.venv/bin/mypy assistant
types=$?
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest's 5 means it collected no test: that is a failure here, not a pass.
[ $rc -ne 0 ] && exit $rc
[ $lint -ne 0 ] && echo "ruff found problems (above)" && exit 1
[ $types -ne 0 ] && echo "mypy found problems (above)" && exit 1
exit 0
