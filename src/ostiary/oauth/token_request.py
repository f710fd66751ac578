"""Requests to the back-channel endpoints (token, revocation, introspection) and their responses.

One parser for the three endpoints: form-encoded bodies only, every parameter at most once
(RFC 6749 §3.2), empty values treated as absent (§3.1), sizes bounded. One error shape:
RFC 6749 §5.2 JSON with `Cache-Control: no-store`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import InvalidRequest, OAuthError, SlowDown, TemporarilyUnavailable, UseDPoPNonce

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
MAX_PARAMETERS: Final = 32  # distinct names, and values counted with repeats
MAX_VALUE_LENGTH: Final = 4096
# Parameters that carry a JWT may be longer than the rest.
LONG_PARAMETERS: Final = frozenset({"client_assertion", "token"})
MAX_LONG_VALUE_LENGTH: Final = 16 * 1024
# RFC 8707 §2: `resource` may repeat; every other parameter must not (RFC 6749 §3.2).
REPEATABLE: Final = frozenset({"resource"})
NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# A 401 must carry a challenge (RFC 9110 §15.5.2); RFC 6749 §5.2 asks for the scheme the
# client tried, and Basic is the only header scheme the token endpoint accepts.
BASIC_CHALLENGE: Final = 'Basic realm="ostiary", charset="UTF-8"'

# C0 controls, DEL and lone surrogates: none belongs in any parameter, and a NUL or surrogate
# would fail later in a database driver instead of here.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_NOT_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True)
class TokenRequest:
    """A POST to the token, revocation or introspection endpoint, as the server received it.

    `form` holds every value of every parameter (the server does not merge repeats), so the
    core can refuse repeated parameters.
    """

    form: Mapping[str, Sequence[str]]
    authorization: str | None
    content_type: str | None
    address: str | None = None
    dpop: Sequence[str] = ()  # every `DPoP` header value (RFC 9449 §4.1)


@dataclass(frozen=True)
class TokenResponse:
    """A JSON response: status, body and headers (always with `Cache-Control: no-store`)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=lambda: dict(NO_STORE))
    limit: str = ""  # a 429: the limit that refused (for the server's metrics; never sent)


@dataclass(frozen=True)
class Form:
    """A parsed form: single-valued parameters, plus the repeatable `resource`."""

    params: Mapping[str, str]
    resources: tuple[str, ...] = ()

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise InvalidRequest(f"{name} is required")
        return value


def parse_form(req: TokenRequest) -> Form:
    """Check the content type and parameters of a back-channel request; `InvalidRequest` if bad."""
    if not is_form_content_type(req.content_type):
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")
    if not isinstance(req.form, Mapping) or len(req.form) > MAX_PARAMETERS:
        raise InvalidRequest("too many parameters")
    params: dict[str, str] = {}
    resources: list[str] = []
    total = 0
    for name, values in req.form.items():
        if not isinstance(name, str) or isinstance(values, str | bytes):
            raise InvalidRequest("malformed parameters")
        # RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
        present = [v for v in values if v != ""]
        total += len(present)
        if total > MAX_PARAMETERS:
            raise InvalidRequest("too many parameters")
        limit = MAX_LONG_VALUE_LENGTH if name in LONG_PARAMETERS else MAX_VALUE_LENGTH
        for value in present:
            if not isinstance(value, str):
                raise InvalidRequest("malformed parameters")
            if len(value) > limit:
                raise InvalidRequest(f"{_printable(name)} is too long")
            if _FORBIDDEN.search(value):
                raise InvalidRequest(f"{_printable(name)} contains forbidden characters")
        if not present:
            continue
        if name in REPEATABLE:
            resources.extend(present)
        elif len(present) > 1:
            raise InvalidRequest(f"{_printable(name)} must not be repeated")
        else:
            params[name] = present[0]
    return Form(params=params, resources=tuple(resources))


def is_form_content_type(content_type: str | None) -> bool:
    """True for `application/x-www-form-urlencoded`, with parameters such as a charset."""
    if not content_type:
        return False
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != FORM_CONTENT_TYPE:
        return False
    # RFC 6749 Appendix B: the body is UTF-8; refuse a form that says it is something else.
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def json_response(body: dict[str, Any], status: int = 200) -> TokenResponse:
    return TokenResponse(status=status, body=body, headers=dict(NO_STORE))


def error_response(error: OAuthError) -> TokenResponse:
    """RFC 6749 §5.2: `{"error": ..., "error_description": ...}` with the error's status."""
    body: dict[str, Any] = {"error": error.error}
    description = _NOT_DESCRIPTION.sub("", error.description)[:512]
    if description:
        body["error_description"] = description
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    if isinstance(error, SlowDown | TemporarilyUnavailable):
        headers["Retry-After"] = str(max(1, error.retry_after))
    if isinstance(error, UseDPoPNonce):
        headers["DPoP-Nonce"] = error.nonce  # RFC 9449 §8
    limit = error.limit if isinstance(error, SlowDown) else ""
    return TokenResponse(status=error.status, body=body, headers=headers, limit=limit)


def _printable(name: object) -> str:
    text = _NOT_DESCRIPTION.sub("", str(name))[:64]
    return text or "a parameter"
