"""The profile job's charts in report.html."""
from __future__ import annotations

from exoflow.ops.profile.summary import ProfileSummary
from exoflow.plots import BYTES_TIPS, Bars, PURPLE, columns
from exoflow.summary import RunSummary


def bars(summary: RunSummary) -> list[Bars]:
    """Files per entropy class (bits per byte)."""
    result: ProfileSummary = summary.get("result", {})
    rows = result.get("entropy_histogram", [])
    if not rows:
        return []
    return [Bars("Entropy (bits per byte; near 8 = compressed or encrypted)", "profile-entropy",
                 columns(rows, ("bits_per_byte", "files", "bytes")), "bits_per_byte", ["files"],
                 [("bits/byte", "@bits_per_byte"), *BYTES_TIPS], colors=[PURPLE], value_label="files")]
