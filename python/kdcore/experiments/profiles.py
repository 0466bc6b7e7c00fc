"""The experiment profiles, named once for every experiment and the report.

``"tiny"``: seconds (the tests); ``"quick"``: the one-command report, minutes on 2
cores; ``"full"``: the papers' protocols (hours, or a GPU). An experiment may add a
profile of its own (the MNIST table has ``"medium"``) through ``extra``.

>>> check_profile("quick")
'quick'
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["PROFILES", "check_profile"]

PROFILES = ("tiny", "quick", "full")


def check_profile(profile: object, extra: Sequence[str] = ()) -> str:
    """``profile`` when it names a profile (one of :data:`PROFILES` or ``extra``), else ``ValueError``."""
    allowed = (*PROFILES, *extra)
    if not isinstance(profile, str) or profile not in allowed:
        raise ValueError(f"profile must be one of {list(allowed)}, got {profile!r}")
    return profile
