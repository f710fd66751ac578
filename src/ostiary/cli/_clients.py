"""The handlers of `ostiary clients`, loaded only when one runs (`clients_commands.py`)."""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any, Final, cast

from ostiary.jose import JoseError
from ostiary.jose.jwk import JWKSet
from ostiary.oauth.client_secrets import generate_client_secret, hash_client_secret
from ostiary.oauth.frontchannel_logout import check_frontchannel_logout_uri
from ostiary.oauth.logout_uri import check_logout_uri
from ostiary.oauth.models import AuditEvent, AuthMethod, Client, ClientOidc, TokenFormat
from ostiary.oauth.registration import issue_initial_access_token
from ostiary.oauth.store import Store
from ostiary.oauth.subject import sector_of
from ostiary.server.key_secret import load_key_secret, with_derived_keys
from ostiary.server.settings import SettingsError

from ._console import fail, parse_json_object, printable, read_input, render_json
from ._registration import check_grant_types, check_redirect_uris, check_scopes
from ._server_settings import load_settings, run_with_store

_MAX_JWKS_SIZE: Final = 64 * 1024


def create(args: argparse.Namespace) -> int:
    grant_types = check_grant_types(args.grant_types, legacy=args.legacy_password_grant)
    auth_method = _auth_method(args)
    if auth_method == "none" and "client_credentials" in grant_types:
        fail("a public client cannot use client_credentials: it has nothing to authenticate with")
    redirect_uris = check_redirect_uris(args.redirect_uris)
    if "authorization_code" in grant_types and not redirect_uris:
        fail("authorization_code needs at least one --redirect-uris URL")
    if redirect_uris and "authorization_code" not in grant_types:
        fail("--redirect-uris is only for clients with the authorization_code grant")
    jwks = _load_jwks(args.jwks) if args.jwks is not None else None
    if auth_method == "private_key_jwt" and jwks is None:
        fail("private_key_jwt needs --jwks FILE with the client's public keys")
    if jwks is not None and auth_method != "private_key_jwt":
        fail("--jwks is only for --auth-method private_key_jwt")
    name = args.name.strip()
    if not name or len(name) > 200 or printable(name) != name:
        fail("--name must be 1 to 200 visible characters")
    secret = None
    secret_hash = None
    if auth_method in ("client_secret_basic", "client_secret_post"):
        secret = generate_client_secret()
        secret_hash = hash_client_secret(secret)
    client = Client(
        client_id=_new_client_id(),
        name=name,
        auth_method=auth_method,
        secret_hash=secret_hash,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scopes=check_scopes(args.scopes),
        jwks=jwks,
        token_format=cast(TokenFormat, args.token_format),
        legacy_password_grant=args.legacy_password_grant,
        created_at=int(time.time()),
        oidc=ClientOidc(
            id_token_signed_response_alg=args.id_token_alg,
            userinfo_signed_response_alg=args.userinfo_alg,
            subject_type="pairwise" if args.pairwise else "public",
            post_logout_redirect_uris=check_redirect_uris(args.post_logout_redirect_uris),
            backchannel_logout_uri=_logout_uri(
                args.backchannel_logout_uri, "--backchannel-logout-uri", check_logout_uri
            ),
            backchannel_logout_session_required=args.backchannel_logout_session_required,
            frontchannel_logout_uri=_logout_uri(
                args.frontchannel_logout_uri,
                "--frontchannel-logout-uri",
                check_frontchannel_logout_uri,
            ),
            frontchannel_logout_session_required=args.frontchannel_logout_session_required,
        ),
    )
    if client.oidc.subject_type == "pairwise":
        try:
            sector_of(client)
        except ValueError as exc:
            fail(f"--pairwise: {exc}")

    async def add(store: Store) -> None:
        await store.clients.add(client)
        await store.audit.record(
            AuditEvent(
                event="client.created",
                at=client.created_at,
                client_id=client.client_id,
                detail={
                    "source": "cli",
                    "name": client.name,
                    "auth_method": client.auth_method,
                    "grant_types": sorted(client.grant_types),
                    "scope": " ".join(sorted(client.scopes)),
                    "redirect_uris": list(client.redirect_uris),
                },
            )
        )

    run_with_store(args, add, migrate_first=True)
    view = _describe(client)
    if secret is not None:
        view["client_secret"] = secret
    if args.json:
        print(render_json(view))
        return 0
    print(f"client_id:     {view['client_id']}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("ostiary: the client_secret is shown only this once: store it now", file=sys.stderr)
    print(f"name:          {printable(client.name)}")
    print(f"grant types:   {' '.join(view['grant_types'])}")
    print(f"auth method:   {client.auth_method}")
    return 0


def _auth_method(args: argparse.Namespace) -> AuthMethod:
    method: str | None = args.auth_method
    if args.public:
        if method not in (None, "none"):
            fail(f"a --public client authenticates with 'none', not {method!r}")
        return "none"
    if method == "none":
        fail("--auth-method none makes a public client: pass --public")
    return cast(AuthMethod, method or "client_secret_basic")


def _load_jwks(path: str) -> dict[str, Any]:
    members = parse_json_object(read_input(path, "JWKS", limit=_MAX_JWKS_SIZE), "JWKS")
    try:
        keys = JWKSet.from_dict(members if "keys" in members else {"keys": [members]})
    except JoseError as exc:
        fail(f"the JWKS {path!r} is not usable: {exc}")
    if not len(keys):
        fail(f"the JWKS {path!r} holds no keys")
    if any(key.is_private for key in keys):
        fail(f"the JWKS {path!r} holds a private key: register only the public part")
    return keys.to_dict()


def _new_client_id() -> str:
    # a prefix, so an id never starts with "-" and reads as an option on a command line
    return "c_" + secrets.token_urlsafe(16)


def _describe(client: Client) -> dict[str, Any]:
    view: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.is_public,
        "auth_method": client.auth_method,
        "grant_types": sorted(client.grant_types),
        "redirect_uris": list(client.redirect_uris),
        "scope": " ".join(sorted(client.scopes)),
        "token_format": client.token_format,
        "legacy_password_grant": client.legacy_password_grant,
        "created_at": client.created_at,
    }
    if client.jwks is not None:
        view["jwks"] = dict(client.jwks)
    view["id_token_signed_response_alg"] = client.oidc.id_token_signed_response_alg
    if client.oidc.userinfo_signed_response_alg is not None:
        view["userinfo_signed_response_alg"] = client.oidc.userinfo_signed_response_alg
    view["subject_type"] = client.oidc.subject_type
    if client.oidc.post_logout_redirect_uris:
        view["post_logout_redirect_uris"] = list(client.oidc.post_logout_redirect_uris)
    if client.oidc.backchannel_logout_uri is not None:
        view["backchannel_logout_uri"] = client.oidc.backchannel_logout_uri
    if client.oidc.backchannel_logout_session_required:
        view["backchannel_logout_session_required"] = True
    if client.oidc.frontchannel_logout_uri is not None:
        view["frontchannel_logout_uri"] = client.oidc.frontchannel_logout_uri
    if client.oidc.frontchannel_logout_session_required:
        view["frontchannel_logout_session_required"] = True
    return view


def list_clients(args: argparse.Namespace) -> int:
    async def load(store: Store) -> list[Client]:
        return list(await store.clients.list())

    clients = run_with_store(args, load)
    if args.json:
        print(render_json([_describe(client) for client in clients]))
        return 0
    if not clients:
        print("no clients yet: ostiary clients create --help")
        return 0
    width = max(len(client.client_id) for client in clients)
    for client in clients:
        kind = "public" if client.is_public else "confidential"
        grants = ",".join(sorted(client.grant_types))
        print(f"{client.client_id:<{width}}  {kind:<12}  {grants}  {printable(client.name)}")
    return 0


def show(args: argparse.Namespace) -> int:
    client_id: str = args.client_id

    async def load(store: Store) -> Client | None:
        return await store.clients.get(client_id)

    client = run_with_store(args, load)
    if client is None:
        fail(f"no client {client_id!r}")
    view = _describe(client)
    if args.json:
        print(render_json(view))
        return 0
    for name, value in view.items():
        shown = " ".join(value) if isinstance(value, list) else value
        print(f"{name + ':':<22} {render_json(shown) if isinstance(shown, dict) else shown}")
    return 0


def delete(args: argparse.Namespace) -> int:
    client_id: str = args.client_id

    async def delete(store: Store) -> bool:
        if not await store.clients.delete(client_id):
            return False
        await store.audit.record(
            AuditEvent(
                event="client.deleted",
                at=int(time.time()),
                client_id=client_id,
                detail={"source": "cli"},
            )
        )
        return True

    if not run_with_store(args, delete):
        fail(f"no client {client_id!r}")
    print(f"deleted client {printable(client_id)}")
    return 0


def _logout_uri(text: str | None, option: str, check: Callable[[str], None]) -> str | None:
    """The same rule as registration's (`oauth.logout_uri`)."""
    if text is None:
        return None
    try:
        check(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")
    return text


def registration_token(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    if settings.registration == "off":
        fail("dynamic client registration is off (OSTIARY_REGISTRATION=off)")
    if not 0 < args.ttl <= 30 * 24 * 3600:
        fail("--ttl must be between 1 second and 30 days")
    try:
        secret = load_key_secret(settings.key_path, create=settings.key_file is None)
    except SettingsError as exc:
        fail(str(exc))
    config = with_derived_keys(settings.server_config(), secret)
    print(issue_initial_access_token(config, ttl=args.ttl, now=int(time.time())))
    return 0
