"""A small, believable DocSpace portal for ``docfs emulate docspace --demo``.

Everything is generated here, deterministically: a tiny valid PDF, a PNG drawn pixel by pixel,
CSV tables and text notes, a file with several versions, an empty file, and a few MiB of
generated data for trying block reads. Nothing is downloaded.
"""

from __future__ import annotations

import struct
import zlib

from docfs.emulators.docspace import DocSpaceEmulator

#: the account created when the emulator was started without one (documented in the CLI help)
DEMO_USER = "demo@docspace.example"
DEMO_PASSWORD = "demo-password"


def tiny_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF 1.4 with Helvetica text; the xref offsets are computed, so it is valid."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream_lines = ["BT", "/F1 18 Tf", "72 760 Td", f"({escape(title)}) Tj", "/F1 11 Tf"]
    for line in lines:
        stream_lines += ["0 -18 Td", f"({escape(line)}) Tj"]
    stream_lines.append("ET")
    stream = "\n".join(stream_lines).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def tiny_png(width: int = 48, height: int = 48) -> bytes:
    """An RGB PNG with a diagonal gradient and a blue square in the middle."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None" for this scanline
        for x in range(width):
            inside = width // 3 <= x < 2 * width // 3 and height // 3 <= y < 2 * height // 3
            pixel = (40, 90, 200) if inside else (255 - 4 * x % 256, 120 + y, 80 + x)
            rows += bytes(min(255, c) for c in pixel)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def budget_csv() -> bytes:
    rows = [("Month", "Planned", "Actual")]
    for month, planned in zip(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun"),
        (1200, 1250, 1300, 1280, 1400, 1500),
        strict=True,
    ):
        rows.append((month, str(planned), str(planned - 37 + len(month) * 11)))
    return ("\n".join(",".join(r) for r in rows) + "\n").encode()


def seed_demo(emu: DocSpaceEmulator) -> None:
    """Fill ``emu`` with the demo portal (uses its first user, or creates the demo account)."""
    if not emu.users:
        emu.add_user(DEMO_USER, DEMO_PASSWORD, display_name="Demo User")
    owner = next(iter(emu.users.values())).email
    my = emu.my_documents_id(owner)

    emu.add_file(
        my,
        "Welcome.txt",
        b"Welcome to the docfs DocSpace demo.\n\n"
        b"My documents, Rooms and Trash are directories; files open like any other file.\n",
        owner=owner,
    )
    notes = emu.add_folder(my, "Notes", owner=owner)
    emu.add_file(
        notes,
        "meeting-2024-05-02.md",
        b"# Weekly meeting\n\n- budget review moved to Friday\n- new room for the Apollo team\n",
        owner=owner,
    )
    plan = emu.add_file(notes, "plan.txt", b"Plan, first draft.\n", owner=owner)
    emu.add_version(plan, b"Plan, second draft: add milestones.\n", by=owner)
    emu.add_version(plan, b"Plan, final: milestones agreed on 2 May.\n", by=owner)
    emu.add_file(notes, "empty.txt", b"", owner=owner)
    emu.add_file(my, "Budget 2024.csv", budget_csv(), owner=owner)

    marketing = emu.add_room("Marketing", owner=owner, room_type=5)
    images = emu.add_folder(marketing, "Images", owner=owner)
    emu.add_file(images, "logo.png", tiny_png(), owner=owner)
    emu.add_file(
        marketing,
        "Brochure.pdf",
        tiny_pdf("Product brochure", ["docfs mounts DocSpace rooms.", "Version 1.0"]),
        owner=owner,
    )

    apollo = emu.add_room("Project Apollo", owner=owner, room_type=2)
    specs = emu.add_folder(apollo, "Specs", owner=owner)
    emu.add_file(
        specs,
        "Requirements.pdf",
        tiny_pdf("Requirements", ["1. Read files lazily.", "2. Upload on close."]),
        owner=owner,
    )
    emu.add_folder(apollo, "Drafts", owner=owner)
    emu.add_file(apollo, "dataset.bin", size=3 * 1024 * 1024, owner=owner)

    public = emu.add_room("Public Docs", owner=owner, room_type=6)
    emu.add_file(public, "README.txt", b"Files in this room are shared by link.\n", owner=owner)
