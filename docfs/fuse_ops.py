"""The pyfuse3 adapter: kernel requests → vfs calls, errors → errno in exactly one place.

Each handler converts bytes names to ``str`` and vfs values to pyfuse3 types and does nothing
else. ``_guard`` is the only place where errors become ``FUSEError``: a ``DocfsError`` gives its
errno with one log line; anything else is a bug, logged with its traceback and answered EIO,
and the daemon keeps running.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from docfs import errors
from docfs.vfs.filesystem import Attr, Filesystem
from docfs.vfs.thumbnails import DEFAULT_THUMBNAILERS, ThumbnailerGuard

log = logging.getLogger("docfs.fuse")

#: kernel entry/attribute cache time: short, so changes seen by the vfs show up quickly,
#: but never 0, which would send a lookup to us for every path component of every call
KERNEL_TIMEOUT = 1.0

#: errors that are ordinary answers, not failures worth a warning
_QUIET = {errno.ENOENT, errno.ENODATA, errno.EEXIST, errno.ENOTEMPTY, errno.EXDEV}

P = ParamSpec("P")
R = TypeVar("R")


def _guard(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except errors.DocfsError as exc:
            level = logging.DEBUG if exc.errno in _QUIET or exc.ordinary else logging.WARNING
            ops = args[0] if args and isinstance(args[0], FuseOperations) else None
            if ops is not None and level == logging.WARNING and ops.repeated(fn.__name__, exc):
                # the kernel asks again for each page of a file whose download failed: one
                # line says it, the same line a hundred times would bury everything else
                level = logging.DEBUG
            log.log(level, "%s (%s)", _said(fn.__name__, exc), errno.errorcode.get(exc.errno, "?"))
            raise pyfuse3.FUSEError(exc.errno) from None
        except OSError as exc:
            log.warning("%s: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("%s: internal error (answered EIO)", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


def _said(operation: str, exc: Exception) -> str:
    """``exc``'s message with the operation in front, once: a message that begins with it
    already (``mkdir /a/b: …``) would otherwise read ``mkdir: mkdir /a/b: …``."""
    message = str(exc)
    if message.startswith((f"{operation} ", f"{operation}:")):
        return message
    return f"{operation}: {message}"


def entry_attributes(attr: Attr) -> pyfuse3.EntryAttributes:
    result = pyfuse3.EntryAttributes()
    result.st_ino = attr.ino
    result.generation = 0
    result.entry_timeout = KERNEL_TIMEOUT
    result.attr_timeout = KERNEL_TIMEOUT
    result.st_mode = attr.mode
    result.st_nlink = attr.nlink
    result.st_uid = attr.uid
    result.st_gid = attr.gid
    result.st_rdev = 0
    result.st_size = attr.size
    result.st_blksize = 128 * 1024
    result.st_blocks = (attr.size + 511) // 512
    result.st_atime_ns = attr.mtime_ns
    result.st_mtime_ns = attr.mtime_ns
    result.st_ctime_ns = attr.mtime_ns
    return result


def _name(raw: bytes) -> str:
    return os.fsdecode(raw)


class FuseOperations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, fs: Filesystem) -> None:
        super().__init__()
        self.fs = fs
        #: the last error message warned about, per operation
        self._last_warning: dict[str, str] = {}
        options = fs.options
        self.thumbnailer_guard = ThumbnailerGuard.build(
            options.thumbnail_max,
            DEFAULT_THUMBNAILERS if options.thumbnailers is None else options.thumbnailers,
            fs.backend.capabilities.ranges,
        )

    def repeated(self, operation: str, exc: errors.DocfsError) -> bool:
        """True if ``exc`` is what ``operation`` failed with last time (then it was logged)."""
        message = str(exc)
        if self._last_warning.get(operation) == message:
            return True
        self._last_warning[operation] = message
        return False

    @_guard
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.fs.lookup(parent_inode, _name(name)))

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        # must never raise: the kernel cannot receive an error here
        for ino, count in inode_list:
            try:
                self.fs.forget(ino, count)
            except Exception:
                log.exception("forget(%d) failed", ino)

    @_guard
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.fs.getattr(inode))

    @_guard
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        dh = await self.fs.opendir(inode, ctx.pid)
        if self.fs.thumbnails is not None:
            # only a file manager's listing fetches thumbnails: find, rsync, du cost none
            self.fs.thumbnails.opened(inode, ctx.pid)
        return dh

    @_guard
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        for name, attr, next_id in self.fs.entries_from(fh, start_id):
            if not pyfuse3.readdir_reply(token, os.fsencode(name), entry_attributes(attr), next_id):
                break
            # readdirplus: the kernel now holds a reference to this inode
            self.fs.remember(attr.ino)

    @_guard
    async def releasedir(self, fh: int) -> None:
        self.fs.releasedir(fh)

    @_guard
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        # fsync of a directory: finish what the repository holds back (DSpace deposits)
        await self.fs.backend.settle()

    @_guard
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        write = flags & os.O_ACCMODE != os.O_RDONLY
        refusal = None if write else self.thumbnailer_guard.refusal(self.fs, inode, ctx.pid)
        if refusal is not None:
            # a thumbnailer would download the whole file for a picture: refused before any
            # request (it then shows no thumbnail); see docfs.vfs.thumbnails
            log.debug("open: %s", refusal)
            raise pyfuse3.FUSEError(errno.EACCES)
        fh, keep = await self.fs.open(inode, write, truncate=bool(flags & os.O_TRUNC))
        # direct I/O: the kernel keeps no copy of its own (see Options.direct_io)
        direct = self.fs.options.direct_io
        if self.fs.metafiles.owns(inode):
            # a metadata file's size changes with the server's metadata: no page cache
            direct = True
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep and not direct, direct_io=direct)

    @_guard
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        fh, attr = await self.fs.create(parent_inode, _name(name), mode)
        return pyfuse3.FileInfo(fh=fh, direct_io=self.fs.options.direct_io), entry_attributes(attr)

    @_guard
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.fs.write(fh, off, buf)

    @_guard
    async def flush(self, fh: int) -> None:
        await self.fs.flush(fh)

    @_guard
    async def fsync(self, fh: int, datasync: bool) -> None:
        await self.fs.fsync(fh)

    @_guard
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        result = await self.fs.setattr(
            inode,
            size=attr.st_size if fields.update_size else None,
            mode=attr.st_mode if fields.update_mode else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            fh=fh,
        )
        return entry_attributes(result)

    @_guard
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry_attributes(await self.fs.mkdir(parent_inode, _name(name), mode))

    @_guard
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.rmdir(parent_inode, _name(name))

    @_guard
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.unlink(parent_inode, _name(name))

    @_guard
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        await self.fs.rename(
            parent_inode_old, _name(name_old), parent_inode_new, _name(name_new), flags
        )

    @_guard
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        await self.fs.setxattr(inode, _name(name), value)

    @_guard
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self.fs.removexattr(inode, _name(name))

    @_guard
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.fs.read(fh, off, size)

    @_guard
    async def release(self, fh: int) -> None:
        await self.fs.release(fh)

    @_guard
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        return await self.fs.getxattr(inode, _name(name))

    @_guard
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return [os.fsencode(n) for n in await self.fs.listxattr(inode)]

    @_guard
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        info = self.fs.statfs()
        result = pyfuse3.StatvfsData()
        result.f_bsize = info.block_size
        result.f_frsize = info.block_size
        result.f_blocks = info.blocks
        result.f_bfree = info.free_blocks
        result.f_bavail = info.free_blocks
        result.f_files = info.files
        result.f_ffree = info.free_files
        result.f_favail = info.free_files
        result.f_namemax = info.name_max
        return result
