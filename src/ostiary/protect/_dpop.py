"""DPoP (RFC 9449) at the resource server: a bound token comes with a proof of its key.

A request `Authorization: DPoP <token>` with a `DPoP: <proof>` header is accepted when the
token carries `cnf.jkt` (§6) and the proof is a fresh, unused `dpop+jwt` for this request's
method and URL, hashes this token (`ath`), and is signed by the key with that thumbprint.
The proof's own checks are `ostiary.jose.dpop`'s; this module adds the replay cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ostiary.jose import dpop

from ._errors import InvalidDPoPProof


class ReplayCache:
    """The proofs seen lately, in this process, each kept until it could no longer pass the
    iat window; bounded, so a flood of proofs cannot grow it without end."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._seen: dict[str, float] = {}
        self._max_entries = max_entries

    def first_use(self, key: str, *, until: float, now: float) -> bool:
        seen = self._seen.get(key)
        if seen is not None and seen > now:
            return False
        if len(self._seen) >= self._max_entries:
            self._purge(now)
        self._seen[key] = until
        return True

    def _purge(self, now: float) -> None:
        for key in [key for key, until in self._seen.items() if until <= now]:
            del self._seen[key]
        while len(self._seen) >= self._max_entries:
            # Still full of live entries: forget the oldest. A proof replayed after this is
            # still bound to its token and its request, and at most IAT_WINDOW old.
            del self._seen[next(iter(self._seen))]


def check_proof(
    proof: str,
    *,
    jkt: str,
    access_token: str,
    method: str,
    url: str,
    replay: ReplayCache,
    clock: Callable[[], float] = time.time,
    window: int = dpop.IAT_WINDOW,
) -> None:
    """RFC 9449 §7.1 and §4.3 for one request; `InvalidDPoPProof` says which check failed."""
    now = clock()
    try:
        found = dpop.verify_proof(
            proof,
            method=method,
            url=url,
            now=now,
            access_token=access_token,
            jkt=jkt,
            window=window,
        )
    except dpop.InvalidProof as exc:
        raise InvalidDPoPProof(str(exc)) from None
    if not replay.first_use(found.replay_key, until=found.replay_until, now=now):
        raise InvalidDPoPProof("the DPoP proof was already used: make a new one per request")
