"""A small baseline JPEG encoder, so the emulators serve thumbnails as the real servers do.

DSpace's media filters (``JPEGFilter``, ``PDFBoxThumbnail``) write JPEG through Java's ImageIO:
baseline, Huffman-coded, YCbCr with 4:2:0 chroma. This encoder writes the same kind of file
(JFIF, SOF0, 2x2 luma sampling) without an imaging library. Its Huffman tables are not the
Annex K ones but flat canonical codes (every AC symbol 8 bits long, every DC category 4 bits):
valid for any decoder, a little larger. The picture is made up from the original's bytes (the
emulator does not render PDFs): a deterministic pattern, distinct per file.
"""

from __future__ import annotations

import hashlib
import operator
import struct

from docfs.vfs.imagecodec import IDCT_BASIS, ZIGZAG

#: the forward DCT's basis, _COS[u][x]: the transpose of the decoder's IDCT basis
_COS = [list(column) for column in zip(*IDCT_BASIS, strict=True)]
_ZIGZAG = ZIGZAG
_QUANT = [4] * 64
#: every (run, size) symbol a baseline AC coefficient can need, plus EOB (0x00) and ZRL (0xF0)
_AC_SYMBOLS = [0x00, 0xF0] + [(run << 4) | size for run in range(16) for size in range(1, 11)]
_DC_SYMBOLS = list(range(12))


def _codes(symbols: list[int], length: int) -> dict[int, tuple[int, int]]:
    return {symbol: (code, length) for code, symbol in enumerate(symbols)}


_AC = _codes(_AC_SYMBOLS, 8)
_DC = _codes(_DC_SYMBOLS, 4)


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.count = 0

    def put(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> shift) & 1)
            self.count += 1
            if self.count == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)  # byte stuffing
                self.acc = self.count = 0

    def flush(self) -> bytes:
        if self.count:
            self.put((1 << (8 - self.count)) - 1, 8 - self.count)  # pad with 1 bits
        return bytes(self.out)


def _category(value: int) -> tuple[int, int]:
    size = abs(value).bit_length()
    bits = value if value >= 0 else value + (1 << size) - 1
    return size, bits


def _fdct(block: list[float]) -> list[float]:
    rows = [[sum(map(operator.mul, basis, block[y : y + 8])) for basis in _COS]
            for y in range(0, 64, 8)]  # fmt: skip
    out = [0.0] * 64
    for u in range(8):
        column = [r[u] for r in rows]
        for v, basis in enumerate(_COS):
            out[v * 8 + u] = sum(map(operator.mul, basis, column))
    return out


def _encode_block(w: _Writer, block: list[float], previous: int) -> int:
    coefficients = _fdct([s - 128 for s in block])
    quantised = [round(coefficients[_ZIGZAG[k]] / _QUANT[_ZIGZAG[k]]) for k in range(64)]
    size, bits = _category(quantised[0] - previous)
    w.put(*_DC[size])
    w.put(bits, size)
    run = 0
    for k in range(1, 64):
        value = quantised[k]
        if value == 0:
            run += 1
            continue
        while run > 15:
            w.put(*_AC[0xF0])
            run -= 16
        size, bits = _category(value)
        w.put(*_AC[(run << 4) | size])
        w.put(bits, size)
        run = 0
    if run:
        w.put(*_AC[0x00])
    return int(quantised[0])


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


def _huffman_segment(klass: int, symbols: list[int], length: int) -> bytes:
    counts = [0] * 16
    counts[length - 1] = len(symbols)
    return bytes([klass << 4]) + bytes(counts) + bytes(symbols)


def encode_jpeg(width: int, height: int, rgb: bytes) -> bytes:
    """Baseline JPEG of packed RGB rows, YCbCr 4:2:0."""
    mcus_x, mcus_y = -(-width // 16), -(-height // 16)
    planes: list[list[float]] = [[], [], []]
    for y in range(mcus_y * 16):
        for x in range(mcus_x * 16):
            p = (min(y, height - 1) * width + min(x, width - 1)) * 3
            r, g, b = rgb[p], rgb[p + 1], rgb[p + 2]
            planes[0].append(0.299 * r + 0.587 * g + 0.114 * b)
            planes[1].append(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
            planes[2].append(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    full = mcus_x * 16
    w = _Writer()
    previous = [0, 0, 0]
    for my in range(mcus_y):
        for mx in range(mcus_x):
            for by in range(2):
                for bx in range(2):
                    top, left = my * 16 + by * 8, mx * 16 + bx * 8
                    block = [
                        planes[0][(top + y) * full + left + x] for y in range(8) for x in range(8)
                    ]
                    previous[0] = _encode_block(w, block, previous[0])
            for c in (1, 2):
                block = []
                for y in range(8):
                    for x in range(8):
                        yy, xx = my * 16 + 2 * y, mx * 16 + 2 * x
                        plane = planes[c]
                        block.append(
                            (plane[yy * full + xx] + plane[yy * full + xx + 1]
                             + plane[(yy + 1) * full + xx] + plane[(yy + 1) * full + xx + 1]) / 4
                        )  # fmt: skip
                previous[c] = _encode_block(w, block, previous[c])
    scan = w.flush()
    frame = struct.pack(">BHHB", 8, height, width, 3) + bytes([1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0])
    return (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + _segment(0xDB, bytes([0]) + bytes(_QUANT[_ZIGZAG[k]] for k in range(64)))
        + _segment(0xC0, frame)
        + _segment(0xC4, _huffman_segment(0, _DC_SYMBOLS, 4) + _huffman_segment(1, _AC_SYMBOLS, 8))
        + _segment(0xDA, bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]))
        + scan
        + b"\xff\xd9"
    )


def picture_of(data: bytes, width: int, height: int) -> bytes:
    """A deterministic RGB picture standing for ``data`` (a gradient in colours from its hash)."""
    seed = hashlib.md5(data[:65536] + len(data).to_bytes(8, "big")).digest()
    out = bytearray()
    for y in range(height):
        for x in range(width):
            out += bytes(
                (
                    (seed[0] + x * 255 // max(1, width - 1)) & 0xFF,
                    (seed[1] + y * 255 // max(1, height - 1)) & 0xFF,
                    seed[2] if (x // 8 + y // 8) % 2 else 255 - seed[2],
                )
            )
    return bytes(out)


def thumbnail_jpeg(data: bytes, longest: int = 80, aspect: float = 0.75) -> bytes:
    """The thumbnail a media filter would store for ``data``: at most ``longest`` px wide."""
    width, height = longest, max(1, round(longest * aspect))
    return encode_jpeg(width, height, picture_of(data, width, height))
