"""Check an HTTP response against the server's OpenAPI description: the status is one the
operation documents, the media type is one it documents for that status, required headers
are there and a JSON body validates against its schema. Undescribed paths and methods may
only be refused (404, 405). Every response the server tests see goes through here."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import httpx
import jsonschema_rs

from ostiary.server.openapi import openapi_document

Document = dict[str, Any]


@functools.cache
def description() -> Document:
    # the issuer only shows in `servers`; paths and schemas are the same for every issuer
    return openapi_document("http://127.0.0.1:8000")


def resolve(node: Any, doc: Document) -> Any:
    """`node` with every local `$ref` replaced by what it points at (no recursion in ours)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target, doc)
        return {key: resolve(value, doc) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, doc) for item in node]
    return node


def path_template(path: str, doc: Document) -> str | None:
    if path in doc["paths"]:
        return path
    for template in doc["paths"]:
        if "{" in template and _pattern(template).fullmatch(path):
            return template
    return None


@functools.cache
def _pattern(template: str) -> re.Pattern[str]:
    # a path parameter is one segment, except a mounted folder's trailing {path}
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(
        ("(.+)" if part == "{path}" else "([^/]+)") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def check_response(response: httpx.Response) -> None:
    """Raise AssertionError when `response` breaks the description."""
    doc = description()
    request = response.request
    where = f"{request.method} {request.url.path} -> {response.status_code}"
    template = path_template(request.url.path, doc)
    if template is None:
        if response.status_code == 307:  # Starlette sends /token/ on to /token
            location = httpx.URL(response.headers["location"]).path
            assert location == request.url.path.rstrip("/"), f"{where}: to {location}"
            assert path_template(location, doc) is not None, f"{where}: to {location}"
            return
        assert response.status_code in (404, 405), f"{where}: not described"
        return
    method = "get" if request.method == "HEAD" else request.method.lower()
    operation = doc["paths"][template].get(method)
    if operation is None:
        assert response.status_code in (405, 413, 400), f"{where}: method not described"
        return
    responses = operation["responses"]
    documented = responses.get(str(response.status_code), responses.get("default"))
    assert documented is not None, f"{where}: status not described ({sorted(responses)})"
    documented = resolve(documented, doc)
    for name, header in documented.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in response.headers, f"{where}: no {name} header"
    content = documented.get("content")
    if not content or request.method == "HEAD" or not response.content:
        return
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type in content, f"{where}: {media_type!r} is not one of {sorted(content)}"
    if media_type == "application/json":
        schema = content[media_type].get("schema")
        if schema is not None:
            errors = [
                str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(response.json())
            ]
            assert not errors, f"{where}: {errors}\n{json.dumps(response.json())[:500]}"
