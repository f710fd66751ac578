"""The one loader for the known-answer vectors in `../shared/vectors/` (RFC 7520 and Wycheproof).

The vectors live beside the repository, never inside it. When they are absent every vector
test is a single skipped case that says where it looked (CI turns that skip into a failure).
Layout and upstream quirks: `../shared/vectors/README.md`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import pytest
from _pytest.mark.structures import ParameterSet

from ostiary.jose import JWK, JoseError, JWKSet

# tests/jose/vectors.py -> parents[2] is the repository, parents[3] the folder that holds it.
VECTORS_DIR: Final = Path(__file__).resolve().parents[3] / "shared" / "vectors"
RFC7520_DIR: Final = VECTORS_DIR / "rfc7520"
WYCHEPROOF_DIR: Final = VECTORS_DIR / "wycheproof" / "testvectors_v1"

Result = Literal["valid", "invalid", "acceptable"]

# Wycheproof labels that a strict implementation cannot meet; README "Known upstream quirks".
WYCHEPROOF_QUIRKS: Final[dict[tuple[str, int], tuple[Result, str]]] = {
    ("json_web_signature_test.json", 372): (
        "acceptable",
        "quirk: '?' inserted into the header; the MAC does not cover the literal signing input",
    ),
    ("json_web_signature_test.json", 373): (
        "acceptable",
        "quirk: '?' inserted into the payload; the MAC does not cover the literal signing input",
    ),
    ("json_web_signature_test.json", 346): (
        "acceptable",
        "quirk: the key's alg PS256 differs from the header's PS384",
    ),
    ("json_web_signature_test.json", 350): (
        "acceptable",
        "quirk: the key's alg PS256 differs from the header's PS384",
    ),
    ("json_web_signature_test.json", 347): (
        "acceptable",
        "quirk: the key's alg ES521 is unregistered and differs from the header's ES512",
    ),
    ("json_web_signature_test.json", 351): (
        "acceptable",
        "quirk: the key's alg ES521 is unregistered and differs from the header's ES512",
    ),
    ("json_web_signature_test.json", 349): (
        "acceptable",
        "quirk: the private key's key_ops is the single malformed string 'sign, verify'",
    ),
}


def vectors_missing_reason(path: Path) -> str:
    return (
        "known-answer vectors not found: expected ../shared/vectors beside the repository "
        f"(looked for {path})"
    )


@functools.cache
def load_json(path: Path) -> Any:
    """Parse one vector file (cached: several tests read the same file)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _missing(path: Path) -> list[ParameterSet]:
    return [
        pytest.param(
            None, id="vectors-missing", marks=pytest.mark.skip(reason=vectors_missing_reason(path))
        )
    ]


def slug(text: str, limit: int = 48) -> str:
    """A test-id fragment: letters, digits and `_.+-` only."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:limit]


# -- RFC 7520 --------------------------------------------------------------------------------


_JWK_CACHE: dict[str, JWK] = {}


def cached_jwk(data: dict[str, Any]) -> JWK:
    """`JWK.from_dict`, once per distinct key: a 4096-bit RSA private key takes ~0.5 s to check."""
    text = json.dumps(data, sort_keys=True)
    if text not in _JWK_CACHE:
        _JWK_CACHE[text] = JWK.from_dict(data)
    return _JWK_CACHE[text]


def rfc7520_path(relative: str) -> Path:
    return RFC7520_DIR / relative


def rfc7520_files(*patterns: str) -> list[str]:
    """Paths relative to `rfc7520/` matching the glob patterns, sorted; [] when absent."""
    if not RFC7520_DIR.is_dir():
        return []
    found = {
        path.relative_to(RFC7520_DIR).as_posix()
        for pattern in patterns
        for path in RFC7520_DIR.glob(pattern)
    }
    return sorted(found)


def rfc7520_params(cases: Iterable[tuple[object, str]]) -> list[ParameterSet]:
    """Parametrize with `(value, id)` pairs (read lazily from the files), or one skip."""
    if not RFC7520_DIR.is_dir():
        return _missing(RFC7520_DIR)
    return [pytest.param(value, id=case_id) for value, case_id in cases]


def rfc7520_id(relative: str) -> str:
    """`jws/4_1.rsa_v15_signature.json` -> `jws-4_1.rsa_v15_signature`."""
    return slug(relative.removesuffix(".json").replace("/", "-"), 64)


# -- Wycheproof ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WycheproofCase:
    """One Wycheproof test with its group; `result` already reflects the README quirks."""

    file: str
    group_index: int
    group: dict[str, Any]
    test: dict[str, Any]
    result: Result
    note: str

    @property
    def tc_id(self) -> int:
        return int(self.test["tcId"])

    def describe(self) -> str:
        label = self.test["result"]
        override = f" (labelled {label}; {self.note})" if self.note else ""
        return (
            f"{self.file} tcId {self.tc_id} [{self.result}{override}] "
            f"{self.test.get('comment', '')!r} flags={self.test.get('flags', [])}"
        )


def wycheproof_params(file: str) -> list[ParameterSet]:
    """One param per test in `testvectors_v1/<file>`, with ids `<file>-tc<N>-<comment>`."""
    path = WYCHEPROOF_DIR / file
    if not path.is_file():
        return _missing(path)
    data = load_json(path)
    stem = file.removesuffix("_test.json")
    params = []
    for group_index, group in enumerate(data["testGroups"]):
        contradictions = _contradictions(group["tests"])
        for test in group["tests"]:
            tc_id = int(test["tcId"])
            result, note = WYCHEPROOF_QUIRKS.get((file, tc_id), (test["result"], ""))
            if tc_id in contradictions:
                result, note = "acceptable", contradictions[tc_id]
            case = WycheproofCase(file, group_index, group, test, result, note)
            parts = [stem, f"tc{tc_id}", slug(test.get("comment", "")) or "no_comment"]
            if note:
                parts.append(f"{result}-{slug(note, 40)}")
            params.append(pytest.param(case, id="-".join(parts)))
    return params


def _contradictions(tests: list[dict[str, Any]]) -> dict[int, str]:
    """Tests labelled invalid whose token is byte-identical to a valid one of the same group.

    No implementation can both accept and refuse the same token under the same key, so such a
    label is an upstream defect (json_web_signature tcId 367 and 370 repeat tcId 357).
    """
    valid: dict[str, int] = {}
    for test in tests:
        token = test.get("jws", test.get("jwe"))
        if test["result"] == "valid" and isinstance(token, str):
            valid.setdefault(token, int(test["tcId"]))
    found = {}
    for test in tests:
        token = test.get("jws", test.get("jwe"))
        if test["result"] == "invalid" and isinstance(token, str) and token in valid:
            found[int(test["tcId"])] = (
                f"contradiction: the token is byte-identical to valid tcId {valid[token]}"
            )
    return found


_KEY_CACHE: dict[tuple[str, int, str], JWK | JWKSet | JoseError] = {}


def import_key(data: dict[str, Any]) -> JWK | JWKSet:
    """A JWK, or a JWK Set when the object has `keys`, through the public importers."""
    if "keys" in data:
        return JWKSet.from_dict(data)
    return JWK.from_dict(data)


def group_key(case: WycheproofCase, member: str) -> JWK | JWKSet:
    """The group's `private`/`public` key, imported once per group.

    A refusal (`JoseError`) is cached and raised again for every test of the group, so a key
    that must be refused counts as the rejection of each of its tests.
    """
    cache_key = (case.file, case.group_index, member)
    if cache_key not in _KEY_CACHE:
        try:
            _KEY_CACHE[cache_key] = import_key(case.group[member])
        except JoseError as exc:
            _KEY_CACHE[cache_key] = exc
    found = _KEY_CACHE[cache_key]
    if isinstance(found, JoseError):
        raise found
    return found


def check_result(
    case: WycheproofCase, action: Callable[[], object], expected: object = None
) -> None:
    """Run `action` and hold it to the case's result.

    valid: it must succeed (and return `expected` when given); invalid: it must raise a
    `JoseError`; acceptable: either, but a success must still return `expected`. Any other
    exception propagates and fails the test: untrusted input may only raise `JoseError`.
    """
    if case.result == "invalid":
        try:
            outcome = action()
        except JoseError:
            return
        pytest.fail(f"accepted an invalid vector: {case.describe()} -> {outcome!r:.120}")
    if case.result == "acceptable":
        try:
            outcome = action()
        except JoseError:
            return
    else:
        try:
            outcome = action()
        except JoseError as exc:
            pytest.fail(f"refused a valid vector: {case.describe()} -> {type(exc).__name__}: {exc}")
    if expected is not None:
        assert outcome == expected, f"wrong output for {case.describe()}"
