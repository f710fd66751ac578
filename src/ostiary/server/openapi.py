"""The OpenAPI 3.1 description of every HTTP endpoint, served at `GET /openapi.json`.

Written by hand from the RFCs each endpoint implements, and kept true by tests: every route
of the app is described and every described operation exists (tests/server/test_openapi.py),
and Schemathesis fuzzes a live server with it and checks every answer against it
(tests/e2e/test_schemathesis.py).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Final

from ostiary import __version__
from ostiary.oauth.metadata import (
    AUTHORIZATION_PATH,
    END_SESSION_PATH,
    INTROSPECTION_PATH,
    JWKS_PATH,
    METADATA_PATH,
    OPENID_CONFIGURATION_PATH,
    REGISTRATION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    USERINFO_PATH,
)
from ostiary.server.cors import CLIENT_METHODS, PUBLIC_PATHS

OPENAPI_PATH: Final = "/openapi.json"
METRICS_PATH: Final = "/metrics"
HEALTH_PATH: Final = "/health"

FORM: Final = "application/x-www-form-urlencoded"
_JSON: Final = "application/json"
_HTML: Final = "text/html"

Document = dict[str, Any]


@functools.lru_cache(maxsize=8)
def openapi_json(issuer: str) -> bytes:
    """`openapi_document(issuer)` serialized once: it never changes while the server runs."""
    return json.dumps(openapi_document(issuer), separators=(",", ":")).encode("utf-8")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {_HTML: {"schema": {"type": "string"}}}}


_ERROR_JSON: Final = {"$ref": "#/components/responses/Error"}
_ERROR_PAGE: Final = {"$ref": "#/components/responses/ErrorPage"}
_REDIRECT: Final = {"$ref": "#/components/responses/Redirect"}

# Refused before routing on every path (body too large, unusable Content-Length) and by the
# database fault handler: a JSON error on back-channel paths, a page on the people's paths.
_JSON_REFUSALS: Final = {"400": _ERROR_JSON, "413": _ERROR_JSON, "503": _ERROR_JSON}
_PAGE_REFUSALS: Final = {"400": _ERROR_PAGE, "413": _ERROR_PAGE, "503": _ERROR_PAGE}

_AUTHORIZATION_PARAMETERS: Final = {
    "response_type": _string("`code` (RFC 6749 §4.1.1)"),
    "client_id": _string("the client's id"),
    "redirect_uri": _string("one of the client's registered redirect URIs"),
    "scope": _string("space-separated scopes (RFC 6749 §3.3)"),
    "state": _string("opaque value returned to the client"),
    "code_challenge": _string("PKCE S256 challenge (RFC 7636 §4.2)"),
    "code_challenge_method": _string("`S256`"),
    "nonce": _string("OpenID Connect nonce"),
    "prompt": _string("`none`, `login` or `consent`"),
    "max_age": _string("seconds since the last sign-in after which it must happen again"),
    "login_hint": _string("the username to prefill"),
    "resource": _string("RFC 8707 resource indicator: an absolute URI"),
    "response_mode": _string("`query` (default) or `form_post` (Form Post Response Mode)"),
    "ui_locales": _string("preferred languages, space-separated BCP 47 tags"),
    "id_token_hint": _string("an ID token this server issued to the client"),
}

_TOKEN_REQUEST: Final = {
    "type": "object",
    "description": "RFC 6749 §4.1.3, §4.3.2, §4.4.2, §6; RFC 7523 client assertions",
    "properties": {
        "grant_type": _string(
            "the grant",
            enum=["authorization_code", "refresh_token", "client_credentials", "password"],
        ),
        "code": _string("the authorization code (authorization_code)"),
        "redirect_uri": _string("the redirect URI the code was sent to"),
        "code_verifier": _string("the PKCE verifier (RFC 7636 §4.5)"),
        "refresh_token": _string("the refresh token (refresh_token)"),
        "scope": _string("space-separated scopes"),
        "resource": _string("RFC 8707 resource indicator"),
        "username": _string("password grant only (a legacy opt-in)"),
        "password": _string("password grant only (a legacy opt-in)", format="password"),
        "client_id": _string("the client's id (public clients, client_secret_post)"),
        "client_secret": _string("client_secret_post", format="password"),
        "client_assertion_type": _string(
            "`urn:ietf:params:oauth:client-assertion-type:jwt-bearer`"
        ),
        "client_assertion": _string("a private_key_jwt assertion (RFC 7523 §2.2)"),
    },
    "required": ["grant_type"],
}

_TOKEN_LOOKUP_REQUEST: Final = {
    "type": "object",
    "description": "RFC 7009 §2.1 and RFC 7662 §2.1",
    "properties": {
        "token": _string("the token"),
        "token_type_hint": _string(
            "`access_token` or `refresh_token`", enum=["access_token", "refresh_token"]
        ),
        "client_id": _string("the client's id (public clients, client_secret_post)"),
        "client_secret": _string("client_secret_post", format="password"),
        "client_assertion_type": _string("RFC 7523 assertion type"),
        "client_assertion": _string("a private_key_jwt assertion"),
    },
    "required": ["token"],
}

_SCHEMAS: Final = {
    "OAuthError": {
        "type": "object",
        "description": "RFC 6749 §5.2",
        "properties": {
            "error": {"type": "string", "pattern": "^[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]+$"},
            "error_description": {
                "type": "string",
                "pattern": "^[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]*$",
            },
            "error_uri": {"type": "string"},
        },
        "required": ["error"],
    },
    "TokenResponse": {
        "type": "object",
        "description": "RFC 6749 §5.1",
        "properties": {
            "access_token": {"type": "string", "minLength": 1},
            "token_type": {"type": "string", "enum": ["Bearer", "DPoP"]},
            "expires_in": {"type": "integer", "minimum": 1},
            "refresh_token": {"type": "string", "minLength": 1},
            "scope": {"type": "string"},
            "id_token": {"type": "string"},
        },
        "required": ["access_token", "token_type", "expires_in"],
    },
    "IntrospectionResponse": {
        "type": "object",
        "description": "RFC 7662 §2.2",
        "properties": {
            "active": {"type": "boolean"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "token_type": {"type": "string"},
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "sub": {"type": "string"},
            "aud": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "iss": {"type": "string"},
        },
        "required": ["active"],
    },
    "JWKS": {
        "type": "object",
        "description": "RFC 7517 §5: public keys only",
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"kty": {"type": "string"}, "kid": {"type": "string"}},
                    "required": ["kty", "kid"],
                    "not": {"anyOf": [{"required": ["d"]}, {"required": ["k"]}]},
                },
            }
        },
        "required": ["keys"],
    },
    "Metadata": {
        "type": "object",
        "description": "RFC 8414 §2",
        "properties": {
            "issuer": {"type": "string"},
            "authorization_endpoint": {"type": "string"},
            "token_endpoint": {"type": "string"},
            "jwks_uri": {"type": "string"},
            "response_types_supported": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"],
    },
    "UserInfo": {
        "type": "object",
        "description": "OpenID Connect Core §5.3.2",
        "properties": {"sub": {"type": "string"}},
        "required": ["sub"],
    },
    "ClientInformation": {
        "type": "object",
        "description": "RFC 7591 §3.2.1: the registered metadata (a client_secret only once)",
        "properties": {
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
            "registration_access_token": {"type": "string"},
            "registration_client_uri": {"type": "string"},
        },
        "required": ["client_id"],
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": {"type": "string", "enum": ["ok", "unavailable"]},
        },
        "required": ["status", "database"],
    },
}

_RESPONSES: Final = {
    "Error": _json(_ref("OAuthError"), "an RFC 6749 §5.2 error"),
    "ErrorPage": _html("an error page for the person (never redirected to an unverified URI)"),
    "Redirect": {
        "description": "on to the next step, or back to the client's redirect_uri with a "
        "code or an error, `state` and `iss` (RFC 6749 §4.1.2, RFC 9207)",
        "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
    },
}


def _form_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {FORM: {"schema": schema}}}


def _query(parameters: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, **_doc(s)}
        for name, s in parameters.items()
    ]


def _doc(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": schema["description"]} if "description" in schema else {}


_DPOP_HEADER: Final = {
    "name": "DPoP",
    "in": "header",
    "required": False,
    "description": "a DPoP proof JWT (RFC 9449 §4): the tokens are bound to its key",
    "schema": {"type": "string"},
}


def _back_channel(
    operation_id: str,
    summary: str,
    body: dict[str, Any],
    ok: dict[str, Any],
    parameters: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": list(parameters),
            "security": [{"clientBasic": []}, {}],
            "requestBody": _form_body(body),
            "responses": {
                "200": ok,
                **_JSON_REFUSALS,
                "401": _json(
                    _ref("OAuthError"),
                    "client authentication failed",
                    headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
                ),
                "415": _ERROR_JSON,
                "429": _json(
                    _ref("OAuthError"),
                    "slow_down: a rate limit or the failed client authentication limit; "
                    "Retry-After says when to try again",
                    headers={"Retry-After": {"required": True, "schema": {"type": "string"}}},
                ),
            },
        }
    }


def _authorize(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"authorize_{method}",
        "summary": "Authorization endpoint: RFC 6749 §4.1.1 with PKCE (RFC 7636)",
        "responses": {
            "200": _html("the login or consent page"),
            "302": _REDIRECT,
            "303": _REDIRECT,
            **_PAGE_REFUSALS,
            "429": _ERROR_PAGE,
        },
    }
    if method == "get":
        operation["parameters"] = _query(_AUTHORIZATION_PARAMETERS)
    else:
        schema = {"type": "object", "properties": _AUTHORIZATION_PARAMETERS}
        operation["requestBody"] = _form_body(schema)
    return operation


def _page_form(operation_id: str, summary: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "requestBody": _form_body({"type": "object", "properties": fields}),
            "responses": {
                "200": _html("a page: the form again with what was wrong, or the next step"),
                "303": _REDIRECT,
                **_PAGE_REFUSALS,
                "403": _ERROR_PAGE,
                "429": _html("too many failed sign-ins: try again later"),
            },
        }
    }


def _userinfo(method: str) -> dict[str, Any]:
    bearer_error = _json(
        _ref("OAuthError"),
        "RFC 6750 §3.1: the challenge in WWW-Authenticate, the error code also as JSON",
        headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    )
    operation: dict[str, Any] = {
        "operationId": f"userinfo_{method}",
        "summary": "UserInfo endpoint (OpenID Connect Core §5.3)",
        "security": [{"accessToken": []}, {}],
        "responses": {
            "200": {
                "description": "the user's claims, as JSON or as a signed JWT",
                "content": {
                    _JSON: {"schema": _ref("UserInfo")},
                    "application/jwt": {"schema": {"type": "string"}},
                },
            },
            "400": bearer_error,
            # RFC 6750 §3.1: a request with no token at all gets the bare challenge (no
            # error code, no body); a bad token gets its error code in both
            "401": {
                "description": "no token (an empty body), or a token refused (the error as "
                "JSON); the challenge in WWW-Authenticate",
                "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
            },
            "403": bearer_error,
            "413": _ERROR_JSON,
            "503": _ERROR_JSON,
        },
    }
    if method == "post":
        operation["requestBody"] = {
            "required": False,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {"access_token": _string("RFC 6750 §2.2")},
                    }
                }
            },
        }
    return operation


_CLIENT_METADATA: Final = {
    "type": "object",
    "description": "RFC 7591 §2 and OpenID Connect Dynamic Client Registration §2 metadata",
    "properties": {
        "redirect_uris": {"type": "array", "items": {"type": "string"}},
        "grant_types": {"type": "array", "items": {"type": "string"}},
        "response_types": {"type": "array", "items": {"type": "string"}},
        "token_endpoint_auth_method": {"type": "string"},
        "client_name": {"type": "string"},
        "scope": {"type": "string"},
        "jwks": {"type": "object"},
    },
}


# OpenAPI links (3.1 §4.8.20): what a client does next with an answer's values. Stateful
# fuzzers follow them: register -> read, update, delete with its registration access token.
_MANAGED: Final = {
    "path.client_id": "$response.body#/client_id",
    "header.Authorization": "Bearer {$response.body#/registration_access_token}",
}
_REGISTERED_LINKS: Final = {
    "ReadClient": {"operationId": "manage_client_get", "parameters": _MANAGED},
    "UpdateClient": {
        "operationId": "manage_client_put",
        "parameters": _MANAGED,
        # RFC 7592 §2.2: the update names the client and sends its whole metadata
        "requestBody": {
            "client_id": "$response.body#/client_id",
            "redirect_uris": "$response.body#/redirect_uris",
            "grant_types": "$response.body#/grant_types",
            "token_endpoint_auth_method": "$response.body#/token_endpoint_auth_method",
        },
    },
    "DeleteClient": {"operationId": "manage_client_delete", "parameters": _MANAGED},
}
# token -> introspect (RFC 7662) and revoke (RFC 7009) the tokens it issued
_TOKEN_LINKS: Final = {
    "IntrospectAccessToken": {
        "operationId": "introspect",
        "requestBody": {"token": "$response.body#/access_token"},
    },
    "RevokeAccessToken": {
        "operationId": "revoke",
        "requestBody": {"token": "$response.body#/access_token", "token_type_hint": "access_token"},
    },
    "RevokeRefreshToken": {
        "operationId": "revoke",
        "requestBody": {
            "token": "$response.body#/refresh_token",
            "token_type_hint": "refresh_token",
        },
    },
    "Refresh": {
        "operationId": "token",
        "requestBody": {
            "grant_type": "refresh_token",
            "refresh_token": "$response.body#/refresh_token",
        },
    },
}


def _registration(method: str, *, managed: bool) -> dict[str, Any]:
    bearer_error = _json(
        _ref("OAuthError"),
        "no valid initial or registration access token (RFC 7592 §2.1)",
        headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    )
    responses: dict[str, Any] = {
        "400": _ERROR_JSON,
        "401": bearer_error,
        "403": _ERROR_JSON,
        "413": _ERROR_JSON,
        "415": _ERROR_JSON,
        "503": _ERROR_JSON,
    }
    if method == "post":
        responses["201"] = _json(
            _ref("ClientInformation"), "registered (RFC 7591 §3.2.1)", links=_REGISTERED_LINKS
        )
    elif method == "delete":
        responses["204"] = {"description": "deleted (RFC 7592 §2.3)"}
    else:
        responses["200"] = _json(_ref("ClientInformation"), "the client's metadata")
    operation: dict[str, Any] = {
        "operationId": f"{'manage_client' if managed else 'register_client'}_{method}",
        "summary": "Client management (RFC 7592)" if managed else "Client registration (RFC 7591)",
        "security": [{"accessToken": []}, {}],
        "responses": responses,
    }
    if managed:
        operation["parameters"] = [
            {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if method in ("post", "put"):
        operation["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": _CLIENT_METADATA}},
        }
    return operation


_LOGOUT_PARAMETERS: Final = {
    "id_token_hint": _string("an ID token the server issued"),
    "client_id": _string("the client's id"),
    "post_logout_redirect_uri": _string("one of the client's registered logout URIs"),
    "state": _string("opaque value returned to the client"),
    "logout_hint": _string("who is signing out"),
    "ui_locales": _string("preferred languages"),
}


def _logout(method: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"logout_{method}",
        "summary": "RP-Initiated Logout 1.0 (the end_session_endpoint)",
        "responses": {
            "200": _html(
                "the sign-out confirmation, or the signed-out page (with the clients' "
                "front-channel logout iframes, then on to the post_logout_redirect_uri)"
            ),
            "302": _REDIRECT,
            "303": _REDIRECT,
            **_PAGE_REFUSALS,
            "403": _ERROR_PAGE,
        },
    }
    if method == "get":
        operation["parameters"] = _query(_LOGOUT_PARAMETERS)
    else:
        fields = {
            **_LOGOUT_PARAMETERS,
            "decision": _string("`logout` to confirm"),
            "csrf_token": _string("the confirmation form's CSRF token"),
            "pending": _string("the sealed logout request being confirmed"),
        }
        operation["requestBody"] = _form_body({"type": "object", "properties": fields})
    return operation


def _preflight(path: str) -> dict[str, Any]:
    name = path.strip("/").replace("/", "_").replace(".", "_").replace("-", "_")
    public = path in PUBLIC_PATHS
    return {
        "operationId": f"cors_preflight_{name}",
        "summary": "CORS preflight: "
        + ("any origin may read (no credentials)" if public else "registered clients' origins"),
        "responses": {
            "204": {
                "description": "the allowed methods; CORS headers only for an allowed origin",
                "headers": {"Allow": {"required": True, "schema": {"type": "string"}}},
            },
            **_JSON_REFUSALS,
        },
    }


def _get(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "summary": summary, "responses": responses}}


def openapi_document(issuer: str) -> Document:
    """The description of this server's endpoints, with `issuer` as its one server URL."""
    metadata = _json(_ref("Metadata"), "the authorization server's metadata")
    document: Document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Ostiary authorization server",
            "version": __version__,
            "description": "OAuth 2.1 authorization server. Discovery: "
            f"{METADATA_PATH} (RFC 8414).",
        },
        "servers": [{"url": issuer}],
        "paths": {
            AUTHORIZATION_PATH: {"get": _authorize("get"), "post": _authorize("post")},
            "/login": {
                **_get(
                    "login_form",
                    "The sign-in page",
                    {"200": _html("the sign-in form"), **_PAGE_REFUSALS},
                ),
                **_page_form(
                    "login",
                    "Sign in (the form of the login page)",
                    {
                        "username": _string("the username"),
                        "password": _string("the password", format="password"),
                        "csrf_token": _string("the form's CSRF token"),
                        "pending": _string("the sealed authorization request being continued"),
                    },
                ),
            },
            "/consent": _page_form(
                "consent",
                "Approve or deny (the form of the consent page)",
                {
                    "decision": _string("`allow` or `deny`"),
                    "csrf_token": _string("the form's CSRF token"),
                    "pending": _string("the sealed authorization request"),
                },
            ),
            "/select-account": _page_form(
                "select_account",
                "Continue as the signed-in person, or use another account (the form of the "
                "account chooser, prompt=select_account)",
                {
                    "decision": _string("`continue` or `switch`"),
                    "csrf_token": _string("the form's CSRF token"),
                    "pending": _string("the sealed authorization request"),
                },
            ),
            TOKEN_PATH: _back_channel(
                "token",
                "Token endpoint (RFC 6749 §3.2)",
                _TOKEN_REQUEST,
                _json(_ref("TokenResponse"), "the tokens (RFC 6749 §5.1)", links=_TOKEN_LINKS),
                (_DPOP_HEADER,),
            ),
            REVOCATION_PATH: _back_channel(
                "revoke",
                "Token revocation (RFC 7009)",
                _TOKEN_LOOKUP_REQUEST,
                _json({"type": "object"}, "revoked, or nothing to revoke (RFC 7009 §2.2)"),
            ),
            INTROSPECTION_PATH: _back_channel(
                "introspect",
                "Token introspection (RFC 7662)",
                _TOKEN_LOOKUP_REQUEST,
                _json(_ref("IntrospectionResponse"), "the token's state (RFC 7662 §2.2)"),
            ),
            JWKS_PATH: _get(
                "jwks",
                "The public signing keys (RFC 7517 §5)",
                {"200": _json(_ref("JWKS"), "the published keys"), **_JSON_REFUSALS},
            ),
            METADATA_PATH: _get(
                "metadata",
                "Authorization server metadata (RFC 8414)",
                {"200": metadata, **_JSON_REFUSALS},
            ),
            OPENID_CONFIGURATION_PATH: _get(
                "openid_configuration",
                "OpenID Provider metadata (OpenID Connect Discovery §4)",
                {"200": metadata, **_JSON_REFUSALS},
            ),
            USERINFO_PATH: {"get": _userinfo("get"), "post": _userinfo("post")},
            END_SESSION_PATH: {"get": _logout("get"), "post": _logout("post")},
            REGISTRATION_PATH: {"post": _registration("post", managed=False)},
            REGISTRATION_PATH + "/{client_id}": {
                method: _registration(method, managed=True) for method in ("get", "put", "delete")
            },
            METRICS_PATH: _get(
                "metrics",
                "Prometheus metrics of this server, all its workers (text format 0.0.4)",
                {
                    "200": {
                        "description": "the metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": _json(_ref("OAuthError"), "OSTIARY_METRICS_TOKEN is set"),
                    **_JSON_REFUSALS,
                },
            ),
            HEALTH_PATH: _get(
                "health",
                "200 while the database answers, 503 otherwise",
                {
                    "200": _json(_ref("Health"), "the database answers"),
                    "503": _json(_ref("Health"), "the database does not answer"),
                    "400": _ERROR_JSON,
                    "413": _ERROR_JSON,
                },
            ),
            OPENAPI_PATH: _get(
                "openapi",
                "This description",
                {"200": _json({"type": "object"}, "the OpenAPI document"), **_JSON_REFUSALS},
            ),
            "/static/{path}": {
                "get": {
                    "operationId": "static",
                    "summary": "The pages' stylesheet, icon and the form_post page's script",
                    "parameters": [
                        {
                            "name": "path",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "the file",
                            "content": {
                                "text/css": {"schema": {"type": "string"}},
                                "image/svg+xml": {"schema": {"type": "string"}},
                                "text/javascript": {"schema": {"type": "string"}},
                            },
                        },
                        "404": _ERROR_JSON,
                        "405": _ERROR_JSON,
                        **_JSON_REFUSALS,
                    },
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
            "securitySchemes": {
                "accessToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an access token (RFC 6750 §2.1, or DPoP: RFC 9449 §7.1)",
                },
                "clientBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "client_secret_basic (RFC 6749 §2.3.1)",
                },
            },
        },
    }
    for path in sorted(PUBLIC_PATHS | CLIENT_METHODS.keys()):
        document["paths"][path]["options"] = _preflight(path)
    return document
