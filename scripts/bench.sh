#!/usr/bin/env bash
# The benchmarks of issue 10 (tests/bench/): every benchmark against the DSpace 6 emulator (B1r:
# DSpace 7, which serves byte ranges) on loopback through real mounts, side by side with its
# baseline, at 0 and 20 ms emulator latency;
# prints one table (and saves it with results.json in a directory it names at the end).
#   bash scripts/bench.sh              # the full run (medians of 5; about 15-20 min on 2 cores)
#   bash scripts/bench.sh --quick      # fewer repetitions and smaller sizes, to iterate
#   bash scripts/bench.sh --only B1,B2 --latencies 0 --profile   # py-spy the daemon too
#   bash scripts/bench.sh --quick --only B10      # issue 24: cold find/du walk of a collection
#   bash scripts/bench.sh --quick --only B11      # issue 24: beside rclone mount (installs it)
# The run uses a copy of docfs/ and tests/bench/ taken when it starts, so edits made to the
# tree while it runs cannot mix two versions of the code in one table.
# Needs /dev/fuse, fusermount3, rsync and dd; run as root or as a user allowed to mount FUSE.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
if [ ! -e /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
  echo "bench: FUSE is unavailable (no /dev/fuse or fusermount3): nothing can be measured" >&2
  exit 2
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh test
# B11 runs rclone mount (the Debian package) beside docfs: installed only when B11 is selected
# (every benchmark is, without --only); if that fails, B11's rows say NOT MEASURED and why
only=""
prev=""
for arg in "$@"; do
  case "$arg" in --only=*) only="${arg#--only=}" ;; esac
  [ "$prev" = "--only" ] && only="$arg"
  prev="$arg"
done
wanted=",$(printf '%s' "$only" | tr -d ' ' | tr '[:lower:]' '[:upper:]'),"
if { [ -z "$only" ] || [[ "$wanted" == *",B11,"* ]]; } && ! command -v rclone >/dev/null; then
  echo "bench: installing rclone for B11 (apt-get install -y rclone) …" >&2
  if ! { apt-get install -y rclone >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y rclone >/dev/null 2>&1; }; }; then
    echo "bench: WARNING: could not install rclone (no network? not root?): B11 will NOT be" \
      "measured" >&2
  fi
fi
code="$(mktemp -d -t docfs-bench-code-XXXXXX)"
trap 'rm -rf "$code"' EXIT
mkdir -p "$code/tests"
cp -r docfs "$code/"
cp tests/__init__.py "$code/tests/"
cp -r tests/bench "$code/tests/"
# B12 plays the file-manager visit of the acceptance test: the same module
mkdir -p "$code/tests/fuse"
cp tests/fuse/__init__.py tests/fuse/file_manager.py "$code/tests/fuse/"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain -- docfs 2>/dev/null)" ]; then
  revision="$revision + uncommitted changes"
fi
export DOCFS_BENCH_REVISION="$revision"
cd "$code"
"$repo/.venv/bin/python" -m tests.bench.run "$@"
