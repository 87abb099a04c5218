#!/usr/bin/env bash
# Installs what is needed (with the test extras and, as root, Debian's chromium, CJK fonts and
# Tesseract) and runs the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest's 5 means it collected no test: that is a failure here, not a pass.
exit $rc
