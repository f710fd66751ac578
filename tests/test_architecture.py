"""Layer rules (DESIGN.md, STYLE.md): each package imports only what its layer allows.

Every module under `src/ostiary` is scanned with `ast`; a package missing from `LAYERS`
fails the test, so a new package must declare what it may import.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "ostiary"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}

# layer -> what it may import besides the stdlib and itself: `ostiary.<layer>` names for
# other layers, top-level distribution module names for third-party code.
LAYERS: dict[str, frozenset[str]] = {
    # The root `ostiary/__init__.py`: importing `ostiary.jose` must not pull in other layers.
    "": frozenset(),
    "jose": frozenset({"cryptography", "orjson"}),
    "oauth": frozenset({"ostiary.jose"}),
    # asyncpg and orjson: the token path runs its statements on the driver (store/_fast.py)
    "store": frozenset(
        {"ostiary.jose", "ostiary.oauth", "sqlalchemy", "alembic", "asyncpg", "orjson"}
    ),
    "protect": frozenset({"ostiary.jose", "httpx", "starlette"}),
    "server": frozenset(
        {
            "ostiary.jose",
            "ostiary.oauth",
            "ostiary.store",
            "starlette",
            "jinja2",
            "pydantic",
            "pydantic_settings",
            "argon2",
            "redis",
            "orjson",
            "httpx",  # back-channel logout tokens to the clients (OpenID Connect)
        }
    ),
    "cli": frozenset(
        {"ostiary.jose", "ostiary.oauth", "ostiary.store", "ostiary.server", "ostiary.protect"}
        | {"uvicorn", "starlette", "jinja2", "pydantic", "pydantic_settings", "sqlalchemy"}
        | {"alembic", "httpx", "argon2"}
    ),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. "ostiary.jose._jwt"
    target: str  # the absolute name imported, e.g. "ostiary.oauth.models"
    lineno: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import in `source`, resolved to absolute names, including literal dynamic ones."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "ostiary":
                # `from ostiary import oauth` imports a layer; `__version__` is an attribute
                found += [Import(module, _root_member(a.name), node.lineno) for a in node.names]
            else:
                found.append(Import(module, base, node.lineno))
        elif (
            isinstance(node, ast.Call)
            and _callee(node.func) in {"__import__", "importlib.import_module", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(module, node.args[0].value, node.lineno))
    return found


def _root_member(name: str) -> str:
    is_module = (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()
    return f"ostiary.{name}" if name in LAYERS or is_module else "ostiary"


def _callee(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violation(imp: Import) -> str | None:
    """Why `imp` breaks the layer rules, or None when it is allowed."""
    layer = layer_of(imp.module)
    if layer not in LAYERS:
        return f"{imp.module}: package ostiary.{layer} has no entry in LAYERS"
    allowed = LAYERS[layer]
    top = imp.target.split(".")[0]
    if top == "ostiary":
        target_layer = layer_of(imp.target)
        if imp.target == "ostiary" or target_layer == layer:
            return None
        if f"ostiary.{target_layer}" in allowed:
            return None
        return f"{imp.module}:{imp.lineno} imports {imp.target}: wrong-way layer import"
    if top in STDLIB or top in allowed:
        return None
    return f"{imp.module}:{imp.lineno} imports {imp.target}: not allowed in ostiary.{layer}"


def source_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_sources_found() -> None:
    names = {module_name(p) for p in source_modules()}
    assert {"ostiary", "ostiary.jose"} <= names


def test_no_wrong_way_imports() -> None:
    problems = []
    for path in source_modules():
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        for imp in imports_of(source, module, is_package=path.name == "__init__.py"):
            if (why := violation(imp)) is not None:
                problems.append(why)
    assert problems == []


def test_every_package_has_a_layer() -> None:
    layers = {layer_of(module_name(p)) for p in source_modules()}
    assert layers - LAYERS.keys() == set()


# The scanner itself: each row is (importing module, source, expected violation or None).
SCANNER_CASES = {
    "jose-stdlib": ("ostiary.jose._jwt", "import hmac, json", None),
    "jose-cryptography": (
        "ostiary.jose._jwa",
        "from cryptography.hazmat.primitives import hashes",
        None,
    ),
    "jose-relative-sibling": ("ostiary.jose._jwt", "from ._jws import sign", None),
    "jose-root-version": ("ostiary.jose._jwt", "from ostiary import __version__", None),
    "jose-third-party": ("ostiary.jose._jwt", "import requests", "not allowed"),
    "jose-relative-up": ("ostiary.jose._jwt", "from ..oauth import models", "wrong-way"),
    "jose-from-root": ("ostiary.jose._jwt", "from ostiary import server", "wrong-way"),
    "jose-absolute": ("ostiary.jose.jwt", "import ostiary.protect.cache", "wrong-way"),
    "jose-dynamic": (
        "ostiary.jose._jwt",
        "import importlib\nimportlib.import_module('ostiary.store')",
        "wrong-way",
    ),
    "jose-type-checking": (
        "ostiary.jose._jwt",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ostiary.oauth import x",
        "wrong-way",
    ),
    "oauth-jose": ("ostiary.oauth.grants.refresh_token", "from ...jose import jwt", None),
    "oauth-starlette": ("ostiary.oauth.pkce", "from starlette.requests import Request", "not"),
    "oauth-store": ("ostiary.oauth.pkce", "from ostiary.store import db", "wrong-way"),
    "store-sqlalchemy": ("ostiary.store.sql", "from sqlalchemy import select", None),
    "store-server": ("ostiary.store.sql", "from ostiary.server import app", "wrong-way"),
    "protect-httpx": ("ostiary.protect.jwks", "import httpx", None),
    "protect-oauth": ("ostiary.protect.jwks", "from ostiary.oauth import models", "wrong-way"),
    "server-store": ("ostiary.server.app", "from ostiary.store import sql", None),
    "server-cli": ("ostiary.server.app", "from ostiary.cli import main", "wrong-way"),
    "cli-server": ("ostiary.cli", "from ostiary.server import app", None),
    "root-imports-jose": ("ostiary", "from . import jose", "wrong-way"),
    "unknown-package": ("ostiary.billing.x", "import json", "no entry in LAYERS"),
}


@pytest.mark.parametrize("case", list(SCANNER_CASES))
def test_scanner(case: str) -> None:
    module, source, expected = SCANNER_CASES[case]
    is_package = module == "ostiary"
    found = [violation(imp) for imp in imports_of(source, module, is_package=is_package)]
    problems = [why for why in found if why is not None]
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1
        assert expected in problems[0]


# Only these top-level modules may load when `ostiary.jose` is imported: orjson is optional,
# and cffi is cryptography's own dependency.
JOSE_RUNTIME = ["ostiary", "cryptography", "cffi", "_cffi_backend"]

BLOCKED_IMPORT_SCRIPT = """
import sys

ALLOWED = set(sys.stdlib_module_names) | set(ALLOWED_EXTRA)


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in ALLOWED:
            raise ImportError(f"blocked by the test: {name}")
        return None


sys.meta_path.insert(0, Blocker())
sys.modules["orjson"] = None  # as if orjson were not installed

from ostiary.jose import jwk, jwt

key = jwk.JWK.generate("EC", crv="P-256", kid="k1")
claims = {"sub": "u_123", "aud": "billing", "exp": 2_000_000_000, "n": [1, 2.5, "é"]}
token = jwt.encode(claims, key, alg="ES256")
assert jwt.decode(token, key.public(), algorithms=["ES256"], audience="billing",
                  now=1_900_000_000) == claims
hs = jwk.JWK.generate("oct", size=256)
token = jwt.encode(claims, hs, alg="HS256")
assert jwt.decode(token, hs, algorithms=["HS256"], audience="billing",
                  now=1_900_000_000) == claims
print("ok")
"""


def test_jose_works_without_orjson_or_any_other_package() -> None:
    script = f"ALLOWED_EXTRA = {JOSE_RUNTIME!r}\n" + textwrap.dedent(BLOCKED_IMPORT_SCRIPT)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"


def test_blocker_really_blocks() -> None:
    script = f"ALLOWED_EXTRA = {['ostiary']!r}\n" + textwrap.dedent(BLOCKED_IMPORT_SCRIPT)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert "blocked by the test: cryptography" in out.stderr


# Public modules and their pinned `__all__`: adding or removing a public name is an API change
# and must show up here (and in docs/jose.md).
PUBLIC_API: dict[str, frozenset[str]] = {
    "ostiary.jose": frozenset(
        {"jwe", "jwk", "jws", "jwt", "JWK", "JWKSet", "JoseError"}
        | {"BadSignature", "DecryptionFailed", "ExpiredToken", "ImmatureToken"}
        | {"InvalidAudience", "InvalidClaims", "InvalidHeader", "InvalidIssuer", "InvalidKey"}
        | {"InvalidType", "KeyNotFound", "MalformedToken", "MissingClaim", "TokenTooLarge"}
        | {"UnsupportedAlgorithm", "dpop"}
    ),
    "ostiary.jose.dpop": frozenset(
        {"DPOP_ALGORITHMS", "IAT_WINDOW", "MAX_JTI_LENGTH", "MAX_NONCE_LENGTH", "MAX_PROOF_SIZE"}
        | {"PROOF_TYPE", "DPoPProof", "InvalidProof", "access_token_hash", "is_request_url"}
        | {"normalize_htu", "verify_proof"}
    ),
    "ostiary.jose.jwk": frozenset(
        {"JWK", "JWKSet", "KeyInput", "THUMBPRINT_URI_PREFIX", "generate"}
    ),
    "ostiary.jose.jws": frozenset(
        {"SIGNATURE_ALGORITHMS", "sign", "sign_json", "unverified_header", "verify"}
        | {"verify_json", "verify_json_detailed"}
    ),
    "ostiary.jose.jwt": frozenset(
        {"decode", "decode_with_embedded_key", "encode", "unverified_header", "validate_claims"}
    ),
    "ostiary.jose.jwe": frozenset(
        {"CONTENT_ENCRYPTION_ALGORITHMS", "KEY_MANAGEMENT_ALGORITHMS", "MAX_RECIPIENTS"}
        | {"decrypt", "decrypt_json", "encrypt", "encrypt_json", "unverified_header"}
    ),
    # docs/protect.md
    "ostiary.protect": frozenset(
        {"Claims", "Credentials", "IssuerMetadata", "ProtectMiddleware", "RemoteJWKSet"}
        | {"ResourceServer", "require_scopes", "scopes_of", "DPoPAuth", "DPoPKey"}
        | {"ProtectError", "InvalidRequest", "InvalidToken", "InsufficientScope", "Unavailable"}
        | {"InvalidDPoPProof"}
    ),
}


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_public_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{module} has no __all__"
    assert len(exported) == len(set(exported)), f"{module}.__all__ has duplicates"
    missing = [name for name in exported if not hasattr(mod, name)]
    assert missing == [], f"{module}.__all__ names what it does not define"
    assert set(exported) == PUBLIC_API[module]


# Every name docs/jose.md and DESIGN.md promise, as `module:attribute.path`.
DOCUMENTED = {
    "ostiary.jose": ["JoseError"],
    "ostiary.jose.jwk": [
        "generate",
        *(f"JWKSet.{name}" for name in ["from_dict", "from_json", "get", "find", "to_dict"]),
        *(f"JWK.{name}" for name in ["generate", "from_dict", "from_json", "from_pem"]),
        *(f"JWK.{name}" for name in ["from_der", "from_key", "from_secret", "to_dict"]),
        *(f"JWK.{name}" for name in ["to_json", "to_pem", "to_der", "public", "is_private"]),
        *(f"JWK.{name}" for name in ["thumbprint", "thumbprint_uri"]),
    ],
    "ostiary.jose.jws": ["sign", "verify", "sign_json", "verify_json", "unverified_header"],
    "ostiary.jose.jwe": ["encrypt", "decrypt", "encrypt_json", "decrypt_json"],
    "ostiary.jose.dpop": ["verify_proof", "normalize_htu", "access_token_hash"],
    "ostiary.jose.jwt": ["encode", "decode", "unverified_header"],
}


@pytest.mark.parametrize(
    "name", [f"{module}:{path}" for module, paths in DOCUMENTED.items() for path in paths]
)
def test_documented_name_exists(name: str) -> None:
    module, _, path = name.partition(":")
    obj: object = importlib.import_module(module)
    for part in path.split("."):
        assert hasattr(obj, part), f"{name} is documented but missing"
        obj = getattr(obj, part)
