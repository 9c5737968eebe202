"""Text encodings by byte-order mark, as ripgrep reads them: a file starting with a UTF-16
BOM (``FF FE`` little-endian, ``FE FF`` big-endian) is UTF-16 and is read as its UTF-8
transcoding; a UTF-8 BOM (``EF BB BF``) is dropped. Lines and columns then refer to the
decoded text, BOM excluded. Invalid UTF-16 (a lone surrogate, an odd last byte) becomes
U+FFFD, as in ripgrep.
"""
from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exoflow.kernels.bytestats import nul_rows

if TYPE_CHECKING:
    from exoflow.batch import Batch

UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}


def utf16_bom_encoding(head: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when ``head`` starts with that BOM, else None."""
    return UTF16_BOMS.get(bytes(head[:2]))


def decode_utf16(data: bytes) -> bytes | None:
    """The UTF-8 text of ``data`` (BOM removed) when it starts with a UTF-16 BOM, else None."""
    enc = utf16_bom_encoding(data)
    if enc is None:
        return None
    return bytes(data[2:]).decode(enc, "replace").encode("utf-8")


def bom_rows(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per file of a batch buffer (``data`` uint8, file i at ``offsets[i]:offsets[i+1]``):
    (starts with a UTF-16 BOM, starts with a UTF-8 BOM), two bool arrays, no Python loop."""
    lo, sizes = offsets[:-1], np.diff(offsets)

    def at(k: int) -> np.ndarray:     # byte k of each file, -1 where the file is shorter
        ok = sizes > k
        out = np.full(len(lo), -1, np.int16)
        out[ok] = data[lo[ok] + k]
        return out

    b0, b1, b2 = at(0), at(1), at(2)
    utf16 = ((b0 == 0xFF) & (b1 == 0xFE)) | ((b0 == 0xFE) & (b1 == 0xFF))
    utf8 = (b0 == 0xEF) & (b1 == 0xBB) & (b2 == 0xBF)
    return utf16, utf8


class TextDecoder:
    """A file's bytes, fed piece by piece, as text: UTF-16 (by BOM) transcoded to UTF-8 piece by
    piece, a UTF-8 BOM dropped, anything else passed through unchanged."""

    def __init__(self) -> None:
        self.head = b""           # the first bytes, until there are enough to see a BOM
        self.decoder = None       # the UTF-16 decoder, once a BOM was seen
        self.started = False

    def decode(self, piece: bytes | memoryview) -> bytes:
        """The text of ``piece`` (b"" while the first 3 bytes are not in yet)."""
        if self.started:
            return self._transcode(bytes(piece))
        self.head += bytes(piece)
        return self._start() if len(self.head) >= 3 else b""

    def end(self) -> bytes:
        """The text still held once the last piece was fed."""
        text = b"" if self.started else self._start()
        return text + (self.decoder.decode(b"", final=True).encode("utf-8") if self.decoder else b"")

    def _start(self) -> bytes:
        head, self.head, self.started = self.head, b"", True
        enc = utf16_bom_encoding(head)
        if enc is None:
            return head[3:] if head.startswith(UTF8_BOM) else head
        self.decoder = codecs.getincrementaldecoder(enc)("replace")
        return self._transcode(head[2:])

    def _transcode(self, data: bytes) -> bytes:
        return self.decoder.decode(data).encode("utf-8") if self.decoder else data


class TextRows(NamedTuple):
    """What a text kernel (scan, neardup) starts from, per row of a batch (n rows)."""

    data: np.ndarray        # uint8: the batch buffer (empty when nothing was read)
    offsets: np.ndarray     # int64, n + 1: file i is data[offsets[i]:offsets[i+1]]
    large: np.ndarray       # bool: streamed to the kernel's consumer, not in data
    is_file: np.ndarray     # bool: a regular file
    failed: np.ndarray      # bool: the row has an error (a copy: kernels add their own)
    utf16: np.ndarray       # bool: starts with a UTF-16 BOM (decoded before matching)
    utf8: np.ndarray        # bool: starts with a UTF-8 BOM
    binary: np.ndarray      # bool: a NUL in its first 8 KiB, UTF-16 files excepted (their text is checked)


def text_rows(batch: Batch, files: pa.Table) -> TextRows:
    """``TextRows`` of ``batch`` whose listing rows (with their ``error`` column) are ``files``."""
    n = batch.num_rows
    data = batch.data if batch.data is not None else np.zeros(0, np.uint8)
    offsets = batch.offsets if batch.offsets is not None else np.zeros(n + 1, np.int64)
    large = batch.large if batch.large is not None else np.zeros(n, bool)
    is_file = pc.fill_null(pc.equal(files.column("type"), "file"), False).to_numpy(zero_copy_only=False)
    failed = pc.is_valid(files.column("error")).to_numpy(zero_copy_only=False).copy()
    utf16, utf8 = bom_rows(data, offsets)
    return TextRows(data, offsets, large, is_file, failed, utf16, utf8, nul_rows(data, offsets) & ~utf16)
