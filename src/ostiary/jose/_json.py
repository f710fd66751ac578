"""Strict JSON for JOSE: no NaN or Infinity, no duplicate member names, objects only."""

from __future__ import annotations

import json
from typing import Any

from ._errors import MalformedToken

_orjson: Any
try:  # a fast parser when it is installed; the strict stdlib path always decides refusals
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the architecture test in a subprocess
    _orjson = None


def _refuse_constant(name: str) -> Any:
    raise MalformedToken(f"non-standard JSON value {name} is not allowed")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("duplicate member names are not allowed")
    return obj


_strict_decoder = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_constant=_refuse_constant, strict=True
)


def loads_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse a JSON object strictly (duplicates, NaN and Infinity refused)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedToken(f"{what} is not UTF-8") from None
    try:
        value = _strict_decoder.decode(data)
    except MalformedToken as exc:
        raise MalformedToken(f"{what}: {exc}") from None
    except (ValueError, RecursionError):
        raise MalformedToken(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} must be a JSON object")
    return value


if _orjson is not None:
    _orjson_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps
    _orjson_error = _orjson.JSONDecodeError

    def loads_claims(data: bytes, what: str) -> dict[str, Any]:
        """Parse a JWT claims set; duplicate claim names are refused (RFC 7519 §4)."""
        try:
            value = _orjson_loads(data)
        except _orjson_error:
            return loads_object(data, what)
        if type(value) is not dict:
            raise MalformedToken(f"{what} must be a JSON object")
        # orjson keeps the last of duplicate names and turns integers beyond 64 bits into
        # floats. When re-encoding the parse gives back the input byte for byte, nothing was
        # dropped or changed; anything else (whitespace, escapes, floats, duplicates, big
        # integers) goes to the strict parser, which decides.
        if _orjson_dumps(value) != data:
            return loads_object(data, what)
        return value

    def dumps(value: object) -> bytes:
        """Serialize compactly as UTF-8 JSON."""
        try:
            out: bytes = _orjson_dumps(value)
        except TypeError:
            return _dumps_std(value)
        # orjson writes NaN and Infinity as null; the strict encoder refuses them instead.
        return _dumps_std(value) if b"null" in out else out
else:  # pragma: no cover - exercised by the architecture test in a subprocess

    def loads_claims(data: bytes, what: str) -> dict[str, Any]:
        """Parse a JWT claims set; duplicate claim names are refused (RFC 7519 §4)."""
        return loads_object(data, what)

    def dumps(value: object) -> bytes:
        """Serialize compactly as UTF-8 JSON."""
        return _dumps_std(value)


def _dumps_std(value: object) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as exc:
        raise TypeError(f"value is not JSON-serializable: {exc}") from None
