"""Just enough image coding for thumbnails: PNG in and out, baseline JPEG in, box scaling.

The freedesktop thumbnail cache holds PNG files only (GLib's ``thumbnail-verify.c`` parses the
PNG chunks for ``Thumb::URI`` and ``Thumb::MTime`` and ignores anything else), while
repositories serve JPEG thumbnails (DSpace's media filters write ``<name>.jpg`` through Java's
ImageIO: baseline, Huffman-coded, 80 px by default). docfs has no imaging library among its
dependencies, and one (Pillow) only for this would be a large binary dependency, so this module
decodes baseline JPEG and non-interlaced 8-bit PNG in pure Python. Thumbnails are small (80 to
256 px): a decode costs milliseconds to a few tenths of a second, done in a worker thread, and
images above ``MAX_PIXELS`` are refused rather than decoded slowly. Progressive/arithmetic JPEG,
interlaced or 16-bit PNG and WebP raise ``Unsupported``: the caller then writes no thumbnail and
the file manager makes its own (which the thumbnailer guard bounds).

Pixels are ``bytes`` of packed RGB rows.
"""

from __future__ import annotations

import math
import operator
import struct
import zlib
from dataclasses import dataclass

#: larger images are not decoded (pure Python: ~1 s per megapixel)
MAX_PIXELS = 1 << 20

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Unsupported(ValueError):
    """An image this module cannot decode (format, variant or size)."""


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rgb: bytes


def sniff(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"webp"`` or None, from the first bytes."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode(data: bytes) -> Image:
    kind = sniff(data)
    if kind == "png":
        return decode_png(data)
    if kind == "jpeg":
        return decode_jpeg(data)
    raise Unsupported(f"cannot decode {kind or 'unknown'} images")


# ---- PNG ---------------------------------------------------------------------------------------


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(image: Image, text: dict[str, str] | None = None) -> bytes:
    """An 8-bit RGB PNG with ``text`` as tEXt chunks (Latin-1 keys and values, as PNG wants)."""
    row = image.width * 3
    raw = b"".join(
        b"\x00" + image.rgb[y * row : (y + 1) * row] for y in range(image.height)
    )  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, 2, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        chunks.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw, 6)))
    chunks.append(_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length:
            raise Unsupported("truncated PNG")
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def png_text(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG (what a file manager checks a cached thumbnail by)."""
    if not data.startswith(PNG_SIGNATURE):
        return {}
    text: dict[str, str] = {}
    for kind, body in _png_chunks(data):
        if kind == b"tEXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
    return text


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> Image:
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise Unsupported("PNG without IHDR")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise Unsupported(f"PNG variant not handled (depth {depth}, colour {color})")
    if width * height > MAX_PIXELS or not width or not height:
        raise Unsupported(f"PNG of {width}x{height} pixels")
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    previous = bytearray(stride)
    rows: list[bytearray] = []
    pos = 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(line)
        previous = line
    out = bytearray()
    for line in rows:
        for x in range(width):
            px = line[x * channels : (x + 1) * channels]
            if channels <= 2:
                out += bytes((px[0], px[0], px[0]))
            else:
                out += px[:3]
    return Image(width, height, bytes(out))


# ---- baseline JPEG -----------------------------------------------------------------------------

ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
]  # fmt: skip

#: IDCT basis: IDCT_BASIS[x][u] = C(u)/2 * cos((2x+1)uπ/16) (its transpose is the DCT's)
IDCT_BASIS = [
    [(math.sqrt(0.5) if u == 0 else 1.0) / 2 * math.cos((2 * x + 1) * u * math.pi / 16)
     for u in range(8)]
    for x in range(8)
]  # fmt: skip


class _Bits:
    """The entropy-coded segment as a bit stream (0xFF00 stuffing and RSTn markers handled)."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos, self.acc, self.count = data, pos, 0, 0

    def bit(self) -> int:
        if self.count == 0:
            byte = self.data[self.pos] if self.pos < len(self.data) else 0
            self.pos += 1
            if byte == 0xFF:
                following = self.data[self.pos] if self.pos < len(self.data) else 0
                if following == 0:
                    self.pos += 1
                # a marker here means the data ran out: feed zeros, as libjpeg does
            self.acc, self.count = byte, 8
        self.count -= 1
        return (self.acc >> self.count) & 1

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def restart(self) -> None:
        """Skip to the byte after the next RSTn marker."""
        self.count = 0
        while self.pos + 1 < len(self.data):
            if self.data[self.pos] == 0xFF and 0xD0 <= self.data[self.pos + 1] <= 0xD7:
                self.pos += 2
                return
            self.pos += 1


def _huffman_table(counts: bytes, symbols: bytes) -> dict[tuple[int, int], int]:
    """(length, code) → symbol, built from the JPEG canonical code lengths."""
    table: dict[tuple[int, int], int] = {}
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            table[(length, code)] = symbols[k]
            code += 1
            k += 1
        code <<= 1
    return table


def _decode_symbol(bits: _Bits, table: dict[tuple[int, int], int]) -> int:
    code = 0
    for length in range(1, 17):
        code = (code << 1) | bits.bit()
        symbol = table.get((length, code))
        if symbol is not None:
            return symbol
    raise Unsupported("bad Huffman code in JPEG")


def _extend(value: int, size: int) -> int:
    return value - (1 << size) + 1 if size and value < (1 << (size - 1)) else value


def _idct(coefficients: list[float]) -> list[float]:
    """8x8 inverse DCT, separable: rows then columns; returns 64 samples (level-shifted).
    Rows and columns without AC terms (most, in a thumbnail) are constant: no products."""
    dc_gain = IDCT_BASIS[0][0]
    rows = []
    for y in range(0, 64, 8):
        row = coefficients[y : y + 8]
        if any(row[1:]):
            rows.append([sum(map(operator.mul, basis, row)) for basis in IDCT_BASIS])
        else:
            rows.append([row[0] * dc_gain] * 8)
    out = [0.0] * 64
    for x in range(8):
        column = [r[x] for r in rows]
        if any(column[1:]):
            for y, basis in enumerate(IDCT_BASIS):
                out[y * 8 + x] = sum(map(operator.mul, basis, column)) + 128
        else:
            value = column[0] * dc_gain + 128
            for y in range(8):
                out[y * 8 + x] = value
    return out


@dataclass
class _Component:
    ident: int
    h: int
    v: int
    table: int
    dc: int = 0
    ac: int = 0
    samples: list[list[float]] | None = None  # rows of the component's plane


def decode_jpeg(data: bytes) -> Image:
    """Decode a baseline (SOF0/SOF1) Huffman JPEG with 1 or 3 components."""
    if not data.startswith(b"\xff\xd8"):
        raise Unsupported("not a JPEG")
    quant: dict[int, list[int]] = {}
    dc_tables: dict[int, dict[tuple[int, int], int]] = {}
    ac_tables: dict[int, dict[tuple[int, int], int]] = {}
    components: list[_Component] = []
    width = height = restart_interval = 0
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if marker == 0xDB:  # quantisation tables
            i = 0
            while i < len(body):
                precision, ident = body[i] >> 4, body[i] & 15
                size = 128 if precision else 64
                values = body[i + 1 : i + 1 + size]
                table = list(struct.unpack(">64H", values)) if precision else list(values)
                quant[ident] = [0] * 64
                for k in range(64):
                    quant[ident][ZIGZAG[k]] = table[k]  # stored in zigzag order
                i += 1 + size
        elif marker == 0xC4:  # Huffman tables
            i = 0
            while i < len(body):
                klass, ident = body[i] >> 4, body[i] & 15
                counts = body[i + 1 : i + 17]
                total = sum(counts)
                symbols = body[i + 17 : i + 17 + total]
                (ac_tables if klass else dc_tables)[ident] = _huffman_table(counts, symbols)
                i += 17 + total
        elif marker in (0xC0, 0xC1):
            height, width = struct.unpack(">HH", body[1:5])
            for k in range(body[5]):
                ident, sampling, qt = body[6 + 3 * k : 9 + 3 * k]
                components.append(_Component(ident, sampling >> 4, sampling & 15, qt))
            if width * height > MAX_PIXELS or not width or not height:
                raise Unsupported(f"JPEG of {width}x{height} pixels")
            if len(components) not in (1, 3):
                raise Unsupported(f"JPEG with {len(components)} components")
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise Unsupported("progressive, lossless or arithmetic JPEG")
        elif marker == 0xDD:
            (restart_interval,) = struct.unpack(">H", body[:2])
        elif marker == 0xDA:
            if not components:
                raise Unsupported("JPEG scan before its frame header")
            for k in range(body[0]):
                ident, tables = body[1 + 2 * k], body[2 + 2 * k]
                for c in components:
                    if c.ident == ident:
                        c.dc, c.ac = tables >> 4, tables & 15
            _decode_scan(data, pos, width, height, components, quant, dc_tables, ac_tables,
                         restart_interval)  # fmt: skip
            return _to_rgb(width, height, components)
        elif marker == 0xD9:
            break
    raise Unsupported("JPEG without a scan")


def _decode_scan(
    data: bytes,
    pos: int,
    width: int,
    height: int,
    components: list[_Component],
    quant: dict[int, list[int]],
    dc_tables: dict[int, dict[tuple[int, int], int]],
    ac_tables: dict[int, dict[tuple[int, int], int]],
    restart_interval: int,
) -> None:
    hmax = max(c.h for c in components)
    vmax = max(c.v for c in components)
    mcus_x = -(-width // (8 * hmax))
    mcus_y = -(-height // (8 * vmax))
    for c in components:
        c.samples = [[0.0] * (mcus_x * c.h * 8) for _ in range(mcus_y * c.v * 8)]
    bits = _Bits(data, pos)
    predictors = [0] * len(components)
    try:
        for mcu in range(mcus_x * mcus_y):
            if restart_interval and mcu and mcu % restart_interval == 0:
                bits.restart()
                predictors = [0] * len(components)
            my, mx = divmod(mcu, mcus_x)
            for index, c in enumerate(components):
                table = quant[c.table]
                for by in range(c.v):
                    for bx in range(c.h):
                        block = [0.0] * 64
                        size = _decode_symbol(bits, dc_tables[c.dc])
                        predictors[index] += _extend(bits.bits(size), size)
                        block[0] = predictors[index] * table[0]
                        k = 1
                        while k < 64:
                            symbol = _decode_symbol(bits, ac_tables[c.ac])
                            run, size = symbol >> 4, symbol & 15
                            if size == 0:
                                if run != 15:
                                    break  # end of block
                                k += 16
                                continue
                            k += run
                            if k > 63:
                                break
                            position = ZIGZAG[k]
                            block[position] = _extend(bits.bits(size), size) * table[position]
                            k += 1
                        samples = _idct(block)
                        assert c.samples is not None
                        top = (my * c.v + by) * 8
                        left = (mx * c.h + bx) * 8
                        for y in range(8):
                            c.samples[top + y][left : left + 8] = samples[y * 8 : y * 8 + 8]
    except (IndexError, KeyError) as exc:
        raise Unsupported(f"corrupt JPEG scan: {exc!r}") from None


def _clamp(value: float) -> int:
    return 0 if value < 0 else 255 if value > 255 else int(value + 0.5)


def _to_rgb(width: int, height: int, components: list[_Component]) -> Image:
    hmax = max(c.h for c in components)
    vmax = max(c.v for c in components)
    planes = []
    for c in components:
        assert c.samples is not None
        sx, sy = hmax // c.h, vmax // c.v  # nearest-neighbour upsampling of chroma
        planes.append((c.samples, sx, sy))
    out = bytearray(width * height * 3)
    i = 0
    for y in range(height):
        rows = [(p[y // sy], sx) for p, sx, sy in planes]
        for x in range(width):
            if len(rows) == 1:
                g = _clamp(rows[0][0][x // rows[0][1]])
                out[i : i + 3] = bytes((g, g, g))
            else:
                luma = rows[0][0][x // rows[0][1]]
                cb = rows[1][0][x // rows[1][1]] - 128
                cr = rows[2][0][x // rows[2][1]] - 128
                out[i] = _clamp(luma + 1.402 * cr)
                out[i + 1] = _clamp(luma - 0.344136 * cb - 0.714136 * cr)
                out[i + 2] = _clamp(luma + 1.772 * cb)
            i += 3
    return Image(width, height, bytes(out))


# ---- scaling -----------------------------------------------------------------------------------


def fit(image: Image, limit: int) -> Image:
    """``image`` scaled down (box filter) so neither side exceeds ``limit``; never enlarged."""
    longest = max(image.width, image.height)
    if longest <= limit:
        return image
    width = max(1, image.width * limit // longest)
    height = max(1, image.height * limit // longest)
    src, out = image.rgb, bytearray(width * height * 3)
    i = 0
    for y in range(height):
        y0, y1 = y * image.height // height, max(y * image.height // height + 1,
                                                 (y + 1) * image.height // height)  # fmt: skip
        for x in range(width):
            x0 = x * image.width // width
            x1 = max(x0 + 1, (x + 1) * image.width // width)
            total = [0, 0, 0]
            for yy in range(y0, y1):
                base = (yy * image.width + x0) * 3
                for xx in range(x1 - x0):
                    p = base + xx * 3
                    total[0] += src[p]
                    total[1] += src[p + 1]
                    total[2] += src[p + 2]
            n = (y1 - y0) * (x1 - x0)
            out[i : i + 3] = bytes((total[0] // n, total[1] // n, total[2] // n))
            i += 3
    return Image(width, height, bytes(out))
