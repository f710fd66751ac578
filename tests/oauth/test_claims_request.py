"""The `claims` request parameter (OpenID Connect Core §5.5): what it may hold, what is
refused as `invalid_request`, what is ignored, and the `sub` and `acr` rules (§5.5.1)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ostiary.oauth.claims_request import (
    MAX_CLAIMS_LENGTH,
    claims_request_from_json,
    claims_request_json,
    id_token_claims,
    individual_claims,
    parse_claims_request,
    required_subjects,
    userinfo_claims,
)
from ostiary.oauth.errors import AccessDenied, InvalidRequest
from ostiary.oauth.models import ClaimRequest

SCOPES = frozenset({"openid", "profile", "email", "phone"})


def parse(value: Any) -> Any:
    return parse_claims_request(value if isinstance(value, str) else json.dumps(value), SCOPES)


def test_null_and_object_requests_in_both_members() -> None:
    request = parse(
        {
            "userinfo": {"email": {"essential": True}, "name": None},
            "id_token": {"phone_number": {"value": "+44 1865 000000"}, "auth_time": None},
        }
    )
    assert request.userinfo == {"email": ClaimRequest(essential=True), "name": ClaimRequest()}
    assert request.id_token["phone_number"] == ClaimRequest(values=("+44 1865 000000",))
    assert userinfo_claims(request) == {"email", "name"}
    assert id_token_claims(request) == {"phone_number"}  # auth_time is always sent
    assert individual_claims(request) == {"email", "name", "phone_number"}


def test_unknown_members_and_claims_are_ignored() -> None:
    # §5.5: "Any members used that are not understood MUST be ignored."
    request = parse({"userinfo": {"shoe_size": None, "email": None}, "vp_token": {"x": 1}})
    assert set(request.userinfo) == {"email"}
    assert request.id_token == {}


def test_claims_outside_the_clients_scopes_are_ignored() -> None:
    """The parameter never widens what a client may see: `address` needs a scope this client
    may never be given."""
    request = parse({"userinfo": {"address": None}, "id_token": {"address": {"essential": True}}})
    assert individual_claims(request) == frozenset()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not json", "JSON object"),
        ("[]", "JSON object"),
        ('"userinfo"', "JSON object"),
        ("{" * 3000 + "}" * 3000, "characters"),
        ("[" * 2000 + "]" * 2000, "JSON object"),
        ('{"userinfo": {}, "userinfo": {}}', "repeat"),
        ('{"userinfo": {"email": NaN}}', "not JSON"),
        ({"userinfo": []}, "claims.userinfo must be a JSON object"),
        ({"id_token": "email"}, "claims.id_token must be a JSON object"),
        ({"userinfo": {"email": True}}, "null or a JSON object"),
        ({"userinfo": {"email": "yes"}}, "null or a JSON object"),
        ({"userinfo": {"email": {"essential": "true"}}}, "essential must be true or false"),
        ({"userinfo": {"email": {"essential": 1}}}, "essential must be true or false"),
        ({"userinfo": {"email": {"value": "a", "values": ["a"]}}}, "both value and values"),
        ({"userinfo": {"email": {"values": "a"}}}, "values must be a list"),
        ({"userinfo": {"email": {"values": []}}}, "values must be a list"),
        ({"userinfo": {"email": {"values": ["a"] * 17}}}, "values must be a list"),
        ({"userinfo": {"email": {"value": {"a": 1}}}}, "a text, a number"),
        ({"userinfo": {"email": {"value": None}}}, "a text, a number"),
        ({"userinfo": {"email": {"value": ""}}}, "1 to 256 characters"),
        ({"userinfo": {"email": {"value": "x" * 257}}}, "1 to 256 characters"),
        ({"userinfo": {"email": {"value": 2**60}}}, "a text, a number"),
        ({"userinfo": {"": None}}, "empty or too long claim name"),
        ({"userinfo": {f"c{i}": None for i in range(65)}}, "too many claims"),
        ({"id_token": {"sub": {"value": 42}}}, "values must be strings"),
        (
            {"id_token": {"sub": {"value": "alice"}}, "userinfo": {"sub": {"value": "bob"}}},
            "two different sub values",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_malformed_claims_are_invalid_request(value: Any, words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(value)
    assert caught.value.error == "invalid_request"
    assert words in caught.value.description


def test_oversized_parameter_refused_before_parsing() -> None:
    text = json.dumps({"userinfo": {"email": None}, "pad": "x" * MAX_CLAIMS_LENGTH})
    with pytest.raises(InvalidRequest, match="at most"):
        parse_claims_request(text, SCOPES)


def test_sub_values_name_who_may_be_answered_for() -> None:
    request = parse(
        {"id_token": {"sub": {"values": ["a", "b"]}}, "userinfo": {"sub": {"value": "b"}}}
    )
    assert required_subjects(request) == {"b"}
    assert required_subjects(parse({"id_token": {"sub": None}})) is None
    assert required_subjects(None) is None


def test_essential_acr_with_values_cannot_be_met() -> None:
    # §5.5.1.1: this server asserts no acr, so the requirement is a failed authentication
    with pytest.raises(AccessDenied):
        parse(
            {"id_token": {"acr": {"essential": True, "values": ["urn:mace:incommon:iap:silver"]}}}
        )


@pytest.mark.parametrize(
    "acr", [None, {"essential": True}, {"values": ["urn:mace:incommon:iap:silver"]}]
)
def test_voluntary_acr_is_ignored(acr: Any) -> None:
    assert parse({"id_token": {"acr": acr}}).id_token == {}


_spec = st.one_of(
    st.none(),
    st.builds(
        lambda essential, values: (
            {"essential": essential} | ({} if values is None else {"values": values})
        ),
        st.booleans(),
        st.one_of(
            st.none(),
            st.lists(
                st.one_of(st.text(min_size=1, max_size=20), st.integers(-1000, 1000)),
                min_size=1,
                max_size=3,
            ),
        ),
    ),
)
_names = st.sampled_from(["email", "name", "phone_number", "nickname", "email_verified"])


@given(st.dictionaries(_names, _spec), st.dictionaries(_names, _spec))
def test_stored_form_round_trips(userinfo: dict[str, Any], id_token: dict[str, Any]) -> None:
    request = parse({"userinfo": userinfo, "id_token": id_token})
    stored = json.loads(json.dumps(claims_request_json(request)))
    assert claims_request_from_json(stored) == request


@given(st.text(max_size=200))
def test_any_text_is_parsed_or_refused_as_invalid_request(text: str) -> None:
    with contextlib.suppress(InvalidRequest):
        parse_claims_request(text, SCOPES)
