"""The one error hierarchy of docfs; every class carries the errno the kernel should see.

Backends and the HTTP layer raise these; fuse_ops maps them to ``pyfuse3.FUSEError`` in one
place. Messages must never contain secrets: they end up in logs.
"""

from __future__ import annotations

import errno as _errno


class DocfsError(Exception):
    """Base of every expected failure. ``errno`` is what a system call returns."""

    errno: int = _errno.EIO
    #: an ordinary answer, not a failure: logged at debug level, never as a warning
    ordinary: bool = False
    #: the (redacted) URL whose answer this error is, when it is an HTTP answer: lets the
    #: mount's start explain a 404 of its first request as a wrong URL
    url: str | None = None

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.status = status


class NotFound(DocfsError):
    errno = _errno.ENOENT


class PermissionDenied(DocfsError):
    errno = _errno.EACCES


class AuthenticationFailed(PermissionDenied):
    """Login refused (bad credentials): permanent, never retried."""


class NotSupported(DocfsError):
    """The repository has no such operation here (e.g. mkdir where the mapping has no object)."""

    errno = _errno.EPERM


class ReadOnly(NotSupported):
    """The mount (or this entry) is read-only."""

    errno = _errno.EROFS


class AlreadyExists(DocfsError):
    errno = _errno.EEXIST


class NotEmpty(DocfsError):
    errno = _errno.ENOTEMPTY


class CrossDevice(DocfsError):
    """A move the API cannot do; EXDEV makes ``mv`` fall back to copy + delete."""

    errno = _errno.EXDEV


class InvalidArgument(DocfsError):
    errno = _errno.EINVAL


class Conflict(DocfsError):
    """The remote object changed under us (version mismatch)."""

    errno = _errno.ESTALE


class Stale(DocfsError):
    """This inode no longer stands for its name: docfs dropped it (a new file whose upload
    failed) while the kernel may still hold the name for its entry timeout. ESTALE makes the
    kernel look the name up again and retry the call (``do_filp_open`` with LOOKUP_REVAL), so
    a program writing the name again gets a new file instead of a dropped one."""

    errno = _errno.ESTALE
    ordinary = True


class TooLarge(DocfsError):
    errno = _errno.EFBIG


class QuotaExceeded(DocfsError):
    errno = _errno.ENOSPC


class DiskQuotaExceeded(QuotaExceeded):
    """The user's own quota on the server is used up (e.g. upload megabytes per hour): EDQUOT,
    "Disk quota exceeded". Never retried at once: no wait short enough would help."""

    errno = _errno.EDQUOT


class RemoteUnavailable(DocfsError):
    """Server down, timing out, or answering 5xx after all retries."""

    errno = _errno.EIO
    #: no answer within the timeout: the request may still be on its way and land later
    timed_out = False


class RateLimited(RemoteUnavailable):
    """429 (or 503 with Retry-After) still answered after all retries."""

    def __init__(
        self, message: str = "", *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ProtocolError(DocfsError):
    """The server answered something we cannot understand (bad JSON, missing field)."""

    errno = _errno.EIO


class NoAttribute(DocfsError):
    """An extended attribute that does not exist."""

    errno = _errno.ENODATA


class NotADirectory(DocfsError):
    errno = _errno.ENOTDIR


class IsADirectory(DocfsError):
    errno = _errno.EISDIR


class BadHandle(DocfsError):
    errno = _errno.EBADF


class AttributeNotSupported(DocfsError):
    """An extended attribute namespace we do not store (``cp -a`` ignores this errno)."""

    errno = _errno.ENOTSUP
    # every ls -l asks for security.selinux and the ACL names once: that is no failure
    ordinary = True


class Busy(DocfsError):
    """A change that would overwrite one made meanwhile by someone else (issue 21: a metadata
    file whose key changed on the server since it was read)."""

    errno = _errno.EBUSY


def first_of(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """What concurrent requests that failed together report: the first ``DocfsError`` among
    them (the errno the caller expects), else the group itself."""
    for exc in group.exceptions:
        found = first_of(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(found, DocfsError):
            return found
    return group
