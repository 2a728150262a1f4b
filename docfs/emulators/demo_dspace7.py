"""A small, believable DSpace 7+ repository for ``docfs emulate dspace7 --demo``.

Everything is generated here, deterministically, by code: tiny but valid PDF, PNG, CSV and text
files, so the demo needs no data files and looks the same on every run (apart from uuids and
dates, which the emulator assigns).
"""

from __future__ import annotations

import random

from docfs.emulators.dspace7 import DSpace7Emulator
from docfs.emulators.samples import minimal_pdf, png_image

LICENSE_TEXT = (
    "NOTICE: PLACE YOUR OWN LICENSE HERE\n"
    "This sample license is provided for informational purposes only.\n\n"
    "By signing and submitting this license, you (the author(s) or copyright owner) grant to\n"
    "the repository the non-exclusive right to reproduce and distribute your submission.\n"
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
    emu.set_logo(library, png_image(32, 32, seed=99), "library-logo.png")

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
                minimal_pdf(
                    "Thermal Transport in Layered Materials",
                    ["A. Okafor", "Doctoral thesis, 2023", "Chapter 1: Introduction"],
                ),
            ),
            ("figure-1.png", png_image(64, 48, seed=1)),
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
                minimal_pdf("Spin Waves in Thin Magnetic Films", ["C. Moreau", "Master thesis"]),
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
                minimal_pdf("Open Peer Review: A Field Study", ["S. Ahmed, J. Kowalski, L. Brown"]),
            ),
            ("data.csv", measurements_csv(seed=7, rows=12)),
        ],
    )
