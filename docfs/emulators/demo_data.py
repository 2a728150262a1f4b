"""A small, believable demo repository for the emulators, generated locally and deterministically.

Everything is made here without downloads: minimal but valid PDFs written by hand, PNG images
encoded with ``zlib`` + ``struct``, CSV tables from a seeded random generator, plain-text READMEs,
and one 64 MiB file of pseudo-random bytes (one random MiB, rotated per MiB, so it is built in
milliseconds yet no two MiB are alike). The same call always produces the same names, metadata
and bytes; only the object UUIDs depend on the emulator's own seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.emulators.samples import csv_table, large_blob, minimal_pdf, png_image

_MIB = 1 << 20
_LARGE_SIZE = 64 * _MIB


@dataclass
class _File:
    name: str
    data: bytes
    bundle: str = "ORIGINAL"
    description: str | None = None


@dataclass
class _Record:
    title: str
    metadata: dict[str, list[str]]
    modified: datetime
    files: list[_File] = field(default_factory=list)


def _readme(title: str, body: str) -> bytes:
    return f"{title}\n{'=' * len(title)}\n\n{body.strip()}\n".encode()


_LICENSE_TEXT = (
    b"NOTE: PLACE YOUR OWN LICENSE HERE\n"
    b"By signing and submitting this license, you (the author(s) or copyright owner) grant "
    b"to the repository the non-exclusive right to reproduce and distribute your submission.\n"
)


def _meta(
    authors: list[str], issued: str, abstract: str, subjects: list[str], kind: str
) -> dict[str, list[str]]:
    return {
        "dc.contributor.author": authors,
        "dc.date.issued": [issued],
        "dc.description.abstract": [abstract],
        "dc.subject": subjects,
        "dc.type": [kind],
        "dc.language.iso": ["en"],
    }


def _thesis_records() -> list[_Record]:
    t1 = "Quantum Transport in Graphene Nanoribbons"
    t2 = "Thermal Conductivity of Amorphous Silicon at Low Temperatures"
    pdf1 = minimal_pdf(t1, ["PhD thesis", "Department of Physics", "A. Novak, 2021"])
    return [
        _Record(
            t1,
            _meta(
                ["Novak, Anna"],
                "2021-06-30",
                "We study ballistic and diffusive transport in armchair graphene nanoribbons "
                "and relate edge disorder to the measured conductance quantisation.",
                ["graphene", "quantum transport", "nanoribbons"],
                "Thesis",
            ),
            datetime(2021, 7, 2, 10, 14, 31, 570000),
            [
                _File("thesis.pdf", pdf1),
                _File("thesis.pdf.txt", (t1 + "\nPhD thesis\n").encode(), bundle="TEXT"),
                _File("license.txt", _LICENSE_TEXT, bundle="LICENSE"),
            ],
        ),
        _Record(
            t2,
            _meta(
                ["Okafor, Chidi", "Lindqvist, Maja"],
                "2019-11-15",
                "Measurements of the thermal conductivity of sputtered amorphous silicon films "
                "between 2 K and 300 K, with a phonon-glass model of the plateau.",
                ["amorphous silicon", "thermal conductivity", "phonons"],
                "Thesis",
            ),
            datetime(2019, 11, 20, 16, 3, 9, 100000),
            [
                _File("thesis.pdf", minimal_pdf(t2, ["MSc thesis", "C. Okafor, 2019"])),
                _File("measurements.csv", csv_table(["temperature_K", "kappa_W_mK"], 120, 2)),
            ],
        ),
    ]


def _data_records() -> list[_Record]:
    t3 = "Ocean Temperature Profiles, North Atlantic 2015-2019"
    t4 = "Climate Model Ensemble Output, Run 7"
    t5 = "Soil Microbiome Survey of Alpine Meadows"
    return [
        _Record(
            t3,
            _meta(
                ["Moreau, Claire", "Haddad, Youssef"],
                "2020-03-01",
                "CTD temperature profiles from 412 casts along the AR7W line, quality-controlled "
                "and binned to 1 dbar.",
                ["oceanography", "temperature", "North Atlantic"],
                "Dataset",
            ),
            datetime(2020, 3, 4, 8, 45, 0),
            [
                _File("profiles.csv", csv_table(["depth_m", "temp_C", "salinity_psu"], 400, 3)),
                _File("README.txt", _readme(t3, "Columns: depth (m), temperature, salinity.")),
                _File("map.png", png_image(64, 48, 3), description="Station map"),
            ],
        ),
        _Record(
            t4,
            _meta(
                ["Ishikawa, Ren"],
                "2022-09-12",
                "Raw binary output of ensemble member 7 of a coupled climate model (monthly "
                "means, float32, little-endian).",
                ["climate model", "simulation"],
                "Dataset",
            ),
            datetime(2022, 9, 12, 23, 59, 59, 999000),
            [
                _File("simulation-output.bin", large_blob(), description="64 MiB raw output"),
                _File("README.txt", _readme(t4, "Format: float32 grid, 64 MiB, see paper.")),
            ],
        ),
        _Record(
            t5,
            _meta(
                ["Berger, Lukas", "Santos, Beatriz", "Kowalski, Piotr"],
                "2023-05-20",
                "16S rRNA amplicon counts from 48 soil cores taken on three alpine meadows.",
                ["microbiome", "soil", "16S rRNA"],
                "Dataset",
            ),
            datetime(2023, 6, 1, 12, 0, 0, 250000),
            [
                # the same name twice is legal in DSpace: an original and a corrected upload
                _File("samples.csv", csv_table(["reads", "shannon"], 48, 5)),
                _File(
                    "samples.csv",
                    csv_table(["reads", "shannon"], 48, 6),
                    description="Corrected version",
                ),
                _File("figure1.png", png_image(80, 60, 5), description="Rarefaction curves"),
            ],
        ),
    ]


def _humanities_records() -> list[_Record]:
    t6 = "Letters of a Hanseatic Merchant, 1587-1602"
    t7 = "Résumé des travaux du Congrès de Bruxelles"
    return [
        _Record(
            t6,
            _meta(
                ["Hoffmann, Greta"],
                "2018-02-08",
                "Diplomatic transcription of 37 letters from the correspondence of a Lübeck "
                "merchant, with facsimiles of selected pages.",
                ["Hanseatic League", "letters", "early modern trade"],
                "Book",
            ),
            datetime(2018, 2, 9, 9, 30, 12, 5000),
            [
                _File("transcription.pdf", minimal_pdf(t6, ["Transcription", "G. Hoffmann"])),
                _File("page-001.png", png_image(60, 80, 61), description="Facsimile, f. 1r"),
                _File("page-002.png", png_image(60, 80, 62), description="Facsimile, f. 1v"),
            ],
        ),
        _Record(
            t7,
            {
                **_meta(
                    ["Lefèvre, Étienne"],
                    "1911",
                    "Compte rendu des séances du congrès, avec la liste des participants.",
                    ["congrès", "histoire"],
                    "Book",
                ),
                "dc.language.iso": ["fr"],
            },
            datetime(2017, 3, 23, 11, 15, 28, 610000),
            [_File("Résumé des travaux.pdf", minimal_pdf(t7, ["Bruxelles, 1911"]))],
        ),
    ]


def _library_records() -> list[_Record]:
    t8 = "Introduction to Research Data Management"
    t9 = "Statistics with Open Data: A Primer"
    return [
        _Record(
            t8,
            _meta(
                ["Adeyemi, Funmi", "Virtanen, Olli"],
                "2022-01-17",
                "Slides and exercises of a two-hour workshop on data management plans, file "
                "formats and repositories.",
                ["research data management", "training"],
                "Learning Object",
            ),
            datetime(2022, 1, 17, 14, 22, 5, 300000),
            [
                _File("slides.pdf", minimal_pdf(t8, ["Workshop slides", "Library"])),
                _File("exercises.csv", csv_table(["score"], 20, 8)),
                _File("README.txt", _readme(t8, "Licensed CC BY 4.0. Slides plus exercises.")),
            ],
        ),
        _Record(
            t9,
            _meta(
                ["Nguyen, Thi Mai"],
                "2021-10-04",
                "A short primer on descriptive statistics using openly licensed public data.",
                ["statistics", "open data"],
                "Book",
            ),
            datetime(2021, 10, 4, 7, 58, 40),
            [
                _File("primer.pdf", minimal_pdf(t9, ["Chapter 1: Describing data"])),
                _File("dataset.csv", csv_table(["x", "y"], 50, 9)),
            ],
        ),
    ]


def _internal_records() -> list[_Record]:
    t10 = "Library Annual Report 2023 (internal)"
    return [
        _Record(
            t10,
            _meta(
                ["University Library"],
                "2024-02-29",
                "Budget, acquisitions and staffing figures for 2023. Internal use only.",
                ["annual report"],
                "Report",
            ),
            datetime(2024, 3, 1, 10, 0, 0, 120000),
            [_File("report.pdf", minimal_pdf(t10, ["Internal - do not distribute"]))],
        )
    ]


def _add_records(
    emu: DSpace6Emulator, collection: str, records: list[_Record], *, public: bool = True
) -> None:
    for record in records:
        item = emu.add_item(
            collection,
            record.title,
            metadata=record.metadata,
            public=public,
            last_modified=record.modified,
        )
        for f in record.files:
            emu.add_bitstream(
                item,
                f.name,
                f.data,
                bundle=f.bundle,
                public=public,
                description=f.description,
            )


def seed_dspace6(emu: DSpace6Emulator, admin: tuple[str, str] | None = None) -> None:
    """Fill a DSpace 6 emulator with the demo repository; ``admin`` = (email, password)."""
    if admin is not None:
        emu.add_user(admin[0], admin[1], admin=True, fullname="Demo Administrator")
    science = emu.add_community("Faculty of Science")
    physics = emu.add_community("Department of Physics", science)
    humanities = emu.add_community("Faculty of Humanities")
    library = emu.add_community("University Library")

    _add_records(emu, emu.add_collection("Physics Theses", physics), _thesis_records())
    _add_records(emu, emu.add_collection("Research Data", science), _data_records())
    _add_records(
        emu, emu.add_collection("Historical Manuscripts", humanities), _humanities_records()
    )
    _add_records(emu, emu.add_collection("Open Educational Resources", library), _library_records())
    internal = emu.add_collection("Internal Reports", library, public=False)
    _add_records(emu, internal, _internal_records(), public=False)
