"""`GET /metrics`: Prometheus text that prometheus_client's own parser reads, counting
requests by route and status, latencies, tokens by grant, errors by code, rate-limit hits and
the database pool; optionally behind a bearer token. Counters are per process, so each test
compares before and after."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_app import ISSUER, Clock, Served, fast_hasher, make_settings, serve

from ostiary.server import metrics

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(served: Served, **headers: str) -> Samples:
    response = await served.http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    assert response.headers["cache-control"] == "no-store"
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_token_requests_are_counted_by_route_status_grant_and_error(
    served: Served,
) -> None:
    client, secret = await served.add_client()
    assert secret is not None
    before = await scrape(served)
    auth = (client.client_id, secret)
    ok = await served.http.post(
        "/token", data={"grant_type": "client_credentials", "scope": "read"}, auth=auth
    )
    assert ok.status_code == 200
    bad = await served.http.post("/token", data={"grant_type": "password"}, auth=auth)
    assert bad.json()["error"] == "unauthorized_client"
    wrong = await served.http.post(
        "/token", data={"grant_type": "client_credentials"}, auth=(client.client_id, "nope")
    )
    assert wrong.status_code == 401
    after = await scrape(served)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ostiary_tokens_issued_total", grant_type="client_credentials") == 1
    assert delta("ostiary_oauth_errors_total", error="unauthorized_client") == 1
    assert delta("ostiary_oauth_errors_total", error="invalid_client") == 1
    assert delta("ostiary_http_requests_total", route="/token", status="200") == 1
    assert delta("ostiary_http_requests_total", route="/token", status="400") == 1
    assert delta("ostiary_http_requests_total", route="/token", status="401") == 1
    assert delta("ostiary_http_request_duration_seconds_count", route="/token") == 3
    inf = delta("ostiary_http_request_duration_seconds_bucket", route="/token", le="+Inf")
    assert inf == 3
    # the previous scrape itself was counted once it had answered
    assert delta("ostiary_http_requests_total", route="/metrics", status="200") == 1


async def test_buckets_are_cumulative_and_end_at_the_count(served: Served) -> None:
    await served.http.get("/jwks.json")
    samples = await scrape(served)
    route = "/jwks.json"
    buckets = [
        value(samples, "ostiary_http_request_duration_seconds_bucket", route=route, le=repr(bound))
        for bound in metrics.LATENCY_BUCKETS
    ]
    assert buckets == sorted(buckets)
    count = value(samples, "ostiary_http_request_duration_seconds_count", route=route)
    inf = value(samples, "ostiary_http_request_duration_seconds_bucket", route=route, le="+Inf")
    assert count == inf >= 1
    assert value(samples, "ostiary_http_request_duration_seconds_sum", route=route) > 0


async def test_attacker_paths_never_become_labels(served: Served) -> None:
    marker = "probe-" + secrets.token_hex(8)
    for path in (f"/{marker}", f"/token/{marker}", f"/static/{marker}.css"):
        response = await served.http.get(path)
        assert response.status_code == 404
    await served.http.post("/token", data={"grant_type": marker})
    text = (await served.http.get("/metrics")).text
    assert marker not in text
    samples = parse(text)
    assert value(samples, "ostiary_http_requests_total", route="unmatched", status="404") >= 1


async def test_rate_limit_hits_and_odd_names_render_as_valid_text(served: Served) -> None:
    before = await scrape(served)
    metrics.count_rate_limited("token")
    metrics.count_rate_limited('we"ird\\name\n')
    after = await scrape(served)
    token_hits = value(after, "ostiary_rate_limited_total", limit="token")
    assert token_hits - value(before, "ostiary_rate_limited_total", limit="token") == 1
    assert value(after, "ostiary_rate_limited_total", limit='we"ird\\name\n') >= 1


async def test_pool_gauges_on_a_database_file(served: Served) -> None:
    samples = await scrape(served)
    size = value(samples, "ostiary_db_pool_size")
    assert size >= 1
    checked_out = value(samples, "ostiary_db_pool_checked_out")
    checked_in = value(samples, "ostiary_db_pool_checked_in")
    # SQLite keeps its event-loop connection checked out; PostgreSQL returns each one
    assert 0 <= checked_out <= size
    assert checked_out + checked_in <= size
    assert value(samples, "ostiary_db_pool_overflow") == 0


async def test_observe_is_the_plain_function_a_lean_route_calls(served: Served) -> None:
    route = "/lean-" + secrets.token_hex(4)
    metrics.observe(route, 200, 0.0007)
    metrics.observe(route, 200, 99.0)
    samples = await scrape(served)
    assert value(samples, "ostiary_http_requests_total", route=route, status="200") == 2
    le_1ms = value(samples, "ostiary_http_request_duration_seconds_bucket", route=route, le="0.001")
    le_10s = value(samples, "ostiary_http_request_duration_seconds_bucket", route=route, le="10.0")
    inf = value(samples, "ostiary_http_request_duration_seconds_bucket", route=route, le="+Inf")
    assert (le_1ms, le_10s, inf) == (1, 1, 2)
    total = value(samples, "ostiary_http_request_duration_seconds_sum", route=route)
    assert total == pytest.approx(99.0007)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic bWV0cmljczp4", "Bearer", "bearer  "],
    ids=["none", "wrong-token", "basic", "empty-bearer", "blank-bearer"],
)
async def test_metrics_token_refuses_scrapers_without_it(
    tmp_path: Path, authorization: str | None
) -> None:
    token = secrets.token_urlsafe(24)
    settings = make_settings(tmp_path, issuer=ISSUER, metrics_token=token)
    async with serve(settings, clock=Clock(), hasher=fast_hasher()) as served:
        headers = {} if authorization is None else {"Authorization": authorization}
        refused = await served.http.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer ")
        assert refused.json()["error"] == "invalid_token"
        assert token not in refused.text
        assert "ostiary_http_requests_total" not in refused.text
        allowed = await scrape(served, Authorization=f"Bearer {token}")
        assert ("ostiary_http_requests_total", frozenset()) not in allowed


async def test_metrics_token_is_not_accepted_twice(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    settings = make_settings(tmp_path, issuer=ISSUER, metrics_token=token)
    async with serve(settings, clock=Clock(), hasher=fast_hasher()) as served:
        headers = httpx.Headers([("authorization", f"Bearer {token}")] * 2)
        response = await served.http.get("/metrics", headers=headers)
        assert response.status_code == 401


async def test_metrics_only_answers_get(served: Served) -> None:
    response = await served.http.post("/metrics", content=b"x")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
