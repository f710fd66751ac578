"""Subject identifiers (OpenID Connect Core §8): public, or pairwise per sector (§8.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from .config import ServerConfig
from .models import Client


def sector_of(client: Client) -> str:
    """The host pairwise subjects are computed for: the registered sector, else the host of
    the redirect URIs (§8.1, which must then all share one host)."""
    if client.oidc.sector_identifier:
        return client.oidc.sector_identifier
    hosts = {urlsplit(uri).hostname or "" for uri in client.redirect_uris}
    if len(hosts) != 1:
        raise ValueError("a pairwise client needs one redirect URI host or a sector_identifier_uri")
    return hosts.pop()


def subject_for(client: Client, user_id: str, config: ServerConfig) -> str:
    """The `sub` this client sees for this user: the user id, or a pairwise value that
    clients of other sectors cannot correlate (§8.1: a keyed hash of sector and user)."""
    if client.oidc.subject_type != "pairwise":
        return user_id
    if not config.subject_salt:
        raise ValueError("pairwise subjects need ServerConfig.subject_salt")
    message = f"{sector_of(client)}\x00{user_id}".encode()
    digest = hmac.new(config.subject_salt, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
