"""When to reconnect: exponential backoff with jitter, and which failures are worth retrying."""

from __future__ import annotations

import dataclasses
import random

from ..errors import HandshakeStatusError, InvalidOptionError, InvalidURLError, NbSocketError

__all__ = ["NOT_RETRIED_CLOSE_CODES", "NOT_RETRIED_HTTP_STATUSES", "Backoff", "ReconnectPolicy"]


NOT_RETRIED_CLOSE_CODES = frozenset({1008})
"""Close codes that mean "do not come back": policy violation; 4000-4999 are added by range."""

NOT_RETRIED_HTTP_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 426})
"""Handshake statuses that will not change by retrying (5xx and 429 are retried)."""


@dataclasses.dataclass
class ReconnectPolicy:
    """How a socket reconnects after it is lost.

    The delay before attempt *n* is ``min(maximum, initial * factor ** n)``,
    with "equal jitter" (half fixed, half random). The attempt counter only goes
    back to zero once a connection has stayed open ``stable_after`` seconds, so
    a server that accepts and closes at once sees ever longer pauses, never a
    tight loop. ``max_attempts`` (``None``: no limit) bounds consecutive
    failures before the socket is marked ``failed``.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5
    stable_after: float = 10.0
    max_attempts: int | None = None
    retry_close_codes: frozenset[int] = frozenset()
    """Close codes to retry even though they are not retried by default (e.g. ``{4000}``)."""

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise InvalidOptionError(
                f"ReconnectPolicy needs 0 < initial <= maximum and factor >= 1 (got initial={self.initial!r}, "
                f"maximum={self.maximum!r}, factor={self.factor!r}); initial=0 would reconnect in a tight loop"
            )
        if not 0 <= self.jitter <= 1:
            raise InvalidOptionError("ReconnectPolicy.jitter must be between 0 and 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before reconnect attempt number ``attempt`` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        fixed = base * (1 - self.jitter)
        return fixed + (rng or random).uniform(0, base - fixed)

    def retries_close(self, code: int | None) -> bool:
        """True if a connection closed with ``code`` should be reopened."""
        if code in self.retry_close_codes:
            return True
        if code in NOT_RETRIED_CLOSE_CODES:
            return False
        return not (code is not None and 4000 <= code <= 4999)

    @staticmethod
    def retries_status(status: int | None) -> bool:
        """True if a handshake refused with HTTP ``status`` may succeed later."""
        if status is None or status == 429 or status >= 500:
            return True
        return status not in NOT_RETRIED_HTTP_STATUSES and not 400 <= status < 500

    def retries_failure(self, error: NbSocketError) -> bool:
        """True if a reconnect attempt that failed with ``error`` is worth trying again later (not a bad URL, a refused
        handshake status or a TLS failure)."""
        if isinstance(error, InvalidURLError):
            return False
        if isinstance(error, HandshakeStatusError):
            return self.retries_status(error.status)
        return getattr(error, "kind", None) != "tls"


class Backoff:
    """The running state of one socket's reconnect attempts."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.attempt = 0
        self._rng = rng

    def next_delay(self) -> float:
        """The pause before the next attempt; each call counts one attempt."""
        delay = self.policy.delay(self.attempt, self._rng)
        self.attempt += 1
        return delay

    def connection_lasted(self, seconds: float) -> None:
        """Tell how long the last connection stayed open; a stable one resets the counter."""
        if seconds >= self.policy.stable_after:
            self.attempt = 0

    @property
    def exhausted(self) -> bool:
        """True when ``max_attempts`` consecutive attempts have been used."""
        limit = self.policy.max_attempts
        return limit is not None and self.attempt >= limit
