"""The "do-nothing" pyfuse3 filesystems that B2 and B4 compare docfs with.

``python -m tests.bench.nullfs MOUNTPOINT --file-size N`` serves one file, ``data.bin``, of
N bytes held in memory; ``--entries N`` serves a directory ``list`` of N sub-directories. They
answer with exactly what the kernel needs and nothing else (no network, no cache, no
bookkeeping), under the same pyfuse3 loop (trio, same task limits), mount options and kernel
timeouts as docfs, and with the same extended-attribute behaviour (a listing of nine
``user.*`` names; for any other name the errno docfs gives, which the harness finds out by
asking the docfs mount for ``security.selinux``: ``--other-xattr-errno``), so the difference to
docfs is docfs's own cost. That errno matters: ``ls -l`` asks for three such names per entry
unless one answer says "not supported".
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import time
from collections.abc import Sequence

import pyfuse3
import trio

#: as docfs.fuse_ops.KERNEL_TIMEOUT: the kernel's entry and attribute cache time
KERNEL_TIMEOUT = 1.0
ROOT = pyfuse3.ROOT_INODE
FILE_INO = ROOT + 1
LIST_INO = ROOT + 2
FIRST_CHILD = ROOT + 3
#: docfs shows an item's metadata and its own id/version: about this many names per entry
XATTRS = tuple(
    f"user.{k}".encode()
    for k in (
        "dspace.dc.date.accessioned",
        "dspace.dc.date.available",
        "dspace.dc.date.issued",
        "dspace.dc.identifier.uri",
        "dspace.dc.title",
        "dspace.handle",
        "dspace.uuid",
        "docfs.id",
        "docfs.version",
    )
)


class NullFs(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(
        self, file_size: int, entries: int, other_xattr_errno: int = errno.ENODATA
    ) -> None:
        super().__init__()
        self.other_xattr_errno = other_xattr_errno
        # a pattern, not zeros, so nothing downstream can shortcut it
        self.data = bytes(range(256)) * (file_size // 256) + b"\0" * (file_size % 256)
        self.names = [f"Entry {i:06d}".encode() for i in range(entries)]
        self.by_name = {n: FIRST_CHILD + i for i, n in enumerate(self.names)}
        self.now_ns = int(time.time() * 1e9)

    def _attr(self, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.entry_timeout = KERNEL_TIMEOUT
        a.attr_timeout = KERNEL_TIMEOUT
        is_file = ino == FILE_INO
        a.st_mode = (stat.S_IFREG | 0o644) if is_file else (stat.S_IFDIR | 0o755)
        a.st_nlink = 1 if is_file else 2
        a.st_uid, a.st_gid = os.getuid(), os.getgid()
        a.st_size = len(self.data) if is_file else 4096
        a.st_blksize = 128 * 1024
        a.st_blocks = (a.st_size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = self.now_ns
        return a

    def _children(self, ino: int) -> Sequence[tuple[bytes, int]]:
        if ino == ROOT:
            return [(b"data.bin", FILE_INO), (b"list", LIST_INO)]
        if ino == LIST_INO:
            return [(n, FIRST_CHILD + i) for i, n in enumerate(self.names)]
        return []

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if parent_inode == ROOT and name in (b"data.bin", b"list"):
            return self._attr(FILE_INO if name == b"data.bin" else LIST_INO)
        if parent_inode == LIST_INO and name in self.by_name:
            return self._attr(self.by_name[name])
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attr(inode)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        children = self._children(fh)
        for index in range(start_id, len(children)):
            name, ino = children[index]
            if not pyfuse3.readdir_reply(token, name, self._attr(ino), index + 1):
                break

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if inode != FILE_INO:
            raise pyfuse3.FUSEError(errno.EISDIR)
        return pyfuse3.FileInfo(fh=inode, keep_cache=True)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return self.data[off : off + size]

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        if name in XATTRS:
            return b"x"
        raise pyfuse3.FUSEError(
            errno.ENODATA if name.startswith(b"user.") else self.other_xattr_errno
        )

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return list(XATTRS)


async def _serve() -> None:
    # as docfs.daemon.serve: the same task limits
    await pyfuse3.main(min_tasks=4, max_tasks=64)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mountpoint")
    parser.add_argument("--file-size", type=int, default=0)
    parser.add_argument("--entries", type=int, default=0)
    parser.add_argument("--other-xattr-errno", type=int, default=errno.ENODATA)
    args = parser.parse_args(argv)
    options = set(pyfuse3.default_options) | {"fsname=nullfs", "subtype=nullfs", "noatime"}
    fs = NullFs(args.file_size, args.entries, args.other_xattr_errno)
    pyfuse3.init(fs, args.mountpoint, options)
    try:
        trio.run(_serve)
    finally:
        pyfuse3.close(unmount=True)


if __name__ == "__main__":
    main()
