"""A file manager's visit of one folder, played with the desktop's real programs.

Shared by the acceptance test (tests/fuse/test_file_manager.py) and benchmark B12. What a file
manager does when it shows a folder (measured with pcmanfm, Thunar + tumbler and Nautilus, issue
25): it lists the folder, opens and ``fstat``s every file, reads the first 4 KiB of files whose
type the name does not tell, and asks for a thumbnail of each file: first in the freedesktop
thumbnail cache (a PNG whose ``Thumb::URI``/``Thumb::MTime`` match), else by running the
thumbnailer that ``/usr/share/thumbnailers/*.thumbnailer`` names for its MIME type, with that
file's ``Exec`` line (``gdk-pixbuf-thumbnailer -s 128 %u %o``, ``evince-thumbnailer``,
``gsf-office-thumbnailer``), as tumbler and GNOME do.

The folder: 60 files, ~380 MiB with ``DOCFS_FM_FULL=1`` (PDFs, PNG/JPEG, docx/odt, 20-48 MiB
TIFFs, zips, blobs with unclear extensions), deterministic and cheap to make (random bytes in
valid containers); by default every size is divided by ``SCALE_DOWN`` to keep CI short, and
the mount's ``--thumbnail-max`` is scaled the same way.
"""

from __future__ import annotations

import io
import mimetypes
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from docfs.emulators.base import LoggedRequest
from docfs.emulators.thumbjpeg import encode_jpeg, picture_of
from docfs.vfs import imagecodec
from docfs.vfs.thumbnails import DEFAULT_MAX_NO_RANGES, cache_name, file_uri, is_valid

MiB = 1 << 20
FULL = os.environ.get("DOCFS_FM_FULL") == "1"
SCALE_DOWN = 1 if FULL else 8
#: extensions a file manager cannot type by name: it sniffs their first bytes
UNCLEAR = (".bin", ".xyz", ".dat")
THUMBNAILERS = Path("/usr/share/thumbnailers")
PROGRAMS = ("gdk-pixbuf-thumbnailer", "evince-thumbnailer", "gsf-office-thumbnailer")


def thumbnail_max(scale_down: int = SCALE_DOWN) -> int:
    """The guard's limit for this folder: the default, scaled like the files."""
    return DEFAULT_MAX_NO_RANGES // scale_down


def _pdf(rng: random.Random, size: int) -> bytes:
    """A valid one-page PDF whose page content stream carries ``size`` bytes of filler."""
    filler = rng.randbytes(max(0, size - 600))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(filler) + filler + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _png(rng: random.Random, size: int) -> bytes:
    """A valid PNG padded to ``size`` with a private ancillary chunk."""
    png = imagecodec.encode_png(imagecodec.Image(64, 48, picture_of(rng.randbytes(8), 64, 48)))
    pad = rng.randbytes(max(0, size - len(png) - 12))
    chunk = struct.pack(">I", len(pad)) + b"prVt" + pad + b"\0\0\0\0"
    return png[:33] + chunk + png[33:]  # after IHDR (8 + 25 bytes)


def _jpeg(rng: random.Random, size: int) -> bytes:
    """A valid JPEG padded to ``size`` with APP15 segments."""
    jpeg = encode_jpeg(64, 48, picture_of(rng.randbytes(8), 64, 48))
    segments = bytearray()
    left = size - len(jpeg)
    while left > 4:
        body = rng.randbytes(min(65000, left - 4))
        segments += b"\xff\xef" + struct.pack(">H", len(body) + 2) + body
        left -= len(body) + 4
    return jpeg[:2] + bytes(segments) + jpeg[2:]


def _tiff(rng: random.Random, size: int) -> bytes:
    return b"II*\x00" + struct.pack("<I", size - 8) + rng.randbytes(size - 8)


def _zip(rng: random.Random, size: int, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("media/blob.bin", rng.randbytes(max(0, size - 800)))
    return buffer.getvalue()


def _docx(rng: random.Random, size: int) -> bytes:
    types = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
    body = b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>'
    return _zip(rng, size, {"[Content_Types].xml": types, "word/document.xml": body})


def _odt(rng: random.Random, size: int) -> bytes:
    return _zip(
        rng,
        size,
        {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"},
    )


def make_folder(scale_down: int = SCALE_DOWN) -> dict[str, bytes]:
    """The 60 files, by name (sizes divided by ``scale_down``)."""
    rng = random.Random(25)
    files: dict[str, bytes] = {}

    def size(mib: float) -> int:
        return max(4096, int(mib * MiB) // scale_down)

    for n, mib in enumerate((20, 26, 32, 38, 44, 48)):
        files[f"scan-{n:02d}.tif"] = _tiff(rng, size(mib))
    for n, mib in enumerate((24, 30, 36)):
        files[f"data-{n:02d}.zip"] = _zip(rng, size(mib), {"README": b"data\n"})
    for n in range(12):
        files[f"paper-{n:02d}.pdf"] = _pdf(rng, size(1 + n * 0.45))
    for n in range(7):
        files[f"figure-{n:02d}.png"] = _png(rng, size(0.5 + n * 0.3))
        files[f"photo-{n:02d}.jpg"] = _jpeg(rng, size(0.5 + n * 0.3))
    for n in range(5):
        files[f"report-{n:02d}.docx"] = _docx(rng, size(0.3 + n * 0.1))
        files[f"notes-{n:02d}.odt"] = _odt(rng, size(0.3 + n * 0.1))
    for n in range(15):
        files[f"run-{n:04d}{UNCLEAR[n % 3]}"] = rng.randbytes(size(0.6 + (n % 5) * 0.2))
    assert len(files) == 60
    return files


def thumbnailer_commands() -> dict[str, list[str]]:
    """MIME type → the ``Exec`` line of the installed thumbnailer for it."""
    commands: dict[str, list[str]] = {}
    for path in sorted(THUMBNAILERS.glob("*.thumbnailer")):
        exec_line, mimes = None, []
        for line in path.read_text().splitlines():
            if line.startswith("Exec="):
                exec_line = line[5:].split()
            elif line.startswith("MimeType="):
                mimes = [m for m in line[9:].split(";") if m]
        if exec_line and shutil.which(exec_line[0]):
            for mime in mimes:
                commands.setdefault(mime, exec_line)
    return commands


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


@dataclass
class Visit:
    """What one visit cost, from the server's request log: each request counts in the phase
    during which it started (a download started by an ``open`` may end much later)."""

    folder_bytes: int
    #: phase boundaries (``time.monotonic``, the clock of the emulators' request log)
    marks: list[float] = field(default_factory=list)
    ran: dict[str, int] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    listing: list[LoggedRequest] = field(default_factory=list)
    browse: list[LoggedRequest] = field(default_factory=list)
    thumbnailers: list[LoggedRequest] = field(default_factory=list)

    def account(self, log: list[LoggedRequest]) -> None:
        """Sort the finished requests into phases; call after the mount stopped."""
        start, browsed, thumbnailing = self.marks
        self.listing = [r for r in log if start <= r.start < browsed]
        self.browse = [r for r in log if browsed <= r.start < thumbnailing]
        self.thumbnailers = [r for r in log if r.start >= thumbnailing]

    @staticmethod
    def sent(log: list[LoggedRequest]) -> int:
        return sum(r.bytes_out for r in log)

    @property
    def total_bytes(self) -> int:
        return sum(self.sent(p) for p in (self.listing, self.browse, self.thumbnailers))

    @property
    def total_requests(self) -> int:
        return len(self.listing) + len(self.browse) + len(self.thumbnailers)


def valid_thumbnail(root: Path, path: Path) -> bool:
    uri = file_uri(str(path))
    return is_valid(root / "normal" / cache_name(uri), uri, int(os.stat(path).st_mtime))


def list_as(program: str, folder: Path) -> list[str]:
    """The names in ``folder`` as a process called ``program`` lists them (a copy of ``ls``
    under that name: the mount tells programs apart by ``/proc/PID/comm``)."""
    with tempfile.TemporaryDirectory() as tools:
        ls = Path(tools) / program
        shutil.copy("/bin/ls", ls)
        done = subprocess.run(
            [str(ls), "-1", "-A", str(folder)], capture_output=True, check=True, timeout=120
        )
    return sorted(os.fsdecode(n) for n in done.stdout.splitlines())


def play(
    folder: Path,
    thumbnails: Path,
    expect_thumbnails: set[str],
    folder_bytes: int,
    wait: float = 60.0,
    browse: bool = True,
) -> Visit:
    """Visit ``folder`` (a directory of the mount) as Nautilus. ``expect_thumbnails``:
    names the repository has thumbnails of, waited for (with a deadline) after the listing, as
    a file manager's view shows up meanwhile. Then stop the mount and ``Visit.account``.
    ``browse=False`` leaves out the opens and sniffs: the thumbnailers' part alone."""
    visit = Visit(folder_bytes)
    visit.marks.append(time.monotonic())
    # listed by the file manager's own process, as GIO does (``nautilus`` is one the mount
    # knows: its listings get the repository's thumbnails)
    names = list_as("nautilus", folder)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if all(valid_thumbnail(thumbnails, folder / n) for n in expect_thumbnails):
            break
        time.sleep(0.05)
    visit.cached = [n for n in names if valid_thumbnail(thumbnails, folder / n)]
    visit.marks.append(time.monotonic())
    for name in names if browse else ():
        fd = os.open(folder / name, os.O_RDONLY)
        try:
            os.fstat(fd)
            if name.endswith(UNCLEAR):
                os.pread(fd, 4096, 0)  # MIME sniffing
        finally:
            os.close(fd)
    visit.marks.append(time.monotonic())
    commands = thumbnailer_commands()
    with tempfile.TemporaryDirectory() as out_dir:
        for name in names:
            path = folder / name
            if valid_thumbnail(thumbnails, path):
                continue  # the file manager takes the cached one and runs nothing
            mime = mimetypes.guess_type(name)[0]
            command = commands.get(mime or "")
            if command is None:
                continue
            out = Path(out_dir) / f"{name}.png"
            substitute = {"%s": "128", "%u": file_uri(str(path)), "%i": str(path), "%o": str(out)}
            argv = [substitute.get(a, a) for a in command]
            result = subprocess.run(argv, capture_output=True, timeout=120, check=False)
            program = os.path.basename(argv[0])
            key = f"{program}:{'ok' if result.returncode == 0 else 'failed'}"
            visit.ran[key] = visit.ran.get(key, 0) + 1
    return visit
