"""The emulators make and serve thumbnails as the servers do (docs/protocols/thumbnails.md).

DocSpace: ``thumbnailStatus`` Waiting until the builder ran, then Created with a
``thumbnailUrl`` that ``filehandler.ashx?action=thumb`` answers; 204 before; a new version waits
again. DSpace 6: ``filter-media`` puts ``<name>.jpg`` into THUMBNAIL for its input formats only,
with the source's policies, and updates the item.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from docfs.emulators.base import EmulatorServer
from docfs.emulators.docspace import DocSpaceEmulator
from docfs.emulators.dspace6 import DSpace6Emulator
from docfs.vfs import imagecodec

OWNER, OWNER_PW = "owner@example.com", "owner-secret-1"
API = "/api/2.0"


@pytest.fixture
def docspace() -> Iterator[tuple[DocSpaceEmulator, httpx.Client]]:
    emu = DocSpaceEmulator(user=OWNER, password=OWNER_PW)
    with EmulatorServer(emu) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post(f"{API}/authentication", json={"userName": OWNER, "password": OWNER_PW})
        http.headers["Authorization"] = r.json()["response"]["token"]
        yield emu, http


def _dto(http: httpx.Client, folder: int, title: str) -> dict[str, object]:
    files = http.get(f"{API}/files/{folder}").json()["response"]["files"]
    found: dict[str, object] = next(f for f in files if f["title"] == title)
    return found


def test_docspace_thumbnail_status_url_and_handler(
    docspace: tuple[DocSpaceEmulator, httpx.Client],
) -> None:
    emu, http = docspace
    my = emu.my_documents_id(OWNER)
    doc = emu.add_file(my, "report.docx", b"PK\x03\x04 not really")
    emu.add_file(my, "data.zip", b"PK\x03\x04")
    thumb = {"action": "thumb", "fileid": str(doc)}
    waiting = _dto(http, my, "report.docx")
    assert waiting["thumbnailStatus"] == 0 and "thumbnailUrl" not in waiting
    assert _dto(http, my, "data.zip")["thumbnailStatus"] == 3  # NotRequired: not a format
    assert http.get("/filehandler.ashx", params=thumb).status_code == 204
    assert emu.build_thumbnails() == [doc]
    created = _dto(http, my, "report.docx")
    assert created["thumbnailStatus"] == 1
    url = str(created["thumbnailUrl"])
    assert "action=thumb" in url and f"fileid={doc}" in url and "version=1" in url
    image = http.get(url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert imagecodec.decode(image.content).width == emu.THUMBNAIL_SIZE[0]
    # anonymous: no download right
    assert httpx.get(url, timeout=30).status_code in (401, 403)
    # a new version waits for the builder again; the old thumbnail is not served for it
    emu.add_version(doc, b"PK\x03\x04 second")
    assert _dto(http, my, "report.docx")["thumbnailStatus"] == 0
    assert http.get("/filehandler.ashx", params=thumb).status_code == 204


def test_dspace6_filter_media_makes_thumbnails_of_its_formats_only() -> None:
    emu = DSpace6Emulator()
    item = emu.add_item(emu.add_collection("K", emu.add_community("C")), "Item")
    emu.add_bitstream(item, "a.pdf", b"%PDF-1.4\n")
    emu.add_bitstream(item, "b.png", b"\x89PNG\r\n\x1a\n", public=False)
    emu.add_bitstream(item, "c.tif", b"II*\x00")
    emu.add_bitstream(item, "d.docx", b"PK")
    emu.touch(item, datetime(2020, 1, 1, tzinfo=UTC))
    before = emu.get_object(item)
    made = emu.filter_media(item)
    assert len(made) == 2 and emu.filter_media(item) == []  # existing ones are kept
    thumbs = {b["name"]: b for b in emu.bitstreams_of(item) if b["bundle"] == "THUMBNAIL"}
    assert set(thumbs) == {"a.pdf.jpg", "b.png.jpg"}
    assert thumbs["a.pdf.jpg"]["format"] == "JPEG"
    image = imagecodec.decode(emu.bitstream_data(thumbs["a.pdf.jpg"]["uuid"]))
    assert max(image.width, image.height) <= 80  # thumbnail.maxwidth/maxheight of 6.x
    # policies are inherited: the private PNG's thumbnail is private too
    shown = {
        u: emu.get_object(u) for u in (thumbs["a.pdf.jpg"]["uuid"], thumbs["b.png.jpg"]["uuid"])
    }
    assert [s and s["public"] for s in shown.values()] == [True, False]
    # the run updated the item (itemService.update): new sequence ids, new lastModified
    after = emu.get_object(item)
    assert before is not None and after is not None
    assert after["last_modified"] > before["last_modified"]
    assert all(t["sequence_id"] > 0 for t in thumbs.values())
