"""Request rate limits the protocol core consults: per client at the token endpoint.

The core only asks; counting, sharing counts between processes and choosing the limits are
the server's (`ostiary.server.rate_limit`). Asking never does I/O, so the token endpoint's
cost does not grow with it.
"""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    def take(self, key: str, *, now: float) -> int:
        """Count one request for `key`: 0 when it may proceed, else the whole seconds until
        it may try again (for `Retry-After`). Never does I/O."""
