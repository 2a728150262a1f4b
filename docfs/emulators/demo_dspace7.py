"""A small, believable DSpace 7+ repository for ``docfs emulate dspace7 --demo``.

Everything is generated here, deterministically, by code: tiny but valid PDF, PNG, CSV and text
files, so the demo needs no data files and looks the same on every run (apart from uuids and
dates, which the emulator assigns).
"""

from __future__ import annotations

import random
import struct
import zlib

from docfs.emulators.dspace7 import DSpace7Emulator

LICENSE_TEXT = (
    "NOTICE: PLACE YOUR OWN LICENSE HERE\n"
    "This sample license is provided for informational purposes only.\n\n"
    "By signing and submitting this license, you (the author(s) or copyright owner) grant to\n"
    "the repository the non-exclusive right to reproduce and distribute your submission.\n"
)


def tiny_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF with ``title`` and ``lines`` in Helvetica, with a correct xref table."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = ["BT", "/F1 18 Tf", "72 760 Td", f"({escape(title)}) Tj", "/F1 11 Tf"]
    for line in lines:
        text += ["0 -18 Td", f"({escape(line)}) Tj"]
    text.append("ET")
    stream = "\n".join(text).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
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


def tiny_png(width: int, height: int, seed: int) -> bytes:
    """An RGB PNG with a smooth gradient whose colours depend on ``seed``."""
    rng = random.Random(seed)
    base = [rng.randrange(256) for _ in range(3)]
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type "None" for every scanline
        for x in range(width):
            rows += bytes(
                ((base[0] + 3 * x) % 256, (base[1] + 3 * y) % 256, (base[2] + x + y) % 256)
            )

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


def measurements_csv(seed: int, rows: int) -> bytes:
    """A CSV of plausible lab measurements."""
    rng = random.Random(seed)
    lines = ["sample_id,temperature_c,pressure_kpa,ph"]
    for n in range(1, rows + 1):
        temperature, pressure, ph = rng.uniform(18, 26), rng.uniform(99, 103), rng.uniform(6.5, 7.8)
        lines.append(f"S{n:03d},{temperature:.2f},{pressure:.2f},{ph:.2f}")
    return ("\n".join(lines) + "\n").encode()


def _item(
    emu: DSpace7Emulator,
    collection: str,
    title: str,
    authors: list[str],
    issued: str,
    abstract: str,
    files: list[tuple[str, bytes]],
) -> str:
    item = emu.add_item(
        collection,
        title,
        metadata={
            "dc.contributor.author": [{"value": a} for a in authors],
            "dc.date.issued": [{"value": issued}],
            "dc.description.abstract": [{"value": abstract}],
            "dc.type": [{"value": "Text"}],
        },
    )
    for name, content in files:
        emu.add_bitstream(item, name, content)
    emu.add_bitstream(item, "license.txt", LICENSE_TEXT.encode(), bundle="LICENSE")
    return item


def seed_demo(emu: DSpace7Emulator) -> None:
    """Fill ``emu`` with two communities, a sub-community, three collections and a few items."""
    science = emu.add_community(
        "Faculty of Science", metadata={"dc.description": "Research output of the faculty."}
    )
    physics = emu.add_community("Department of Physics", parent=science)
    theses = emu.add_collection("Theses", physics)
    datasets = emu.add_collection("Research Data", physics)
    library = emu.add_community("University Library")
    articles = emu.add_collection("Open Access Articles", library)
    emu.set_logo(library, tiny_png(32, 32, seed=99), "library-logo.png")

    _item(
        emu,
        theses,
        "Thermal Transport in Layered Materials",
        ["Okafor, Adaeze", "Lindqvist, Per"],
        "2023-06-14",
        "We measure in-plane and cross-plane thermal conductivity of layered crystals.",
        [
            (
                "thesis.pdf",
                tiny_pdf(
                    "Thermal Transport in Layered Materials",
                    ["A. Okafor", "Doctoral thesis, 2023", "Chapter 1: Introduction"],
                ),
            ),
            ("figure-1.png", tiny_png(64, 48, seed=1)),
        ],
    )
    _item(
        emu,
        theses,
        "Spin Waves in Thin Magnetic Films",
        ["Moreau, Camille"],
        "2024-02-01",
        "Brillouin light scattering study of magnon dispersion in permalloy films.",
        [
            (
                "thesis.pdf",
                tiny_pdf("Spin Waves in Thin Magnetic Films", ["C. Moreau", "Master thesis"]),
            ),
            ("README.txt", b"Supplementary material is available on request.\n"),
        ],
    )
    _item(
        emu,
        datasets,
        "Lake Water Quality Measurements 2024",
        ["Nakamura, Hiro", "Silva, Joana"],
        "2024-09-30",
        "Weekly temperature, pressure and pH readings from four sampling sites.",
        [
            ("measurements.csv", measurements_csv(seed=2024, rows=52)),
            (
                "README.txt",
                b"Columns: sample_id, temperature_c, pressure_kpa, ph.\n"
                b"Sites S001-S052 are weekly samples.\n",
            ),
        ],
    )
    _item(
        emu,
        articles,
        "Open Peer Review: A Field Study",
        ["Ahmed, Samira", "Kowalski, Jan", "Brown, Lee"],
        "2022-11-03",
        "We compare review quality and turnaround under open and blind peer review.",
        [
            (
                "article.pdf",
                tiny_pdf("Open Peer Review: A Field Study", ["S. Ahmed, J. Kowalski, L. Brown"]),
            ),
            ("data.csv", measurements_csv(seed=7, rows=12)),
        ],
    )
