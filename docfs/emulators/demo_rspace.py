"""A small, believable RSpace data set for ``docfs emulate rspace --demo`` and for tests.

Everything is generated here, deterministically: a valid tiny PNG (drawn pixel by pixel), a
one-page PDF with correct cross-reference offsets, CSV measurements and plain-text notes. The
layout mirrors a lab's account: a project folder with documents whose fields link Gallery files,
a notebook with dated entries, files in several Gallery sections (one sub-folder with more than a
page of files), a second user in a lab group, and one shared document.
"""

from __future__ import annotations

from docfs.emulators.rspace import RSpaceEmulator
from docfs.emulators.samples import minimal_pdf, png_image


def kinetics_csv(run: int, points: int = 12) -> bytes:
    """Michaelis-Menten style measurements; deterministic per ``run``."""
    lines = ["substrate_mM,velocity_uM_per_min"]
    vmax, km = 120.0 + run * 5, 2.5 + run * 0.25
    for i in range(1, points + 1):
        s = i * 0.5
        lines.append(f"{s:.1f},{vmax * s / (km + s):.3f}")
    return ("\n".join(lines) + "\n").encode()


def seed_demo(emu: RSpaceEmulator) -> None:
    """Fill ``emu`` with the demo data set for its default user (and a colleague)."""
    home = emu.home_id()
    experiment = emu.add_form(
        "Experiment", [("Objective", "text"), ("Method", "text"), ("Results", "text")]
    )

    images = emu.folder_id("Images")
    documents = emu.folder_id("Documents")
    chemistry = emu.folder_id("Chemistry")
    gel = emu.add_file(images, "gel-2026-03-02.png", png_image(seed=3), caption="Agarose gel")
    plot = emu.add_file(images, "kinetics-plot.png", png_image(24, 12, seed=9))
    protocol = emu.add_file(
        documents, "PCR protocol.pdf", minimal_pdf("PCR protocol v3"), caption="Lab protocol"
    )
    raw = emu.add_file(documents, "kinetics-run1.csv", kinetics_csv(1))
    emu.add_file(documents, "README.txt", b"Raw data from the plate reader, one CSV per run.\n")
    emu.add_file(chemistry, "ethanol.mol", _ETHANOL_MOL.encode())

    # a Gallery sub-folder with more than one page (100) of files
    runs = emu.add_folder(documents, "plate-reader runs")
    for run in range(1, 106):
        emu.add_file(runs, f"run-{run:03d}.csv", kinetics_csv(run, points=4))

    projects = emu.add_folder(home, "Projects")
    kinetics = emu.add_folder(projects, "Enzyme kinetics")
    emu.add_document(
        kinetics,
        "Kinetics of lactase, run 1",
        form=experiment,
        fields={
            "Objective": "<p>Measure Km and Vmax of lactase at 25 °C.</p>",
            "Method": f"<p>Plate reader, 12 substrate concentrations.</p><fileId={protocol}>",
            "Results": f"<p>Raw data and fit:</p><fileId={raw}><fileId={plot}>",
        },
        tags="kinetics,lactase",
    )
    literature = emu.add_document(
        kinetics,
        "Literature notes",
        fields=["<p>Michaelis &amp; Menten (1913); Lineweaver-Burk plot.</p>"],
        tags="reading",
    )
    emu.add_folder(projects, "Cloning")

    notebook = emu.add_folder(home, "Lab notebook 2026", notebook=True)
    emu.add_document(
        notebook,
        "2026-03-02 PCR of lacZ",
        fields=[f"<p>Gel shows the expected 1.2 kb band.</p><fileId={gel}>"],
    )
    emu.add_document(notebook, "2026-03-03 Plasmid prep", fields=["<p>Miniprep, 3 colonies.</p>"])

    colleague = "user2b"
    emu.add_user(colleague, api_key="docfsDemoColleagueKey0001")
    emu.add_document(
        emu.home_id(colleague),
        "Buffer recipes",
        fields=["<p>PBS: 137 mM NaCl, 2.7 mM KCl, 10 mM phosphate.</p>"],
    )
    lab = emu.add_group("Kinetics Lab", [emu.record(home)["owner"], colleague])
    emu.add_share(literature, group=lab, permission="EDIT")


_ETHANOL_MOL = """ethanol
  docfs

  3  2  0  0  0  0  0  0  0  0999 V2000
    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    1.5400    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0
    2.0500    1.4200    0.0000 O   0  0  0  0  0  0  0  0  0  0  0  0
  1  2  1  0
  2  3  1  0
M  END
"""
