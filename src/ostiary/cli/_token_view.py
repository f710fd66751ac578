"""A terminal jwt.io: a token's header and claims, shown before (or without) verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ostiary.jose import jwt

from ._base64url import b64url_decode
from ._console import fail, json_type, parse_json_object, printable, render_json
from ._durations import ago, describe_span, utc_datetime

# Claims holding a NumericDate (RFC 7519 §2, OpenID Connect Core §2).
TIME_CLAIMS: Final = ("exp", "nbf", "iat", "auth_time")


@dataclass(frozen=True)
class UnverifiedToken:
    """A signed JWT taken apart without checking anything: for display only."""

    text: str
    header: dict[str, Any]
    claims: dict[str, Any]


@dataclass(frozen=True)
class TimeNote:
    """What a time claim means at `now`."""

    claim: str
    utc: str | None  # ISO 8601, or None when the value is not a usable date
    seconds_from_now: float | None
    text: str


def clean_token(text: str) -> str:
    """The token as pasted: surrounding whitespace and a `Bearer ` prefix removed."""
    token = text.strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].lstrip()
    if not token:
        fail("no token given")
    if not token.isascii():
        fail("the token is not ASCII text, so it is not a JWT")
    return token


def take_apart(token: str) -> UnverifiedToken:
    """Split a compact JWS-signed JWT and parse its header and claims, verifying nothing."""
    parts = token.split(".")
    if len(parts) != 3:
        if token.startswith("{"):
            fail("this is JSON, not a compact JWT (three base64url parts separated by '.')")
        if len(parts) == 5:
            fail("this is an encrypted JWT (JWE, 5 parts): only signed JWTs can be shown")
        fail(f"not a JWT: a signed JWT has 3 parts separated by '.', this one has {len(parts)}")
    header = jwt.unverified_header(token)
    payload = b64url_decode(parts[1], "payload")
    claims = parse_json_object(payload, "claims set")
    return UnverifiedToken(token, header, claims)


def time_notes(claims: Mapping[str, Any], now: float) -> list[TimeNote]:
    """A note for each time claim present, in the order the token lists them."""
    return [_note(name, claims[name], now) for name in claims if name in TIME_CLAIMS]


def _note(name: str, value: object, now: float) -> TimeNote:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return TimeNote(name, None, None, f"not a NumericDate: {json_type(value)}")
    moment = utc_datetime(value)
    if moment is None:
        return TimeNote(name, None, None, "outside the range of dates")
    delta = value - now
    if name == "exp":
        what = f"expires in {describe_span(delta)}" if delta > 0 else f"expired {ago(-delta)}"
    elif name == "nbf":
        what = (
            f"not valid before this: {describe_span(delta)} from now"
            if delta > 0
            else f"valid since {ago(-delta)}"
        )
    elif name == "iat":
        what = (
            f"issued in the future: {describe_span(delta)} from now"
            if delta > 0
            else f"issued {ago(-delta)}"
        )
    else:
        what = f"in the future: {describe_span(delta)} from now" if delta > 0 else ago(-delta)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    iso = moment.isoformat().replace("+00:00", "Z")
    return TimeNote(name, iso, delta, f"{shown}, {what}")


def render_annotated(obj: Mapping[str, Any], notes: Mapping[str, str]) -> str:
    """`obj` as indented JSON, with `// note` after the top-level members that have one."""
    if not obj:
        return "{}"
    items = list(obj.items())
    lines = []
    for index, (name, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        member = f"  {render_json(name)}: {render_json(value)}".replace("\n", "\n  ")
        lines.append(member + comma)
    annotated = [line for line, (name, _) in zip(lines, items, strict=True) if name in notes]
    width = max((len(line) for line in annotated if "\n" not in line), default=0)
    out = ["{"]
    for line, (name, _) in zip(lines, items, strict=True):
        note = notes.get(name)
        if note is None:
            out.append(line)
        else:  # after the member's last line; one-line members align their notes
            shown = line if "\n" in line else line.ljust(width)
            out.append(f"{shown}  // {printable(note)}")
    out.append("}")
    return "\n".join(out)
