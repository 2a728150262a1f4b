"""Simple Archive Format packages written into a DSpace 7+ item (docs/protocols/dspace7.md).

The shared part is ``docfs.backends._saf_deposit``. Metadata: one JSON Patch on the item that
sets each key the file names to exactly its values with their languages (``field_ops``: the
released servers take one value per operation) — the server applies a patch's operations in
one transaction (``DSpaceObjectMetadataPatchUtils`` through ``ItemRestRepository.patch``), so
a package file
is applied whole or not at all. The submitter of a workspace item may patch its item too
(``WorkspaceItemServiceImpl.create`` grants the submitter WRITE on it), so this is also the
submission path. Descriptions are the bitstream's ``dc.description``, patched the same way,
after the upload for a file written after ``contents``.

``bundle:NAME``: the bundle is found or made (``ItemAddBundleController``, ``POST
core/items/{uuid}/bundles``); a file written after ``contents`` is uploaded straight into it,
one written before is moved there (``PUT core/bitstreams/{uuid}/bundle``). ``primary:true``:
``POST core/bundles/{uuid}/primaryBitstream`` (``PrimaryBitstreamController``, 7.6+), which
answers 400 when the bundle has a primary already — then ``PUT`` replaces it, so a repeat
after a lost answer ends in the same state.
"""

from __future__ import annotations

from pathlib import Path

from docfs import saf
from docfs.backends._saf_deposit import Packages, moves
from docfs.backends.base import Entry
from docfs.backends.dspace7.changes import Changes, field_ops
from docfs.backends.dspace7.hal import JSON, primary_marked
from docfs.backends.dspace7.uploads import Uploads


class PackageDeposit(Uploads, Changes):
    """``Backend.package_file``/``apply_package_file`` for DSpace 7+ items."""

    _saf: Packages | None = None

    @property
    def _packages(self) -> Packages:
        # made on first use: the parts of this backend share one __init__ (DSpace7Core's)
        if self._saf is None:
            self._saf = Packages()
        return self._saf

    def package_file(self, parent: Entry, name: str) -> bool:
        return self._type(parent) == "item" and saf.is_package_file(name)

    async def apply_package_file(self, parent: Entry, name: str, src: Path) -> Entry:
        return await self._packages.apply(
            self,
            self._uuid(parent),
            parent,
            name,
            src,
            set_all=self._set_all_meta,
            describe=self._describe,
            place=self._place,
        )

    async def _set_all_meta(self, item: Entry, values: list[saf.Value]) -> Entry:
        """Every key in ``values`` gets exactly those values, in one PATCH."""
        if item.partial_meta:
            item = await self.stat(item)
        by_key: dict[str, list[JSON]] = {}
        for v in values:
            by_key.setdefault(v.key, []).append({"value": v.value, "language": v.language})
        ops: list[JSON] = []
        for key, given in by_key.items():
            ops += field_ops(key, given, present=key in item.meta)
        return await self._patch(item, ops)

    async def _describe(self, entry: Entry, text: str) -> Entry:
        return await self.set_meta(entry, "dc.description", text)

    async def create_file(self, parent: Entry, name: str, src: Path) -> Entry:
        item = parent.extra.get("item") or self._uuid(parent)
        line = self._packages.line(item, name)
        if line is not None and moves(line) and self._type(parent) == "item":
            assert line.bundle is not None
            parent = await self._bundle_entry(item, line.bundle)
        entry = await super().create_file(parent, name, src)
        if line is not None and line.description:
            entry = await self._describe(entry, line.description)
        if line is not None and line.primary:
            await self._make_primary(entry)
            entry = primary_marked(entry)
        return entry

    async def _bundle_entry(self, item: str, name: str) -> Entry:
        uuid = await self._named_bundle(item, name)
        return self._dir({"uuid": uuid, "name": name}, "bundle", item, item=item)

    async def _place(self, entry: Entry, line: saf.Line) -> Entry:
        """Move a file written before ``contents`` into its bundle; make it primary."""
        if moves(line):
            assert line.bundle is not None
            target = await self._bundle_entry(entry.extra["item"], line.bundle)
            entry = await self._move_between_bundles(entry, target)
        if line.primary:
            await self._make_primary(entry)
            entry = primary_marked(entry)
        return entry
