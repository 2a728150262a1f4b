"""A small, believable DocSpace portal for ``docfs emulate docspace --demo``.

Everything is generated here, deterministically: a tiny valid PDF, a PNG drawn pixel by pixel,
CSV tables and text notes, a file with several versions, an empty file, and a few MiB of
generated data for trying block reads. Nothing is downloaded.
"""

from __future__ import annotations

from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.samples import minimal_pdf, png_image

#: the account created when the emulator was started without one (documented in the CLI help)
DEMO_USER = "demo@docspace.example"
DEMO_PASSWORD = "demo-password"


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
    emu.add_file(images, "logo.png", png_image(48, 48), owner=owner)
    emu.add_file(
        marketing,
        "Brochure.pdf",
        minimal_pdf("Product brochure", ["docfs mounts DocSpace rooms.", "Version 1.0"]),
        owner=owner,
    )

    apollo = emu.add_room("Project Apollo", owner=owner, room_type=2)
    specs = emu.add_folder(apollo, "Specs", owner=owner)
    emu.add_file(
        specs,
        "Requirements.pdf",
        minimal_pdf("Requirements", ["1. Read files lazily.", "2. Upload on close."]),
        owner=owner,
    )
    emu.add_folder(apollo, "Drafts", owner=owner)
    emu.add_file(apollo, "dataset.bin", size=3 * 1024 * 1024, owner=owner)

    public = emu.add_room("Public Docs", owner=owner, room_type=6)
    emu.add_file(public, "README.txt", b"Files in this room are shared by link.\n", owner=owner)

    if emu.server_profile.flag("watermarkedRoom"):
        # --setting watermarkedRoom=on: documents here download as watermarked PDFs
        # (FileHandler.ashx.cs), pictures and other files as they are
        confidential = emu.add_room("Confidential", owner=owner, room_type=5)
        emu.set_watermark(confidential, "CONFIDENTIAL")
        emu.add_file(
            confidential,
            "Contract.pdf",
            minimal_pdf("Contract", ["Between the parties.", "Signed 2 May."]),
            owner=owner,
        )
        emu.add_file(confidential, "Minutes.txt", b"Minutes of the board meeting.\n", owner=owner)
        emu.add_file(confidential, "seal.png", png_image(32, 32), owner=owner)
