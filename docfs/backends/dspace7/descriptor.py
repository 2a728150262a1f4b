"""DSpace 7+'s ``RemoteType``: the Server REST API at ``/server/api`` (see
``docfs.remotetype``)."""

from __future__ import annotations

from docfs.remotetype import RemoteType


async def probe(url: str) -> str | None:
    """The URL itself when its root document names itself DSpace 7+ (``type: root``)."""
    from docfs.backends._http import HttpClient, RetryPolicy
    from docfs.backends.dspace7 import probe as root_probe

    base = url.rstrip("/")
    if base.endswith("/rest"):
        return None  # DSpace 6's API path
    http = HttpClient(base, retry=RetryPolicy(attempts=2, base=0.2, cap=1.0))
    try:
        return base if await root_probe(http) is not None else None
    finally:
        await http.aclose()


DSPACE7 = RemoteType(
    name="dspace7",
    label="DSpace 7+",
    description="DSpace 7 and later: Server REST API",
    backend="docfs.backends.dspace7:DSpace7Backend",
    emulator="docfs.emulators.dspace7:DSpace7Emulator",
    api_path="/server/api",
    wrong_url=(
        "is this the DSpace 7+ server (https://HOST or …/server)? `docfs detect URL` can tell"
    ),
    url_form="https://host",
    family="dspace",
    probe=probe,
    demo="docfs.emulators.demo_dspace7:seed_demo",
    refs="docfs.backends._dspace_refs:parse_ref",
)
