"""Close codes: which a client may send, and which mean a normal end."""

from __future__ import annotations

from ..errors import InvalidOptionError

__all__ = ["NORMAL_CLOSES", "check_close_code"]

NORMAL_CLOSES = (1000, 1001)
"""Close codes of a normal end (not recorded as errors)."""


def check_close_code(code: int) -> None:
    """Refuse a close code a client may not send (1005, 1006 and 1015 are reserved; 1004 is undefined)."""
    if not isinstance(code, int) or not (
        code in (1000, 1001) or 1002 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
    ):
        raise InvalidOptionError(f"{code!r} is not a close code a client may send (use 1000, 1001, or 3000-4999)")
