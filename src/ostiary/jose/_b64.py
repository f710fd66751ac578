"""Strict base64url without padding (RFC 7515 §2, RFC 4648 §5)."""

from __future__ import annotations

import binascii

from ._errors import MalformedToken

# `+`, `/` and `=` become `!`, which strict decoding refuses: one pass maps the alphabet and
# rejects the standard-alphabet characters and padding that base64url forbids.
_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_TO_URL = bytes.maketrans(b"+/", b"-_")
# A final character that carries only zero pad bits. Any other is a second spelling of the
# same bytes, which lets a token be altered without touching its signature input's meaning.
_LAST_OK_2 = frozenset(b"AQgw")
_LAST_OK_3 = frozenset(b"AEIMQUYcgkosw048")
_PAD = (b"", b"", b"==", b"=")


def b64encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64decode(text: str | bytes, what: str = "value") -> bytes:
    """Decode unpadded base64url, refusing padding, `+`, `/`, whitespace and non-canonical forms."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except (UnicodeEncodeError, TypeError):
        raise MalformedToken(f"{what} is not base64url") from None
    rem = len(raw) % 4
    if rem:
        if rem == 1:
            raise MalformedToken(f"{what} is not base64url: its length is impossible")
        if raw[-1] not in (_LAST_OK_2 if rem == 2 else _LAST_OK_3):
            raise MalformedToken(f"{what} is not canonical base64url")
    try:
        return binascii.a2b_base64(raw.translate(_TO_STD) + _PAD[rem], strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedToken(f"{what} is not unpadded base64url") from None


def uint_b64encode(value: int, length: int | None = None) -> str:
    """Encode a non-negative integer as base64urlUInt, optionally as a fixed-length field."""
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return b64encode(value.to_bytes(length, "big"))
