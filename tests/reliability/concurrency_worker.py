"""One of the processes of the concurrency test (run as a script, not collected by pytest).

``python concurrency_worker.py OWN_DIR SHARED_DIR SECONDS SEED [ACTIONS]`` works for SECONDS in
OWN_DIR (create, overwrite, append, rename, delete, read back, list) and reads SHARED_DIR,
checking every answer against its own model. ACTIONS (comma-separated, default all) leaves out
what a backend cannot do: ``write,append,read,list`` where files cannot be renamed or deleted.
It prints the model (name → hex of the bytes) as JSON on stdout and exits 0, or prints what
disagreed on stderr and exits 1.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

NAMES = [f"f{i}.txt" for i in range(6)]
#: the mix of actions: writes twice as often as the others
ACTIONS = ["write", "write", "append", "rename", "delete", "read", "list"]


def check(condition: bool, what: str, history: list[str]) -> None:
    if not condition:
        print(f"worker disagrees: {what}; last steps: {history[-8:]}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    own, shared = Path(sys.argv[1]), Path(sys.argv[2])
    seconds, seed = float(sys.argv[3]), int(sys.argv[4])
    allowed = set(sys.argv[5].split(",")) if len(sys.argv) > 5 else set(ACTIONS)
    actions = [a for a in ACTIONS if a in allowed]
    rng = random.Random(seed)
    shared_files = {p.name: p.read_bytes() for p in sorted(shared.iterdir())}
    model: dict[str, bytes] = {}
    history: list[str] = []
    ops = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ops += 1
        name = rng.choice(NAMES)
        action = rng.choice(actions)
        data = f"{seed}:{ops}:".encode() * rng.randint(1, 300)
        history.append(f"{action} {name} ({len(model.get(name, b''))} B)")
        if action == "write":
            (own / name).write_bytes(data)
            model[name] = data
        elif action == "append" and name in model:
            with open(own / name, "ab") as fh:
                fh.write(data)
            model[name] += data
        elif action == "rename" and name in model:
            target = rng.choice(NAMES)
            history[-1] += f" -> {target}"
            os.rename(own / name, own / target)
            model[target] = model.pop(name)
        elif action == "delete" and name in model:
            os.unlink(own / name)
            del model[name]
        elif action == "read" and name in model:
            got = (own / name).read_bytes()
            check(got == model[name], f"content of {own / name}: {len(got)} B", history)
        elif action == "list":
            listed = sorted(os.listdir(own))
            check(listed == sorted(model), f"listing of {own}: {listed}", history)
        other = rng.choice(sorted(shared_files))
        same = (shared / other).read_bytes() == shared_files[other]
        check(same, f"shared file {other}", history)
        if ops % 10 == 0:
            check(sorted(os.listdir(shared)) == sorted(shared_files), "shared listing", history)
    print(json.dumps({"ops": ops, "files": {n: d.hex() for n, d in model.items()}}))


if __name__ == "__main__":
    main()
