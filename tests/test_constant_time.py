"""Secrets are compared in constant time: `hmac.compare_digest`, never `==`.

Scans the source for `==` / `!=` (and `in`) with an operand whose name says it holds a secret
or a value derived from one (a MAC, a signature, a digest, a PKCE challenge, a CSRF token).
Looking a token up by its SHA-256 hash in the database is not such a comparison: the hash of
a 256-bit random value tells an attacker nothing about the value.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "ostiary"
SECRET_NAME = re.compile(
    r"(secret|password|passwd|mac|signature|digest|challenge|verifier|csrf|tag)$"
    r"|^(secret|mac|sig|tag|digest|expected)",
    re.IGNORECASE,
)
# Names that match the pattern but hold no secret (checked by hand, with the reason).
NOT_SECRETS = {
    "alg_tag": "an algorithm label",
    "code_challenge_method": "the PKCE method name, S256 or plain",
    "expected_typ": "a JOSE header value",
    "expected_alg": "an algorithm name",
    "signing_alg": "an algorithm name",
}


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return None


def _is_plain_constant(node: ast.expr) -> bool:
    # comparing with None, a literal or a length is not comparing the secret's bytes
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"
    )


def secret_comparisons() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        found += comparisons_in(path.read_text(encoding="utf-8"), str(path.relative_to(SRC)))
    return found


def comparisons_in(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if not isinstance(op, ast.Eq | ast.NotEq):
                continue
            if _is_plain_constant(left) or _is_plain_constant(right):
                continue
            for side in (left, right):
                name = _name(side)
                if name and SECRET_NAME.search(name) and name not in NOT_SECRETS:
                    found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
                    break
    return found


def test_no_secret_is_compared_with_equals() -> None:
    assert secret_comparisons() == []


@pytest.mark.parametrize(
    "source",
    ["ok = given_secret == stored_secret", "if mac != expected: pass", "same = a.tag == b"],
)
def test_the_scan_finds_a_comparison_of_secrets(source: str) -> None:
    assert len(comparisons_in(source, "example.py")) == 1  # the scan itself can fail


def test_the_scan_lets_constant_time_and_none_checks_pass() -> None:
    source = "ok = hmac.compare_digest(mac, expected)\nmissing = secret is None or secret == ''"
    assert comparisons_in(source, "example.py") == []
