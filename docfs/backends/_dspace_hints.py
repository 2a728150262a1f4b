"""What to do instead when DSpace (6 and 7+) has no operation where one was tried.

Both APIs have the same shape (site → communities → collections → items → files): files live
only in items, a ``mkdir`` makes a community at the top, a collection in a community and an item
in a collection, and an item holds files, no directories. The hints below say that in terms of
the commands people run (``cp -r``, ``rsync -a``), for ``Backend.refusal_hint``.
"""

from __future__ import annotations

from docfs.backends.base import Entry, Op

#: rsync copies a directory's contents with a trailing slash and the directory itself without
COPY_INTO_ITEM = "copy the directory's files into the item (rsync -a src/ ITEM/, trailing slash)"
COPY_AS_ITEM = "or copy the directory itself (rsync -a src COLLECTION/) to make it an item"


def dspace_refusal_hint(entry: Entry, op: Op, product: str) -> str | None:
    """The hint for ``op`` refused on (or inside) ``entry``; ``product`` names the server
    ("DSpace 6", "DSpace 7") in the sentence."""
    kind = entry.extra.get("type", "")
    if not entry.ops and not entry.read_only:
        # DSpace 7 gives an anonymous mount's entries no operations at all
        return "the mount is anonymous: mount with a DSpace login (DOCFS_USER) to change anything"
    if op is Op.CREATE_FILE:
        if kind in ("site", "root"):
            return (
                "the top level holds communities: files go inside an item "
                "(COMMUNITY/COLLECTION/ITEM); mkdir here makes a community"
            )
        if kind == "community":
            return (
                "a community holds collections: files go inside an item of a collection "
                "(mkdir here makes a collection, mkdir in that an item)"
            )
        if kind == "collection":
            return f"files go inside an item: mkdir ITEM first, {COPY_AS_ITEM}"
    if op is Op.MKDIR and kind == "item":
        return (
            f"a {product} item holds files only, no directories: {COPY_INTO_ITEM}, "
            "or make a sibling item in the collection"
        )
    if op is Op.MKDIR and kind == "bundle":
        return "a bundle holds files only, no directories"
    if op is Op.SET_META:
        if kind == "bitstream":
            return "set the fields on the item's directory (user.dspace.dc.*), not on its files"
        return f"{product} has no metadata fields to set on a {kind or 'directory'} here"
    if op is Op.RENAME and kind == "bundle":
        return "a bundle's name is fixed (ORIGINAL, THUMBNAIL, …)"
    return None
