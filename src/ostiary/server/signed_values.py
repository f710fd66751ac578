"""Short-lived values the browser carries for us (cookies, hidden form fields), signed.

Each is a compact JWT, HS256, under a key derived from the key-encryption secret for one
purpose only, so a value made for one purpose never passes for another, and every server
process reads what any other one wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ostiary.jose import JoseError, jwt
from ostiary.jose.jwk import JWK

from .key_secret import derive_key

_ALG: Final = "HS256"
MAX_SIGNED_VALUE: Final = 16 * 1024


class ValueSigner:
    """Signs and checks values for named purposes ("session", "pending", "csrf")."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[str, JWK] = {}

    def _key(self, purpose: str) -> JWK:
        key = self._keys.get(purpose)
        if key is None:
            key = JWK.from_secret(derive_key(self._secret, f"ostiary signed value: {purpose}"))
            self._keys[purpose] = key
        return key

    def sign(self, purpose: str, data: Mapping[str, Any], *, now: int, ttl: int) -> str:
        """A signed value holding `data` that `verify` accepts until `now + ttl`."""
        claims = {**data, "iat": now, "exp": now + ttl}
        return jwt.encode(claims, self._key(purpose), alg=_ALG, headers={"typ": purpose})

    def verify(self, purpose: str, value: str | None, *, now: int) -> dict[str, Any] | None:
        """The data in `value` if it was signed for `purpose` and has not expired, else None."""
        if not value or len(value) > MAX_SIGNED_VALUE:
            return None
        try:
            return jwt.decode(value, self._key(purpose), algorithms=[_ALG], typ=purpose, now=now)
        except JoseError:
            return None
