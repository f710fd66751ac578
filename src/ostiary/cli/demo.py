"""`ostiary demo`: a self-contained tour of the JOSE library and the attacks it refuses."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any, Final

from ostiary.jose import (
    BadSignature,
    ExpiredToken,
    InvalidAudience,
    InvalidKey,
    JoseError,
    UnsupportedAlgorithm,
    jwt,
)
from ostiary.jose.jwk import JWK

from ._base64url import b64url_decode, b64url_encode
from ._console import HelpFormatter, render_json

ISSUER: Final = "https://ostiary.example"
AUDIENCE: Final = "billing"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `demo`."""
    parser = commands.add_parser(
        "demo",
        help="a 10-second tour: issue and verify a token, refuse forged ones",
        description="Generate an ES256 key, issue a JWT, verify it, then show that tampered, "
        "unsigned, algorithm-confused, expired and misaddressed tokens are refused. "
        "Nothing is written to disk; exit status 0 when every step behaves as it should.",
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(_args: argparse.Namespace) -> int:
    """Run the tour; 1 if any step does not behave as it must."""
    now = int(time.time())
    print("Ostiary demo: a JWT's round trip, and the forgeries it refuses")

    _step(1, "Generate an ES256 signing key (EC P-256)")
    generated = JWK.generate("EC", crv="P-256", alg="ES256")
    key = JWK.from_dict({**generated.to_dict(private=True), "kid": generated.thumbprint()})
    public = key.public()
    _detail("public JWK", render_json(public.to_dict(), indent=None))

    _step(2, "Issue a token for the 'billing' API, valid for 5 minutes")
    claims = {"iss": ISSUER, "sub": "u_123", "aud": AUDIENCE, "scope": "invoices:read"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 300}, key, alg="ES256")
    _detail("token", token)

    _step(3, "Verify it as the API would: signature, ES256 only, exp, iss and aud")
    verified = jwt.decode(
        token, public, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER, now=now
    )
    _detail("accepted", render_json(verified, indent=None))

    def accept(forged: str) -> object:
        return jwt.decode(
            forged, public, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER, now=now
        )

    header, payload, signature = token.split(".")
    attacks: list[tuple[str, Callable[[], object], type[JoseError]]] = [
        (
            "Tamper with the claims ('sub' becomes 'admin'), keep the signature",
            lambda: accept(f"{header}.{_with_claims(payload, sub='admin')}.{signature}"),
            BadSignature,
        ),
        (
            "Strip the signature and declare alg 'none', to a verifier that even lists 'none'",
            lambda: jwt.decode(
                f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
                public,
                algorithms=["ES256", "none"],
                audience=AUDIENCE,
                now=now,
            ),
            UnsupportedAlgorithm,
        ),
        (
            "Algorithm confusion: sign with HS256 using the public key's PEM as the secret,\n"
            "   to a verifier that wrongly allows HS256 and passes the PEM text as its key",
            lambda: jwt.decode(
                _hs256_forgery(payload, public.to_pem()),
                public.to_pem(),
                algorithms=["ES256", "HS256"],
                audience=AUDIENCE,
                now=now,
            ),
            InvalidKey,
        ),
        (
            "Replay the token 10 minutes later",
            lambda: jwt.decode(
                token, public, algorithms=["ES256"], audience=AUDIENCE, now=now + 600
            ),
            ExpiredToken,
        ),
        (
            "Present it to a different API (audience 'payroll')",
            lambda: jwt.decode(token, public, algorithms=["ES256"], audience="payroll", now=now),
            InvalidAudience,
        ),
    ]
    failures = 0
    for number, (title, attempt, expected) in enumerate(attacks, start=4):
        _step(number, title)
        failures += not _refused(attempt, expected)
    print()
    if failures:
        print(f"{failures} step(s) did NOT behave as they must.")
        return 1
    print("Every forgery was refused. Next: ostiary jwt --help, ostiary keys --help")
    return 0


def _step(number: int, title: str) -> None:
    print(f"\n{number}. {title}")


def _detail(label: str, text: str) -> None:
    print(f"   {label}: {text}")


def _refused(attempt: Callable[[], object], expected: type[JoseError]) -> bool:
    try:
        attempt()
    except expected as exc:
        _detail(f"refused ({type(exc).__name__})", str(exc))
        return True
    except JoseError as exc:
        _detail(f"UNEXPECTED: refused with {type(exc).__name__}, not {expected.__name__}", str(exc))
        return False
    _detail("UNEXPECTED", "the forged token was ACCEPTED")
    return False


def _segment(obj: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def _with_claims(payload: str, **changes: Any) -> str:
    claims = json.loads(b64url_decode(payload, "payload"))
    return _segment({**claims, **changes})


def _hs256_forgery(payload: str, secret: bytes) -> str:
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{payload}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(mac)}"
