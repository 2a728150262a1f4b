"""Which member of a family of repository types a URL serves (``FAMILY:URL``, ``docfs detect``).

``docfs mount FAMILY:URL`` and ``docfs detect URL`` ask the server instead of making the user
know: each member's descriptor has a probe (anonymous reads), asked in registration order; the
first that recognises its server names the type and the URL to mount.
"""

from __future__ import annotations

from docfs import errors
from docfs.registry import families


async def detect(family: str, url: str) -> tuple[str, str]:
    """``(type, url)`` for a server of ``family``; NotFound when no member answers."""
    members = families()[family]
    for member in members:
        assert member.probe is not None  # families() holds only types with a probe
        found = await member.probe(url)
        if found is not None:
            return member.name, found
    tried = " nor ".join(f"{t.label} ({t.api_path or '/'})" for t in members)
    raise errors.NotFound(f"{url} serves neither {tried}")
