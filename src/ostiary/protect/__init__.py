"""Protect an API with the access tokens of Ostiary (or any RFC 9068 issuer).

```python
from fastapi import Depends, FastAPI
from ostiary.protect import ResourceServer

api = ResourceServer(issuer="https://auth.example", audience="https://notes.example")
app = FastAPI()


@app.get("/notes")
async def notes(claims: dict = Depends(api.require_scopes("notes:read"))) -> list[str]: ...
```

`ostiary.protect` imports only `ostiary.jose`, httpx and Starlette: FastAPI is optional.
"""

from __future__ import annotations

from ._credentials import Credentials
from ._discovery import IssuerMetadata
from ._dpop_client import DPoPAuth, DPoPKey
from ._errors import (
    InsufficientScope,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    ProtectError,
    Unavailable,
)
from ._jwks import RemoteJWKSet
from ._middleware import ProtectMiddleware
from ._resource_server import Claims, ResourceServer, require_scopes, scopes_of

__all__ = [
    "Claims",
    "Credentials",
    "DPoPAuth",
    "DPoPKey",
    "InsufficientScope",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "IssuerMetadata",
    "ProtectError",
    "ProtectMiddleware",
    "RemoteJWKSet",
    "ResourceServer",
    "Unavailable",
    "require_scopes",
    "scopes_of",
]
