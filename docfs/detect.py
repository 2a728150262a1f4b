"""Which DSpace a URL serves: 7 and later (``/server/api``) or 6 (``/rest``).

``docfs mount dspace:URL`` and ``docfs detect URL`` ask the server instead of making the user
know: the DSpace 7+ root document names itself (``type: root``), and DSpace 6 answers
``/rest/status`` with ``okay``. Both probes are anonymous reads.
"""

from __future__ import annotations

from docfs import errors
from docfs.backends._http import HttpClient, RetryPolicy
from docfs.backends.dspace7 import probe


async def detect_dspace(url: str) -> tuple[str, str]:
    """``(type, url)`` for a DSpace server: ``("dspace7", url)`` or ``("dspace6", url/rest)``."""
    base = url.rstrip("/")
    quick = RetryPolicy(attempts=2, base=0.2, cap=1.0)
    http = HttpClient(base, retry=quick)
    try:
        if not base.endswith("/rest") and await probe(http) is not None:
            return "dspace7", base
        rest = base if base.endswith("/rest") else f"{base}/rest"
        try:
            response = await http.request(
                "GET",
                f"{rest}/status",
                endpoint="status",
                auth=False,
                headers={"Accept": "application/json"},
            )
            status = response.json()
        except (errors.DocfsError, ValueError):
            status = None
        if isinstance(status, dict) and "okay" in status:
            return "dspace6", rest
    finally:
        await http.aclose()
    raise errors.NotFound(f"{url} serves neither DSpace 7+ (/server/api) nor DSpace 6 (/rest)")
