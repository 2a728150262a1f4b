"""Thumbnails without an imaging library: JPEG/PNG decoding, the cache's names and chunks.

The decoder is checked against libjpeg (``djpeg``/``cjpeg`` from libjpeg-turbo-progs, installed
with the test extras); the cache names against GLib (``gio info``), which is what the file
managers use to find a thumbnail.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docfs.backends._thumbs import match_thumbnails
from docfs.emulators.thumbjpeg import encode_jpeg, picture_of, thumbnail_jpeg
from docfs.vfs import imagecodec
from docfs.vfs.thumbnails import Wanted, cache_name, file_uri, is_valid

needs_libjpeg = pytest.mark.skipif(
    shutil.which("cjpeg") is None or shutil.which("djpeg") is None,
    reason="cjpeg/djpeg missing (bash scripts/setup.sh test installs libjpeg-turbo-progs)",
)


def _ppm_pixels(ppm: bytes) -> bytes:
    return ppm[ppm.index(b"255\n") + 4 :]


@needs_libjpeg
@pytest.mark.parametrize(
    "options",
    [["-quality", "90"], ["-sample", "1x1"], ["-restart", "1", "-sample", "2x1"], ["-grayscale"]],
)
def test_decoding_matches_libjpeg(options: list[str]) -> None:
    width, height = 83, 61  # not a multiple of the MCU: edge blocks are cropped
    rgb = picture_of(b"original", width, height)
    ppm = b"P6\n%d %d\n255\n" % (width, height) + rgb
    jpeg = subprocess.run(["cjpeg", *options], input=ppm, capture_output=True, check=True).stdout
    reference = subprocess.run(
        ["djpeg", "-nosmooth", "-dct", "float", "-pnm"],
        input=jpeg,
        capture_output=True,
        check=True,
    ).stdout
    expected = _ppm_pixels(reference)
    if "-grayscale" in options:
        expected = bytes(b for b in expected for _ in range(3))
    image = imagecodec.decode_jpeg(jpeg)
    assert (image.width, image.height) == (width, height)
    # libjpeg rounds its float IDCT and colour conversion its own way: a few levels apart
    assert max(abs(a - b) for a, b in zip(image.rgb, expected, strict=True)) <= 6


@needs_libjpeg
def test_emulator_thumbnails_are_jpeg_libjpeg_reads() -> None:
    jpeg = thumbnail_jpeg(b"some pdf", longest=80)
    reference = subprocess.run(
        ["djpeg", "-nosmooth", "-dct", "float", "-pnm"],
        input=jpeg,
        capture_output=True,
        check=True,
    ).stdout
    image = imagecodec.decode_jpeg(jpeg)
    assert (image.width, image.height) == (80, 60)
    assert max(abs(a - b) for a, b in zip(image.rgb, _ppm_pixels(reference), strict=True)) <= 6


def test_progressive_and_webp_are_refused() -> None:
    baseline = encode_jpeg(16, 16, picture_of(b"x", 16, 16))
    progressive = baseline.replace(b"\xff\xc0", b"\xff\xc2", 1)
    with pytest.raises(imagecodec.Unsupported):
        imagecodec.decode(progressive)
    with pytest.raises(imagecodec.Unsupported):
        imagecodec.decode(b"RIFF\0\0\0\0WEBPVP8 ")


def test_png_round_trip_with_text_and_scaling() -> None:
    image = imagecodec.Image(300, 200, picture_of(b"y", 300, 200))
    png = imagecodec.encode_png(image, {"Thumb::URI": "file:///a%20b", "Thumb::MTime": "12"})
    assert imagecodec.png_text(png) == {"Thumb::URI": "file:///a%20b", "Thumb::MTime": "12"}
    assert imagecodec.decode_png(png) == image
    small = imagecodec.fit(image, 128)
    assert (small.width, small.height) == (128, 85)
    assert imagecodec.fit(small, 256) is small  # never enlarged


def test_cache_names_follow_glib(tmp_path: Path) -> None:
    path = str(tmp_path / "a dir" / "é; [x]#%?&=+@!$'(),~*:.pdf")
    uri = file_uri(path)
    assert uri.startswith("file:///") and "%20" in uri and "%C3%A9" in uri
    assert cache_name(uri) == hashlib.md5(uri.encode()).hexdigest() + ".png"
    if shutil.which("gio") is not None:
        Path(path).parent.mkdir(parents=True)
        Path(path).write_bytes(b"x")
        shown = subprocess.run(["gio", "info", path], capture_output=True, text=True).stdout
        assert f"uri: {uri}" in shown.splitlines()


def test_written_thumbnails_are_valid_for_their_uri_and_mtime(tmp_path: Path) -> None:
    from docfs.vfs.thumbnails import ThumbnailWriter

    writer = ThumbnailWriter.__new__(ThumbnailWriter)
    writer.root = tmp_path
    item = Wanted("id", "file:///mnt/x.pdf", 1700000000, 1234, "thumb-id")
    writer.write(thumbnail_jpeg(b"pdf", longest=175), item)
    normal = tmp_path / "normal" / cache_name(item.uri)
    large = tmp_path / "large" / cache_name(item.uri)
    assert is_valid(normal, item.uri, item.mtime) and is_valid(large, item.uri, item.mtime)
    assert not is_valid(normal, item.uri, item.mtime + 1)
    assert imagecodec.png_text(normal.read_bytes())["Thumb::Size"] == "1234"
    assert max(imagecodec.decode_png(normal.read_bytes()).width, 1) == 128
    assert imagecodec.decode_png(large.read_bytes()).width == 175
    assert normal.stat().st_mode & 0o777 == 0o600


def test_thumbnails_match_their_originals_by_name() -> None:
    found = match_thumbnails(
        [("1", "a.pdf"), ("2", "b.png"), ("3", "c.docx")],
        [("t1", "a.pdf.jpg"), ("t2", "b.png.jpeg"), ("t3", "c.docx.x.jpg"), ("t4", "zzz.jpg")],
    )
    assert {(t.file_id, t.ref) for t in found} == {("1", "t1"), ("2", "t2")}


def test_options_reach_the_mount_from_the_command_line_and_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docfs import cli

    config = tmp_path / "config.toml"
    config.write_text(
        '[remotes.repo]\ntype = "dspace6"\nurl = "https://repo.example.org/rest"\n'
        'thumbnails = false\nthumbnail_max = "5M"\nthumbnailers = ["tumblerd", "my-indexer"]\n'
        'file_managers = ["nautilus", "my-browser"]\n'
    )
    monkeypatch.setenv("DOCFS_CONFIG", str(config))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    parser = cli.build_parser()
    configured = cli.mount_config(
        parser.parse_args(["--config", str(config), "mount", "repo", str(mnt)])
    )
    assert configured.thumbnails is False
    assert configured.options.thumbnail_max == 5 << 20
    assert configured.options.thumbnailers == ("tumblerd", "my-indexer")
    assert configured.options.file_managers == ("nautilus", "my-browser")
    plain = cli.mount_config(
        parser.parse_args(["mount", "dspace6:https://repo.example.org/rest", str(mnt)])
    )
    assert plain.thumbnails is True and plain.options.thumbnail_max is None
    assert plain.options.file_managers is None  # DEFAULT_FILE_MANAGERS
    flags = parser.parse_args(
        ["mount", "dspace6:https://x/rest", str(mnt), "--no-thumbnails", "--thumbnail-max", "0"]
    )
    chosen = cli.mount_config(flags)
    assert chosen.thumbnails is False and chosen.options.thumbnail_max == 0


def test_a_name_matches_the_thread_or_the_process_it_belongs_to() -> None:
    """FUSE reports the calling thread; a file manager lists in worker threads (GLib's
    ``pool-…``), so the program is known by its thread group's name too."""
    import ctypes
    import os
    import threading

    from docfs.vfs.thumbnails import known_name, process_name

    own = process_name(os.getpid())
    assert own is not None
    found: list[str | None] = []

    def worker() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.prctl(15, b"pool-worker", 0, 0, 0) == 0  # PR_SET_NAME
        tid = threading.get_native_id()
        assert process_name(tid) == "pool-worker"
        found.append(known_name(tid, frozenset({own})))
        found.append(known_name(tid, frozenset({"pool-worker"})))
        found.append(known_name(tid, frozenset({"nautilus"})))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert found == [own, "pool-worker", None]


def test_the_guard_lets_a_thumbnailer_join_a_download_that_brings_every_byte(
    tmp_path: Path,
) -> None:
    """Once the last byte arrived the content cache still checks the MD5 before it keeps the
    file: a thumbnailer that opens it then costs no transfer, so it is let in (before, it was
    refused until the check ended: the guard test failed one run in two)."""
    import os
    from types import SimpleNamespace

    import trio

    from docfs.backends.base import Entry, Kind
    from docfs.vfs.content import ContentCache
    from docfs.vfs.thumbnails import ThumbnailerGuard, process_name

    own = process_name(os.getpid())
    assert own is not None
    guard = ThumbnailerGuard(limit=10, names=frozenset({own}))
    entry = Entry("f1", "scan.tif", Kind.FILE, 100, None, "v1")
    node = SimpleNamespace(is_dir=False, staged=None, local=False, entry=entry)
    cache = ContentCache(tmp_path, 1 << 20, "ns")
    fs = SimpleNamespace(
        inodes=SimpleNamespace(find=lambda ino: node), content=cache, path=lambda n: "/scan.tif"
    )
    verdicts: list[str | None] = []

    async def main() -> None:
        release = trio.Event()

        async def fetch(sink: Any, start: int) -> None:
            await release.wait()
            await sink(b"x" * 100)

        async with trio.open_nursery() as nursery:
            verdicts.append(guard.refusal(fs, 2, os.getpid()))  # type: ignore[arg-type]
            handle = cache.open(entry, fetch, nursery)
            # opening starts nothing (downloads follow reads): still refused
            verdicts.append(guard.refusal(fs, 2, os.getpid()))  # type: ignore[arg-type]
            # a reader that asked for a few bytes: joining its stream would pull more
            nursery.start_soon(cache.read, handle, 0, 10)
            await trio.testing.wait_all_tasks_blocked()
            verdicts.append(guard.refusal(fs, 2, os.getpid()))  # type: ignore[arg-type]
            # a reader asked for the whole file: joining it costs nothing more
            nursery.start_soon(cache.read, handle, 0, 100)
            await trio.testing.wait_all_tasks_blocked()
            verdicts.append(guard.refusal(fs, 2, os.getpid()))  # type: ignore[arg-type]
            release.set()
            await trio.testing.wait_all_tasks_blocked()
            cache.release(handle)

    trio.run(main)
    assert [v is None for v in verdicts] == [False, False, False, True], verdicts
    assert verdicts[0] is not None and "thumbnailers and indexers are refused" in verdicts[0]
