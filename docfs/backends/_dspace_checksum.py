"""A DSpace bitstream's stored checksum as the typed ``Entry.checksum`` (DSpace 6 and 7+).

Both REST APIs describe it the same way: ``"checkSum": {"value": …, "checkSumAlgorithm":
"MD5"}`` (DSpace 6's ``dspace-rest/…/common/CheckSum.java``, DSpace 7's ``CheckSumRest``). The
file store computes MD5 (``DSBitStoreService``: ``CSA = "MD5"``); a value under any other
algorithm name is not taken as MD5. The ``checksum.md5`` meta key stays as the visible xattr.
See docs/protocols/dspace6.md and dspace7.md.
"""

from __future__ import annotations

from typing import Any

from docfs.backends.base import Checksum


def bitstream_checksum(check: Any) -> Checksum | None:
    """``Checksum("md5", value)`` from a bitstream's ``checkSum`` object, or None if it
    carries no MD5."""
    if not isinstance(check, dict):
        return None
    value = str(check.get("value") or "").strip().lower()
    algorithm = str(check.get("checkSumAlgorithm") or "MD5").upper()
    if not value or algorithm != "MD5":
        return None
    return Checksum("md5", value)
