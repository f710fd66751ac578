"""Making DPoP requests with httpx: a key, its proofs, and an `httpx.Auth` that sends them.

```python
key = DPoPKey.generate()
async with httpx.AsyncClient(auth=DPoPAuth(key)) as http:
    tokens = (await http.post(token_url, data={...})).json()     # a DPoP-bound token
with httpx.Client(auth=DPoPAuth(key, access_token=tokens["access_token"])) as http:
    http.get("https://notes.example/notes")                        # Authorization: DPoP ...
```
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Generator

import httpx

from ostiary.jose import jwt
from ostiary.jose.dpop import PROOF_TYPE, access_token_hash, normalize_htu
from ostiary.jose.jwk import JWK


class DPoPKey:
    """A client's DPoP key pair; `proof(...)` makes one proof JWT per request."""

    def __init__(self, key: JWK, *, clock: Callable[[], float] = time.time) -> None:
        if not key.is_private or key.is_symmetric or key.alg is None:
            raise ValueError("a DPoP key is a private asymmetric JWK with its alg set")
        self.key = key
        self._public = key.public().to_dict()
        self._clock = clock

    @classmethod
    def generate(cls, alg: str = "ES256", *, clock: Callable[[], float] = time.time) -> DPoPKey:
        """A new key: ES256 (P-256) by default, or EdDSA, RS256, PS256."""
        if alg == "ES256":
            return cls(JWK.generate("EC", crv="P-256", alg=alg), clock=clock)
        if alg == "EdDSA":
            return cls(JWK.generate("OKP", crv="Ed25519", alg=alg), clock=clock)
        if alg in ("RS256", "PS256"):
            return cls(JWK.generate("RSA", size=2048, alg=alg), clock=clock)
        raise ValueError("alg must be ES256, EdDSA, RS256 or PS256")

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint: the `cnf.jkt` of the tokens bound to it."""
        return self.key.thumbprint()

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A fresh proof for one request (RFC 9449 §4.2)."""
        claims: dict[str, object] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": normalize_htu(url),
            "iat": int(self._clock()),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        alg = self.key.alg or "ES256"
        return jwt.encode(
            claims, self.key, alg=alg, headers={"typ": PROOF_TYPE, "jwk": self._public}
        )


class DPoPAuth(httpx.Auth):
    """Signs every request with a DPoP proof; with `access_token`, also sends
    `Authorization: DPoP <token>`. A server asking for a nonce (`use_dpop_nonce`) gets one
    retry with it, and the nonce is kept for later requests to the same origin."""

    requires_response_body = True

    def __init__(self, key: DPoPKey, *, access_token: str | None = None) -> None:
        self.key = key
        self.access_token = access_token
        self._nonces: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        self._sign(request, self._nonces.get(origin))
        response = yield request
        nonce = response.headers.get("dpop-nonce")
        if nonce is None:
            return
        self._nonces[origin] = nonce
        if _asks_for_nonce(response):
            self._sign(request, nonce)
            retried = yield request
            self._nonces[origin] = retried.headers.get("dpop-nonce", nonce)

    def _sign(self, request: httpx.Request, nonce: str | None) -> None:
        url = str(request.url.copy_with(query=None, fragment=None))
        request.headers["DPoP"] = self.key.proof(
            request.method, url, access_token=self.access_token, nonce=nonce
        )
        if self.access_token is not None:
            request.headers["Authorization"] = f"DPoP {self.access_token}"


def _asks_for_nonce(response: httpx.Response) -> bool:
    # RFC 9449 §8: the token endpoint says it in the JSON error, a resource in the challenge
    if 'error="use_dpop_nonce"' in response.headers.get("www-authenticate", ""):
        return True
    if response.status_code != 400:
        return False
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "use_dpop_nonce"
