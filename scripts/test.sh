#!/usr/bin/env bash
# Set up, then run every check CI runs: lint, format, types, and the whole test suite
# (real FUSE mounts included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
.venv/bin/ruff check docfs tests
.venv/bin/ruff format --check docfs tests
.venv/bin/mypy docfs tests
.venv/bin/pytest -q "$@"
