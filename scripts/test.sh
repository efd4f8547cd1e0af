#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs lint, types and the tests.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/actors -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Chromium from Debian's packages for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
