"""The Simple Archive Format reader/writer (docfs/saf.py) against the importer's rules
(ItemImportServiceImpl: addDCValue, processContentsFile; docs/protocols/dspace6.md)."""

from __future__ import annotations

import pytest

from docfs import saf


def test_dcvalues_follow_the_importers_rules() -> None:
    data = b"""<?xml version="1.0" encoding="UTF-8"?>
<dublin_core>
  <dcvalue element="title" qualifier="none" language="en">  A title  </dcvalue>
  <dcvalue element="contributor" qualifier="author">One</dcvalue>
  <dcvalue element="contributor" qualifier="author">Two</dcvalue>
  <dcvalue element="subject" qualifier="">s</dcvalue>
  <dcvalue element="description" qualifier="abstract"></dcvalue>
</dublin_core>"""
    assert saf.parse_metadata(data) == [
        saf.Value("dc.title", "A title", "en"),
        saf.Value("dc.contributor.author", "One"),
        saf.Value("dc.contributor.author", "Two"),
        saf.Value("dc.subject", "s"),
    ]


def test_a_schema_file_names_its_schema() -> None:
    data = b'<dublin_core schema="dcterms"><dcvalue element="audience">x</dcvalue></dublin_core>'
    assert saf.parse_metadata(data, "metadata_dcterms.xml") == [saf.Value("dcterms.audience", "x")]


@pytest.mark.parametrize(
    "bad", [b"<dublin_core>", b"<metadata/>", b"<dublin_core><dcvalue/></dublin_core>"]
)
def test_a_broken_metadata_file_is_refused(bad: bytes) -> None:
    with pytest.raises(saf.PackageError):
        saf.parse_metadata(bad)


def test_metadata_files_read_back_as_written() -> None:
    meta = {
        "dc.title": "T <&> é",
        "dc.contributor.author": "A\nB",
        "dcterms.audience": "students",
        "handle": "123/4",
        "uuid": "u",
    }
    files = saf.metadata_files(meta)
    assert sorted(files) == ["dublin_core.xml", "metadata_dcterms.xml"]
    back = saf.grouped(saf.parse_metadata(files["dublin_core.xml"]))
    back |= saf.grouped(saf.parse_metadata(files["metadata_dcterms.xml"]))
    assert back == {
        "dc.title": ["T <&> é"],
        "dc.contributor.author": ["A", "B"],
        "dcterms.audience": ["students"],
    }


def test_contents_lines_and_their_fields() -> None:
    text = (
        "a.pdf\tbundle:ORIGINAL\tdescription:the text\tprimary:true\n"
        "\n"
        "license.txt\tbundle:LICENSE\nplain.csv\n"
    )
    lines = saf.parse_contents(text)
    assert lines == [
        saf.Line("a.pdf", "ORIGINAL", "the text", True),
        saf.Line("license.txt", "LICENSE"),
        saf.Line("plain.csv"),
    ]
    assert saf.parse_contents(saf.contents_text(lines)) == lines


def test_registration_lines_are_refused() -> None:
    with pytest.raises(saf.PackageError):
        saf.parse_contents("-r -s 0 -f some/file\n")


def test_which_names_are_package_files() -> None:
    names = ["dublin_core.xml", "contents", "metadata_local.xml", "data.xml", "contents.txt"]
    names += ["handle", "collections", "relationships", "handle.txt"]
    assert [n for n in names if saf.is_package_file(n)] == [
        "dublin_core.xml",
        "contents",
        "metadata_local.xml",
        "handle",
        "collections",
        "relationships",
    ]
