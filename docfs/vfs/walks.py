"""Programs that walk a tree: their directory listings bring the children's listings along.

``find``, ``du``, ``rsync -a``, ``cp -r``, ``tar`` and backup programs list a directory and then
every directory below it, one by one: on a repository that is one request per child
(an item each), where many APIs can carry the children's children in the pages of the parent's own
listing (``Backend.list_dir_deep``, ``Capabilities.deep``). Such a listing is heavier (more
bytes, more work on the server, more inodes kept), so it is asked for only when the program
opening the directory is a known walker (by ``/proc/PID/comm``, as the thumbnail code tells a
file manager); ``ls -l`` and file managers, which look at one level, keep the plain listing.
"""

from __future__ import annotations

from collections.abc import Iterable

from docfs.vfs.thumbnails import ProcessNames, comm_name

#: process names (``/proc/PID/comm``) of programs that descend into every directory they list
DEFAULT_WALKERS = (
    "find",
    "du",
    "rsync",
    "cp",
    "tar",
    "bsdtar",
    "zip",
    "tree",
    "fd",
    "fdfind",
    "rg",
    "grep",
    "rclone",
    "restic",
    "borg",
    "duplicity",
    "rdiff-backup",
    "updatedb",
    "updatedb.plocate",
)


class Walkers:
    """Tells whether the process behind a FUSE request walks the tree."""

    def __init__(self, names: Iterable[str] = DEFAULT_WALKERS) -> None:
        self.names = frozenset(comm_name(n) for n in names)
        #: asked on every opendir: what /proc says of a caller is kept a moment
        self.callers = ProcessNames()

    def walks(self, pid: int | None) -> bool:
        return pid is not None and self.callers.known(pid, self.names) is not None
