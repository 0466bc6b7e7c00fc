"""Peak resident memory of a block of code, shared by the benchmarks (Linux /proc).

``PeakRSS`` returns freed heap pages to the system first (``malloc_trim``), so that a
block reusing them still shows in RSS, then resets the peak (VmHWM) through
``/proc/self/clear_refs`` and reads the resident set; on exit, the peak minus that
resting set is the block's extra peak memory. Where /proc does not allow it (not
Linux), every reading is None.
"""

from __future__ import annotations

import ctypes
import gc


def status_kb(key: str) -> int | None:
    """A field of /proc/self/status in KiB (``"VmRSS"``, ``"VmHWM"``), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """``with PeakRSS() as m: ...`` sets ``m.before_mb``, ``m.peak_mb`` and ``m.extra_mb``."""

    def __enter__(self) -> PeakRSS:
        self.before_mb = self.peak_mb = self.extra_mb = None
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
        except OSError:
            return self
        kb = status_kb("VmRSS")
        self.before_mb = None if kb is None else kb / 1024.0
        return self

    def __exit__(self, *exc) -> bool:
        kb = status_kb("VmHWM")
        if self.before_mb is not None and kb is not None:
            self.peak_mb = kb / 1024.0
            self.extra_mb = self.peak_mb - self.before_mb
        return False
