"""Columns derived from the listing's stat fields (no file contents needed)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..batch import Batch


def extension(paths: pa.Array) -> pa.Array:
    """Lower-case extension after the last dot of the file name ('' when none).

    A leading dot does not start an extension: '.bashrc' has none, as in
    Python's ``os.path.splitext``.
    """
    found = pc.extract_regex(paths, r"[^/.][^/]*\.(?P<ext>[^./]+)$")
    ext = pc.struct_field(found, "ext")
    return pc.utf8_lower(pc.fill_null(ext, ""))


def inventory_columns(batch: Batch) -> dict[str, pa.Array]:
    """allocated (bytes on disk, from st_blocks) and extension."""
    t = batch.table
    return {
        "allocated": pc.multiply(t.column("blocks"), 512),
        "extension": extension(t.column("path")),
    }
