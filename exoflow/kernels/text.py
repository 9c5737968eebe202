"""Text in encodings other than UTF-8 that kernels read: UTF-16 marked by a byte-order mark."""
from __future__ import annotations

UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def decode_utf16(data: bytes) -> bytes | None:
    """The UTF-8 encoding of ``data`` when it starts with a UTF-16 byte-order mark (LE
    ``FF FE`` or BE ``FE FF``; the mark itself is dropped), else None. Unpaired surrogates
    and an odd last byte become U+FFFD; lines are those of the decoded text."""
    encoding = UTF16_BOMS.get(bytes(data[:2]))
    if encoding is None:
        return None
    return bytes(data[2:]).decode(encoding, "replace").encode("utf-8")
