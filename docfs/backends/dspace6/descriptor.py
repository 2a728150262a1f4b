"""DSpace 6's ``RemoteType``: the legacy REST API at ``/rest`` (see ``docfs.remotetype``)."""

from __future__ import annotations

from docfs import errors
from docfs.remotetype import RemoteType


async def probe(url: str) -> str | None:
    """``URL/rest`` when it answers ``/rest/status`` with DSpace 6's ``okay``, else None."""
    from docfs.backends._http import HttpClient, RetryPolicy

    base = url.rstrip("/")
    rest = base if base.endswith("/rest") else f"{base}/rest"
    http = HttpClient(rest, retry=RetryPolicy(attempts=2, base=0.2, cap=1.0))
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
    finally:
        await http.aclose()
    return rest if isinstance(status, dict) and "okay" in status else None


DSPACE6 = RemoteType(
    name="dspace6",
    label="DSpace 6",
    description="DSpace 6.x legacy REST API",
    backend="docfs.backends.dspace6:DSpace6Backend",
    emulator="docfs.emulators.dspace6:DSpace6Emulator",
    api_path="/rest",
    wrong_url="is this the DSpace 6 REST URL? `docfs detect URL` can tell",
    url_form="https://host/rest",
    family="dspace",
    probe=probe,
    demo="docfs.emulators.demo_data:seed_dspace6",
    refs="docfs.backends._dspace_refs:parse_ref",
)
