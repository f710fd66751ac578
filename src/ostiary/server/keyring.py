"""Signing keys in the database, private parts encrypted at rest; `DbKeyRing` serves them.

A key's life (`oauth.models.SigningKey`): published in the JWKS from `created_at`, signs from
`activates_at` until `retires_at`, published until `expires_at` = `retires_at` plus the access
token lifetime, when every token it signed has expired. `rotate` publishes the next key
`overlap` seconds before it signs, so verifiers that cache the JWKS already know it
(RFC 7517 §5; OpenID Connect Core §10.1.1 "rollover").

The private JWK is stored as a compact JWE, `dir` + A256GCM, under a key derived from the
key-encryption secret (`key_secret.py`); its protected header names the kid it holds, so a
row cannot be swapped for another one unnoticed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from ostiary.jose import JoseError, jwe
from ostiary.jose.jwk import JWK, JWKSet
from ostiary.oauth.errors import TemporarilyUnavailable
from ostiary.oauth.models import ID_TOKEN_ALGORITHMS, AuditEvent, SigningKey
from ostiary.oauth.store import Store

from .key_secret import derive_key
from .settings import SettingsError

_AT_REST_ALG: Final = "dir"
_AT_REST_ENC: Final = "A256GCM"
_AT_REST_CTY: Final = "jwk+json"
DEFAULT_ACCESS_TOKEN_TTL: Final = 600  # ServerConfig's default


class KeySecretMismatch(SettingsError):
    """A stored signing key does not decrypt with this key-encryption secret."""


def _key_encryption_key(secret: bytes) -> JWK:
    return JWK.from_secret(derive_key(secret, "ostiary signing keys at rest v1"))


def generate_signing_key(alg: str, secret: bytes, *, now: int, activates_at: int) -> SigningKey:
    """A new key pair for `alg` (ES256, RS256 or EdDSA), its private half encrypted."""
    if alg == "ES256":
        key = JWK.generate("EC", crv="P-256", alg=alg, use="sig")
    elif alg == "RS256":
        key = JWK.generate("RSA", size=2048, alg=alg, use="sig")
    elif alg == "EdDSA":
        key = JWK.generate("OKP", crv="Ed25519", alg=alg, use="sig")
    else:
        raise ValueError("signing alg must be ES256, RS256 or EdDSA")
    kid = key.thumbprint()  # RFC 7638: unique per key, the same in every process
    private = JWK.from_dict({**key.to_dict(private=True), "kid": kid})
    sealed = jwe.encrypt(
        private.to_json(private=True).encode("utf-8"),
        _key_encryption_key(secret),
        alg=_AT_REST_ALG,
        enc=_AT_REST_ENC,
        headers={"kid": kid, "cty": _AT_REST_CTY},
    )
    return SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=private.public().to_dict(),
        private_jwe=sealed,
        created_at=now,
        activates_at=activates_at,
    )


def decrypt_signing_key(row: SigningKey, secret: bytes) -> JWK:
    """The private JWK of a stored key; `KeySecretMismatch` if the secret or the row is wrong."""
    try:
        header = jwe.unverified_header(row.private_jwe)
        plaintext = jwe.decrypt(
            row.private_jwe,
            _key_encryption_key(secret),
            algorithms=[_AT_REST_ALG],
            encryptions=[_AT_REST_ENC],
        )
        key = JWK.from_json(plaintext)
    except JoseError as exc:
        raise KeySecretMismatch(
            f"signing key {row.kid} does not decrypt with this key-encryption secret "
            "(OSTIARY_KEY_FILE must hold the secret the keys were created with)"
        ) from exc
    # the header is authenticated (it is the GCM additional data), so it binds the kid
    if header.get("kid") != row.kid or key.kid != row.kid or not key.is_private:
        raise KeySecretMismatch(f"signing key row {row.kid} holds a different key")
    if key.public().to_dict() != dict(row.public_jwk) or key.alg != row.alg:
        raise KeySecretMismatch(f"signing key row {row.kid} does not match its public key")
    return key


def select_signing_key(
    rows: Sequence[SigningKey], now: int, alg: str | None = None
) -> SigningKey | None:
    """The key that signs `alg` (any alg when None) at `now`: active, not retired, the most
    recently activated."""
    active = [
        row
        for row in rows
        if row.activates_at <= now
        and (row.retires_at is None or row.retires_at > now)
        and (alg is None or row.alg == alg)
    ]
    return max(active, key=lambda row: (row.activates_at, row.kid), default=None)


def server_algorithms(default_alg: str) -> tuple[str, ...]:
    """Every algorithm the server keeps a key for: its default (access tokens) and, as
    OpenID Connect clients may ask for any of them, every ID token algorithm (RS256 always,
    OpenID Connect Core §15.1)."""
    return tuple(dict.fromkeys((default_alg, *ID_TOKEN_ALGORITHMS)))


async def ensure_signing_keys(
    store: Store, secret: bytes, algs: Sequence[str], now: int
) -> list[SigningKey]:
    """`ensure_signing_key` for each algorithm the server signs with."""
    return [await ensure_signing_key(store, secret, alg, now) for alg in algs]


def is_published(row: SigningKey, now: int) -> bool:
    """True while verifiers may need the key: from creation until every token has expired."""
    return row.created_at <= now and (row.expires_at is None or row.expires_at > now)


async def ensure_signing_key(store: Store, secret: bytes, alg: str, now: int) -> SigningKey:
    """The key that signs `alg` now, creating the first one when there is none (first start).

    Decrypts it, so a wrong key-encryption secret fails here, at start-up, loudly.
    """
    rows = await store.keys.list()
    current = select_signing_key(rows, now, alg)
    pending = [r for r in rows if r.alg == alg and r.activates_at > now and r.retires_at is None]
    if current is None and not pending:
        current = generate_signing_key(alg, secret, now=now, activates_at=now)
        await store.keys.add(current)
        await store.audit.record(
            AuditEvent(
                event="key.created",
                at=now,
                detail={"kid": current.kid, "alg": current.alg, "activates_at": now},
            )
        )
        # several processes may start at once: all settle on the same winner
        current = select_signing_key(await store.keys.list(), now, alg) or current
    if current is None:  # only a key that is not active yet: it was put there on purpose
        current = min(pending, key=lambda r: r.activates_at)
    decrypt_signing_key(current, secret)
    return current


async def rotate(
    store: Store,
    secret: bytes,
    alg: str,
    now: int,
    overlap: int,
    *,
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL,
) -> SigningKey:
    """Publish a new `alg` key that signs from `now + overlap`; retire then the keys of the
    same algorithm it replaces (each algorithm has its own current key).

    Pass the server's `access_token_ttl`: a retired key stays published that much longer,
    until every token it signed has expired.
    """
    if overlap < 0 or access_token_ttl <= 0:
        raise ValueError("overlap must be >= 0 and access_token_ttl > 0")
    new = generate_signing_key(alg, secret, now=now, activates_at=now + overlap)
    # first publish the new key, then retire the old ones: there is always a key that signs
    await store.keys.add(new)
    retired: list[str] = []
    for row in await store.keys.list():
        if row.kid == new.kid or row.alg != alg:
            continue
        if row.retires_at is None or row.retires_at > new.activates_at:
            retires_at = max(new.activates_at, row.activates_at)
            expires_at = retires_at + access_token_ttl
            await store.keys.update(replace(row, retires_at=retires_at, expires_at=expires_at))
            retired.append(row.kid)
            await store.audit.record(
                AuditEvent(
                    event="key.retired",
                    at=now,
                    detail={"kid": row.kid, "retires_at": retires_at, "expires_at": expires_at},
                )
            )
    await store.audit.record(
        AuditEvent(
            event="key.rotated",
            at=now,
            detail={
                "kid": new.kid,
                "alg": new.alg,
                "activates_at": new.activates_at,
                "replaces": retired,
            },
        )
    )
    return new


class DbKeyRing:
    """`oauth.context.KeyRing` on `store.keys`: decrypted keys cached, the table re-read
    every `refresh_interval` seconds so a rotation by another process or the CLI is picked up
    without a restart."""

    def __init__(
        self,
        store: Store,
        secret: bytes,
        *,
        clock: Callable[[], int],
        refresh_interval: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
        default_alg: str | None = None,
    ) -> None:
        self._store = store
        self._default_alg = default_alg
        self._secret = secret
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._monotonic = monotonic
        self._rows: tuple[SigningKey, ...] = ()
        self._read_at: float | None = None
        self._private: dict[str, JWK] = {}
        self._published: tuple[frozenset[str], JWKSet] | None = None

    async def refresh(self) -> None:
        """Re-read the key table now."""
        self._rows = tuple(await self._store.keys.list())
        self._read_at = self._monotonic()

    async def _current_rows(self) -> tuple[SigningKey, ...]:
        if self._read_at is None or self._monotonic() - self._read_at >= self._refresh_interval:
            await self.refresh()
        return self._rows

    async def signing_key(self, alg: str | None = None) -> JWK:
        """The private key that signs `alg` now (the default algorithm when None)."""
        alg = alg or self._default_alg
        rows = await self._current_rows()
        row = select_signing_key(rows, self._clock(), alg)
        if row is None:
            await self.refresh()  # a key may have been added since the last read
            row = select_signing_key(self._rows, self._clock(), alg)
            if row is None:
                raise TemporarilyUnavailable(
                    f"no {alg or 'signing'} key is active", detail="no such key in the table"
                )
        key = self._private.get(row.kid)
        if key is None:
            key = decrypt_signing_key(row, self._secret)
            self._private[row.kid] = key
        return key

    async def published(self) -> JWKSet:
        """Every public key a verifier may need: next, current and retired-but-unexpired."""
        rows = await self._current_rows()
        now = self._clock()
        live = [row for row in rows if is_published(row, now)]
        kids = frozenset(row.kid for row in live)
        if self._published is None or self._published[0] != kids:
            keyset = JWKSet([JWK.from_dict(row.public_jwk) for row in live])
            self._published = (kids, keyset)
        return self._published[1]
