"""Unpadded base64url for looking inside tokens before (or without) verifying them."""

from __future__ import annotations

import base64
import re
from typing import Final

from ._console import fail

_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url text (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Decode strict base64url: no padding, no `+` or `/`, one spelling per byte string."""
    if not _ALPHABET.fullmatch(text) or len(text) % 4 == 1:
        fail(f"the {what} is not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        fail(f"the {what} is not canonical base64url")
    return data
