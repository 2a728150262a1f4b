"""The baselines: what a hand-written httpx script does against the same emulator.

Plain synchronous httpx, as such a script would be written: one logged-in client with
keep-alive, bodies streamed and discarded, listings paged exactly as docfs pages them
(``limit=100``, ``expand=metadata``, after the collection's ``numberItems``), uploads as the
DSpace 6 API takes them (``POST /items/{id}/bitstreams?name=``), sequentially or by a pool of
worker threads with a client each.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.bench.emulator import PASSWORD, USER

PAGE = 100
JSON = {"Accept": "application/json"}


class Direct:
    """A logged-in DSpace 6 REST client."""

    def __init__(self, api: str) -> None:
        self.client = httpx.Client(base_url=api, timeout=120)
        response = self.client.post("/login", data={"email": USER, "password": PASSWORD})
        response.raise_for_status()
        self.cookie = response.cookies["JSESSIONID"]
        self.client.cookies.clear()
        self.client.headers["Cookie"] = f"JSESSIONID={self.cookie}"
        self.api = api

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Direct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def download(self, bitstream: str) -> int:
        """Stream the whole body, discarding it; returns its size."""
        size = 0
        with self.client.stream("GET", f"/bitstreams/{bitstream}/retrieve") as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                size += len(chunk)
        return size

    def time_to_first_byte(self, bitstream: str) -> float:
        """Seconds from sending the GET to the first body bytes (the rest is then drained)."""
        start = time.perf_counter()
        with self.client.stream("GET", f"/bitstreams/{bitstream}/retrieve") as response:
            response.raise_for_status()
            chunks = response.iter_bytes()
            next(chunks)
            elapsed = time.perf_counter() - start
            for _ in chunks:
                pass
        return elapsed

    def list_collection(self, collection: str) -> int:
        """All items of a collection, page by page; returns how many."""
        info = self.client.get(f"/collections/{collection}", headers=JSON)
        info.raise_for_status()
        total = int(info.json()["numberItems"])
        seen: set[str] = set()
        offset = 0
        while offset < total:
            page = self.client.get(
                f"/collections/{collection}/items",
                params={"limit": PAGE, "offset": offset, "expand": "metadata"},
                headers=JSON,
            )
            page.raise_for_status()
            items = page.json()
            if not items:
                break
            seen.update(i["uuid"] for i in items)
            offset += PAGE
        return len(seen)

    def upload(self, item: str, path: Path) -> None:
        response = self.client.post(
            f"/items/{item}/bitstreams",
            params={"name": path.name},
            content=path.read_bytes(),
            headers={"Accept": "application/json", "Content-Type": "application/octet-stream"},
        )
        response.raise_for_status()


def stream_url(client: httpx.Client, url: str, expect: int) -> int:
    """Stream ``url`` (no login: a public file of any emulator), discarding it; checks its size."""
    size = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
    if size != expect:
        raise RuntimeError(f"{url}: {size} bytes, expected {expect}")
    return size


def upload_all(clients: Sequence[Direct], item: str, files: Sequence[Path]) -> None:
    """Upload ``files`` into ``item``: one after another with one client, else one thread per
    client, each taking every n-th file (the clients are logged in beforehand, as docfs is)."""
    if len(clients) == 1:
        for path in files:
            clients[0].upload(item, path)
        return
    workers = len(clients)

    def work(client: Direct, part: Sequence[Path]) -> None:
        for path in part:
            client.upload(item, path)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work, c, files[i::workers]) for i, c in enumerate(clients)]
        for future in futures:
            future.result()
