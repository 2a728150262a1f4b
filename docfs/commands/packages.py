"""``docfs deposit`` and ``docfs export``: Simple Archive Format batches through a mount.

Both work on paths inside a running mount whose backend takes deposit packages
(``Backend.package_file``; the vfs turns package files into metadata, see
``docfs.backends._saf_deposit``), so they need no login of their own and go the way the
mount's account may go (as an administrator: items at once; as a submitter: workspace items,
deposited by the ``fsync`` of each item directory).

``deposit`` reads an archive as the repository's own batch importer does (item directories
in natural name order; ``dublin_core.xml`` first, then ``metadata_*.xml``, ``contents``, then
the files ``contents`` lists) and writes its map file (``item-dir handle`` a line; the
object's id where it has no handle yet, as the importer does for items in a workflow).
Before an item is made, ``MAPFILE.pending`` records its directory and the name it gets in
the collection (its title); ``--resume`` skips what the map lists and finishes a pending
item that exists instead of making it again, so an interrupted batch ends with every item
once.

``export`` writes one package per item directory (metadata from the extended attributes,
the files, a ``contents`` with their descriptions), which ``deposit`` reads back.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from docfs import registry, saf
from docfs.backends.base import Backend
from docfs.commands.common import UsageError
from docfs.commands.status import find_mount
from docfs.redact import Redactor

ID_XATTR = "user.docfs.id"
#: a name longer than this is not used as the item's directory name (the title may be long)
MAX_NAME = 200


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    deposit = sub.add_parser(
        "deposit",
        parents=parents,
        help="deposit Simple Archive Format item directories into a mounted collection",
    )
    deposit.add_argument("sources", nargs="+", metavar="SAF_DIR")
    deposit.add_argument("collection", metavar="COLLECTION")
    deposit.add_argument(
        "--mapfile", required=True, help="write `item-dir handle` lines here, one per item"
    )
    deposit.add_argument(
        "--resume", action="store_true", help="skip the items the map file lists already"
    )
    deposit.set_defaults(func=cmd_deposit)
    export = sub.add_parser(
        "export", parents=parents, help="write a mounted item or collection as SAF packages"
    )
    export.add_argument("source", metavar="ITEM_OR_COLLECTION")
    export.add_argument("dest", metavar="DEST")
    export.set_defaults(func=cmd_export)


def _takes_packages(path: Path) -> None:
    state, _ = find_mount(path)
    kind = str(state.get("remote", "")).partition(":")[0]
    backend = registry.backend_class(kind)
    if backend.package_file is Backend.package_file:
        raise UsageError(f"{path}: this repository type takes no deposit packages")


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _item_dirs(sources: Iterable[str]) -> list[Path]:
    out: list[Path] = []
    for source in sources:
        path = Path(source)
        if not path.is_dir():
            raise UsageError(f"{source}: not a directory")
        if (path / saf.DUBLIN_CORE).is_file():
            out.append(path)
            continue
        out += sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: _natural(p.name))
    return out


def _read_pairs(path: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise UsageError(f"{path}: bad map file line {line!r}")
            pairs[parts[0]] = parts[1]
    return pairs


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _target_name(item_dir: Path) -> str:
    """The item's name in the collection: its title, which the metadata file sets anyway."""
    try:
        values = saf.parse_metadata((item_dir / saf.DUBLIN_CORE).read_bytes())
    except (OSError, saf.PackageError) as exc:
        raise UsageError(f"{item_dir}: {exc}") from None
    title = next((v.value for v in values if v.key == "dc.title"), "")
    if not title or "/" in title or "\0" in title or len(title.encode()) > MAX_NAME:
        return item_dir.name
    return title


def _package_order(item_dir: Path) -> list[str]:
    """Metadata first, then ``contents``, then the files it lists (as the importer reads)."""
    names = [saf.DUBLIN_CORE]
    names += sorted(p.name for p in item_dir.iterdir() if saf.is_metadata_file(p.name))[::1]
    names = list(dict.fromkeys(names))
    if (item_dir / saf.CONTENTS).is_file():
        names.append(saf.CONTENTS)
        try:
            lines = saf.parse_contents((item_dir / saf.CONTENTS).read_text())
        except (OSError, saf.PackageError) as exc:
            raise UsageError(f"{item_dir}: {exc}") from None
        for line in lines:
            if not (item_dir / line.name).is_file():
                raise UsageError(f"{item_dir}: contents names {line.name!r}, which is missing")
            names.append(line.name)
    return names


def _deposit_one(item_dir: Path, target: Path) -> None:
    target.mkdir(exist_ok=True)
    for name in _package_order(item_dir):
        src, dst = item_dir / name, target / name
        if (
            saf.is_package_file(name)
            or not dst.exists()
            or dst.stat().st_size != src.stat().st_size
        ):
            shutil.copyfile(src, dst)
    # a directory's fsync makes the mount finish the item (a submission is deposited)
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _handle(target: Path) -> str:
    """The item's handle where it has one, else its id (what the importer maps workflow
    items to)."""
    for name in os.listxattr(target):
        if name.endswith(".handle"):
            value = os.getxattr(target, name).decode().strip()
            if value:
                return value
    return os.getxattr(target, ID_XATTR).decode().strip()


def cmd_deposit(args: argparse.Namespace, redactor: Redactor) -> int:
    collection = Path(args.collection)
    if not collection.is_dir():
        raise UsageError(f"{collection}: not a directory")
    _takes_packages(collection)
    mapfile = Path(args.mapfile)
    pending_file = mapfile.with_name(mapfile.name + ".pending")
    if mapfile.exists() and not args.resume:
        raise UsageError(f"{mapfile} exists: give --resume to continue that batch")
    done = _read_pairs(mapfile) if args.resume else {}
    pending = _read_pairs(pending_file) if args.resume else {}
    items = _item_dirs(args.sources)
    names = [d.name for d in items]
    if len(set(names)) != len(names):
        raise UsageError("two item directories have the same name: the map file could not tell")
    made = skipped = 0
    for number, item_dir in enumerate(items, 1):
        if item_dir.name in done:
            skipped += 1
            continue
        name = pending.get(item_dir.name) or _target_name(item_dir)
        target = collection / name
        if target.exists() and item_dir.name not in pending:
            raise UsageError(f"{target} exists already and is not part of this batch")
        if item_dir.name not in pending:
            _append(pending_file, f"{item_dir.name} {name}")
        try:
            _deposit_one(item_dir, target)
            handle = _handle(target)
        except OSError as exc:
            # the mount said why in its log; the pending line lets --resume finish this item
            print(f"docfs: {item_dir.name}: {exc}; run again with --resume", file=sys.stderr)
            return 1
        _append(mapfile, f"{item_dir.name} {handle}")
        made += 1
        print(f"deposit: [{number}/{len(items)}] {item_dir.name} -> {handle}", file=sys.stderr)
    pending_file.unlink(missing_ok=True)
    print(f"docfs: {made} item(s) deposited, {skipped} already in {mapfile}")
    return 0


def _metadata(path: Path) -> dict[str, str]:
    """The metadata keys among ``path``'s extended attributes (``user.NS.schema.element…``)."""
    out: dict[str, str] = {}
    for name in os.listxattr(path):
        namespace, _, key = name.removeprefix("user.").partition(".")
        if namespace != "docfs" and saf.is_metadata_key(key) and key not in saf.SERVER_SET_KEYS:
            out[key] = os.getxattr(path, name).decode()
    return out


def _description(path: Path) -> str | None:
    for name in os.listxattr(path):
        if name.endswith((".description", ".dc.description")):
            value = os.getxattr(path, name).decode().strip()
            if value:
                return value.split("\n")[0]
    return None


def _export_item(item: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    meta = _metadata(item)
    if "dc.title" not in meta:
        meta["dc.title"] = item.name
    meta.pop("checksum.md5", None)
    for name, data in saf.metadata_files(meta).items():
        (dest / name).write_bytes(data)
    lines = []
    for f in sorted(item.iterdir(), key=lambda p: p.name):
        if not f.is_file() or saf.is_package_file(f.name):
            continue  # bundle subdirectories and package files are not exported
        shutil.copyfile(f, dest / f.name)
        lines.append(saf.Line(f.name, bundle="ORIGINAL", description=_description(f)))
    (dest / saf.CONTENTS).write_text(saf.contents_text(lines))


def cmd_export(args: argparse.Namespace, redactor: Redactor) -> int:
    source, dest = Path(args.source), Path(args.dest)
    if not source.is_dir():
        raise UsageError(f"{source}: not a directory")
    _takes_packages(source)
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(f"{dest}: exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    children = list(source.iterdir())
    # an item holds files (bundles of other files may be subdirectories); a collection,
    # whose own metadata may carry a title too, holds only item directories
    is_item = "dc.title" in _metadata(source) and (
        any(p.is_file() for p in children) or not any(p.is_dir() for p in children)
    )
    items = (
        [source]
        if is_item
        else sorted((p for p in children if p.is_dir()), key=lambda p: _natural(p.name))
    )
    for number, item in enumerate(items):
        try:
            _export_item(item, dest / f"item_{number:03d}")
        except OSError as exc:
            print(f"docfs: {item}: {exc}", file=sys.stderr)
            return 1
        print(f"export: [{number + 1}/{len(items)}] {item.name}", file=sys.stderr)
    print(f"docfs: {len(items)} item(s) written to {dest}")
    return 0
