"""DPoP proof JWTs (RFC 9449 §4): every check of one proof against one HTTP request.

The authorization server's token endpoint and a resource server both verify proofs here and
keep only what is theirs: where a proof's `jti` is remembered, nonces, and how a refusal is
answered (`invalid_dpop_proof` in a JSON body, or in a `WWW-Authenticate: DPoP` challenge).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit

from ._b64 import b64encode
from ._errors import ImmatureToken, JoseError
from ._jwt import MAX_EMBEDDED_KEY_TOKEN_SIZE, decode_with_embedded_key

PROOF_TYPE: Final = "dpop+jwt"  # §4.2
# §4.2: asymmetric only, never `none` or a MAC
DPOP_ALGORITHMS: Final = (
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
)  # fmt: skip
IAT_WINDOW: Final = 60  # seconds a proof's iat may differ from now (§11.1)
MAX_PROOF_SIZE: Final = MAX_EMBEDDED_KEY_TOKEN_SIZE
MAX_JTI_LENGTH: Final = 256
MAX_NONCE_LENGTH: Final = 256

_MALFORMED: Final = "the DPoP proof is malformed or its signature does not verify"
_IAT: Final = "the DPoP proof's iat is too far from the server's time"
_DEFAULT_PORTS: Final = (("https", 443), ("http", 80))


class InvalidProof(JoseError):
    """A DPoP proof failed a check of RFC 9449 §4.3; the message says which, for the client."""

    default_message = "the DPoP proof is invalid"


@dataclass(frozen=True, kw_only=True)
class DPoPProof:
    """A verified proof: its key's RFC 7638 thumbprint, and what replay and nonce checks use."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None = None
    replay_until: int
    """Remember `replay_key` until this time (exclusive): till then the proof's iat passes."""

    @property
    def replay_key(self) -> str:
        """The proof's name in a replay cache: its key and `jti` together (§11.1)."""
        # surrogatepass: a JSON string may hold a lone surrogate, and it still names one jti
        name = f"{self.jkt}.{self.jti}".encode("utf-8", "surrogatepass")
        return b64encode(hashlib.sha256(name).digest())


def access_token_hash(access_token: str) -> str:
    """The `ath` claim: base64url(SHA-256(ASCII(access token))) (§4.2)."""
    return b64encode(hashlib.sha256(access_token.encode("ascii")).digest())


def normalize_htu(url: str) -> str:
    """`url` as an `htu` is written and compared (§4.3, RFC 3986 §6.2.2 case and §6.2.3
    default port and empty path): no userinfo, query or fragment. `ValueError` if the port
    is not a number in range or the host is not well formed."""
    return _normalized(urlsplit(url))


def _normalized(parts: SplitResult) -> str:
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or (scheme, port) in _DEFAULT_PORTS else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def is_request_url(htu: str, url: str) -> bool:
    """Whether a proof's `htu` names the request URL `url`, query and fragment aside (§4.3)."""
    if htu == url and "@" not in htu:
        return True  # the usual case: the client wrote the URL as the server knows it
    try:
        parts = urlsplit(htu)
        # RFC 9110 §4.2.4: a sender must not write userinfo in an http(s) URI
        if parts.username is not None or parts.password is not None:
            return False
        return _normalized(parts) == normalize_htu(url)
    except ValueError:  # a port out of range or a broken IPv6 host names no request
        return False


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    jkt: str | None = None,
    window: int = IAT_WINDOW,
) -> DPoPProof:
    """Check a DPoP proof for one request (§4.3); `InvalidProof` says which check failed.

    With `access_token` its hash must be the proof's `ath`, and with `jkt` (the token's
    `cnf.jkt`) the proof's key must have that thumbprint (§7.1). Replay (`jti`) and nonces
    are the caller's: they need storage or a secret.
    """
    try:
        claims, key = decode_with_embedded_key(
            proof,
            algorithms=DPOP_ALGORITHMS,
            typ=PROOF_TYPE,
            leeway=window,
            now=now,
            max_size=MAX_PROOF_SIZE,
        )
    except ImmatureToken:
        raise InvalidProof(_IAT) from None
    except (JoseError, ValueError):
        raise InvalidProof(_MALFORMED) from None
    jti, iat, htu = claims.get("jti"), claims.get("iat"), claims.get("htu")
    if type(jti) is not str or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidProof("the DPoP proof needs a jti")
    if type(iat) is not int:
        raise InvalidProof("the DPoP proof needs an integer iat")
    if abs(now - iat) > window:
        raise InvalidProof(_IAT)
    if claims.get("htm") != method:
        raise InvalidProof("the DPoP proof's htm is not this request's method")
    if type(htu) is not str or not is_request_url(htu, url):
        raise InvalidProof("the DPoP proof's htu is not this request's URL")
    if access_token is not None:
        ath = claims.get("ath")
        # isascii first: compare_digest raises on a str with other characters
        if not (
            type(ath) is str
            and ath.isascii()
            and hmac.compare_digest(ath, access_token_hash(access_token))
        ):
            raise InvalidProof("the DPoP proof's ath does not match the access token")
    nonce = claims.get("nonce")
    if nonce is not None and (type(nonce) is not str or len(nonce) > MAX_NONCE_LENGTH):
        raise InvalidProof("the DPoP proof's nonce is malformed")
    thumbprint = key.thumbprint()
    if jkt is not None and not (jkt.isascii() and hmac.compare_digest(thumbprint, jkt)):
        raise InvalidProof("the DPoP proof is not signed by the key the token is bound to")
    return DPoPProof(jkt=thumbprint, jti=jti, iat=iat, nonce=nonce, replay_until=iat + window + 1)
