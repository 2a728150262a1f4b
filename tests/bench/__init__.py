"""Benchmarks of issue 10: docfs against its ceilings, side by side, on real mounts.

Not part of the test run (``norecursedirs`` excludes this folder). Run them with
``bash scripts/bench.sh`` (``--quick`` for a short iteration run, ``--help`` for the rest).
"""
