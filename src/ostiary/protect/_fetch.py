"""Fetching the issuer's JSON documents: bounded in size and time, never following redirects."""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

MAX_DOCUMENT_SIZE: Final = 256 * 1024


class FetchError(Exception):
    """The document could not be had; the message names the URL and why (no secrets)."""


async def fetch_json(
    http: httpx.AsyncClient, url: str, *, max_size: int = MAX_DOCUMENT_SIZE
) -> tuple[dict[str, Any], httpx.Response]:
    """GET `url` and return its JSON object and the response (for its cache headers)."""
    try:
        async with http.stream(
            "GET", url, headers={"Accept": "application/json"}, follow_redirects=False
        ) as response:
            if response.status_code != 200:
                raise FetchError(f"{url} answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_size:
                    raise FetchError(f"{url} sent more than {max_size} bytes")
    except httpx.HTTPError as exc:
        raise FetchError(f"{url} could not be fetched ({type(exc).__name__})") from exc
    try:
        document = json.loads(bytes(body))
    except ValueError as exc:
        raise FetchError(f"{url} did not send JSON") from exc
    if not isinstance(document, dict):
        raise FetchError(f"{url} did not send a JSON object")
    return document, response
