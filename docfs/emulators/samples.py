"""Sample file contents for the emulators' demo data, generated locally and deterministically.

Minimal but valid PDFs written by hand, PNG images encoded with ``zlib`` + ``struct``, CSV tables
from a seeded random generator, and large pseudo-random blobs built in milliseconds. Every demo
data set uses these, so the same call always gives the same bytes.
"""

from __future__ import annotations

import random
import struct
import zlib

_MIB = 1 << 20
_LARGE_SIZE = 64 * _MIB


def minimal_pdf(title: str, lines: list[str] | None = None) -> bytes:
    """A one-page PDF 1.4 showing ``title`` (and ``lines``) in Helvetica, with a correct xref."""
    text = [title, *(lines or [])]
    ops = ["BT", "/F1 18 Tf", "72 720 Td", f"({_pdf_escape(text[0])}) Tj", "/F1 11 Tf"]
    for line in text[1:]:
        ops += ["0 -20 Td", f"({_pdf_escape(line)}) Tj"]
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Title (" + _pdf_escape(title).encode("latin-1") + b") /Producer (docfs demo) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    # the standard Type1 fonts speak Latin-1; anything else becomes "?"
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def png_image(width: int = 16, height: int = 16, seed: int = 0) -> bytes:
    """An RGB PNG: a smooth two-colour gradient with a seeded diagonal stripe pattern."""
    rng = random.Random(seed)
    a = [rng.randrange(256) for _ in range(3)]
    b = [rng.randrange(256) for _ in range(3)]
    period = rng.randrange(8, 24)
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None" for each scanline
        for x in range(width):
            t = (x + y) / (width + height - 2 or 1)
            stripe = 24 if ((x + y) // period) % 2 else 0
            rows += bytes(min(255, int(a[c] + (b[c] - a[c]) * t) + stripe) for c in range(3))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def csv_table(columns: list[str], rows: int, seed: int) -> bytes:
    """A CSV table with an ``id`` column and seeded numeric columns."""
    rng = random.Random(seed)
    lines = [",".join(["id", *columns])]
    for n in range(1, rows + 1):
        values = [f"{rng.gauss(10, 4):.3f}" for _ in columns]
        lines.append(",".join([str(n), *values]))
    return ("\n".join(lines) + "\n").encode()


def large_blob(size: int = _LARGE_SIZE, seed: int = 64) -> bytes:
    """``size`` bytes of pseudo-random data, built fast: one random MiB, rotated per MiB."""
    base = random.Random(seed).randbytes(_MIB)
    parts = []
    for n in range(-(-size // _MIB)):
        shift = (n * 7919) % _MIB
        parts.append(base[shift:] + base[:shift])
    return b"".join(parts)[:size]
