"""Security headers on every response: CSP, nosniff, no referrer, no framing, no caching.

Pure ASGI middleware. A response may set its own `Content-Security-Policy` (a page whose
form leads to a client's redirect_uri names it in `form-action`) or `Cache-Control` (static
files, metadata); everything else gets the defaults below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_STATIC_CACHE: Final = "public, max-age=3600"
_HOST = re.compile(r"[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def content_security_policy(
    form_targets: Iterable[str] = (), *, scripts: bool = False, frame_targets: Iterable[str] = ()
) -> str:
    """The page CSP; `form_targets` are URLs a form may lead to besides this server, and
    `frame_targets` the URLs the page's iframes load (none unless given).

    Chromium applies `form-action` to the redirects that follow a form post (CSP3 §6.4.1),
    so the consent and login pages must allow the client's redirect_uri, or the browser
    would refuse the final redirect with the code.
    """
    sources = ["'self'", *_sources(form_targets)]
    # `scripts`: this server's own static scripts only (the form_post page's auto-submit)
    script_src = "; script-src 'self'" if scripts else ""
    # the origins of the clients' front-channel logout pages only; not even 'self'
    frames = _sources(frame_targets)
    frame_src = f"; frame-src {' '.join(frames)}" if frames else ""
    return f"{_BASE_CSP}{script_src}{frame_src}; form-action {' '.join(sources)}"


def _sources(urls: Iterable[str]) -> list[str]:
    """The origins of `urls` as CSP source expressions, each once; unsafe ones left out."""
    sources: list[str] = []
    for url in urls:
        source = _csp_source(url)
        if source is not None and source not in sources:
            sources.append(source)
    return sources


def _csp_source(url: str) -> str | None:
    """The origin of `url` as a CSP source expression (CSP3 §2.3.1), or None if unsafe.

    Built from validated parts only: a `;` or space in a URL must never add a directive.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not _SCHEME.fullmatch(parts.scheme):
        return None
    if not parts.netloc:  # a private-use scheme of a native app (RFC 8252 §7.1)
        return f"{parts.scheme.lower()}:"
    host = parts.netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if port is not None else host
    if not _HOST.fullmatch(host):
        return None
    return f"{parts.scheme.lower()}://{host.lower()}" + (f":{port}" if port is not None else "")


DEFAULT_CSP: Final = content_security_policy()


HSTS: Final = "max-age=31536000"


def _defaults(*, is_static: bool, hsts: bool) -> tuple[tuple[bytes, bytes], ...]:
    headers = {
        "content-security-policy": DEFAULT_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cross-origin-opener-policy": "same-origin",
        "cache-control": _STATIC_CACHE if is_static else "no-store",
    }
    if hsts:  # only when the issuer is https: a browser must never fall back to http
        headers["strict-transport-security"] = HSTS
    return tuple((name.encode(), value.encode()) for name, value in headers.items())


_DEFAULTS: Final = {
    (is_static, hsts): _defaults(is_static=is_static, hsts=hsts)
    for is_static in (False, True)
    for hsts in (False, True)
}


def default_headers(
    *, is_static: bool = False, hsts: bool = False
) -> tuple[tuple[bytes, bytes], ...]:
    """The headers above as ASGI header pairs: names in lower case, values encoded."""
    return _DEFAULTS[is_static, hsts]


def set_defaults(headers: MutableHeaders, *, is_static: bool = False, hsts: bool = False) -> None:
    """The headers above, where the response has not set its own.

    Also called by the last-resort 500 handler: Starlette answers an unhandled exception
    from its outermost middleware, which this one sits inside.
    """
    for name, value in default_headers(is_static=is_static, hsts=hsts):
        headers.setdefault(name.decode(), value.decode())


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                set_defaults(MutableHeaders(scope=message), is_static=is_static, hsts=self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
