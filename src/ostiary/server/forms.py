"""Request parameters as the core wants them: every value of every name, strictly decoded.

The core refuses repeated parameters (RFC 6749 §3.1), so nothing here merges them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from ostiary.oauth.errors import InvalidRequest

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
MAX_FIELDS: Final = 200

Params = dict[str, list[str]]


def group(pairs: Iterable[tuple[str, str]]) -> Params:
    params: Params = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def parse_urlencoded(data: bytes | str) -> Params:
    """`application/x-www-form-urlencoded` (or a query string), UTF-8 after percent-decoding
    (RFC 6749 Appendix B); `InvalidRequest` for anything that is not."""
    try:
        text = data.decode("ascii") if isinstance(data, bytes) else data
        text.encode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeError as exc:
        raise InvalidRequest("parameters must be percent-encoded UTF-8") from exc
    except ValueError as exc:  # more than MAX_FIELDS fields
        raise InvalidRequest("too many parameters") from exc
    return group(pairs)


def query_params(request: Request) -> Params:
    return parse_urlencoded(request.scope.get("query_string", b""))


def is_form(request: Request) -> bool:
    return is_form_content_type(request.headers.get("content-type", ""))


def is_form_content_type(content_type: str) -> bool:
    """True for `application/x-www-form-urlencoded`, with or without parameters."""
    return content_type.partition(";")[0].strip().lower() == FORM_CONTENT_TYPE


async def form_params(request: Request) -> Params:
    """The parameters of a form post; `InvalidRequest` unless the body is urlencoded."""
    if not is_form(request):
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")
    return parse_urlencoded(await request.body())


def single(params: Params, name: str) -> str | None:
    """The one value of `name`; None when absent or empty; `InvalidRequest` when repeated."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] or None
