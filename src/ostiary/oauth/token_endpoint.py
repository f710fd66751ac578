"""The token endpoint (RFC 6749 §3.2): parse, authenticate the client, run the grant.

Every outcome is a `TokenResponse`: the RFC 6749 §5.1 body on success, the §5.2 error body
otherwise, both with `Cache-Control: no-store`. Nothing but an `OAuthError` is expected to
escape the steps, and each becomes its error response.
"""

from __future__ import annotations

from .client_auth import authenticate_client
from .context import Context
from .dpop import check_token_request_proof, new_nonce
from .errors import OAuthError, SlowDown, UnsupportedGrantType
from .grants import GRANTS, GrantRequest
from .metadata import token_endpoint
from .token_request import TokenRequest, TokenResponse, error_response, json_response, parse_form

__all__ = ["TokenRequest", "TokenResponse", "handle_token_request"]


async def handle_token_request(req: TokenRequest, ctx: Context) -> TokenResponse:
    """Answer a POST to the token endpoint."""
    try:
        form = parse_form(req)
        grant_type = form.require("grant_type")
        client = await authenticate_client(
            form,
            req.authorization,
            ctx,
            endpoint=token_endpoint(ctx.config),
            address=req.address,
        )
        if ctx.token_limits is not None:
            # after authentication: only a client's own requests use up its budget
            wait = ctx.token_limits.take(client.client_id, now=ctx.now())
            if wait:
                raise SlowDown(
                    "this client sent too many token requests; retry after Retry-After seconds",
                    retry_after=wait,
                    limit="token",
                )
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise UnsupportedGrantType("the grant_type is not supported")
        proof = await check_token_request_proof(req.dpop, ctx) if req.dpop else None
        request = GrantRequest(
            form=form,
            client=client,
            address=req.address,
            dpop_jkt=proof.jkt if proof is not None else None,
        )
        body = await grant(request, ctx)
    except OAuthError as exc:
        return error_response(exc)
    response = json_response(body)
    if req.dpop and ctx.config.dpop_nonce_secret is not None:
        # RFC 9449 §8.2: the next nonce may come with any response
        response.headers["DPoP-Nonce"] = new_nonce(ctx.config.dpop_nonce_secret, ctx.now())
    return response
