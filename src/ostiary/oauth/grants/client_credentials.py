"""The client credentials grant (RFC 6749 §4.4): a confidential client acting for itself."""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..errors import UnauthorizedClient
from ..resources import audience_for, parse_resources, registered_apis, scope_for_apis
from ..scopes import narrow_scope, parse_scope
from .issuance import GrantRequest, issue_tokens, require_grant_type

GRANT_TYPE = "client_credentials"


async def exchange_client_credentials(request: GrantRequest, ctx: Context) -> dict[str, Any]:
    """An access token whose subject is the client; never a refresh token (RFC 6749 §4.4.3)."""
    client = request.client
    # RFC 6749 §4.4: "MUST only be used by confidential clients".
    if client.is_public:
        raise UnauthorizedClient("public clients may not use the client_credentials grant")
    require_grant_type(client, GRANT_TYPE)
    resources = parse_resources(request.form.resources)
    apis = await registered_apis(resources, ctx)
    scope = narrow_scope(parse_scope(request.form.get("scope")), client.scopes)
    scope = scope_for_apis(scope, apis)  # RFC 8707: only the named APIs' scopes
    return await issue_tokens(
        ctx,
        request,
        grant_type=GRANT_TYPE,
        subject=client.client_id,
        user_id=None,
        scope=scope,
        audience=audience_for(resources, ctx.config),
        grant_id=None,
    )
