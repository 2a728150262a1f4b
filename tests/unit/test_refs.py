"""What ``docfs resolve`` makes of each repository type's references (``RemoteType.refs``)."""

from __future__ import annotations

import pytest

from docfs.commands.resolve import parse
from docfs.registry import REMOTE_TYPES

UUID = "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

CASES = [
    ("dspace7", "https://repo.example.org/handle/123456789/42", ("handle", "123456789/42")),
    (
        "dspace7",
        "https://repo.example.org/handle/123456789/42/thesis.pdf",
        ("handle", "123456789/42"),
    ),
    ("dspace6", "http://repo.example.org/xmlui/handle/10673/7", ("handle", "10673/7")),
    ("dspace6", "hdl:123456789/42", ("handle", "123456789/42")),
    ("dspace6", "https://hdl.handle.net/123456789/42", ("handle", "123456789/42")),
    ("dspace6", "123456789/42", ("handle", "123456789/42")),
    ("dspace7", f"https://repo.example.org/items/{UUID}", ("id", UUID)),
    ("dspace7", f"https://repo.example.org/entities/publication/{UUID.upper()}", ("id", UUID)),
    ("dspace7", f"https://repo.example.org/server/api/core/bitstreams/{UUID}", ("id", UUID)),
    ("dspace7", UUID, ("id", UUID)),
    ("dspace7", "doi:10.5072/abc-1", ("doi", "10.5072/abc-1")),
    ("dspace7", "https://doi.org/10.5072/abc-1", ("doi", "10.5072/abc-1")),
    ("dspace7", "not a reference", None),
    ("rspace", "SD123", ("id", "SD123")),
    ("rspace", "gl45", ("id", "GL45")),
    ("rspace", "https://rs.example.org/globalId/NB7", ("id", "NB7")),
    ("rspace", "https://rs.example.org/workspace/editor/structuredDocument/123", ("id", "SD123")),
    ("rspace", "https://rs.example.org/notebookEditor/7", ("id", "NB7")),
    ("rspace", "https://rs.example.org/workspace/9", ("id", "FL9")),
    ("rspace", "FD12", None),
    ("docspace", "f123", ("id", "f123")),
    ("docspace", "d45", ("id", "d45")),
    ("docspace", "123", ("id", "123")),
    ("docspace", "https://portal.example.org/doceditor?fileId=123", ("id", "f123")),
    ("docspace", "https://portal.example.org/rooms/shared/45/filter?folder=46", ("id", "d46")),
    ("docspace", "https://portal.example.org/rooms/shared/45", ("id", "d45")),
    ("opus2", "p7:d9", ("id", "p7:d9")),
    ("opus2", "d:p7:d9", ("id", "d:p7:d9")),
    ("opus2", "p:p7", ("id", "p:p7")),
    ("opus2", "https://example.org/x", None),
]


@pytest.mark.parametrize(("kind", "text", "expected"), CASES)
def test_a_reference_is_read_by_its_type(
    kind: str, text: str, expected: tuple[str, str] | None
) -> None:
    assert parse(REMOTE_TYPES[kind], text) == expected


def test_every_type_reads_references() -> None:
    assert all(t.refs for t in REMOTE_TYPES.values())
