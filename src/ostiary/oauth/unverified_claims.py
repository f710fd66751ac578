"""Peek at a compact JWT's claims WITHOUT verifying them.

Only to decide which key set to verify with (whose client assertion is this?) or which
audience a token names; the claims are then verified with `jwt.decode` before any use.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Final

MAX_PEEK_LENGTH: Final = 16 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The claims object of a compact JWS, unverified; None when it is not one."""
    if len(token) > MAX_PEEK_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not _SEGMENT.fullmatch(parts[1]):
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims: Any = json.loads(payload)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return claims if isinstance(claims, dict) else None
