"""A small, believable Opus 2 tenant for ``docfs emulate opus2 --demo``.

Two litigation projects the default user can read and write, and one archive they may only
read, with nested folders, metadata fields of every type, and documents whose bytes are made
here by code (a valid one-page PDF, a PNG, CSV and text files), so the demo needs no data files
and is the same on every run.
"""

from __future__ import annotations

from docfs.emulators.opus2 import READ, READ_WRITE, Opus2Emulator
from docfs.emulators.samples import minimal_pdf, png_image


def seed_demo(emu: Opus2Emulator) -> None:
    """Fill ``emu`` with the demo projects; the default user gets access to all of them."""
    me = emu.default_user_id
    colleague = emu.add_user("a.shah@example.com", name="Anika Shah")
    _smith_v_jones(emu, me, colleague)
    _acme_arbitration(emu, me)
    archive = emu.add_project("Archive 2019 (read only)", members={me: READ, colleague: READ_WRITE})
    folder = emu.ensure_path(archive, "/Closed matters")
    emu.add_document(
        archive,
        "Closing memo.txt",
        _text("Closing memo", "File closed on 2019-12-20. Retain until 2031."),
        folder_id=folder,
    )


def _fields(emu: Opus2Emulator, project: str) -> None:
    emu.add_field(project, "Author", "text")
    emu.add_field(project, "Document Date", "date")
    emu.add_field(project, "Bates Number", "number")
    emu.add_field(project, "Privilege", "choice", ["Not privileged", "Privileged", "Redacted"])


def _smith_v_jones(emu: Opus2Emulator, me: str, colleague: str) -> None:
    project = emu.add_project("Smith v Jones (2024)", members={me: READ_WRITE, colleague: READ})
    _fields(emu, project)
    pleadings = emu.ensure_path(project, "/Pleadings")
    exhibits = emu.ensure_path(project, "/Evidence/Exhibits")
    witness = emu.ensure_path(project, "/Evidence/Witness statements")
    emu.ensure_path(project, "/Correspondence")
    emu.add_document(
        project,
        "Claim form.pdf",
        minimal_pdf("Claim form - Smith v Jones", ["Particulars of claim follow."]),
        folder_id=pleadings,
        fields={"Author": "R. Smith", "Document Date": "2024-02-01", "Bates Number": 1},
    )
    emu.add_document(
        project,
        "Defence.pdf",
        minimal_pdf("Defence - Smith v Jones", ["The defendant denies each allegation."]),
        folder_id=pleadings,
        fields={"Author": "T. Jones", "Document Date": "2024-03-15", "Bates Number": 12},
    )
    emu.add_document(
        project,
        "Exhibit A - site photo.png",
        png_image(48, 32),
        folder_id=exhibits,
        fields={"Privilege": "Not privileged", "Bates Number": 31},
    )
    emu.add_document(
        project,
        "Exhibit B - invoices.csv",
        _csv(),
        folder_id=exhibits,
        fields={"Privilege": "Not privileged", "Bates Number": 32},
    )
    emu.add_document(
        project,
        "Statement of A. Witness.txt",
        _text("Witness statement", "I saw the delivery van arrive at 9.15 on 3 January."),
        folder_id=witness,
        fields={"Privilege": "Privileged", "Document Date": "2024-04-02"},
    )
    emu.add_document(
        project, "Case summary.txt", _text("Case summary", "Trial listed for October 2025.")
    )


def _acme_arbitration(emu: Opus2Emulator, me: str) -> None:
    project = emu.add_project("Acme v Globex arbitration", members={me: READ_WRITE})
    _fields(emu, project)
    awards = emu.ensure_path(project, "/Awards")
    emu.ensure_path(project, "/Hearing bundle/Day 1")
    emu.add_document(
        project,
        "Procedural order 1.pdf",
        minimal_pdf("Procedural Order No. 1", ["The tribunal fixes the timetable in Annex A."]),
        folder_id=awards,
        fields={"Document Date": "2025-01-10"},
    )


# ---- file makers -------------------------------------------------------------------------


def _text(title: str, body: str) -> bytes:
    return f"{title}\n{'=' * len(title)}\n\n{body}\n".encode()


def _csv() -> bytes:
    rows = [
        ("invoice", "date", "amount_gbp"),
        ("INV-1001", "2023-11-02", "1250.00"),
        ("INV-1002", "2023-12-01", "980.50"),
        ("INV-1003", "2024-01-05", "2210.75"),
    ]
    return "".join(",".join(r) + "\r\n" for r in rows).encode()
