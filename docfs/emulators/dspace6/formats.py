"""DSpace 6's bitstream format registry and the Java MIME table REST uploads are guessed with.

Sources: ``dspace/config/registries/bitstream-formats.xml`` (the registry) and Java 8's
``content-types.properties`` (``URLConnection.guessContentTypeFromName``, used by
``ItemsResource.addItemBitstream`` and ``BitstreamResource.updateBitstream``); see
docs/protocols/dspace6.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    short: str
    mime: str


UNKNOWN = Format("Unknown", "application/octet-stream")
LICENSE = Format("License", "text/plain; charset=utf-8")

#: DSpace's bitstream format registry (bitstream-formats.xml): MIME, short description, extensions
FORMATS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("application/pdf", "Adobe PDF", ("pdf",)),
    ("text/xml", "XML", ("xml",)),
    ("text/plain", "Text", ("txt", "asc")),
    ("text/html", "HTML", ("htm", "html")),
    ("text/css", "CSS", ("css",)),
    ("text/csv", "CSV", ("csv",)),
    ("application/msword", "Microsoft Word", ("doc",)),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Microsoft Word XML",
        ("docx",),
    ),
    ("application/vnd.ms-powerpoint", "Microsoft Powerpoint", ("ppt",)),
    ("application/vnd.ms-excel", "Microsoft Excel", ("xls",)),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Microsoft Excel XML",
        ("xlsx",),
    ),
    ("image/jpeg", "JPEG", ("jpeg", "jpg", "jfif")),
    ("image/gif", "GIF", ("gif",)),
    ("image/png", "image/png", ("png",)),
    ("image/tiff", "TIFF", ("tiff", "tif")),
    ("image/jp2", "JPEG2000", ("jp2",)),
    ("audio/x-aiff", "AIFF", ("aiff", "aif", "aifc")),
    ("audio/basic", "audio/basic", ("au", "snd")),
    ("audio/x-wav", "WAV", ("wav",)),
    ("video/mpeg", "MPEG", ("mpeg", "mpg", "mpe")),
    ("text/richtext", "RTF", ("rtf",)),
    ("image/x-ms-bmp", "BMP", ("bmp",)),
    ("application/postscript", "Postscript", ("ps", "eps", "ai")),
    ("video/quicktime", "Video Quicktime", ("mov", "qt")),
    ("video/mp4", "Video MP4", ("mp4",)),
    ("application/x-latex", "LateX", ("latex",)),
    ("application/x-tex", "TeX", ("tex",)),
    ("application/x-dvi", "TeX dvi", ("dvi",)),
    ("application/sgml", "SGML", ("sgm", "sgml")),
    ("application/vnd.oasis.opendocument.text", "OpenDocument Text", ("odt",)),
)
FORMAT_BY_MIME = {mime: Format(short, mime) for mime, short, _ in FORMATS}
FORMAT_BY_EXT = {ext: Format(short, mime) for mime, short, exts in FORMATS for ext in exts}

#: Java 8's content-types.properties, as used by URLConnection.guessContentTypeFromName
JAVA_MIME: dict[str, str] = {
    **dict.fromkeys(("pdf",), "application/pdf"),
    **dict.fromkeys(("eps", "ai", "ps"), "application/postscript"),
    **dict.fromkeys(("rtf",), "application/rtf"),
    **dict.fromkeys(("dvi",), "application/x-dvi"),
    **dict.fromkeys(("latex",), "application/x-latex"),
    **dict.fromkeys(("tex",), "application/x-tex"),
    **dict.fromkeys(("zip",), "application/zip"),
    **dict.fromkeys(("tar",), "application/x-tar"),
    **dict.fromkeys(("gtar",), "application/x-gtar"),
    **dict.fromkeys(("sh", "shar"), "application/x-shar"),
    **dict.fromkeys(("snd", "au"), "audio/basic"),
    **dict.fromkeys(("aifc", "aif", "aiff"), "audio/aiff"),
    **dict.fromkeys(("wav",), "audio/x-wav"),
    **dict.fromkeys(("gif",), "image/gif"),
    **dict.fromkeys(("jfif", "jpe", "jpg", "jpeg"), "image/jpeg"),
    **dict.fromkeys(("tif", "tiff"), "image/tiff"),
    **dict.fromkeys(("png",), "image/png"),
    **dict.fromkeys(("bmp",), "image/bmp"),
    **dict.fromkeys(("htm", "html"), "text/html"),
    **dict.fromkeys(
        ("text", "c", "cc", "c++", "h", "pl", "txt", "java", "el"),
        "text/plain",
    ),
    **dict.fromkeys(("tsv",), "text/tab-separated-values"),
    **dict.fromkeys(("mpg", "mpe", "mpeg"), "video/mpeg"),
    **dict.fromkeys(("mov", "qt"), "video/quicktime"),
    **dict.fromkeys(("avi",), "application/x-troff-msvideo"),
    **dict.fromkeys(("xml",), "application/xml"),
}


def java_mime(name: str) -> str | None:
    """``URLConnection.guessContentTypeFromName`` with Java 8's MIME table."""
    dot = name.rfind(".")
    if dot < 0 or name.rfind("/") > dot:
        return None
    return JAVA_MIME.get(name[dot + 1 :].lower())


def format_from_rest_name(name: str) -> Format:
    mime = java_mime(name)
    if mime is None:
        return UNKNOWN
    return FORMAT_BY_MIME.get(mime, UNKNOWN)


def format_from_registry(name: str | None) -> Format:
    if not name or "." not in name:
        return UNKNOWN
    return FORMAT_BY_EXT.get(name.rsplit(".", 1)[1].lower(), UNKNOWN)
