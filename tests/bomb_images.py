"""Decompression-bomb PNGs for tests: huge declared size, a tiny file, little memory to write."""

from __future__ import annotations

import os
import struct
import zlib


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def write_bomb_png(path: str | os.PathLike[str], width: int, height: int) -> int:
    """Write a valid all-black 1-bit PNG of `width` x `height`; returns its size in bytes.

    Rows are compressed one at a time (a 13,500 x 13,500 bomb is ~30 KB on disk and
    needs ~2 KB of row buffer to write, but 182 M pixels to decode).
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte "none", then 1 bit per pixel
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)
    return len(data)
