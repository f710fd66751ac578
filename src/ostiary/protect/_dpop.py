"""DPoP (RFC 9449) at the resource server: a bound token comes with a proof of its key.

A request `Authorization: DPoP <token>` with a `DPoP: <proof>` header is accepted when the
token carries `cnf.jkt` (§6) and the proof is a fresh, unused `dpop+jwt` for this request's
method and URL, hashes this token (`ath`), and is signed by the key with that thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import urlsplit

from ostiary.jose import ImmatureToken, JoseError, jwt

from ._errors import InvalidDPoPProof

PROOF_TYPE: Final = "dpop+jwt"
DPOP_ALGORITHMS: Final = (
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
)  # fmt: skip
IAT_WINDOW: Final = 60
MAX_JTI_LENGTH: Final = 256


def access_token_hash(access_token: str) -> str:
    """The `ath` claim: base64url(SHA-256(access token)) (RFC 9449 §4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalize_htu(url: str) -> str:
    """A URL as `htu` is compared (§4.3): lowercase scheme and host, no default port, no
    query or fragment."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    default = (scheme, port) in (("https", 443), ("http", 80))
    netloc = host if port is None or default else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


class ReplayCache:
    """The proofs seen lately, in this process, each kept until it could no longer pass the
    iat window; bounded, so a flood of proofs cannot grow it without end."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._seen: dict[bytes, float] = {}
        self._max_entries = max_entries

    def first_use(self, jkt: str, jti: str, *, until: float, now: float) -> bool:
        key = hashlib.sha256(f"{jkt}.{jti}".encode()).digest()
        seen = self._seen.get(key)
        if seen is not None and seen > now:
            return False
        if len(self._seen) >= self._max_entries:
            self._purge(now)
        self._seen[key] = until
        return True

    def _purge(self, now: float) -> None:
        for key in [key for key, until in self._seen.items() if until <= now]:
            del self._seen[key]
        while len(self._seen) >= self._max_entries:
            # Still full of live entries: forget the oldest. A proof replayed after this is
            # still bound to its token and its request, and at most IAT_WINDOW old.
            del self._seen[next(iter(self._seen))]


def check_proof(
    proof: str,
    *,
    jkt: str,
    access_token: str,
    method: str,
    url: str,
    replay: ReplayCache,
    clock: Callable[[], float] = time.time,
    window: int = IAT_WINDOW,
) -> None:
    """RFC 9449 §7.1 and §4.3 for one request; `InvalidDPoPProof` says which check failed."""
    now = clock()
    try:
        claims, key = jwt.decode_with_embedded_key(
            proof, algorithms=DPOP_ALGORITHMS, typ=PROOF_TYPE, leeway=window, now=now
        )
    except ImmatureToken:
        raise InvalidDPoPProof("the DPoP proof's iat is missing or too far from now") from None
    except (JoseError, ValueError):
        raise InvalidDPoPProof(
            "the DPoP proof is malformed or its signature does not verify"
        ) from None
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDPoPProof("the DPoP proof needs a jti")
    if type(iat) is not int or abs(now - iat) > window:
        raise InvalidDPoPProof("the DPoP proof's iat is missing or too far from now")
    if claims.get("htm") != method:
        raise InvalidDPoPProof("the DPoP proof's htm is not this request's method")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
        raise InvalidDPoPProof("the DPoP proof's htu is not this request's URL")
    ath = claims.get("ath")
    if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
        raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
    if not hmac.compare_digest(key.thumbprint(), jkt):
        raise InvalidDPoPProof("the DPoP proof is not signed by the key the token is bound to")
    if not replay.first_use(jkt, jti, until=now + 2 * window, now=now):
        raise InvalidDPoPProof("the DPoP proof was already used: make a new one per request")
