"""The cache's writer thread: bytes land in order, progress is reported, errors surface."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from docfs.vfs import filewriter
from docfs.vfs.filewriter import FileWriter


async def test_chunks_land_in_order(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    progress: list[int] = []
    chunks = [os.urandom(n) for n in (1, 65536, 0, 300_000, 7)] * 20
    writer = FileWriter(fd, progress.append)
    for chunk in chunks:
        await writer.write(chunk)
    await writer.finish()
    os.close(fd)
    data = b"".join(chunks)
    assert path.read_bytes() == data
    assert progress == sorted(progress) and progress[-1] == len(data)


async def test_a_full_backlog_makes_the_download_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filewriter, "BACKLOG", 100_000)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    reported: list[int] = []
    writer = FileWriter(fd, reported.append)
    most_ahead = 0
    for _ in range(50):
        await writer.write(b"x" * 50_000)
        most_ahead = max(most_ahead, writer.queued - (reported[-1] if reported else 0))
    await writer.finish()
    os.close(fd)
    # never more than the backlog plus the chunk just queued waits unwritten
    assert most_ahead <= 150_000
    assert (tmp_path / "f").stat().st_size == 50 * 50_000


async def test_a_write_error_reaches_the_download(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_RDONLY | os.O_CREAT)  # writes fail with EBADF
    writer = FileWriter(fd, lambda n: None)
    with pytest.raises(OSError):
        for _ in range(1000):
            await writer.write(b"data")
            await trio.sleep(0.001)
        await writer.finish()
    writer.abort()
    os.close(fd)


async def test_abort_stops_the_thread_before_the_fd_is_closed(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    writer = FileWriter(fd, lambda n: None)
    for _ in range(20):
        await writer.write(b"y" * 1_000_000)
    writer.abort()
    assert writer._thread is not None
    assert not writer._thread.is_alive()
    os.close(fd)
