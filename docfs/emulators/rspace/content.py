"""What RSpace does with names and content: the Gallery section a file goes to (by
extension, as ``MediaUtils`` does), the content type it is served with, the image check of
uploads, the HTML normalisation of text fields, and name cleaning. Pure functions."""

from __future__ import annotations

import mimetypes
import re

SECTIONS = (
    "Images",
    "Audios",
    "Videos",
    "Chemistry",
    "Documents",
    "Miscellaneous",
    "PdfDocuments",
    "Snippets",
)


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: extension → section, checked in this order (audio and video first), as MediaUtils does
SECTION_EXTENSIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Audios", words("mp3 wma aac ogg wav")),
    ("Videos", words("mp4 avi flv mpg mpeg 3gp wmv mov hdmov m4v")),
    ("Images", words("tif tiff jpeg jpg gif png bmp")),
    ("Documents", words("pdf odt ods odp doc rtf txt docx ppt pptx xls xlsx csv pps md")),
    (
        "Chemistry",
        words(
            "skc mrv cxsmiles cxsmarts cdx cdxml csrdf cml csmol cssdf csrxn mol mol2 pdb "
            "rxn rdf smiles smarts sdf inchi"
        ),
    ),
)
EXTENSION_UPGRADES = frozenset(
    {("doc", "docx"), ("csv", "xlsx"), ("xls", "xlsx"), ("pps", "pptx"), ("ppt", "pptx")}
)
IMAGE_CONTENT_TYPES = {
    "png": "image/x-png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "application/octet-stream",
    "tiff": "application/octet-stream",
    "bmp": "application/octet-stream",
}
MEDIA_TYPE_SECTIONS = {
    "image": frozenset({"Images"}),
    "av": frozenset({"Audios", "Videos"}),
    "chemistry": frozenset({"Chemistry"}),
}
P_SPLIT_RE = re.compile(r"(?i)<p(?:\s[^>]*)?>|</p>")
SHARED_SYSTEM = ("Shared", "LabGroups", "CollaborationGroups", "IndividualShareItems")


def section_for_filename(filename: str) -> str:
    """The Gallery section a file goes to, from its extension only (no extension → Misc)."""
    ext = extension(filename)
    for section, exts in SECTION_EXTENSIONS:
        if ext in exts:
            return section
    return "Miscellaneous"


def extension(filename: str) -> str:
    base = filename.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


def content_type_for(filename: str) -> str:
    ext = extension(filename)
    if ext in IMAGE_CONTENT_TYPES:
        return IMAGE_CONTENT_TYPES[ext]
    guessed, _ = mimetypes.guess_type("x." + ext) if ext else (None, None)
    return guessed or "application/octet-stream"


def image_matches(ext: str, data: bytes) -> bool:
    """The emulator's stand-in for the server's Tika sniffing of image uploads."""
    if ext == "png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in ("jpg", "jpeg"):
        return data.startswith(b"\xff\xd8\xff")
    if ext == "gif":
        return data.startswith((b"GIF87a", b"GIF89a"))
    if ext == "bmp":
        return data.startswith(b"BM")
    if ext in ("tif", "tiff"):
        return data.startswith((b"II*\x00", b"MM\x00*"))
    return True


def normalise_html(html: str) -> str:
    """What the server's editor pipeline does to text-field HTML (idempotent).

    Paragraphs are trimmed, closed and put one per line; plain text becomes one paragraph.
    """
    text = html.strip()
    if not text:
        return ""
    if P_SPLIT_RE.search(text) is None:
        return f"<p>{text}</p>" if not text.startswith("<") else text
    parts = [p.strip() for p in P_SPLIT_RE.split(text)]
    return "\n".join(f"<p>{p}</p>" for p in parts if p)


def clean_name(name: str) -> str:
    """Trim and replace newlines, as ``RecordManager.renameRecord`` does."""
    return re.sub(r"[\r\n]+", " ", name).strip()
