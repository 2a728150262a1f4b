#!/usr/bin/env bash
# Set up, then mount the built-in demo repository (a DSpace 6 emulator on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh emulators
exec .venv/bin/docfs demo "$@"
